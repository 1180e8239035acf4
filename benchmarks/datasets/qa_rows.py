"""Rows that carry a question and its answers but no paragraphs: FlashRAG jsonl, NQ-open, Search-R1's parquet,
Bamboogle's CSV and any jsonl whose field names are given.

Every converter takes one decoded row, where it came from and the reader options, and returns a Task; a row it
cannot use raises a DataError naming the file, the line (or record) and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hopgym.benchmarks.datasets.records import Where, answers_of, id_of, require, require_text
from hopgym.jsonl_read import json_type
from hopgym.types import Task

__all__ = [
    "FieldNames",
    "bamboogle_task",
    "flashrag_task",
    "generic_task",
    "lookup",
    "nq_open_task",
    "search_r1_task",
]

# FlashRAG keeps these beside the question; they describe the task, so they go into its metadata.
_FLASHRAG_EXTRAS = ("data_source", "type", "level", "orig_split")
# Search-R1's prompts end with "Question: {question}\n" (its scripts/data_process/*.py templates).
_SEARCH_R1_QUESTION_MARK = "Question:"


@dataclass(frozen=True)
class FieldNames:
    """Where the generic jsonl reader finds each part; dotted names reach into objects
    (``reward_model.ground_truth.target``)."""

    question: str = "question"
    answers: str = "answer"
    id: str | None = "id"

    def __post_init__(self) -> None:
        for name in ("question", "answers"):
            if not getattr(self, name):
                raise ValueError(f"FieldNames.{name} is empty: give the field that holds the {name}")


_MISSING = object()


def lookup(row: Mapping[str, Any], dotted: str) -> Any:
    """``row["a"]["b"]`` for ``"a.b"``; a missing step gives the module's _MISSING marker."""
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _dataset_metadata(row: Mapping[str, Any], where: Where, dataset: str | None) -> dict[str, Any]:
    raw = row.get("metadata")
    if raw is not None and not isinstance(raw, Mapping):
        raise where.error("metadata", f"must be a JSON object, got {json_type(raw)}")
    metadata = dict(raw or {})
    for extra in _FLASHRAG_EXTRAS:
        if extra in row:
            metadata.setdefault(extra, row[extra])
    source = metadata.get("data_source")
    name = dataset or (source if isinstance(source, str) and source else None)
    if name is not None:
        metadata.setdefault("dataset", name)
    return metadata


def _row_id(row: Mapping[str, Any], where: Where, fallback: str, *names: str) -> str:
    for name in names:
        if row.get(name) is not None:
            return id_of(row[name], name, where)
    return fallback


def flashrag_task(row: Mapping[str, Any], where: Where, dataset: str | None) -> Task:
    """``{"id", "question", "golden_answers", "metadata"?}`` plus FlashRAG's extras (``data_source``, ...)."""
    question = require_text(row, "question", where)
    golds = answers_of(
        require(row, "golden_answers", (str, list), where, "a list of strings"), "golden_answers", where
    )
    task_id = _row_id(row, where, f"{_stem(where)}-{where.line or where.record}", "id", "_id")
    return Task(task_id, question, golds, _dataset_metadata(row, where, dataset))


def nq_open_task(row: Mapping[str, Any], where: Where, dataset: str | None) -> Task:
    """NQ-open: ``{"question", "answer": [...]}``, no id (the row number makes one: ``nq-0``, ``nq-1``...)."""
    question = require_text(row, "question", where)
    golds = answers_of(require(row, "answer", (str, list), where, "a list of strings"), "answer", where)
    name = dataset or "nq"
    task_id = _row_id(row, where, f"{name}-{(where.record or 1) - 1}", "id")
    return Task(task_id, question, golds, {"dataset": name})


