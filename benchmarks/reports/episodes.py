"""One scored row per episode, built from a trajectory and (when known) its task: pure, no I/O.

Every metric is over the task's golden answers (max), computed from the extracted answer, as ``summary.json``
computes them. Without golden answers (a run whose task file cannot be found) the metrics are None and an
episode counts as correct when its reward is positive, which the report says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hopgym.agents.rollout.trajectory import Trajectory
from hopgym.benchmarks.metrics import score_prediction
from hopgym.types import Task

__all__ = ["METRICS", "Episode", "episode_key", "hop_count", "score_episode"]

METRICS = ("em", "f1", "sub_em", "cover_em")
# Metadata keys that name an episode's dataset, in order of preference.
_DATASET_KEYS = ("dataset", "data_source", "source")
_TYPE_KEYS = ("type", "question_type")


def episode_key(task_id: str, sample_index: int) -> str:
    """``task_id`` alone for the first sample, ``task_id#i`` for the others (what the viewer shows)."""
    return task_id if sample_index == 0 else f"{task_id}#{sample_index}"


def hop_count(metadata: Mapping[str, Any]) -> int | None:
    """``metadata["hops"]`` (an int or a list of hops), else the number of supporting passages, else None."""
    hops = metadata.get("hops")
    if isinstance(hops, bool):
        return None
    if isinstance(hops, int) and hops > 0:
        return hops
    if isinstance(hops, (list, tuple)) and hops:
        return len(hops)
    supporting = metadata.get("supporting_passage_ids")
    if isinstance(supporting, (list, tuple)) and supporting:
        return len(supporting)
    return None


def _first_str(metadata: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@dataclass(frozen=True)
class Episode:
    """An episode's outcome. ``correct`` is None for failed episodes (a failure is never a wrong answer)."""

    key: str
    task_id: str
    sample_index: int
    termination: str
    answer: str | None
    golden_answers: tuple[str, ...]
    correct: bool | None
    metrics: Mapping[str, float] = field(default_factory=dict)
    num_searches: int = 0
    turns: int = 0
    invalid_actions: int = 0
    invalid_reasons: tuple[str, ...] = ()
    error: str | None = None
    dataset: str | None = None
    hops: int | None = None
    question_type: str | None = None
    question: str | None = None
    reward: float | None = None
    wall_s: float = 0.0

    @property
    def failed(self) -> bool:
        return self.termination == "failed"

    @property
    def outcome(self) -> str:
        """``failed``, ``correct`` or ``wrong``."""
        if self.correct is None:
            return "failed"
        return "correct" if self.correct else "wrong"


def score_episode(traj: Trajectory, task: Task | None, *, default_dataset: str | None = None) -> Episode:
    """The scored row of one trajectory; ``task`` gives golden answers and grouping metadata."""
    metadata: Mapping[str, Any] = task.metadata if task is not None else {}
    golds = task.golden_answers if task is not None else ()
    metrics: dict[str, float] = {}
    correct: bool | None
    if traj.failed:
        correct = None
    elif golds:
        # The same scoring as summary.json's (hopgym.benchmarks.metrics); no answer scores 0.
        metrics = score_prediction(traj.answer, golds)
        correct = metrics["em"] >= 1.0
    else:
        correct = (traj.reward or 0.0) > 0.0
    reasons = tuple(t.invalid_reason for t in traj.turns if t.invalid_reason)
    wall = traj.finished_at - traj.started_at if traj.finished_at >= traj.started_at > 0 else 0.0
    return Episode(
        key=episode_key(traj.task_id, traj.sample_index),
        task_id=traj.task_id,
        sample_index=traj.sample_index,
        termination=traj.termination,
        answer=traj.answer,
        golden_answers=tuple(golds),
        correct=correct,
        metrics=metrics,
        num_searches=traj.num_searches,
        turns=len(traj.turns),
        invalid_actions=len(reasons),
        invalid_reasons=reasons,
        error=traj.error,
        dataset=_first_str(metadata, _DATASET_KEYS) or default_dataset,
        hops=hop_count(metadata),
        question_type=_first_str(metadata, _TYPE_KEYS),
        question=task.question if task is not None else None,
        reward=traj.reward,
        wall_s=wall,
    )
