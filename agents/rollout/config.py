"""How a run plays its episodes: one frozen, validated value instead of a relay of keyword arguments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hopgym.agents.policy import SamplingParams
from hopgym.errors import ConfigError

__all__ = ["RolloutConfig"]


def _positive_int(name: str, value: object, advice: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} is invalid: {advice}")


@dataclass(frozen=True)
class RolloutConfig:
    """Settings of a rollout run.

    - ``concurrency``: episodes in flight at once (each its own coroutine; the policy backend batches them).
    - ``samples_per_task``: episodes per task (a GRPO group); sample ``i`` of task ``t`` is the pair ``(t, i)``.
    - ``sampling``: per-turn sampling; with ``sampling.seed`` every turn gets its own seed derived from
      (seed, task, sample, turn), so a group's samples differ and a rerun reproduces them.
    - ``max_episode_tokens``: cap on an episode's whole token sequence (token-level policies only); a full
      sequence ends the episode with termination ``"length"``, scored by the env as unfinished.
    - ``retriever_batching``: how the run's env pool shares the env's retriever: ``True`` (a
      ``MicroBatchingRetriever`` with default settings), a mapping of its options, or ``False`` (shared as
      is). Used when the run builds its pool; an ``EnvPool`` you pass has its own setting.
    """

    concurrency: int = 64
    samples_per_task: int = 1
    sampling: SamplingParams = field(default_factory=SamplingParams)
    max_episode_tokens: int | None = None
    retriever_batching: bool | Mapping[str, Any] = True

    def __post_init__(self) -> None:
        _positive_int("concurrency", self.concurrency, "run at least one episode at a time (an integer >= 1)")
        _positive_int(
            "samples_per_task", self.samples_per_task, "use an integer >= 1 (n samples per task for GRPO)"
        )
        if not isinstance(self.sampling, SamplingParams):
            raise ConfigError(
                f"sampling must be a SamplingParams, got {type(self.sampling).__name__}; build one with "
                "hopgym.agents.SamplingParams(max_tokens=..., temperature=...)"
            )
        if self.max_episode_tokens is not None:
            _positive_int("max_episode_tokens", self.max_episode_tokens, "use a positive limit, or None")
        if isinstance(self.retriever_batching, Mapping):
            object.__setattr__(self, "retriever_batching", MappingProxyType(dict(self.retriever_batching)))
        elif not isinstance(self.retriever_batching, bool):
            raise ConfigError(
                f"retriever_batching={self.retriever_batching!r}: use True, False or a mapping of "
                "MicroBatchingRetriever options (max_batch_size, max_wait_ms, max_concurrency, on_batch)"
            )
