"""An append-only JSONL results file that survives crashes and lets runs resume.

Each record is written with a single ``write`` on an ``O_APPEND`` descriptor and fsynced, so a record is
either wholly there or (after a crash mid-write) a torn last line, which :meth:`JsonlLog.open` drops.
While open for writing the file holds an exclusive ``flock``: two runs appending to one file would interleave
and duplicate every record, so a second writer is refused (the kernel drops the lock if the writer dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from hopgym.errors import ConfigError, DataError
from hopgym.jsonl_read import decode_json_line, open_input

__all__ = ["JsonlLog"]


class JsonlLog:
    def __init__(self, path: str | Path, *, fsync: bool = True, what: str = "results file") -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._what = what
        self._fd: int | None = None

    def records(self) -> Iterator[dict[str, Any]]:
        """The complete records already in the file (a torn final line is skipped)."""
        self._check_not_a_directory()
        if not self.path.exists():
            return
        with open_input(self.path, what="results file") as fh:
            lines = fh.read().split(b"\n")
        # Everything before the last "\n" is complete; the tail after it is a torn write (or empty).
        for lineno, line in enumerate(lines[:-1], start=1):
            if not line.strip():
                continue
            try:
                record = decode_json_line(line, path=str(self.path), line=lineno)
            except DataError as exc:
                raise DataError(f"{exc}; this results file is corrupt: fix or remove that line") from exc
            if isinstance(record, dict):
                yield record

    def _check_not_a_directory(self) -> None:
        if self.path.is_dir():
            raise DataError(
                f"results file is a directory: give a file path, e.g. {self.path / 'results.jsonl'}",
                path=str(self.path),
            )

    def open(self) -> JsonlLog:
        """Open for appending under an exclusive lock (ConfigError if another writer holds it), then drop a
        torn last line left by a crash."""
        self._check_not_a_directory()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # flock locks belong to the open file description: another descriptor on the same file, in this
            # process or another, is refused too.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            noun = self._what.split()[-1]
            raise ConfigError(
                f"{self._what} {self.path} is being written by another run (it holds the file's lock); "
                f"wait for that run to finish, or give this run another {noun} path"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            data = self.path.read_bytes()
            complete = data.rfind(b"\n") + 1
            if complete != len(data):
                os.ftruncate(fd, complete)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def append(self, record: Mapping[str, Any]) -> None:
        if self._fd is None:
            raise RuntimeError("JsonlLog.append before open()")
        os.write(self._fd, (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        if self._fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> JsonlLog:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
