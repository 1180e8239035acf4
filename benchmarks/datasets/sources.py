"""Reading a dataset file's rows, each with where it came from: jsonl, a JSON list, CSV and parquet."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hopgym.benchmarks.datasets.records import Where
from hopgym.errors import DataError
from hopgym.jsonl_read import iter_json_objects, json_type, open_input

__all__ = [
    "Row",
    "first_char",
    "iter_csv",
    "iter_json_list",
    "iter_json_or_jsonl",
    "iter_jsonl",
    "iter_parquet",
]

Row = tuple[Where, Mapping[str, Any]]
_PARQUET_BATCH = 1024


def iter_jsonl(path: Path) -> Iterator[Row]:
    for number, (line, record) in enumerate(iter_json_objects(path, what="dataset file"), start=1):
        yield Where(str(path), line=line, record=number), record


def iter_json_list(path: Path) -> Iterator[Row]:
    """The objects of a file holding one JSON list (HotpotQA's and 2Wiki's official files)."""
    with open_input(path, what="dataset file") as handle:
        raw = handle.read()
    try:
        value = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataError("not UTF-8 text: save the file as UTF-8", path=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg})", path=str(path), line=exc.lineno) from exc
    if not isinstance(value, list):
        raise DataError(
            f"expected a JSON list of question objects, got {json_type(value)} (a .jsonl file holds one "
            "object per line instead)",
            path=str(path),
        )
    for number, record in enumerate(value, start=1):
        where = Where(str(path), record=number)
        if not isinstance(record, dict):
            raise where.error("record", f"must be a JSON object, got {json_type(record)}")
        yield where, record


def first_char(path: Path) -> str:
    """The first non-blank character of a text file ('' for an empty one), skipping a UTF-8 BOM."""
    with open_input(path, what="dataset file") as handle:
        head: bytes = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1].decode("latin-1")


def iter_json_or_jsonl(path: Path) -> Iterator[Row]:
    """A JSON list when the file starts with ``[``, else jsonl."""
    return iter_json_list(path) if first_char(path) == "[" else iter_jsonl(path)


def iter_csv(path: Path) -> Iterator[Row]:
    with open_input(path, what="dataset file") as handle:
        try:
            text = handle.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DataError("not UTF-8 text: save the CSV as UTF-8", path=str(path)) from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for number, row in enumerate(reader, start=1):
        where = Where(str(path), line=reader.line_num, record=number)
        if None in row:  # more cells than header columns
            raise where.error(
                "row", f"has {len(row) - 1 + len(row[None])} cells, the header names {len(row) - 1}"
            )
        yield where, row


def iter_parquet(path: Path) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow comes with the base install
        raise DataError("reading parquet needs pyarrow: pip install pyarrow", path=str(path)) from exc
    try:
        parquet = pq.ParquetFile(path)
    except FileNotFoundError as exc:
        raise DataError("dataset file not found (check the path)", path=str(path)) from exc
    except Exception as exc:  # pyarrow raises ArrowInvalid and friends for files that are not parquet
        raise DataError(f"not a readable parquet file ({exc})", path=str(path)) from exc
    number = 0
    for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH):
        for record in batch.to_pylist():
            number += 1
            yield Where(str(path), record=number), record
