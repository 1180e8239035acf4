"""play_groups: group order, re-runs of failed groups, and an eval store played twice (resume)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hopgym.agents.policy import SamplingParams
from hopgym.agents.scripted_policy import TokenScriptedOraclePolicy
from hopgym.envs.builtin import make_hopworld_core
from hopgym.envs.pool import EnvPool
from hopgym.trainers.rollouts import play_groups


def test_a_full_eval_store_is_read_back_not_played_again(tmp_path: Path) -> None:
    env = make_hopworld_core(hops=[2], num_entities=60, num_questions=4)
    policy = TokenScriptedOraclePolicy(env.tasks, env.protocol, encode=lambda text: [ord(c) for c in text])
    ids = [t.id for t in env.tasks]
    store = tmp_path / "eval.jsonl"

    async def play() -> list[tuple[str, int, float | None]]:
        async with EnvPool(env) as pool:
            trajectories = await play_groups(
                pool, policy, ids, samples=1, sampling=SamplingParams(max_tokens=32, temperature=0.0),
                max_episode_tokens=2048, concurrency=4, retries=0, store=store,
            )  # fmt: skip
        return [(t.task_id, t.sample_index, t.reward) for t in trajectories]

    first = asyncio.run(play())
    calls = policy.calls
    assert [k[0] for k in first] == ids and all(r == 1.0 for _, _, r in first)
    # Before the fix, the second call raised KeyError: the engine skipped the stored episodes.
    assert asyncio.run(play()) == first
    assert policy.calls == calls  # nothing was generated again
