"""Task loading from the real shared datasets and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hopgym.envs.tasks import load_tasks
from hopgym.errors import DataError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"shared data not found: {path}")
    return path


def test_hotpotqa_flashrag_format() -> None:
    tasks = load_tasks(_need(DATA / "hotpotqa" / "dev_500.jsonl"))
    assert len(tasks) == 500
    assert all(t.golden_answers and t.question for t in tasks)
    assert len(tasks[0].metadata["supporting_passage_ids"]) == 2


def test_nq_open_format_gets_line_ids() -> None:
    tasks = load_tasks(_need(DATA / "nq" / "NQ-open.dev.jsonl"), limit=20)
    assert len(tasks) == 20 and tasks[0].id == "NQ-open.dev-1"
    assert isinstance(tasks[0].golden_answers, tuple)


def test_mixed_keeps_data_source() -> None:
    tasks = load_tasks(_need(DATA / "mixed" / "seven_datasets_test.jsonl"))
    assert {t.metadata["data_source"] for t in tasks} >= {"nq", "hotpotqa", "Bamboogle"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"id": "a", "question": "q?", "golden_answers": ["x"]}\n{"id": "b", "question": "q?"\n',
            ":2: invalid JSON",
        ),
        ('{"id": "a", "golden_answers": ["x"]}\n', ":1: missing or empty field 'question'"),
        ('{"id": "a", "question": "q?"}\n', ":1: missing field 'golden_answers'"),
        (
            '{"id": "a", "question": "q?", "golden_answers": []}\n',
            ":1: field 'golden_answers' must be a non-empty",
        ),
        ("[1, 2]\n", ":1: each line must be a JSON object"),
        (
            '{"id": "a", "question": "q", "answer": ["x"]}\n{"id": "a", "question": "r", "answer": ["y"]}\n',
            "duplicate task id 'a'",
        ),
        ("\n\n", "no tasks"),
    ],
)
def test_bad_task_files_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace("[", r"\[")) as excinfo:
        load_tasks(path)
    assert str(path) in str(excinfo.value)