def _question_from_prompt(prompt: Any, where: Where) -> str:
    if isinstance(prompt, str):
        text = prompt
    elif isinstance(prompt, list) and prompt:
        users = [m for m in prompt if isinstance(m, Mapping) and m.get("role") == "user"]
        last = users[-1] if users else prompt[-1]
        content = last.get("content") if isinstance(last, Mapping) else None
        if not isinstance(content, str):
            raise where.error("prompt", "has no user message with a string 'content'")
        text = content
    else:
        raise where.error("prompt", f"must be a list of chat messages, got {json_type(prompt)}")
    _, mark, question = text.rpartition(_SEARCH_R1_QUESTION_MARK)
    if not mark or not question.strip():
        raise where.error(
            "prompt",
            f"no {_SEARCH_R1_QUESTION_MARK!r} line to take the question from: add a 'question' column, or "
            "use --format generic with --question-field",
        )
    return question.strip()


def search_r1_task(row: Mapping[str, Any], where: Where, dataset: str | None) -> Task:
    """Search-R1's parquet rows: ``prompt`` (chat messages ending in ``Question: ...``),
    ``reward_model.ground_truth.target`` (the golden answers), ``data_source``; a ``question`` column, when
    the file kept one, is used instead of the prompt's text."""
    target = lookup(row, "reward_model.ground_truth.target")
    if target is _MISSING:
        raise where.error("reward_model.ground_truth.target", "missing: this is not a Search-R1 parquet row")
    golds = answers_of(target, "reward_model.ground_truth.target", where)
    question_value = row.get("question")
    if isinstance(question_value, str) and question_value.strip():
        question = question_value.strip()
    else:
        question = _question_from_prompt(row.get("prompt"), where)
    source = row.get("data_source")
    name = dataset or (source if isinstance(source, str) and source else "search_r1")
    index = lookup(row, "extra_info.index")
    number = index if isinstance(index, int) and not isinstance(index, bool) else (where.record or 1) - 1
    task_id = _row_id(row, where, f"{name}-{number}", "id")
    metadata: dict[str, Any] = {"dataset": name}
    split = lookup(row, "extra_info.split")
    if isinstance(split, str):
        metadata["split"] = split
    return Task(task_id, question, golds, metadata)


def bamboogle_task(row: Mapping[str, Any], where: Where, dataset: str | None) -> Task:
    """Bamboogle's CSV: columns ``Question`` and ``Answer`` (one answer per question)."""
    question = require_text(row, "Question", where)
    answer = require_text(row, "Answer", where)
    name = dataset or "bamboogle"
    return Task(f"{name}-{(where.record or 1) - 1}", question, (answer,), {"dataset": name})


def generic_task(row: Mapping[str, Any], where: Where, dataset: str | None, fields: FieldNames) -> Task:
    """Any jsonl: the question, answers and id fields are named by ``fields``."""
    question = lookup(row, fields.question)
    if question is _MISSING:
        present = ", ".join(sorted(map(str, row)))
        raise where.error(
            fields.question, f"missing (fields present: {present}); name the field with --question-field"
        )
    if not isinstance(question, str) or not question.strip():
        raise where.error(fields.question, f"must be a non-empty string, got {json_type(question)}")
    answers = lookup(row, fields.answers)
    if answers is _MISSING:
        present = ", ".join(sorted(map(str, row)))
        raise where.error(
            fields.answers, f"missing (fields present: {present}); name the field with --answer-field"
        )
    golds = answers_of(answers, fields.answers, where)
    task_id = f"{dataset or _stem(where)}-{(where.record or 1) - 1}"
    if fields.id is not None:
        raw_id = lookup(row, fields.id)
        if raw_id is not _MISSING and raw_id is not None:
            task_id = id_of(raw_id, fields.id, where)
    metadata = {"dataset": dataset} if dataset else {}
    return Task(task_id, question.strip(), golds, metadata)


def _stem(where: Where) -> str:
    name = where.path.replace("\\", "/").rsplit("/", 1)[-1]
    return name.split(".", 1)[0] or "task"
