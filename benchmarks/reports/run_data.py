"""Reading a run directory written by ``hopgym eval``: trajectories, summary, config and the tasks.

A run directory holds ``trajectories.jsonl`` (every attempt; the last record of each episode counts, a
finished one over a failed retry), ``summary.json`` and ``config.json``. Trajectories do not carry golden
answers, so the tasks come from the caller (``hopgym eval`` has them in memory) or from what ``config.json``
names (the ``data`` file, resolved against the working directory, then the run directory; or a HopWorld env).
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
from hopgym.errors import DataError, HopgymError
from hopgym.types import Task

__all__ = ["TRAJECTORIES", "RunData", "load_run", "read_task_file", "tasks_from_config"]

logger = logging.getLogger(__name__)

TRAJECTORIES = "trajectories.jsonl"
SUMMARY = "summary.json"
CONFIG = "config.json"


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
    """The tasks of the run as ``config.json`` describes it, or {} (with a warning) when they cannot be
    had: the report and viewer then work without golden answers.

    A ``data`` file is read in its ``data_format`` (any format ``hopgym eval --data`` reads, so passage ids
    come out as they did for the run); an ``env`` run without an external retriever (HopWorld) is rebuilt to
    read its tasks. An env that needs a retriever is not opened just for this: pass the tasks instead.
    """
    if not config:
        return {}
    data, env = config.get("data"), config.get("env")
    try:
        if isinstance(data, str) and data:
            path = next((p for p in (Path(data), run_dir / data) if p.is_file()), None)
            if path is None:
                logger.warning("%s: data=%r not found; golden answers unknown", run_dir / CONFIG, data)
                return {}
            fmt = config.get("data_format")
            return {t.id: t for t in read_task_file(path, fmt if isinstance(fmt, str) else None)}
        if isinstance(env, str) and env and not config.get("retriever"):
            return {t.id: t for t in _env_tasks(env, config.get("env_args"))}
    except (HopgymError, OSError, ValueError, TypeError) as exc:
        logger.warning("golden answers unknown: cannot read the run's tasks (%s)", exc)
    return {}


def read_task_file(path: str | Path, fmt: str | None = None) -> list[Task]:
    """Tasks of a dataset file in any format ``hopgym eval --data`` reads (sniffed unless ``fmt``)."""
    from hopgym.benchmarks.datasets.prepare import load_dataset_tasks

    return load_dataset_tasks(str(path), fmt)


def _env_tasks(env_id: str, env_args: object) -> list[Task]:
    from hopgym.envs import make

    kwargs = dict(env_args) if isinstance(env_args, Mapping) else {}
    env = make(env_id, **kwargs)
    try:
        return list(env.unwrapped.core.tasks)  # type: ignore[attr-defined]
    finally:
        env.close()


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
