"""Streaming corpus readers.

Three on-disk forms are accepted, each yielding :class:`~hopgym.types.Passage` one at a time so a 21M-passage
corpus is never held in memory as Python objects:

- jsonl ``{"id", "contents"}`` where contents is ``"Title"\\ntext`` (Search-R1 / FlashRAG wiki-18);
- jsonl ``{"id", "title", "text"}``;
- parquet with either set of columns (needs the ``parquet`` extra).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from hopgym.errors import DataError, require
from hopgym.jsonl_read import iter_json_objects
from hopgym.types import Passage

__all__ = ["CorpusFormat", "corpus_fingerprint", "iter_passages", "passage_from_record", "split_contents"]

CorpusFormat = Literal["auto", "jsonl", "parquet"]

_PARQUET_BATCH_ROWS = 8192


def split_contents(contents: str) -> tuple[str, str]:
    """Split FlashRAG ``contents`` into (title, text).

    The first line is the title, conventionally wrapped in double quotes; a one-line contents is all text.
    """
    head, sep, rest = contents.partition("\n")
    if not sep:
        return "", contents
    title = head.strip()
    if len(title) >= 2 and title[0] == '"' and title[-1] == '"':
        title = title[1:-1]
    return title, rest


def passage_from_record(record: Mapping[str, Any], *, path: str, line: int) -> Passage:
    """Build a Passage from one corpus record, naming ``path:line`` and the field on any problem."""
    if "id" not in record:
        raise DataError("missing field 'id' (each corpus record needs an id)", path=path, line=line)
    pid = record["id"]
    if not isinstance(pid, (str, int)) or isinstance(pid, bool):
        raise DataError(
            f"field 'id' must be a string or integer, got {type(pid).__name__}", path=path, line=line
        )
    if "contents" in record:
        contents = record["contents"]
        if not isinstance(contents, str):
            raise DataError("field 'contents' must be a string", path=path, line=line)
        title, text = split_contents(contents)
        return Passage(id=str(pid), title=title, text=text)
    if "text" in record:
        text = record["text"]
        title = record.get("title", "")
        if not isinstance(text, str):
            raise DataError("field 'text' must be a string", path=path, line=line)
        if title is None:
            title = ""
        if not isinstance(title, str):
            raise DataError("field 'title' must be a string", path=path, line=line)
        return Passage(id=str(pid), title=title, text=text)
    raise DataError(
        "missing field 'contents' (or 'title' + 'text'): records must be {\"id\", \"contents\"} or "
        '{"id", "title", "text"}',
        path=path,
        line=line,
    )


def _detect_format(path: Path) -> Literal["jsonl", "parquet"]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix in {".jsonl", ".json", ".ndjson"}:
        return "jsonl"
    raise DataError(
        f"cannot tell the corpus format from the suffix {suffix!r}: use .jsonl or .parquet, or pass the format",
        path=str(path),
    )


def _iter_jsonl(path: Path) -> Iterator[Passage]:
    for lineno, record in iter_json_objects(path):
        yield passage_from_record(record, path=str(path), line=lineno)


def _iter_parquet(path: Path) -> Iterator[Passage]:
    pq: Any = require("pyarrow.parquet", extra="parquet", purpose="reading parquet corpora")
    try:
        parquet_file = pq.ParquetFile(str(path))
    except Exception as exc:  # pyarrow raises several unrelated types for unreadable files
        raise DataError(f"not a readable parquet file: {exc}", path=str(path)) from exc
    columns = set(parquet_file.schema_arrow.names)
    if "id" not in columns or not ({"contents"} <= columns or {"text"} <= columns):
        raise DataError(
            f"parquet columns {sorted(columns)} lack 'id' and 'contents' (or 'title' + 'text')",
            path=str(path),
        )
    row = 0
    for batch in parquet_file.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
        for record in batch.to_pylist():
            row += 1
            # Parquet has no lines; report the 1-based row number in the line slot.
            yield passage_from_record(record, path=str(path), line=row)


def iter_passages(path: str | Path, *, format: CorpusFormat = "auto") -> Iterator[Passage]:
    """Yield the passages of a corpus file in file order, streaming."""
    p = Path(path)
    if not p.is_file():
        raise DataError("corpus file not found (check the path)", path=str(p))
    fmt = _detect_format(p) if format == "auto" else format
    if fmt == "parquet":
        yield from _iter_parquet(p)
    else:
        yield from _iter_jsonl(p)


def corpus_fingerprint(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """sha256 of the corpus file's bytes, streamed; stored in index manifests to detect a changed corpus."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
