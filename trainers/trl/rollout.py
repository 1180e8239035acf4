"""A ``rollout_func`` for TRL's ``GRPOTrainer`` (TRL >= 0.25) that plays hopgym episodes.

TRL calls ``rollout_func(prompts, trainer)`` with its generation batch: each dataset row's ``prompt``,
repeated ``num_generations`` times in a row. :class:`HopgymRollout` maps every prompt to its hopgym task
(:mod:`hopgym.trainers.trl.dataset`), plays the k-th repeat of a task as sample k of that task through
hopgym's episode engine (all episodes of the batch at once, up to ``concurrency``), with a token-level policy
on the trainer's current model (``TransformersPolicy.from_model``: the model itself, no copy, so there are
no weights to sync), and returns per row:

- ``prompt_ids``: the episode's prompt tokens; ``completion_ids``: everything after them, i.e. every
  generated action followed by the tokens of the observation (retrieved documents) that answered it, exactly
  as the policy saw them;
- ``env_mask``: 1 on generated tokens, 0 on observation tokens (TRL trains on ``completion_mask * env_mask``);
- ``logprobs``: the sampler's log-probabilities of the generated tokens (0.0 on observation tokens, which
  the mask excludes); they are under the model's raw distribution, the same as TRL's scoring at
  ``temperature=1``, and TRL reads them only for its vLLM importance correction and off-policy mask;
- ``hopgym_reward`` (read by :func:`~hopgym.trainers.trl.hopgym_reward`), ``hopgym_task_id``,
  ``hopgym_num_searches``, ``hopgym_termination``: forwarded by TRL to reward functions.

A failed episode (retriever or backend down after their own bounded retries) never becomes a reward: its
task's group is played again, up to ``max_episode_retries`` times, then :class:`EpisodesFailed` is raised.

The episodes run on an event loop in a thread of the rollout's own, so TRL's synchronous call works from a
script and from a notebook (whose loop is already running). Close the rollout (``close()`` or ``with``) to
stop that thread and the env pool.

vLLM: with ``GRPOConfig(use_vllm=True)`` TRL owns the vLLM engine (a synchronous ``vllm.LLM`` in colocate
mode, or a ``trl vllm-serve`` server), which hopgym's ``VLLMPolicy`` (an ``AsyncLLM``) cannot drive. Pass
``policy_factory`` with a token-level policy on that engine (prompt token ids in, sampled ids and logprobs
out) to use it; TRL syncs the weights into its engine before calling the rollout function. Without one the
rollout refuses ``use_vllm=True`` rather than sampling from a different model than TRL trains.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from hopgym.agents.policy import Policy, SamplingParams, token_policy
from hopgym.agents.rollout.trajectory import Trajectory
from hopgym.envs.pool import EnvPool, EnvSource
from hopgym.errors import ConfigError, EpisodesFailed
from hopgym.trainers.rollouts import collect_groups, derive_seed
from hopgym.trainers.trl.config import TRLRolloutConfig
from hopgym.trainers.trl.dataset import PromptIndex, task_prompts
from hopgym.trainers.trl.reward import REWARD_FIELD

__all__ = ["EpisodesFailed", "HopgymRollout", "RolloutTiming", "trajectory_fields"]

T = TypeVar("T")

PolicyFactory = Callable[[Any], Policy]


@dataclass(frozen=True)
class RolloutTiming:
    """One call of the rollout function: episodes played (re-runs included), generated tokens, wall time."""

    episodes: int
    generated_tokens: int
    wall_s: float


def trajectory_fields(traj: Trajectory) -> dict[str, Any]:
    """One row of TRL's rollout output from a finished token-level episode (see the module docstring)."""
    if traj.failed or traj.reward is None:
        raise EpisodesFailed(
            f"episode {traj.key} failed ({traj.error}); failed episodes are never trained on"
        )
    if (
        traj.token_ids is None
        or traj.loss_mask is None
        or traj.logprobs is None
        or traj.prompt_token_count is None
    ):
        raise ConfigError(
            f"episode {traj.key} has no token view; TRL needs a token-level policy (TransformersPolicy, VLLMPolicy, "
            "or OpenAIPolicy with a tokenizer)"
        )
    start = traj.prompt_token_count
    return {
        "prompt_ids": list(traj.token_ids[:start]),
        "completion_ids": list(traj.token_ids[start:]),
        "logprobs": [0.0 if lp is None else float(lp) for lp in traj.logprobs[start:]],
        "env_mask": list(traj.loss_mask[start:]),
        REWARD_FIELD: float(traj.reward),
        "hopgym_task_id": traj.task_id,
        "hopgym_num_searches": traj.num_searches,
        "hopgym_termination": traj.termination,
    }


