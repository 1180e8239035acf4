"""run_episodes_on_ray: episodes played by Ray actors on a local 2-CPU cluster match the local engine's."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import pytest

from hopgym.agents.rollout.config import RolloutConfig
from hopgym.agents.rollout.engine import collect_episodes
from hopgym.agents.scripted_policy import ScriptedOraclePolicy
from hopgym.errors import ConfigError
from hopgym.trainers.ray_rollout import RayRolloutConfig, run_episodes_on_ray

ray = pytest.importorskip("ray", reason="needs ray (pip install 'hopgym[ray]')")
pytestmark = pytest.mark.slow

ENV = "hopgym/HopWorld-2hop-v0"
KWARGS = {"world_seed": 5, "num_questions": 12}


def oracle_policy() -> ScriptedOraclePolicy:
    """Built inside each worker; its name records the process that played."""
    from hopgym.envs.hopworld import HopWorldConfig, generate_world
    from hopgym.envs.protocols import get_protocol

    world = generate_world(HopWorldConfig(seed=5, hops=(2,), num_questions=12))
    policy = ScriptedOraclePolicy(world.tasks, get_protocol("search_r1"))
    policy.name = f"oracle@{os.getpid()}"
    return policy


def _local(tasks: list[str], rollout: RolloutConfig) -> dict[tuple[str, int], Any]:
    result = asyncio.run(collect_episodes(ENV, oracle_policy(), tasks, rollout, env_kwargs=KWARGS))
    return {t.key: t for t in result.trajectories}


def test_ray_workers_play_the_tasks_like_the_local_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    # The workers cannot import this test file by name: ship the factory by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    tasks = [t.id for t in oracle_policy()._by_question.values()][:6]
    rollout = RolloutConfig(samples_per_task=2, concurrency=4)
    trajectories = run_episodes_on_ray(
        tasks,
        env=ENV,
        env_kwargs=KWARGS,
        policy_factory=oracle_policy,
        rollout=rollout,
        ray_config=RayRolloutConfig(num_workers=2, worker_cpus=1, num_cpus=2),
    )
    assert [t.key for t in trajectories] == [(task, i) for task in tasks for i in range(2)]
    local = _local(tasks, rollout)
    for traj in trajectories:
        assert not traj.failed
        assert traj.reward == local[traj.key].reward == 1.0
        assert traj.answer == local[traj.key].answer
        assert [t.text for t in traj.turns] == [t.text for t in local[traj.key].turns]
    players = {t.policy for t in trajectories}
    assert len(players) == 2 and f"oracle@{os.getpid()}" not in players
    # A task's group stays on one worker.
    for task in tasks:
        assert len({t.policy for t in trajectories if t.task_id == task}) == 1
    assert not ray.is_initialized()  # the cluster this call started is shut down


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ConfigError, match="non-empty list"):
        run_episodes_on_ray([], env=ENV, policy_factory=oracle_policy)
    with pytest.raises(ConfigError, match="listed twice"):
        run_episodes_on_ray(["a", "a"], env=ENV, policy_factory=oracle_policy)
    with pytest.raises(ConfigError, match="at least one Ray worker"):
        RayRolloutConfig(num_workers=0)
    with pytest.raises(ConfigError, match="drop it"):
        RayRolloutConfig(address="auto", num_cpus=2)
