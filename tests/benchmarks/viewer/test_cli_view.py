"""``hopgym view DIR`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopgym.benchmarks.reports.synthetic import write_synthetic_run
from hopgym.cli import main


def _data(page: str) -> dict:
    return json.loads(page.split('<script type="application/json" id="data">', 1)[1].split("</script>", 1)[0])


def test_view_writes_the_page_and_prints_its_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = write_synthetic_run(tmp_path / "run", episodes=40, seed=1)
    assert main(["view", str(run), "--report"]) == 0
    page_path = run / "viewer" / "index.html"
    assert capsys.readouterr().out.strip() == page_path.resolve().as_uri()
    data = _data(page_path.read_text())
    assert len(data["episodes"]) == 40 and data["run"]["has_golds"]
    assert (run / "report.md").is_file() and (run / "plots" / "searches_histogram.png").is_file()


def test_view_takes_golden_answers_from_data(tmp_path: Path) -> None:
    run = write_synthetic_run(tmp_path / "run", episodes=5, seed=2)
    tasks = run / "tasks.jsonl"
    moved = tmp_path / "elsewhere.jsonl"
    tasks.rename(moved)
    out = tmp_path / "page.html"
    assert main(["view", str(run), "--out", str(out)]) == 0
    assert not _data(out.read_text())["run"]["has_golds"]
    assert main(["view", str(run), "--out", str(out), "--data", str(moved)]) == 0
    data = _data(out.read_text())
    assert data["run"]["has_golds"] and all(e["g"] for e in data["episodes"])


def test_view_of_a_directory_that_is_no_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["view", str(tmp_path)]) == 2
    assert "no trajectories.jsonl here" in " ".join(capsys.readouterr().err.split())  # rich wraps lines


def test_view_of_a_real_hopgym_eval_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The oracle on HopWorld through hopgym eval, then hopgym view: the golden answers come from the env
    that config.json names, and every episode the oracle answered is shown correct."""
    run = tmp_path / "run"
    assert main(["eval", "--limit", "6", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["view", str(run)]) == 0
    data = _data((run / "viewer" / "index.html").read_text())
    episodes = data["episodes"]
    assert len(episodes) == 6 and data["run"]["has_golds"]
    assert all(e["g"] and e["o"] == "correct" for e in episodes)
    assert any(t.get("qy") for e in episodes for t in e["t"])
