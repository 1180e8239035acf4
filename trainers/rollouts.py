"""Groups of episodes played with re-runs of failed groups: the built-in trainer's steps and evaluations, the
TRL rollout function and the OpenRLHF agent all play their episodes through :func:`collect_groups`.

Failed episodes (a retriever or backend still down after their own bounded retries) are never trained on:
the groups they belong to are played again, up to ``retries`` times, and then the step stops with
:class:`~hopgym.errors.EpisodesFailed` naming the errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hopgym.agents.policy import Policy, SamplingParams
from hopgym.agents.rollout.config import RolloutConfig
from hopgym.agents.rollout.engine import collect_episodes
from hopgym.agents.rollout.store import TrajectoryStore
from hopgym.agents.rollout.trajectory import Trajectory
from hopgym.envs.pool import EnvPool
from hopgym.errors import ConfigError, EpisodesFailed

__all__ = ["EpisodesFailed", "GroupRunner", "PlayedGroups", "collect_groups", "derive_seed"]

logger = logging.getLogger(__name__)

#: Plays ``samples_per_task`` episodes of each listed task with the given settings, somewhere else than this
#: process's episode engine (e.g. on Ray workers); returns every trajectory, failed ones included.
GroupRunner = Callable[[list[str], RolloutConfig], Awaitable[list[Trajectory]]]

#: The built-in trainer's advice when episodes keep failing (TRL and OpenRLHF name their own setting).
TRAINER_FIX_HINT = "check the retriever/backend, or raise rollout.max_episode_retries"


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from ``parts`` (the same in every process, unlike ``hash``)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2**31 - 1)


@dataclass(frozen=True)
class PlayedGroups:
    """What :func:`collect_groups` played: the finished episodes in group order, and how many episodes it
    ran to get them (re-runs of failed groups included; episodes read back from a store are not)."""

    trajectories: list[Trajectory]
    episodes: int


async def collect_groups(
    pool: EnvPool,
    policy: Policy,
    task_ids: Sequence[str],
    *,
    samples: int | Mapping[str, int],
    sampling: SamplingParams,
    max_episode_tokens: int | None,
    concurrency: int,
    retries: int,
    store: Path | None = None,
    runner: GroupRunner | None = None,
    fix_hint: str = TRAINER_FIX_HINT,
) -> PlayedGroups:
    """``samples`` episodes of each task (one count for all, or a count per task), in group order (task
    order, then sample index; a task listed twice is one group).

    A group with a failed episode is played again as a whole (same seeds: the failure was the
    infrastructure's, not the sample's), at most ``retries`` times; then :class:`EpisodesFailed` is raised,
    ending with ``fix_hint`` (the caller's setting to raise). ``runner`` plays a list of tasks elsewhere (see
    :data:`GroupRunner`); default: this process's episode engine on ``pool``. Tasks with different counts are
    played as one run per count, at the same time (one after the other with ``store``, a single-writer file).
    """
    counts = _sample_counts(task_ids, samples)
    configs = {
        n: RolloutConfig(
            concurrency=concurrency,
            samples_per_task=n,
            sampling=sampling,
            max_episode_tokens=max_episode_tokens,
        )
        for n in dict.fromkeys(counts.values())
    }

    async def play(tasks: list[str], config: RolloutConfig) -> list[Trajectory]:
        if runner is not None:
            return await runner(tasks, config)
        return (await collect_episodes(pool, policy, tasks, config, store=store)).trajectories

    async def play_round(pending: dict[str, int]) -> list[Trajectory]:
        by_count: dict[int, list[str]] = {}
        for task_id, n in pending.items():
            by_count.setdefault(n, []).append(task_id)
        if store is not None:
            results = [await play(tasks, configs[n]) for n, tasks in by_count.items()]
        else:
            results = list(await asyncio.gather(*(play(tasks, configs[n]) for n, tasks in by_count.items())))
        return [traj for result in results for traj in result]

    done: dict[tuple[str, int], Trajectory] = {}
    if store is not None:
        # A resumed (or repeated) evaluation: the store's finished episodes are not played again, so take them
        # from it; the engine plays only what is missing.
        done = await asyncio.to_thread(_finished_in, store, set(counts))
    pending = dict(counts)
    episodes = 0
    errors: list[str] = []
    for attempt in range(retries + 1):
        played = await play_round(pending)
        episodes += len(played)
        failed_tasks = {t.task_id for t in played if t.failed}
        errors = sorted({t.error or "" for t in played if t.failed})
        for traj in played:
            if traj.task_id not in failed_tasks:
                done[traj.key] = traj
        pending = {task_id: n for task_id, n in pending.items() if task_id in failed_tasks}
        if not pending:
            break
        logger.warning(
            "%d group(s) had failed episodes (attempt %d of %d): %s",
            len(pending),
            attempt + 1,
            retries + 1,
            errors,
        )
    if pending:
        raise EpisodesFailed(
            f"{len(pending)} task(s) ({_names(pending)}) still had failed episodes after {retries} re-run(s): "
            f"{'; '.join(errors)[:500]}; {fix_hint}"
        )
    trajectories = [done[(task_id, i)] for task_id, n in counts.items() for i in range(n)]
    return PlayedGroups(trajectories, episodes)


def _sample_counts(task_ids: Sequence[str], samples: int | Mapping[str, int]) -> dict[str, int]:
    """Each task's episode count, in task order (RolloutConfig checks that a shared count is >= 1)."""
    tasks = list(dict.fromkeys(task_ids))
    if not isinstance(samples, Mapping):
        return dict.fromkeys(tasks, samples)
    known = set(tasks)
    missing = [t for t in tasks if t not in samples]
    extra = [t for t in samples if t not in known]
    if missing or extra:
        problems = ([f"has no count for {_names(missing)}"] if missing else []) + (
            [f"counts {_names(extra)}, which are not among the task ids"] if extra else []
        )
        raise ConfigError(
            f"samples {' and '.join(problems)}: give one count for every task id, and only for those"
        )
    counts = {t: samples[t] for t in tasks}
    bad = {t: n for t, n in counts.items() if isinstance(n, bool) or not isinstance(n, int) or n < 1}
    if bad:
        raise ConfigError(f"samples {bad} are invalid: play each task at least once (an integer >= 1)")
    return counts


def _names(task_ids: Sequence[str] | Mapping[str, int], shown: int = 5) -> str:
    names = list(task_ids)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return (", ".join(repr(t) for t in names[:shown]) or "none") + more


def _finished_in(store: Path, tasks: set[str]) -> dict[tuple[str, int], Trajectory]:
    if not store.exists():
        return {}
    return {k: t for k, t in TrajectoryStore(store).latest().items() if k[0] in tasks and not t.failed}
