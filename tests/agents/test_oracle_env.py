"""The oracle solves HopWorld through the real env, in every protocol's own text format."""

from __future__ import annotations

import pytest

import hopgym
from hopgym.agents.oracle_episode import play_oracle_episode
from hopgym.envs.protocols import PROTOCOL_NAMES


@pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
@pytest.mark.parametrize("env_id", ["hopgym/HopWorld-2hop-v0", "hopgym/HopWorld-4hop-v0"])
async def test_oracle_solves_every_task_at_k3(env_id: str, protocol: str) -> None:
    async with hopgym.make_async(env_id, world_seed=13, protocol=protocol, reward="em", top_k=3) as env:
        results = [await play_oracle_episode(env, t.id) for t in env.tasks[:40]]
    assert len(results) == 40
    assert all(r.terminated and not r.truncated for r in results)
    assert [r.task_id for r in results if r.reward != 1.0] == []
    hops = 2 if "2hop" in env_id else 4
    assert all(r.num_searches >= hops for r in results)


async def test_oracle_gets_the_seed_reward_with_the_default_reward() -> None:
    # Default reward for search_r1 is Search-R1's own (EM of the last <answer>).
    async with hopgym.make_async("hopgym/HopWorld-v0", world_seed=2) as env:
        results = [await play_oracle_episode(env, t.id) for t in env.tasks[:30]]
    assert sum(r.reward for r in results) == 30.0


async def test_answer_without_search_fails_on_hopworld() -> None:
    # Negative control through the env: answering the question's own start entity never scores.
    async with hopgym.make_async("hopgym/HopWorld-3hop-v0", world_seed=4, reward="em") as env:
        total = 0.0
        for task in env.tasks[:30]:
            await env.reset(options={"task_id": task.id})
            start = task.metadata["hopworld"]["start"]
            _, reward, terminated, _, _ = await env.step(env.protocol.render_answer(start))
            assert terminated
            total += reward
    assert total == 0.0
