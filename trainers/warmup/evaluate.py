"""Held-out measurement of a policy on HopWorld through the real engine: success, searches, invalid actions.

Greedy (temperature 0, one episode per task) and sampled (temperature 1, ``samples`` per task: mean success
and the fraction of tasks with at least one success, i.e. pass@k, since RL can only reinforce behaviour the
policy already samples).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["HeldOutFigures", "episode_figures", "measure_held_out"]


@dataclass(frozen=True)
class HeldOutFigures:
    """Figures of one held-out set (one hop count, one world)."""

    hops: int
    world_seed: int
    tasks: int
    greedy_success: float
    sampled_success: float
    pass_at_k: float
    k: int
    mean_searches: float
    invalid_action_rate: float
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def episode_figures(trajectories: Sequence[Any]) -> tuple[float, float, float]:
    """(success rate, mean searches, invalid-action rate over all turns) of finished episodes."""
    done = [t for t in trajectories if not t.failed]
    if not done:
        return 0.0, 0.0, 0.0
    success = sum((t.reward or 0.0) >= 1.0 for t in done) / len(done)
    searches = sum(t.num_searches for t in done) / len(done)
    turns = [turn for t in done for turn in t.turns]
    invalid = sum(turn.action_kind == "invalid" for turn in turns) / max(1, len(turns))
    return success, searches, invalid


async def _measure(
    policy: Any,
    world_seed: int,
    hops: int,
    tasks: int,
    samples: int,
    max_tokens: int,
    seed: int,
    name_pool: int = 0,
    top_k: int = 3,
) -> HeldOutFigures:
    import time

    from hopgym.agents.policy import SamplingParams
    from hopgym.agents.rollout.config import RolloutConfig
    from hopgym.agents.rollout.engine import collect_episodes
    from hopgym.envs.builtin import make_hopworld_core

    started = time.perf_counter()
    env = make_hopworld_core(world_seed=world_seed, hops=(hops,), name_pool=name_pool, top_k=top_k)
    task_ids = [t.id for t in env.tasks[:tasks]]
    greedy = await collect_episodes(
        env,
        policy,
        task_ids,
        RolloutConfig(concurrency=64, sampling=SamplingParams(max_tokens=max_tokens, temperature=0.0)),
    )
    sampled = await collect_episodes(
        env,
        policy,
        task_ids,
        RolloutConfig(
            concurrency=64,
            samples_per_task=samples,
            sampling=SamplingParams(max_tokens=max_tokens, temperature=1.0, seed=seed),
        ),
    )
    await env.aclose()
    greedy_success, searches, invalid = episode_figures(greedy.trajectories)
    sampled_success, _, _ = episode_figures(sampled.trajectories)
    solved = {t.task_id for t in sampled.trajectories if not t.failed and (t.reward or 0.0) >= 1.0}
    return HeldOutFigures(
        hops=hops,
        world_seed=world_seed,
        tasks=len(task_ids),
        greedy_success=greedy_success,
        sampled_success=sampled_success,
        pass_at_k=len(solved) / max(1, len(task_ids)),
        k=samples,
        mean_searches=searches,
        invalid_action_rate=invalid,
        wall_s=time.perf_counter() - started,
    )


def measure_held_out(
    policy: Any,
    *,
    world_seed: int,
    hops: Sequence[int] = (2, 3),
    tasks: int = 50,
    samples: int = 8,
    max_tokens: int = 48,
    seed: int = 0,
    name_pool: int = 0,
    top_k: int = 3,
) -> list[HeldOutFigures]:
    """Figures per hop count on world ``world_seed`` (hop ``h`` uses world ``world_seed + h - 2``); worlds
    draw their names from HopWorld's pool of ``name_pool`` stems (0: fresh names); ``top_k`` passages per search."""

    async def run() -> list[HeldOutFigures]:
        try:
            return [
                await _measure(
                    policy, world_seed + h - 2, h, tasks, samples, max_tokens, seed, name_pool, top_k
                )
                for h in hops
            ]
        finally:
            await policy.aclose()

    return asyncio.run(run())
