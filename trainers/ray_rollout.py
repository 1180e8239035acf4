"""Episode workers on a Ray cluster: a list of tasks' episodes played by Ray actors, trajectories returned.

Each worker is a Ray actor that builds its own env pool (``env`` id + ``env_kwargs``, one shared
micro-batching retriever) and its own policy (``policy_factory()``, called in the worker: a picklable
zero-argument callable, e.g. ``functools.partial(OpenAIPolicy, base_url=..., model=...)`` for a vLLM server
the workers share) and plays its share of the tasks with hopgym's episode engine
(:func:`~hopgym.agents.rollout.engine.collect_episodes`). A task's samples (its group) stay on one worker.
Trajectories travel back as plain dicts (:meth:`Trajectory.to_dict`) and come back in task order, then
sample order.

``address``: a running cluster (``"ray://..."``, ``"auto"``, ``"10.0.0.1:6379"``); None starts a local one
with ``num_cpus``. ``ray`` is imported on first use (``pip install 'hopgym[ray]'``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hopgym.agents.policy import Policy
from hopgym.agents.rollout.config import RolloutConfig
from hopgym.agents.rollout.trajectory import Trajectory
from hopgym.errors import ConfigError, require

__all__ = ["RayRolloutConfig", "run_episodes_on_ray", "transformers_policy_from_state"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RayRolloutConfig:
    """Where the episode workers run: ``num_workers`` Ray actors of ``worker_cpus`` CPUs each."""

    address: str | None = None
    num_workers: int = 2
    worker_cpus: float = 1.0
    num_cpus: int | None = None
    runtime_env: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (
            isinstance(self.num_workers, bool)
            or not isinstance(self.num_workers, int)
            or self.num_workers < 1
        ):
            raise ConfigError(f"num_workers={self.num_workers!r}: use at least one Ray worker")
        if not self.worker_cpus > 0:
            raise ConfigError(f"worker_cpus={self.worker_cpus!r}: each worker needs a CPU share > 0")
        if self.num_cpus is not None and self.address is not None:
            raise ConfigError("num_cpus sizes a local cluster: drop it when address names a running one")


class _EpisodeWorker:
    """The body of one Ray actor (wrapped with ``ray.remote`` at run time)."""

    def __init__(self, env: str, env_kwargs: Mapping[str, Any], policy_factory: Callable[[], Policy]) -> None:
        self._env = env
        self._env_kwargs = dict(env_kwargs)
        self._policy_factory = policy_factory

    async def play(self, tasks: list[str], config: RolloutConfig) -> list[dict[str, Any]]:
        from hopgym.agents.rollout.engine import collect_episodes

        policy = self._policy_factory()
        try:
            result = await collect_episodes(
                self._env, policy, tasks, config, env_kwargs=self._env_kwargs or None
            )
        finally:
            await policy.aclose()
        return [t.to_dict() for t in result.trajectories]


def _shares(tasks: Sequence[str], workers: int) -> list[list[str]]:
    shares: list[list[str]] = [[] for _ in range(workers)]
    for index, task in enumerate(tasks):
        shares[index % workers].append(task)
    return [share for share in shares if share]


def run_episodes_on_ray(
    tasks: Sequence[str],
    *,
    env: str,
    policy_factory: Callable[[], Policy],
    env_kwargs: Mapping[str, Any] | None = None,
    rollout: RolloutConfig | None = None,
    ray_config: RayRolloutConfig | None = None,
) -> list[Trajectory]:
    """Play ``rollout.samples_per_task`` episodes of each task on Ray workers (see the module docstring).

    Failed episodes come back as failed trajectories (termination ``"failed"``, no reward), as from the local
    engine; a worker that dies raises.
    """
    if isinstance(tasks, str) or not tasks:
        raise ConfigError("tasks: give a non-empty list of task ids")
    if len(set(tasks)) != len(tasks):
        raise ConfigError(
            "tasks: a task id is listed twice; use rollout.samples_per_task for repeated samples"
        )
    if not callable(policy_factory):
        raise ConfigError("policy_factory must be a picklable zero-argument callable that returns a Policy")
    rollout = rollout or RolloutConfig()
    ray_config = ray_config or RayRolloutConfig()
    ray: Any = require("ray", extra="ray", purpose="episode workers on a Ray cluster")
    started = False
    if not ray.is_initialized():
        init: dict[str, Any] = {
            "address": ray_config.address,
            "runtime_env": dict(ray_config.runtime_env) or None,
        }
        if ray_config.address is None:
            init.update(num_cpus=ray_config.num_cpus, include_dashboard=False)
        ray.init(**init, log_to_driver=False)
        started = True
    try:
        worker_class = ray.remote(num_cpus=ray_config.worker_cpus)(_EpisodeWorker)
        shares = _shares(list(tasks), ray_config.num_workers)
        workers = [worker_class.remote(env, dict(env_kwargs or {}), policy_factory) for _ in shares]
        try:
            refs = [w.play.remote(share, rollout) for w, share in zip(workers, shares, strict=True)]
            results = ray.get(refs)
        finally:
            for worker in workers:
                ray.kill(worker)
    finally:
        if started:
            ray.shutdown()
    order = {task: i for i, task in enumerate(tasks)}
    trajectories = [Trajectory.from_dict(d) for share in results for d in share]
    trajectories.sort(key=lambda t: (order[t.task_id], t.sample_index))
    logger.info(
        "ray rollout: %d episodes of %d tasks on %d workers", len(trajectories), len(tasks), len(shares)
    )
    return trajectories


async def arun_episodes_on_ray(*args: Any, **kwargs: Any) -> list[Trajectory]:
    """:func:`run_episodes_on_ray` from a coroutine (the blocking Ray calls run on a thread)."""
    return await asyncio.to_thread(run_episodes_on_ray, *args, **kwargs)


def transformers_policy_from_state(
    model_dir: str, state: Mapping[str, Any], torch_threads: int = 1
) -> Policy:
    """A worker's policy for the built-in trainer: the model of ``model_dir`` (architecture, tokenizer) with
    the trainer's current weights ``state`` (a ``state_dict``), sampled with ``TransformersPolicy``."""
    torch: Any = require("torch", extra="train", purpose="Ray episode workers")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hopgym.agents.transformers_policy import TransformersPolicy

    torch.set_num_threads(torch_threads)
    loader: Any = AutoModelForCausalLM
    model = loader.from_pretrained(model_dir, dtype=torch.float32)
    model.load_state_dict(dict(state))
    tokenizer: Any = AutoTokenizer
    return TransformersPolicy.from_model(
        model.eval(), tokenizer.from_pretrained(model_dir), max_batch_size=256
    )
