"""What the dataset readers produce (tasks and passages) and the checks every reader shares.

A prepared task is a :class:`hopgym.types.Task`, written as the FlashRAG-style record ``{"id", "question",
"golden_answers", "metadata"}`` that :func:`hopgym.envs.tasks.load_tasks` reads. Passages are ``{"id", "contents"}`` with contents
``"Title"\\ntext`` (Search-R1 / FlashRAG corpora). A passage id is ``PREFIX-`` plus the first 12 hex digits of
the SHA-1 of ``title\\ntext``: the same paragraph gets the same id in every run and every question that shows
it, and the shared HotpotQA corpus uses exactly these ids (prefix ``hp``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hopgym.errors import DataError
from hopgym.jsonl_read import json_type

__all__ = [
    "CorpusBuilder",
    "Where",
    "answers_of",
    "id_of",
    "passage_contents",
    "passage_id",
    "require",
    "require_text",
]

_ID_DIGITS = 12


@dataclass(frozen=True)
class Where:
    """Where a row came from, for error messages: a file and its line (jsonl, csv) or record number (a JSON
    list, parquet rows, a Hugging Face split)."""

    path: str
    line: int | None = None
    record: int | None = None

    def error(self, field_name: str, reason: str) -> DataError:
        """``file:line: field: reason`` (``file: record N: field: reason`` where there are no lines)."""
        prefix = f"record {self.record}: " if self.line is None and self.record is not None else ""
        return DataError(f"{prefix}{field_name}: {reason}", path=self.path, line=self.line)


def require(
    row: Mapping[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    where: Where,
    what: str,
    *,
    label: str | None = None,
) -> Any:
    """``row[name]`` when it has type ``kind`` (``what`` names that type in the error), else DataError naming
    the field as ``label`` (default ``name``)."""
    shown = label or name
    if name not in row:
        present = ", ".join(sorted(map(str, row))) or "none"
        raise where.error(shown, f"missing (fields present: {present})")
    value = row[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise where.error(shown, f"must be {what}, got {json_type(value)}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def require_text(row: Mapping[str, Any], name: str, where: Where) -> str:
    value: str = require(row, name, str, where, "a string")
    if not value.strip():
        raise where.error(name, "is empty")
    return value.strip()


def answers_of(value: Any, name: str, where: Where) -> tuple[str, ...]:
    """Golden answers from a string, a number or a non-empty list of them, as strings."""
    if isinstance(value, str) and value.strip():
        return (value,)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (str(value),)
    if isinstance(value, Sequence) and not isinstance(value, str) and value:
        out = []
        for index, answer in enumerate(value):
            if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
                raise where.error(f"{name}[{index}]", f"must be a string, got {json_type(answer)}")
            out.append(str(answer))
        return tuple(out)
    raise where.error(
        name, f"must be a non-empty string or list of strings, got {json_type(value)} {value!r}"
    )


def id_of(value: Any, name: str, where: Where) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise where.error(name, f"must be a non-empty string or an integer, got {json_type(value)}")
    return str(value)


def passage_contents(title: str, text: str) -> str:
    """``"Title"\\ntext``, the corpus convention the retrievers split titles from."""
    return f'"{title}"\n{text}'


def passage_id(prefix: str, title: str, text: str) -> str:
    digest = hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:_ID_DIGITS]
    return f"{prefix}-{digest}"


class CorpusBuilder:
    """The passages of a dataset's rows, each paragraph once, in first-seen order."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._contents: dict[str, str] = {}

    def add(self, title: str, text: str) -> str:
        """The paragraph's stable id (added on first sight)."""
        pid = passage_id(self.prefix, title, text)
        contents = passage_contents(title, text)
        known = self._contents.setdefault(pid, contents)
        if known != contents:  # 48 bits of SHA-1: would need ~16 million paragraphs to be likely
            raise DataError(
                f"passage id {pid} was given to two different paragraphs ({known[:60]!r} and "
                f"{contents[:60]!r}): prepare with another --passage-prefix per part and report this"
            )
        return pid

    def __len__(self) -> int:
        return len(self._contents)

    def passages(self) -> list[dict[str, str]]:
        return [{"id": pid, "contents": contents} for pid, contents in self._contents.items()]
