"""Reading JSONL input files with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hopgym.errors import DataError

__all__ = ["iter_json_objects"]


def iter_json_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line; DataError on bad JSON or a non-object."""
    p = Path(path)
    with p.open("r", encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"invalid JSON ({exc.msg} at column {exc.colno})", path=str(p), line=lineno
                ) from exc
            if not isinstance(record, dict):
                raise DataError("each line must be a JSON object", path=str(p), line=lineno)
            yield lineno, record
