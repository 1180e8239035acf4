"""Reading a run directory written by ``hopgym eval``: trajectories, summary, config and the tasks.

A run directory holds ``trajectories.jsonl`` (every attempt; the last record of each episode counts, a
finished one over a failed retry), ``summary.json`` and ``config.json``. Trajectories do not carry golden
answers, so the tasks come from the caller (``hopgym eval`` has them in memory) or from the task file that
``config.json`` names (``data``, resolved against the working directory, then the run directory).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hopgym.agents.rollout.store import TrajectoryStore
from hopgym.agents.rollout.trajectory import Trajectory
from hopgym.benchmarks.reports.episodes import Episode, score_episode
from hopgym.errors import DataError
from hopgym.types import Task

__all__ = ["TRAJECTORIES", "RunData", "load_run", "tasks_from_config"]

logger = logging.getLogger(__name__)

TRAJECTORIES = "trajectories.jsonl"
SUMMARY = "summary.json"
CONFIG = "config.json"
# config.json keys that may name the task file, in order of preference.
_DATA_KEYS = ("data", "tasks", "data_path")


@dataclass(frozen=True)
class RunData:
    """A loaded run: the latest trajectory of each episode (in first-seen order) and what scores them."""

    path: Path
    trajectories: tuple[Trajectory, ...]
    tasks: Mapping[str, Task] = field(default_factory=dict)
    summary: Mapping[str, Any] | None = None
    config: Mapping[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.path.resolve().name

    def episodes(self) -> list[Episode]:
        default = _default_dataset(self.config)
        return [
            score_episode(t, self.tasks.get(t.task_id), default_dataset=default) for t in self.trajectories
        ]


def _default_dataset(config: Mapping[str, Any] | None) -> str | None:
    if not config:
        return None
    for key in ("dataset", "env"):
        value = config.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _read_json_object(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"not valid JSON ({exc}): fix or delete the file", path=str(path)) from exc
    if not isinstance(value, dict):
        raise DataError("expected a JSON object", path=str(path))
    return value


def tasks_from_config(run_dir: Path, config: Mapping[str, Any] | None) -> dict[str, Task]:
    """The tasks of the file ``config.json`` names, or {} (with a warning) when there is none or it is
    unreadable: the report and viewer then work without golden answers."""
    from hopgym.envs.tasks import load_tasks

    if not config:
        return {}
    for key in _DATA_KEYS:
        value = config.get(key)
        if not isinstance(value, str) or not value:
            continue
        candidates = [Path(value), run_dir / value]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            logger.warning("%s: %s=%r not found; golden answers unknown", run_dir / CONFIG, key, value)
            return {}
        try:
            return {t.id: t for t in load_tasks(path)}
        except DataError as exc:
            logger.warning("golden answers unknown: cannot read the task file (%s)", exc)
            return {}
    return {}


def load_run(run_dir: str | Path, *, tasks: Sequence[Task] | Mapping[str, Task] | None = None) -> RunData:
    """Load ``run_dir``; ``tasks`` (a list or an id -> task map) overrides the task file in config.json."""
    path = Path(run_dir)
    trajectories_path = path / TRAJECTORIES
    if not path.is_dir():
        raise DataError("run directory not found: give the --out directory of hopgym eval", path=str(path))
    if not trajectories_path.is_file():
        raise DataError(
            f"no {TRAJECTORIES} here: is this the --out directory of hopgym eval?", path=str(path)
        )
    latest = TrajectoryStore(trajectories_path).latest()
    config = _read_json_object(path / CONFIG)
    if tasks is None:
        task_map = tasks_from_config(path, config)
    elif isinstance(tasks, Mapping):
        task_map = dict(tasks)
    else:
        task_map = {t.id: t for t in tasks}
    return RunData(
        path=path,
        trajectories=tuple(latest.values()),
        tasks=task_map,
        summary=_read_json_object(path / SUMMARY),
        config=config,
    )
