"""Reading JSONL input files with errors that name the file and line.

Whatever is wrong with a line (bytes that are not UTF-8, JSON nested too deeply for the parser, an integer
longer than Python converts, a value that is not an object), the error is a :class:`DataError` of the form
``file:line: reason: fix``, never a raw ``UnicodeDecodeError``/``RecursionError``/``ValueError``. Files that
are plainly something else (parquet, gzip) are recognised from their first bytes and named as such.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hopgym.errors import DataError

__all__ = ["decode_json_line", "iter_json_objects", "iter_json_values", "json_type", "open_input"]

# Leading bytes of formats people hand over by mistake, and what to do instead.
_FOREIGN_MAGIC: tuple[tuple[bytes, str], ...] = (
    (
        b"PAR1",
        "this is a parquet file, not JSON lines: convert it (e.g. pandas.read_parquet(...).to_json(PATH, "
        "orient='records', lines=True)) or, for a corpus, pass the .parquet file with its suffix",
    ),
    (b"\x1f\x8b", "this is a gzip-compressed file: decompress it first (gunzip FILE)"),
    (b"PK\x03\x04", "this is a zip archive: extract the .jsonl file from it first"),
)
_BOM = b"\xef\xbb\xbf"


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages ("array", not "list")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def open_input(path: str | Path, *, what: str = "input file") -> Any:
    """Open ``path`` for binary reading, turning OS errors (missing, a directory, no permission) into
    a DataError naming the file."""
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{what} is a directory: give the path of a .jsonl file", path=str(p))
    try:
        return p.open("rb")
    except FileNotFoundError as exc:
        raise DataError(f"{what} not found (check the path)", path=str(p)) from exc
    except OSError as exc:
        raise DataError(f"{what} cannot be read ({exc.strerror or exc})", path=str(p)) from exc


def decode_json_line(raw: bytes, *, path: str, line: int) -> Any:
    """One JSONL line's value; DataError naming ``path:line`` for anything the parser cannot take."""
    if line == 1:
        for magic, advice in _FOREIGN_MAGIC:
            if raw.startswith(magic):
                raise DataError(advice, path=path, line=line)
        if raw.startswith(_BOM):
            raw = raw[len(_BOM) :]  # Windows editors write one; it is not part of the JSON
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}): save the file as UTF-8",
            path=path,
            line=line,
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})", path=path, line=line) from exc
    except RecursionError as exc:
        raise DataError(
            "invalid JSON (nested too deeply to parse): flatten the record", path=path, line=line
        ) from exc
    except ValueError as exc:
        # json raises a plain ValueError for integers beyond sys.get_int_max_str_digits().
        limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300
        raise DataError(
            f"invalid JSON (an integer longer than {limit} digits): store such values as strings",
            path=path,
            line=line,
        ) from exc


def iter_json_values(path: str | Path, *, what: str = "input file") -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, value)`` for each non-blank line of a JSONL file."""
    p = Path(path)
    with open_input(p, what=what) as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            yield lineno, decode_json_line(raw, path=str(p), line=lineno)


def iter_json_objects(path: str | Path, *, what: str = "input file") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line; DataError on bad JSON or a non-object."""
    for lineno, record in iter_json_values(path, what=what):
        if not isinstance(record, dict):
            raise DataError(
                f"each line must be a JSON object, got {json_type(record)}", path=str(path), line=lineno
            )
        yield lineno, record
