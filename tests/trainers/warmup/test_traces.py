"""The noisy agent's traces: valid under the protocol, laid out as the engine lays out episodes, noise rates
as configured."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter

import pytest

from hopgym.agents.rollout.config import RolloutConfig
from hopgym.agents.rollout.engine import collect_episodes
from hopgym.agents.scripted_policy import TokenScriptedOraclePolicy
from hopgym.envs.hopworld import HopWorldConfig, generate_world
from hopgym.envs.protocols import get_protocol
from hopgym.errors import ConfigError
from hopgym.trainers.warmup.config import NoiseConfig, WarmupConfig
from hopgym.trainers.warmup.traces import encode_trace, hopworld_env, play_trace, world_traces


def test_every_action_parses_and_labels_match_the_outcome() -> None:
    traces = world_traces(3, num_questions=120, hops=(2, 3), noise=NoiseConfig(0.3, 0.3, 0.3), seed=1)
    protocol = get_protocol("search_r1")
    assert len(traces) == 120
    lucky = 0
    for trace in traces:
        kinds = [protocol.parse(action).kind for action in trace.actions]
        assert kinds[-1] == "answer" and set(kinds[:-1]) <= {"search"}, trace.actions
        assert all(o for o in trace.observations[:-1]) and trace.observations[-1] == ""
        if "early_answer" in trace.labels:
            assert trace.reward < 1.0, trace
        # A look-alike may share the right entity's fact, so a mistake rarely still ends well.
        lucky += trace.reward >= 1.0 and not set(trace.labels) <= {"ok", "retry"}
    assert lucky <= 0.05 * len(traces)
    assert 0.05 < sum(t.reward >= 1.0 for t in traces) / len(traces) < 0.6


def test_without_noise_the_agent_is_the_oracle() -> None:
    traces = world_traces(4, num_questions=60, hops=(2, 3), noise=NoiseConfig(0.0, 0.0, 0.0), seed=0)
    assert sum(t.reward >= 1.0 for t in traces) / len(traces) >= 0.95
    assert all(not erred for t in traces for _, erred in t.draws)


@pytest.mark.parametrize("rates", [(0.2, 0.5, 0.3), (0.05, 0.9, 0.6)])
def test_noise_rates_hold(rates: tuple[float, float, float]) -> None:
    noise = NoiseConfig(*rates)
    traces = world_traces(5, num_questions=400, hops=(2, 3), noise=noise, seed=7)
    draws = Counter(d for t in traces for d in t.draws)
    for kind, rate in zip(("wrong_entity", "early_answer", "wrong_copy"), rates, strict=True):
        n = draws[(kind, True)] + draws[(kind, False)]
        assert n >= 100, (kind, n)
        observed = draws[(kind, True)] / n
        # Within 4.5 binomial standard deviations (a false alarm about once in 150k runs).
        assert abs(observed - rate) <= 4.5 * math.sqrt(rate * (1 - rate) / n), (kind, observed, rate, n)


def test_early_answer_answers_the_intermediate_entity() -> None:
    traces = world_traces(6, num_questions=40, hops=(2,), noise=NoiseConfig(0.0, 1.0, 0.0), seed=0)
    world = generate_world(HopWorldConfig(seed=6, hops=(2,), num_questions=40))
    chains = {t.id: t.metadata["chain"] for t in world.tasks}
    for trace in traces:
        assert len(trace.actions) == 2 and trace.labels[-1] == "early_answer"
        assert trace.actions[-1] == f"<answer> {chains[trace.task_id][1]} </answer>"


def test_encoding_matches_the_engine_token_for_token(tiny_tokenizer: object) -> None:
    """A noise-free trace encodes to exactly the ids and loss mask the engine records for the scripted oracle."""
    tok: object = tiny_tokenizer
    world = generate_world(HopWorldConfig(seed=8, hops=(2, 3), num_questions=12))
    protocol = get_protocol("search_r1")
    encode = lambda text: tok.encode(text, add_special_tokens=False)  # type: ignore[attr-defined]  # noqa: E731
    policy = TokenScriptedOraclePolicy(world.tasks, protocol, encode)
    env = hopworld_env(world)
    result = asyncio.run(collect_episodes(env, policy, [t.id for t in world.tasks], RolloutConfig()))
    by_task = {t.task_id: t for t in result.trajectories}

    async def play() -> list[object]:
        env2 = hopworld_env(world)
        rng = random.Random(0)
        return [await play_trace(env2, world, t.id, NoiseConfig(0.0, 0.0, 0.0), rng) for t in world.tasks]

    for trace in asyncio.run(play()):
        encoded = encode_trace(tok, trace)  # type: ignore[arg-type]
        traj = by_task[trace.task_id]  # type: ignore[attr-defined]
        assert encoded.token_ids == traj.token_ids
        assert encoded.loss_mask == traj.loss_mask
        trained = [i for i, m in zip(encoded.token_ids, encoded.loss_mask, strict=True) if m]
        assert tok.decode(trained) == "".join(trace.actions)  # type: ignore[attr-defined, union-attr]


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match="early_answer"):
        NoiseConfig(early_answer=1.5)
    with pytest.raises(ConfigError, match="held out"):
        WarmupConfig(world_seed_start=995, num_worlds=10)
    with pytest.raises(ConfigError, match="eval_world_seed"):
        WarmupConfig(eval_world_seed=5)
    with pytest.raises(ConfigError, match="unknown warm-up option"):
        WarmupConfig.from_dict({"stepz": 3})
    with pytest.raises(ConfigError, match=r"name_pool=-1: use 0 \(fresh names\)"):
        WarmupConfig(name_pool=-1)
    with pytest.raises(ConfigError, match="top_k=0"):
        WarmupConfig(top_k=0)
    config = WarmupConfig.from_dict({"noise": {"early_answer": 0.7}, "hops": [3, 2]})
    assert config.noise.early_answer == 0.7 and config.hops == (2, 3)
    assert (
        config.model_key()
        == WarmupConfig.from_dict({"noise": {"early_answer": 0.7}, "eval_tasks": 3}).model_key()
    )
    assert config.model_key() != WarmupConfig().model_key()


def test_pooled_traces_use_pool_names_and_one_passage_per_search() -> None:
    from hopgym.envs.hopworld import name_pool
    from hopgym.envs.hopworld.relations import COMPANY_SUFFIXES, RIVER_SUFFIX

    traces = world_traces(
        7, num_questions=20, hops=(2,), noise=NoiseConfig(0, 0, 0), seed=0, name_pool=600, top_k=1
    )
    pool = set(name_pool(600))
    for trace in traces:
        assert trace.reward == 1.0  # the noise-free agent still solves every question
        for observation in trace.observations[:-1]:
            assert observation.count("Doc ") == 1
        searched = trace.actions[0].removeprefix("<search> ").split()[:-2]  # name words, not keyword and tag
        assert set(searched) - {*COMPANY_SUFFIXES, RIVER_SUFFIX} <= pool
