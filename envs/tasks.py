"""Task sources: load QA tasks from the common jsonl formats, with errors that name file, line and field."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hopgym.envs.rewards.normalize import normalize_answer
from hopgym.errors import DataError
from hopgym.jsonl_read import iter_json_objects, json_type
from hopgym.types import Task

__all__ = ["empty_gold_tasks", "iter_tasks", "load_tasks", "task_from_record"]

logger = logging.getLogger(__name__)

_ANSWER_FIELDS = ("golden_answers", "answer", "answers")
_METADATA_EXTRAS = ("data_source", "type", "level", "orig_split")


def _answers(value: Any, field: str, *, path: str, line: int) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and value and all(isinstance(a, (str, int, float)) for a in value):
        return tuple(str(a) for a in value)
    raise DataError(f"field {field!r} must be a non-empty list of strings", path=path, line=line)


def task_from_record(record: Mapping[str, Any], *, path: str, line: int) -> Task:
    """One task from a FlashRAG (`golden_answers`), NQ-open (`answer`) or HotpotQA (`answer`) record."""
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError("missing or empty field 'question'", path=path, line=line)
    field = next((f for f in _ANSWER_FIELDS if f in record), None)
    if field is None:
        raise DataError("missing field 'golden_answers' (or 'answer')", path=path, line=line)
    golds = _answers(record[field], field, path=path, line=line)
    raw_id = record.get("id", record.get("_id"))
    if raw_id is not None and (isinstance(raw_id, (bool, dict, list))):
        raise DataError(
            f"field 'id' must be a string or a number, got {json_type(raw_id)}", path=path, line=line
        )
    task_id = str(raw_id) if raw_id is not None else f"{Path(path).stem}-{line}"
    raw_metadata = record.get("metadata")
    if raw_metadata is not None and not isinstance(raw_metadata, Mapping):
        raise DataError(
            f"field 'metadata' must be a JSON object, got {json_type(raw_metadata)}", path=path, line=line
        )
    metadata = dict(raw_metadata or {})
    for extra in _METADATA_EXTRAS:
        if extra in record:
            metadata.setdefault(extra, record[extra])
    return Task(id=task_id, question=question.strip(), golden_answers=golds, metadata=metadata)


def iter_tasks(path: str | Path) -> Iterator[Task]:
    p = Path(path)
    for lineno, record in iter_json_objects(p, what="task file"):
        yield task_from_record(record, path=str(p), line=lineno)


def load_tasks(path: str | Path, *, limit: int | None = None) -> list[Task]:
    """Load tasks from a jsonl file; ids must be unique."""
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for index, task in enumerate(iter_tasks(path)):
        if limit is not None and index >= limit:
            break
        if task.id in seen:
            raise DataError(
                f"duplicate task id {task.id!r} (first seen in task #{seen[task.id] + 1})", path=str(path)
            )
        seen[task.id] = index
        tasks.append(task)
    if not tasks:
        raise DataError("no tasks in file", path=str(path))
    _warn_empty_golds(tasks, path=str(path))
    return tasks


def empty_gold_tasks(tasks: Sequence[Task]) -> list[Task]:
    """The tasks with a golden answer that SQuAD normalization turns into ``""`` (e.g. ``"---"``).

    The empty string is a substring of every prediction, so ``sub_em`` and ``search_r1_sub`` score any
    answer 1.0 on such a task, as the seed projects' code does.
    """
    return [t for t in tasks if any(not normalize_answer(g) for g in t.golden_answers)]


_WARN_MAX_NAMED = 10


def _warn_empty_golds(tasks: Sequence[Task], *, path: str) -> None:
    # One warning per file, not per task: NQ-open dev has four of these among 3,610 tasks.
    flagged = empty_gold_tasks(tasks)
    if not flagged:
        return
    named = ", ".join(f"{t.id} {list(t.golden_answers)!r}" for t in flagged[:_WARN_MAX_NAMED])
    more = f" and {len(flagged) - _WARN_MAX_NAMED} more" if len(flagged) > _WARN_MAX_NAMED else ""
    logger.warning(
        "%s: %d task(s) have a golden answer that normalizes to the empty string, so the sub_em and "
        "search_r1_sub rewards score any prediction 1.0 on them (kept as the seed projects score them; "
        "fix or drop these answers for a meaningful score): %s%s",
        path,
        len(flagged),
        named,
        more,
    )
