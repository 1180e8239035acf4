"""``hopgym data prepare`` and ``hopgym data formats`` through the real entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hopgym.cli import main
from hopgym.envs.tasks import load_tasks


def test_prepare_hotpotqa_writes_tasks_and_corpus(
    shared_data: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = shared_data("hotpotqa", "hf_distractor_dev_100.jsonl")
    out = tmp_path / "hotpot"
    assert main(["data", "prepare", str(source), "--out", str(out), "--limit", "10"]) == 0
    printed = capsys.readouterr().out
    assert "format hotpotqa" in printed
    assert f"wrote 10 tasks to {out / 'tasks.jsonl'}" in printed
    assert "passages to" in printed and "hopgym index build --corpus" in printed
    tasks = load_tasks(out / "tasks.jsonl")
    corpus = [json.loads(line) for line in (out / "corpus.jsonl").read_text().splitlines()]
    assert len(tasks) == 10
    ids = {p["id"] for p in corpus}
    assert len(ids) == len(corpus)
    assert all(set(t.metadata["supporting_passage_ids"]) <= ids for t in tasks)


def test_prepare_with_an_explicit_format_and_generic_fields(tmp_path: Path) -> None:
    source = tmp_path / "custom.jsonl"
    source.write_text(json.dumps({"key": 7, "prompt": "Who?", "gold": "Ann"}) + "\n")
    argv = ["data", "prepare", str(source), "--out", str(tmp_path / "o"), "--format", "generic"]
    argv += ["--question-field", "prompt", "--answer-field", "gold", "--id-field", "key", "--dataset", "mine"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "o" / "tasks.jsonl").read_text()) == {
        "id": "7",
        "question": "Who?",
        "golden_answers": ["Ann"],
        "metadata": {"dataset": "mine"},
    }


def test_bad_input_exits_2_with_the_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "dev.jsonl"
    source.write_text('{"id": "a", "question": "q", "golden_answers": "x"}\n{"id": "b", "question": "q"}\n')
    assert main(["data", "prepare", str(source), "--out", str(tmp_path / "o"), "--format", "flashrag"]) == 2
    err = capsys.readouterr().err
    assert f"hopgym data prepare: error: {source}:2: golden_answers: missing" in err
    assert not (tmp_path / "o" / "tasks.jsonl").exists()


def test_input_or_hf_but_not_both(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "prepare", "--out", str(tmp_path)]) == 2
    assert "give a dataset file (IN) or --hf NAME" in capsys.readouterr().err


def test_formats_lists_every_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "formats"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == [
        "flashrag",
        "nq_open",
        "search_r1_parquet",
        "hotpotqa",
        "musique",
        "2wiki",
        "bamboogle",
        "generic",
    ]


def test_prepare_reports_left_out_unanswerable_questions(
    shared_data: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        json.loads(line) for line in shared_data("musique", "format_sample.jsonl").read_text().splitlines()
    ]
    source = tmp_path / "musique_full.jsonl"
    source.write_text("".join(json.dumps({**r, "answerable": i != 0}) + "\n" for i, r in enumerate(rows)))
    assert main(["data", "prepare", str(source), "--out", str(tmp_path / "o")]) == 0
    assert "left out 1 unanswerable questions" in capsys.readouterr().out
    assert len(load_tasks(tmp_path / "o" / "tasks.jsonl")) == 2
    assert main(["data", "prepare", str(source), "--out", str(tmp_path / "o"), "--keep-unanswerable"]) == 0
    assert len(load_tasks(tmp_path / "o" / "tasks.jsonl")) == 3
