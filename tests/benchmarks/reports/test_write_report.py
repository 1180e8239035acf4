"""write_report on run directories written to disk: report.md, the PNGs, and the run directory's edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopgym.agents.rollout.store import TrajectoryStore
from hopgym.agents.rollout.trajectory import Trajectory, Turn
from hopgym.benchmarks.reports import load_run, write_report
from hopgym.errors import DataError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _answered(task_id: str, answer: str, searches: int) -> Trajectory:
    turns = [
        Turn(
            text="<search> q </search>",
            finish_reason="stop",
            observation="obs",
            action_kind="search",
            query="q",
        )
        for _ in range(searches)
    ]
    turns.append(
        Turn(
            text=f"<answer> {answer} </answer>",
            finish_reason="stop",
            observation="",
            action_kind="answer",
            answer=answer,
        )
    )
    return Trajectory(
        task_id=task_id,
        sample_index=0,
        group_id=task_id,
        termination="answered",
        turns=tuple(turns),
        reward=0.0,
        answer=answer,
        num_searches=searches,
    )


def _failed(task_id: str) -> Trajectory:
    return Trajectory(
        task_id=task_id, sample_index=0, group_id=task_id, termination="failed", error="ConnectError: refused"
    )


def _write_run(run: Path, trajectories: list[Trajectory], *, tasks: bool = True) -> Path:
    run.mkdir()
    with TrajectoryStore(run / "trajectories.jsonl", fsync=False) as store:
        for traj in trajectories:
            store.append(traj)
    if tasks:
        rows = [
            {
                "id": "t1",
                "question": "Q1?",
                "golden_answers": ["Paris"],
                "metadata": {"hops": 2, "type": "bridge"},
            },
            {
                "id": "t2",
                "question": "Q2?",
                "golden_answers": ["Rome"],
                "metadata": {"hops": 3, "type": "comparison"},
            },
            {
                "id": "t3",
                "question": "Q3?",
                "golden_answers": ["Oslo"],
                "metadata": {"hops": 2, "type": "bridge"},
            },
        ]
        (run / "tasks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (run / "config.json").write_text(json.dumps({"data": "tasks.jsonl"}))
    return run


def test_report_has_the_tables_and_plots(tmp_path: Path) -> None:
    run = _write_run(
        tmp_path / "run",
        # t3 failed first, then finished on the resumed run: only the finished record counts.
        [_answered("t1", "paris", 1), _answered("t2", "Milan", 2), _failed("t3"), _answered("t3", "Oslo", 2)],
    )
    (run / "summary.json").write_text(
        json.dumps({"metrics": {"em": 0.667, "f1": 0.7}, "episodes": 3, "failed": 0})
    )
    config = json.loads((run / "config.json").read_text())
    config.update(model="Qwen/Qwen2.5-7B", protocol="search_r1", seed=None)
    (run / "config.json").write_text(json.dumps(config))
    path = write_report(run)
    text = path.read_text()
    assert path == run / "report.md"
    assert "model: `Qwen/Qwen2.5-7B` · protocol: `search_r1` · data: `tasks.jsonl`" in text
    assert "seed" not in text
    assert "| em | 0.667 |" in text and "| episodes | 3 |" in text  # headline from summary.json
    assert "## Accuracy by number of searches" in text
    assert "| 1 | 1 | 0 | 1.000 |" in text  # searches=1: one episode, right
    assert "| 2 | 2 | 0 | 0.500 |" in text  # searches=2: t2 wrong, t3 right
    assert "## Accuracy by hops" in text and "## Accuracy by type" in text
    assert "| 3 | 1 | 0 | 0.000 |" in text  # hops=3: t2, wrong
    assert "| answered | 3 |" in text and "| ConnectError |" not in text  # the failed attempt was retried
    for name in (
        "accuracy_by_searches",
        "accuracy_by_hops",
        "accuracy_by_type",
        "searches_histogram",
        "failures",
    ):
        png = run / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC
        assert f"(plots/{name}.png)" in text


def test_failed_episodes_are_reported_not_scored(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "run", [_answered("t1", "Paris", 0), _failed("t2")])
    text = write_report(run, plots=False).read_text()
    assert "| failed | 1 |" in text and "| ConnectError | 1 |" in text
    assert "| em | 1.000 |" in text  # computed (no summary.json), over the scored episode only
    assert not (run / "plots").exists()


def test_tasks_passed_in_win_over_config(tmp_path: Path) -> None:
    from hopgym.types import Task

    run = _write_run(tmp_path / "run", [_answered("t1", "Lyon", 0)])
    text = write_report(
        run, tasks=[Task(id="t1", question="Q?", golden_answers=("Lyon",))], plots=False
    ).read_text()
    assert "| em | 1.000 |" in text


def test_without_golden_answers_the_report_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run = _write_run(tmp_path / "run", [_answered("t1", "Paris", 1)], tasks=False)
    (run / "config.json").write_text(json.dumps({"data": "missing.jsonl"}))
    text = write_report(run, plots=False).read_text()
    assert "Golden answers were not available" in text
    assert "correct (reward > 0)" in text
    assert "missing.jsonl" in caplog.text


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no trajectories\.jsonl here"):
        load_run(tmp_path)
    with pytest.raises(DataError, match="run directory not found"):
        load_run(tmp_path / "nope")


def test_corrupt_summary_names_the_file(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "run", [_answered("t1", "Paris", 1)])
    (run / "summary.json").write_text("{not json")
    with pytest.raises(DataError, match=r"summary\.json: not valid JSON"):
        load_run(run)
