"""Settings of hopgym's rollout function for TRL: one frozen, validated value."""

from __future__ import annotations

from dataclasses import dataclass

from hopgym.errors import ConfigError

__all__ = ["TRLRolloutConfig"]


def _int_at_least(name: str, value: object, minimum: int, advice: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"TRLRolloutConfig.{name}={value!r} is invalid: {advice}")


@dataclass(frozen=True)
class TRLRolloutConfig:
    """How :class:`~hopgym.trainers.trl.HopgymRollout` plays the episodes of a TRL generation batch.

    Sampling temperature and top-p are TRL's (``GRPOConfig.temperature``/``top_p``): TRL scores the tokens
    with the same temperature, so they must agree and are not repeated here.

    - ``max_tokens``: generated tokens per turn (one action: a search or an answer).
    - ``max_episode_tokens``: cap on an episode's whole sequence (prompt, actions, retrieved documents); a full
      sequence ends the episode, scored by the env as unfinished. This, not ``GRPOConfig.max_completion_length``,
      bounds a multi-turn completion.
    - ``concurrency``: episodes in flight at once; the policy batches their generations. 1 plays them one at
      a time (what a naive integration does; the trainer benchmark's baseline).
    - ``max_batch_size`` / ``max_wait_ms``: the transformers policy's batching of concurrent generations.
    - ``seed``: base of the per-turn sampling seeds (mixed with the trainer's global step, so steps differ and
      a rerun reproduces them); None samples unseeded.
    - ``max_episode_retries``: how often a task whose episode failed (retriever or backend down after their
      own retries) is played again before the rollout raises; a failure never becomes a 0 reward.
    - ``chat_template``: encode the first prompt with the tokenizer's chat template applied to the env's
      messages instead of the protocol's completion prompt.
    - ``retriever_batching``: share the env's retriever through one micro-batching wrapper (env ids and
      prototype envs; an ``EnvPool`` you pass keeps its own setting).
    """

    max_tokens: int = 64
    max_episode_tokens: int = 1024
    concurrency: int = 64
    max_batch_size: int = 16
    max_wait_ms: float = 5.0
    seed: int | None = 0
    max_episode_retries: int = 2
    chat_template: bool = False
    retriever_batching: bool = True

    def __post_init__(self) -> None:
        _int_at_least(
            "max_tokens", self.max_tokens, 1, "a turn needs at least one token; use an integer >= 1"
        )
        _int_at_least(
            "max_episode_tokens",
            self.max_episode_tokens,
            2,
            "use the most tokens an episode may hold (prompt included), below the model's context length",
        )
        _int_at_least(
            "concurrency", self.concurrency, 1, "use an integer >= 1 (1 plays the episodes one at a time)"
        )
        _int_at_least("max_batch_size", self.max_batch_size, 1, "use an integer >= 1")
        if isinstance(self.max_wait_ms, bool) or not isinstance(self.max_wait_ms, (int, float)):
            raise ConfigError(
                f"TRLRolloutConfig.max_wait_ms={self.max_wait_ms!r}: use a number of milliseconds"
            )
        if self.max_wait_ms < 0:
            raise ConfigError(f"TRLRolloutConfig.max_wait_ms={self.max_wait_ms}: use >= 0 milliseconds")
        if self.seed is not None:
            _int_at_least("seed", self.seed, 0, "use an integer >= 0, or None for unseeded sampling")
        _int_at_least(
            "max_episode_retries",
            self.max_episode_retries,
            0,
            "use an integer >= 0 (0 raises at the first failed episode)",
        )
        for name in ("chat_template", "retriever_batching"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"TRLRolloutConfig.{name}={getattr(self, name)!r}: use True or False")
