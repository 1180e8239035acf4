"""A streaming JSONL store of trajectories that lets an interrupted run resume.

Each trajectory is one line, appended as it finishes (one ``write`` on an ``O_APPEND`` descriptor, see
:class:`~hopgym.jsonl_log.JsonlLog`), so a killed run loses at most the line being written, which is dropped on
reopen. Failed episodes are stored too (with their reason) but do not count as done: a resumed run retries
them, and readers take the last record of each (task, sample) pair.

While a store is open for writing it holds an exclusive lock on the file (``flock``, released when it closes
or its process dies), so two runs on the same file cannot interleave and duplicate every episode: the second
one is refused with a :class:`~hopgym.errors.ConfigError` naming the file. Reading needs no lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from hopgym.agents.rollout.trajectory import Trajectory
from hopgym.errors import ConfigError
from hopgym.jsonl_log import JsonlLog

__all__ = ["TrajectoryStore"]


class TrajectoryStore:
    """Append-only trajectories file. ``fsync=False`` trades power-loss safety for speed (a killed process
    still loses nothing: the OS keeps what was written)."""

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self._log = JsonlLog(self.path, fsync=fsync, what="trajectory store")
        self._open = False

    def __iter__(self) -> Iterator[Trajectory]:
        """Every stored record in file order, failed attempts included."""
        for record in self._log.records():
            yield Trajectory.from_dict(record)

    def done_keys(self) -> set[tuple[str, int]]:
        """(task id, sample index) pairs that finished without failing."""
        return {t.key for t in self if not t.failed}

    def latest(self) -> dict[tuple[str, int], Trajectory]:
        """The last record of each pair, preferring a finished record over a later failed retry."""
        out: dict[tuple[str, int], Trajectory] = {}
        for traj in self:
            previous = out.get(traj.key)
            if previous is None or previous.failed or not traj.failed:
                out[traj.key] = traj
        return out

    def open(self) -> TrajectoryStore:
        """Open for appending (drops a torn last line left by a crash), locking the file against other
        writers; raises ConfigError when another run (or another open store) is writing it."""
        if not self._open:
            if self.path.is_dir():
                raise ConfigError(f"trajectory store {self.path} is a directory; give a .jsonl file path")
            self._log.open()
            self._open = True
        return self

    def append(self, traj: Trajectory) -> None:
        if not self._open:
            self.open()
        self._log.append(traj.to_dict())

    def close(self) -> None:
        self._log.close()
        self._open = False

    def __enter__(self) -> TrajectoryStore:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
