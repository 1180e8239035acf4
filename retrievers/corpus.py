"""Streaming corpus readers.

Three on-disk forms are accepted, each yielding :class:`~hopgym.types.Passage` one at a time so a 21M-passage
corpus is never held in memory as Python objects:

- jsonl ``{"id", "contents"}`` where contents is ``"Title"\\ntext`` (Search-R1 / FlashRAG wiki-18);
- jsonl ``{"id", "title", "text"}``;
- parquet with either set of columns (needs the ``parquet`` extra).

Passage ids must be unique (search results name passages by id): a repeated id is a DataError naming its
line and the line it repeats, raised once the whole file has been read, before any index is published. The
check keeps 8 bytes per passage (a hash of each id; the lines are found in a second pass only when two hashes
match). ``dedupe=True`` keeps the first passage of each id instead and logs how many were dropped; it keeps
every id in a set (about 100 bytes a passage).
"""

from __future__ import annotations

import hashlib
import logging
from array import array
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hopgym.errors import DataError, require
from hopgym.jsonl_read import iter_json_objects
from hopgym.types import Passage

__all__ = ["CorpusFormat", "corpus_fingerprint", "iter_passages", "passage_from_record", "split_contents"]

logger = logging.getLogger(__name__)

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


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Passage]]:
    for lineno, record in iter_json_objects(path):
        yield lineno, passage_from_record(record, path=str(path), line=lineno)


def _iter_parquet(path: Path) -> Iterator[tuple[int, Passage]]:
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
            yield row, passage_from_record(record, path=str(path), line=row)


def _iter_numbered(path: Path, fmt: Literal["jsonl", "parquet"]) -> Iterator[tuple[int, Passage]]:
    return _iter_parquet(path) if fmt == "parquet" else _iter_jsonl(path)


#: How many repeated ids a DataError lists.
_DUPLICATES_SHOWN = 5


def _duplicate_error(path: Path, fmt: Literal["jsonl", "parquet"], hashes: array[int]) -> DataError | None:
    """The error for the repeated ids among ``hashes`` (one per passage, in order), None if only hashes
    collided. Reads the file again, only to find the lines."""
    ordered = np.sort(np.frombuffer(hashes, dtype=np.int64))
    repeated = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
    if not repeated:
        return None
    first_line: dict[str, int] = {}
    found: list[tuple[int, str, int]] = []
    for line, passage in _iter_numbered(path, fmt):
        if hash(passage.id) not in repeated:
            continue
        earlier = first_line.setdefault(passage.id, line)
        if earlier != line:
            found.append((line, passage.id, earlier))
    if not found:
        return None
    line, pid, earlier = found[0]
    more = "".join(f"; line {n}: id {i!r} duplicates line {e}" for n, i, e in found[1:_DUPLICATES_SHOWN])
    if len(found) > _DUPLICATES_SHOWN:
        more += f"; and {len(found) - _DUPLICATES_SHOWN} more"
    return DataError(
        f"id {pid!r} duplicates line {earlier}{more}: search results name passages by id, so each must be "
        "unique; fix the ids, or build with --dedupe (bm25) to keep the first passage of each id",
        path=str(path),
        line=line,
    )


def iter_passages(
    path: str | Path, *, format: CorpusFormat = "auto", dedupe: bool = False
) -> Iterator[Passage]:
    """Yield the passages of a corpus file in file order, streaming.

    A repeated id is a DataError once the file has been read (see the module docstring); ``dedupe`` skips
    the later passages of a repeated id instead.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError("corpus file not found (check the path)", path=str(p))
    fmt = _detect_format(p) if format == "auto" else format
    if dedupe:
        seen: set[str] = set()
        dropped: list[int] = []
        for line, passage in _iter_numbered(p, fmt):
            if passage.id in seen:
                dropped.append(line)
                continue
            seen.add(passage.id)
            yield passage
        if dropped:
            logger.warning(
                "%s: dropped %d passages whose id repeats an earlier one (lines %s%s)",
                p,
                len(dropped),
                ", ".join(map(str, dropped[:_DUPLICATES_SHOWN])),
                ", ..." if len(dropped) > _DUPLICATES_SHOWN else "",
            )
        return
    hashes = array("q")
    for _, passage in _iter_numbered(p, fmt):
        hashes.append(hash(passage.id))
        yield passage
    if len(hashes) > 1:
        error = _duplicate_error(p, fmt, hashes)
        if error is not None:
            raise error


def corpus_fingerprint(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """sha256 of the corpus file's bytes, streamed; stored in index manifests to detect a changed corpus."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
