"""Passages by row number: an on-disk store read through mmap, and an in-memory one.

On disk, ``passages.jsonl`` holds one JSON array ``[id, title, text]`` per line and ``passages.offsets.npy``
the byte offset of every line plus the file end, so reading row ``i`` is one slice and one JSON parse
without loading the corpus; ``passages.crc32.npy`` holds each line's crc32, checked as the row is read (about
0.3 us a row), so a damaged passage is an error naming the row instead of wrong text. Index backends write
the store while streaming the corpus. The files are written under temporary names and the offsets are put in
place last, so their presence means the store is whole. Stores written before the crc32 file existed are
read without row checks.
"""

from __future__ import annotations

import json
import mmap
import os
import zlib
from array import array
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from hopgym.errors import DataError
from hopgym.types import Passage

# orjson parses a stored row about 3x faster than json, and rows are decoded on the search path.
_loads: Callable[[bytes], Any]
try:
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover - orjson comes with the bm25 and dense extras
    _loads = json.loads

__all__ = [
    "CRC_FILE",
    "OFFSETS_FILE",
    "PASSAGES_FILE",
    "DiskPassageStore",
    "MemoryPassageStore",
    "PassageStore",
    "PassageStoreWriter",
    "is_complete",
    "write_passages",
]

PASSAGES_FILE = "passages.jsonl"
OFFSETS_FILE = "passages.offsets.npy"
CRC_FILE = "passages.crc32.npy"


class PassageStore(Protocol):
    """Row number -> passage (with the score given, 0.0 by default)."""

    def __len__(self) -> int: ...

    def get(self, row: int, score: float = 0.0) -> Passage: ...

    def close(self) -> None: ...


class MemoryPassageStore:
    def __init__(self, passages: Sequence[Passage]) -> None:
        self._passages = list(passages)

    def __len__(self) -> int:
        return len(self._passages)

    def get(self, row: int, score: float = 0.0) -> Passage:
        p = self._passages[row]
        return p if score == p.score else Passage(id=p.id, title=p.title, text=p.text, score=score)

    def close(self) -> None:
        """Nothing to release; the passages stay usable."""


