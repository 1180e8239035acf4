"""``summary.json`` of a run: pure functions of the run's latest trajectories and its tasks.

Every answer metric is over the task's golden answers (max), computed from the extracted answer with
:func:`hopgym.benchmarks.metrics.score_prediction` (the scoring the report and the viewer use). Failed
episodes (infrastructure failures) are counted in ``failed`` and left out of every metric: a failure is
retried on the next run, never scored 0. ``metrics[<reward name>]`` is the env's mean reward.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hopgym.agents.rollout.trajectory import Trajectory
from hopgym.benchmarks.metrics.retrieval import episode_retrieval_summary
from hopgym.benchmarks.reports.episodes import METRICS, Episode, score_episode
from hopgym.benchmarks.reports.tables import GROUPINGS, accuracy_by, summarize
from hopgym.types import Task

__all__ = ["build_summary", "live_em"]


def _group_metrics(
    episodes: Sequence[Episode], reward_name: str, judge: Mapping[tuple[str, int], float] | None
) -> dict[str, Any]:
    scored = [e for e in episodes if not e.failed]
    metrics: dict[str, float | None] = {}
    for name in METRICS:
        values = [e.metrics.get(name, 0.0) for e in scored]
        metrics[name] = sum(values) / len(values) if values else None
    rewards = [e.reward for e in scored if e.reward is not None]
    metrics[reward_name] = sum(rewards) / len(rewards) if rewards else None
    if judge is not None:
        verdicts = [judge[key] for e in scored if (key := (e.task_id, e.sample_index)) in judge]
        metrics["judge"] = sum(verdicts) / len(verdicts) if verdicts else None
    return {"metrics": metrics, "episodes": len(episodes), "failed": len(episodes) - len(scored)}


def build_summary(
    trajectories: Iterable[Trajectory],
    tasks: Mapping[str, Task],
    *,
    reward_name: str,
    dataset: str,
    planned: int,
    wall_s: float,
    tokens: Mapping[str, int],
    judge: Mapping[tuple[str, int], float] | None = None,
) -> dict[str, Any]:
    """The summary of the latest trajectory of each planned episode (see the module docstring).

    ``planned`` is the number of episodes the run is meant to have (tasks x samples): ``complete`` is true
    when every one of them finished without failing. ``by`` holds the same metrics per dataset (episodes
    without a ``data_source`` count under ``dataset``), per hop count and per question type, when known.
    ``judge`` (when the judge ran) maps (task id, sample) to its verdict score, averaged as ``metrics.judge``.
    ``retrieval``: recall of the tasks' ``supporting_passage_ids`` over each episode's searches
    (:func:`~hopgym.benchmarks.metrics.retrieval.episode_retrieval_summary`); empty when no task names them.
    """
    trajs = list(trajectories)
    episodes = [score_episode(t, tasks.get(t.task_id), default_dataset=dataset) for t in trajs]
    overall = summarize(episodes)
    head = _group_metrics(episodes, reward_name, judge)
    by: dict[str, dict[str, Any]] = {}
    for grouping, key in GROUPINGS.items():
        groups: dict[str, list[Episode]] = {}
        for episode in episodes:
            value = key(episode)
            if value is not None:
                groups.setdefault(str(value), []).append(episode)
        if groups:
            by[grouping] = {
                label: _group_metrics(group, reward_name, judge) for label, group in groups.items()
            }
    # accuracy_by gives the labels in natural order (2 before 10); keep that order in the file.
    for grouping in by:
        order = [row.label for row in accuracy_by(episodes, GROUPINGS[grouping])]
        by[grouping] = {label: by[grouping][label] for label in order}
    finished = sum(not e.failed for e in episodes)
    # Recall of the tasks' supporting passages over each finished episode's searches, when tasks name them.
    retrieval = episode_retrieval_summary(
        (
            [list(turn.passage_ids) for turn in t.turns if turn.action_kind == "search"],
            _supporting(tasks.get(t.task_id)),
        )
        for t in trajs
        if not t.failed
    )
    return {
        "metrics": head["metrics"],
        "episodes": len(episodes),
        "finished": finished,
        "failed": head["failed"],
        "planned": planned,
        "complete": finished == planned,
        "mean_searches": overall.mean_searches,
        "invalid_action_rate": overall.invalid_action_rate,
        "terminations": dict(overall.terminations),
        "errors": _error_kinds(trajs),
        "tokens": {"prompt": int(tokens.get("prompt", 0)), "completion": int(tokens.get("completion", 0))},
        "wall_s": wall_s,
        "retrieval": retrieval,
        "by": by,
    }


def _supporting(task: Task | None) -> list[str]:
    ids = task.metadata.get("supporting_passage_ids") if task is not None else None
    return [str(i) for i in ids] if isinstance(ids, list) else []


def _error_kinds(trajs: Sequence[Trajectory]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for traj in trajs:
        if traj.failed:
            kind = (traj.error or "").partition(":")[0] or "unknown"
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def live_em(traj: Trajectory, task: Task | None) -> float | None:
    """EM of one finished episode for the progress line (None for a failed one or without golds)."""
    if traj.failed or task is None or not task.golden_answers:
        return None
    return score_episode(traj, task).metrics.get("em", 0.0)