class _LoopThread:
    """An event loop running in a daemon thread; ``run`` blocks the caller until a coroutine finishes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="hopgym-trl-rollout", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. Ctrl-C in the trainer: stop the episodes too
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class HopgymRollout:
    """TRL's ``rollout_func`` over a hopgym env (see the module docstring).

    ``env`` is an env id (built once, with ``env_kwargs``), an env used as prototype, a factory, or an
    :class:`~hopgym.envs.pool.EnvPool` (kept open). Build the training dataset from the same env with
    :func:`~hopgym.trainers.trl.tasks_dataset`. ``policy_factory(trainer)`` replaces the default policy (the
    transformers backend on ``trainer.model``); it must return a token-level policy and is called once.

    ``trajectories`` holds the last call's episodes in row order; ``timings`` one :class:`RolloutTiming` per
    call.
    """

    def __init__(
        self,
        env: EnvSource | EnvPool,
        config: TRLRolloutConfig | None = None,
        *,
        env_kwargs: Mapping[str, Any] | None = None,
        policy_factory: PolicyFactory | None = None,
    ) -> None:
        self.config = config if config is not None else TRLRolloutConfig()
        if not isinstance(self.config, TRLRolloutConfig):
            raise ConfigError(f"config must be a TRLRolloutConfig, got {type(self.config).__name__}")
        if isinstance(env, EnvPool):
            if env_kwargs:
                raise ConfigError("env_kwargs apply to an env id; configure the EnvPool's source instead")
            self._pool, self._own_pool = env, False
        else:
            self._pool = EnvPool(
                env, env_kwargs=env_kwargs, retriever_batching=self.config.retriever_batching
            )
            self._own_pool = True
        self._policy_factory = policy_factory
        self._policy: Policy | None = None
        self._policy_model: Any = None
        self._index: PromptIndex | None = None
        self._loop: _LoopThread | None = None
        self._closed = False
        self.trajectories: list[Trajectory] = []
        self.timings: list[RolloutTiming] = []

    # -- TRL's entry point ---------------------------------------------------------------------------

    def __call__(self, prompts: Sequence[Any], trainer: Any) -> dict[str, list[Any]]:
        if self._closed:
            raise ConfigError("this HopgymRollout was closed; make a new one")
        if not prompts:
            raise ConfigError("TRL passed no prompts to the rollout function")
        sampling = self._sampling(trainer)
        policy, model = self._policy_for(trainer)
        if self._loop is None:
            self._loop = _LoopThread()
        was_training = bool(getattr(model, "training", False))
        if model is not None:
            model.eval()  # no dropout while sampling: the policy's log-probs must be the model's
        started = time.perf_counter()
        try:
            trajectories, played = self._loop.run(self._play(prompts, policy, sampling))
        finally:
            if model is not None and was_training:
                model.train()
        wall = time.perf_counter() - started
        self.trajectories = trajectories
        self.timings.append(RolloutTiming(played, sum(t.generated_tokens for t in trajectories), wall))
        rows = [trajectory_fields(t) for t in trajectories]
        return {key: [row[key] for row in rows] for key in rows[0]}

    # -- setup ---------------------------------------------------------------------------------------

    def _sampling(self, trainer: Any) -> SamplingParams:
        args = getattr(trainer, "args", None)
        temperature = float(getattr(args, "temperature", 1.0))
        top_p = float(getattr(args, "top_p", 1.0))
        # Neutral values: what leaves sampling to temperature and top_p alone.
        neutral = {"top_k": (0, -1, None), "min_p": (None, 0.0), "repetition_penalty": (1.0, None)}
        unsupported = {
            name: getattr(args, name) for name, ok in neutral.items() if getattr(args, name, None) not in ok
        }
        if unsupported:
            raise ConfigError(
                f"GRPOConfig sets {unsupported}, which hopgym's policies do not apply (they sample with temperature "
                "and top_p only); leave these at their defaults"
            )
        if getattr(args, "mask_truncated_completions", False):
            raise ConfigError(
                "GRPOConfig(mask_truncated_completions=True) would drop every hopgym episode from the loss: TRL "
                "counts a completion without a final EOS as truncated, and episodes end on the protocol's stop "
                "strings or an observation; leave it False (max_episode_tokens bounds the episodes)"
            )
        step = int(getattr(getattr(trainer, "state", None), "global_step", 0) or 0)
        mode = "train" if getattr(getattr(trainer, "model", None), "training", True) else "eval"
        seed = None if self.config.seed is None else derive_seed(self.config.seed, step, mode)
        return SamplingParams(
            max_tokens=self.config.max_tokens, temperature=temperature, top_p=top_p, seed=seed
        )

    def _policy_for(self, trainer: Any) -> tuple[Policy, Any]:
        """The policy to sample with, and the model to keep in eval mode meanwhile (None for a factory's)."""
        if self._policy_factory is not None:
            if self._policy is None:
                policy = self._policy_factory(trainer)
                if token_policy(policy) is None:
                    raise ConfigError(
                        f"policy_factory returned {type(policy).__name__}, which is not token-level; TRL needs "
                        "token ids and log-probs (TransformersPolicy, VLLMPolicy, OpenAIPolicy with a tokenizer)"
                    )
                self._policy = policy
            return self._policy, None
        if getattr(trainer, "use_vllm", False):
            raise ConfigError(
                "GRPOConfig(use_vllm=True): TRL's vLLM engine is not a hopgym policy; pass policy_factory= with a "
                "token-level policy on that engine, or set use_vllm=False to sample from the trained model itself"
            )
        model = trainer.model
        accelerator = getattr(trainer, "accelerator", None)
        if accelerator is not None:
            model = accelerator.unwrap_model(model)
        if self._policy is None or self._policy_model is not model:
            from hopgym.agents.transformers_policy import TransformersPolicy

            tokenizer = getattr(trainer, "processing_class", None)
            tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a multimodal processor wraps one
            if tokenizer is None:
                raise ConfigError("the trainer has no processing_class; pass the tokenizer to GRPOTrainer")
            if self._policy is not None and self._loop is not None:
                self._loop.run(self._policy.aclose())
            self._policy = TransformersPolicy.from_model(
                model,
                tokenizer,
                max_batch_size=self.config.max_batch_size,
                max_wait_ms=self.config.max_wait_ms,
                chat_template=self.config.chat_template,
                name="transformers:trl-model",
            )
            self._policy_model = model
        return self._policy, model

    # -- episodes ------------------------------------------------------------------------------------

    async def _play(
        self, prompts: Sequence[Any], policy: Policy, sampling: SamplingParams
    ) -> tuple[list[Trajectory], int]:
        if self._index is None:
            self._index = PromptIndex(await task_prompts(self._pool))
        keys: list[tuple[str, int]] = []
        seen: Counter[str] = Counter()
        for prompt in prompts:
            task_id = self._index.task_id(prompt)
            keys.append((task_id, seen[task_id]))
            seen[task_id] += 1
        # Each task's group is its repeats in this batch; the groups are played (and re-played) together.
        played = await collect_groups(
            self._pool,
            policy,
            list(seen),
            samples=seen,
            sampling=sampling,
            max_episode_tokens=self.config.max_episode_tokens,
            concurrency=self.config.concurrency,
            retries=self.config.max_episode_retries,
            fix_hint="check the retriever/policy backend, or raise TRLRolloutConfig.max_episode_retries",
        )
        by_key = {traj.key: traj for traj in played.trajectories}
        return [by_key[key] for key in keys], played.episodes

    # -- lifetime ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the policy (the model stays), the env pool (when the rollout built it) and the loop thread."""
        if self._closed:
            return
        self._closed = True
        if self._loop is None:
            return

        async def shutdown() -> None:
            if self._policy is not None:
                await self._policy.aclose()
            if self._own_pool:
                await self._pool.aclose()

        try:
            self._loop.run(shutdown())
        finally:
            self._loop.stop()
            self._loop = None

    def __enter__(self) -> HopgymRollout:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