class PassageStoreWriter:
    """Appends passages to ``directory``; ``close`` publishes the store. Use as a context manager.

    Leaving the ``with`` block on an exception discards what was written instead of publishing it.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._data_path = self.directory / PASSAGES_FILE
        self._offsets_path = self.directory / OFFSETS_FILE
        # A stale offsets file would make the half-written data look like a whole store.
        self._offsets_path.unlink(missing_ok=True)
        self._tmp_data = self._data_path.with_name(PASSAGES_FILE + ".tmp")
        self._fh = self._tmp_data.open("wb")
        self._offsets = array("q", [0])
        self._crcs = array("I")
        self._position = 0

    def add(self, passage: Passage) -> None:
        line = (
            json.dumps([passage.id, passage.title, passage.text], ensure_ascii=False).encode("utf-8") + b"\n"
        )
        self._fh.write(line)
        self._crcs.append(zlib.crc32(line))
        self._position += len(line)
        self._offsets.append(self._position)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def close(self) -> None:
        """Put the data and crc files in place, then the offsets file (whose presence marks the store whole)."""
        if self._fh.closed:
            return
        self._fh.close()
        os.replace(self._tmp_data, self._data_path)
        _save_atomic(self.directory / CRC_FILE, np.frombuffer(self._crcs, dtype=np.uint32))
        _save_atomic(self._offsets_path, np.frombuffer(self._offsets, dtype=np.int64))

    def abort(self) -> None:
        """Discard what was written; the directory is left without a store."""
        if self._fh.closed:
            return
        self._fh.close()
        self._tmp_data.unlink(missing_ok=True)

    def __enter__(self) -> PassageStoreWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _save_atomic(path: Path, array: npt.NDArray[Any]) -> None:
    tmp = path.with_name(path.stem + ".tmp.npy")
    with tmp.open("wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)


def write_passages(passages: Iterable[Passage], directory: str | Path) -> int:
    """Write ``passages`` as the store of ``directory``; returns how many were written."""
    with PassageStoreWriter(directory) as writer:
        for passage in passages:
            writer.add(passage)
    return len(writer)


def _load_offsets(directory: Path) -> npt.NDArray[np.int64]:
    """The offsets of the store in ``directory``, checked against its data file (DataError if they differ)."""
    data_path, offsets_path = directory / PASSAGES_FILE, directory / OFFSETS_FILE
    for path in (data_path, offsets_path):
        if not path.is_file():
            raise DataError("passage store file is missing; rebuild the index", path=str(path))
    try:
        offsets: npt.NDArray[np.int64] = np.load(offsets_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"unreadable passage offsets ({exc}); rebuild the index", path=str(offsets_path)
        ) from exc
    size = data_path.stat().st_size
    if (
        offsets.ndim != 1
        or len(offsets) < 1
        or offsets.dtype != np.int64
        or int(offsets[0]) != 0
        or int(offsets[-1]) != size
    ):
        raise DataError(
            f"passage offsets do not match {PASSAGES_FILE} ({size} bytes); the store is corrupt, "
            "rebuild the index",
            path=str(offsets_path),
        )
    return offsets


def _load_crcs(directory: Path, count: int) -> memoryview | None:
    path = directory / CRC_FILE
    if not path.is_file():
        return None
    try:
        crcs: npt.NDArray[np.uint32] = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"unreadable passage checksums ({exc}); rebuild the index", path=str(path)) from exc
    if crcs.ndim != 1 or crcs.dtype != np.uint32 or len(crcs) != count:
        raise DataError(
            f"passage checksums do not match the {count} rows of {PASSAGES_FILE}; the store is corrupt, "
            "rebuild the index",
            path=str(path),
        )
    # An empty memmap has no buffer to view.
    return crcs.data if count else memoryview(array("I"))


def is_complete(directory: str | Path) -> bool:
    """Whether ``directory`` holds a whole, consistent store (so a resumed build may keep it)."""
    try:
        _load_offsets(Path(directory))
    except DataError:
        return False
    return True


class DiskPassageStore:
    """Reads a store written by :class:`PassageStoreWriter`; rows are decoded on demand.

    ``expected_count`` (the manifest's passage count) makes a store of another size a DataError.
    """

    def __init__(self, directory: str | Path, *, expected_count: int | None = None) -> None:
        directory = Path(directory)
        offsets = _load_offsets(directory)
        data_path = directory / PASSAGES_FILE
        if expected_count is not None and len(offsets) - 1 != expected_count:
            raise DataError(
                f"passage store holds {len(offsets) - 1} passages but the manifest says {expected_count}; "
                "rebuild the index",
                path=str(data_path),
            )
        # Indexing a memoryview gives Python ints directly, several times faster than a numpy memmap.
        self._bounds = offsets.data
        self._count = len(offsets) - 1
        self._crcs = _load_crcs(directory, self._count)
        self._path = data_path
        self._fh = data_path.open("rb")
        # mmap cannot map an empty file; an empty store simply has no rows to read.
        self._mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ) if int(offsets[-1]) else None

    def __len__(self) -> int:
        return self._count

    @property
    def row_checksums(self) -> bool:
        """Whether rows are checked against their crc32 as they are read (false for stores from before it)."""
        return self._crcs is not None

    def get(self, row: int, score: float = 0.0) -> Passage:
        """Row ``row`` carrying ``score``; IndexError out of range, ValueError once the store is closed,
        DataError if the row is damaged."""
        if self._mm is None or not 0 <= row < self._count:
            raise IndexError(f"passage row {row} out of range (store has {len(self)} rows)")
        raw = self._mm[self._bounds[row] : self._bounds[row + 1]]
        if self._crcs is not None and zlib.crc32(raw) != self._crcs[row]:
            raise DataError(
                f"passage row {row} does not match its checksum: the store is damaged; rebuild the index",
                path=str(self._path),
            )
        try:
            pid, title, text = _loads(raw)
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"passage row {row} is corrupt ({exc}); rebuild the index", path=str(self._path)
            ) from exc
        return Passage(id=pid, title=title, text=text, score=score)

    def close(self) -> None:
        # The map object is kept: reading a closed map raises ValueError, which a racing search reports.
        if self._mm is not None and not self._mm.closed:
            self._mm.close()
        self._fh.close()
