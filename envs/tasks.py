"""Task sources: load QA tasks from the common jsonl formats, with errors that name file, line and field."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hopgym.errors import DataError
from hopgym.jsonl_read import iter_json_objects
from hopgym.types import Task

__all__ = ["iter_tasks", "load_tasks", "task_from_record"]

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
    task_id = str(raw_id) if raw_id is not None else f"{Path(path).stem}-{line}"
    metadata = dict(record.get("metadata") or {})
    for extra in _METADATA_EXTRAS:
        if extra in record:
            metadata.setdefault(extra, record[extra])
    return Task(id=task_id, question=question.strip(), golden_answers=golds, metadata=metadata)


def iter_tasks(path: str | Path) -> Iterator[Task]:
    p = Path(path)
    if not p.is_file():
        raise DataError("task file not found (check the path)", path=str(p))
    for lineno, record in iter_json_objects(p):
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
    return tasks
