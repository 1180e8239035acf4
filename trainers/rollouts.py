"""A training step's episodes and the held-out evaluation, both through hopgym's episode engine.

Failed episodes (a retriever or backend still down after their own bounded retries) are never trained on:
the groups they belong to are played again, up to ``retries`` times, and then the step stops with a
:class:`~hopgym.errors.HopgymError` naming the errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from hopgym.agents.policy import Policy, SamplingParams
from hopgym.agents.rollout.config import RolloutConfig
from hopgym.agents.rollout.engine import collect_episodes
from hopgym.agents.rollout.store import TrajectoryStore
from hopgym.agents.rollout.trajectory import Trajectory
from hopgym.envs.pool import EnvPool
from hopgym.errors import EpisodesFailed

__all__ = ["EpisodesFailed", "derive_seed", "play_groups"]

logger = logging.getLogger(__name__)


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from ``parts`` (the same in every process, unlike ``hash``)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2**31 - 1)


async def play_groups(
    pool: EnvPool,
    policy: Policy,
    task_ids: Sequence[str],
    *,
    samples: int,
    sampling: SamplingParams,
    max_episode_tokens: int,
    concurrency: int,
    retries: int,
    store: Path | None = None,
    runner: Callable[[list[str], RolloutConfig], Awaitable[list[Trajectory]]] | None = None,
) -> list[Trajectory]:
    """``samples`` episodes of each task, in group order (task order, then sample index).

    A group with a failed episode is played again as a whole (same seeds: the failure was the
    infrastructure's, not the sample's), at most ``retries`` times. ``runner`` plays a list of tasks
    elsewhere (e.g. on Ray workers); default: this process's episode engine on ``pool``.
    """
    config = RolloutConfig(
        concurrency=concurrency,
        samples_per_task=samples,
        sampling=sampling,
        max_episode_tokens=max_episode_tokens,
    )
    done: dict[tuple[str, int], Trajectory] = {}
    if store is not None:
        # A resumed (or repeated) evaluation: the store's finished episodes are not played again, so take them
        # from it; the engine plays only what is missing.
        done = await asyncio.to_thread(_finished_in, store, set(task_ids))
    pending = list(dict.fromkeys(task_ids))
    errors: list[str] = []
    for attempt in range(retries + 1):
        if runner is not None:
            played = await runner(pending, config)
        else:
            played = (await collect_episodes(pool, policy, pending, config, store=store)).trajectories
        failed_tasks = {t.task_id for t in played if t.failed}
        errors = sorted({t.error or "" for t in played if t.failed})
        for traj in played:
            if traj.task_id not in failed_tasks:
                done[traj.key] = traj
        pending = [t for t in pending if t in failed_tasks]
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
            f"{len(pending)} task(s) still had failed episodes after {retries} re-run(s): {'; '.join(errors)[:500]}; "
            "check the retriever/backend, or raise rollout.max_episode_retries"
        )
    return [done[(task_id, i)] for task_id in dict.fromkeys(task_ids) for i in range(samples)]


def _finished_in(store: Path, tasks: set[str]) -> dict[tuple[str, int], Trajectory]:
    if not store.exists():
        return {}
    return {k: t for k, t in TrajectoryStore(store).latest().items() if k[0] in tasks and not t.failed}
