"""Passages by row number: an on-disk store read through mmap, and an in-memory one.

On disk, ``passages.jsonl`` holds one JSON array ``[id, title, text]`` per line and ``passages.offsets.npy``
the byte offset of every line plus the file end, so reading row ``i`` is one slice and one ``json.loads``
without loading the corpus. Index backends write it while streaming the corpus.
"""

from __future__ import annotations

import json
import mmap
from array import array
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np
import numpy.typing as npt

from hopgym.errors import DataError
from hopgym.types import Passage

__all__ = [
    "OFFSETS_FILE",
    "PASSAGES_FILE",
    "DiskPassageStore",
    "MemoryPassageStore",
    "PassageStore",
    "PassageStoreWriter",
]

PASSAGES_FILE = "passages.jsonl"
OFFSETS_FILE = "passages.offsets.npy"


class PassageStore(Protocol):
    """Row number -> passage (with score 0.0)."""

    def __len__(self) -> int: ...

    def get(self, row: int) -> Passage: ...

    def close(self) -> None: ...


class MemoryPassageStore:
    def __init__(self, passages: Sequence[Passage]) -> None:
        self._passages = list(passages)

    def __len__(self) -> int:
        return len(self._passages)

    def get(self, row: int) -> Passage:
        return self._passages[row]

    def close(self) -> None:
        """Nothing to release; the passages stay usable."""


class PassageStoreWriter:
    """Appends passages to ``directory``; ``close`` writes the offsets file. Use as a context manager."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._fh = (self.directory / PASSAGES_FILE).open("wb")
        self._offsets = array("q", [0])
        self._position = 0

    def add(self, passage: Passage) -> None:
        line = (
            json.dumps([passage.id, passage.title, passage.text], ensure_ascii=False).encode("utf-8") + b"\n"
        )
        self._fh.write(line)
        self._position += len(line)
        self._offsets.append(self._position)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def close(self) -> None:
        if self._fh.closed:
            return
        self._fh.close()
        np.save(self.directory / OFFSETS_FILE, np.frombuffer(self._offsets, dtype=np.int64))

    def __enter__(self) -> PassageStoreWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class DiskPassageStore:
    """Reads a store written by :class:`PassageStoreWriter`; rows are decoded on demand."""

    def __init__(self, directory: str | Path) -> None:
        directory = Path(directory)
        data_path, offsets_path = directory / PASSAGES_FILE, directory / OFFSETS_FILE
        for path in (data_path, offsets_path):
            if not path.is_file():
                raise DataError("index file is missing; rebuild the index", path=str(path))
        try:
            offsets: npt.NDArray[np.int64] = np.load(offsets_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(
                f"unreadable passage offsets ({exc}); rebuild the index", path=str(offsets_path)
            ) from exc
        size = data_path.stat().st_size
        if offsets.ndim != 1 or len(offsets) < 1 or offsets.dtype != np.int64 or int(offsets[-1]) != size:
            raise DataError(
                f"passage offsets do not match {PASSAGES_FILE} ({size} bytes); the index is corrupt, "
                "rebuild it",
                path=str(offsets_path),
            )
        self._offsets = offsets
        self._path = data_path
        self._fh = data_path.open("rb")
        # mmap cannot map an empty file; an empty store simply has no rows to read.
        self._mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def get(self, row: int) -> Passage:
        if self._mm is None or not 0 <= row < len(self):
            raise IndexError(f"passage row {row} out of range (store has {len(self)} rows)")
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        try:
            pid, title, text = json.loads(self._mm[start:end])
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"passage row {row} is corrupt ({exc}); rebuild the index", path=str(self._path)
            ) from exc
        return Passage(id=pid, title=title, text=text)

    def close(self) -> None:
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        self._fh.close()
