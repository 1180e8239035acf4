"""Task loading from the real shared datasets and clear errors for bad files."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from hopgym.envs.tasks import load_tasks
from hopgym.errors import DataError


def test_hotpotqa_flashrag_format(shared_data: Callable[..., Path]) -> None:
    tasks = load_tasks(shared_data("hotpotqa", "dev_500.jsonl"))
    assert len(tasks) == 500
    assert all(t.golden_answers and t.question for t in tasks)
    assert len(tasks[0].metadata["supporting_passage_ids"]) == 2


def test_nq_open_format_gets_line_ids(shared_data: Callable[..., Path]) -> None:
    tasks = load_tasks(shared_data("nq", "NQ-open.dev.jsonl"), limit=20)
    assert len(tasks) == 20 and tasks[0].id == "NQ-open.dev-1"
    assert isinstance(tasks[0].golden_answers, tuple)


def test_mixed_keeps_data_source(shared_data: Callable[..., Path]) -> None:
    tasks = load_tasks(shared_data("mixed", "seven_datasets_test.jsonl"))
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


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a", "question": "q?", "golden_answers": ["x"]}\n')
    assert [t.id for t in load_tasks(path)] == ["a"]


def _empty_gold_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "normalizes to the empty string" in r.getMessage()]


def test_golds_that_normalize_to_nothing_are_named_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hopgym.envs.rewards import search_r1_score, sub_em_score

    golds = ["---", "the", "A+", ")", "!!", "an", "...", "?", "a", "''", "*", "--", "(", "~"]
    rows = [{"id": f"e{i}", "question": "q?", "answer": [g]} for i, g in enumerate(golds)]
    rows.append({"id": "fine", "question": "q?", "answer": ["Paris", "---"]})
    rows.append({"id": "ok", "question": "q?", "answer": ["Paris"]})
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING, logger="hopgym.envs.tasks"):
        tasks = load_tasks(path)
    (message,) = _empty_gold_warnings(caplog)
    assert f"{path}: 15 task(s)" in message
    assert "e0 ['---']" in message and "e9 " in message and "e10 " not in message
    assert message.endswith(" and 5 more")
    assert "'ok'" not in message and "ok [" not in message
    # The scores stay the seed projects': any prediction matches an empty gold.
    assert sub_em_score("anything at all", tasks[0].golden_answers) == 1.0
    assert search_r1_score("<answer>anything</answer>", tasks[0].golden_answers, sub=True) == 1.0


def test_clean_golds_do_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "q?", "answer": ["Paris"]}) + "\n")
    with caplog.at_level(logging.WARNING, logger="hopgym.envs.tasks"):
        load_tasks(path)
    assert _empty_gold_warnings(caplog) == []


def test_nq_open_dev_names_its_four_empty_gold_tasks(
    caplog: pytest.LogCaptureFixture, shared_data: Callable[..., Path]
) -> None:
    path = shared_data("nq", "NQ-open.dev.jsonl")
    with caplog.at_level(logging.WARNING, logger="hopgym.envs.tasks"):
        load_tasks(path)
    (message,) = _empty_gold_warnings(caplog)
    assert ": 4 task(s)" in message
    for task_id in ("NQ-open.dev-291", "NQ-open.dev-364", "NQ-open.dev-1151", "NQ-open.dev-2721"):
        assert task_id in message
