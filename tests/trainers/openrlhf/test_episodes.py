"""HopgymEpisodes.play without OpenRLHF or vLLM: a failed episode is played again through the shared group
loop, with the same seeds and policy name as a single run_episode, and one that keeps failing raises."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import hopgym
from hopgym.agents.policy import Context, Generation, SamplingParams
from hopgym.agents.rollout.episode import run_episode
from hopgym.agents.scripted_policy import TokenScriptedOraclePolicy
from hopgym.errors import EpisodesFailed, RetrieverUnavailable
from hopgym.trainers.openrlhf import AgentConfig
from hopgym.trainers.openrlhf.executor import HopgymEpisodes

ENV = "hopgym/HopWorld-2hop-v0"
ENV_KWARGS = {"world_seed": 7, "num_questions": 3, "max_turns": 4}
SAMPLING = SamplingParams(max_tokens=32, temperature=1.0, seed=1234, logprobs=True)


class _FlakyOracle(TokenScriptedOraclePolicy):
    """The token-level oracle whose first ``fails`` turns raise (an engine that is down); records each turn's
    sampling seed."""

    def __init__(self, env: Any, fails: int) -> None:
        super().__init__(env.tasks, env.protocol, encode=lambda text: [ord(c) for c in text])
        self.fails = fails
        self.seeds: list[int | None] = []

    async def generate(self, context: Context, params: SamplingParams) -> Generation:
        self.seeds.append(params.seed)
        if self.fails > 0:
            self.fails -= 1
            raise RetrieverUnavailable("engine at http://127.0.0.1:9 is down")
        return await super().generate(context, params)


@pytest.fixture
def env() -> Any:
    proto = hopgym.make_async(ENV, **ENV_KWARGS)
    yield proto
    asyncio.run(proto.aclose())


def test_a_failed_episode_is_played_again_as_run_episode_plays_it(env: Any) -> None:
    task_id = env.tasks[0].id
    episodes = HopgymEpisodes(AgentConfig(env=ENV, env_kwargs=ENV_KWARGS, max_episode_retries=1))
    flaky, direct = _FlakyOracle(env, fails=1), _FlakyOracle(env, fails=0)

    async def play() -> tuple[Any, Any]:
        traj = await episodes.play(task_id, SAMPLING, 2048, flaky)
        reference = await run_episode(
            env.clone(), direct, task_id, sampling=SAMPLING, max_episode_tokens=2048, policy_name="openrlhf"
        )
        return traj, reference

    traj, reference = asyncio.run(play())
    assert not traj.failed and traj.reward == 1.0
    assert (traj.task_id, traj.sample_index, traj.policy) == (task_id, 0, "openrlhf")
    assert traj.token_ids == reference.token_ids
    # The failed try's first turn and the re-run's turns used run_episode's own per-turn seeds.
    assert flaky.seeds == direct.seeds[:1] + direct.seeds and len(set(direct.seeds)) == len(direct.seeds) > 1


def test_an_episode_that_keeps_failing_raises_naming_the_agent_config(env: Any) -> None:
    episodes = HopgymEpisodes(AgentConfig(env=ENV, env_kwargs=ENV_KWARGS, max_episode_retries=2))
    policy = _FlakyOracle(env, fails=100)
    task_id = env.tasks[1].id
    with pytest.raises(
        EpisodesFailed, match=rf"'{task_id}'.*RetrieverUnavailable.*max_episode_retries in the agent config$"
    ):
        asyncio.run(episodes.play(task_id, SAMPLING, 2048, policy))
    assert len(policy.seeds) == 3  # one try and two re-runs, each failing on its first turn
