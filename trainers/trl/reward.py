"""The reward function for TRL: hopgym's reward of each episode, as the env paid it.

The rollout function returns each episode's reward in the ``hopgym_reward`` field; TRL forwards that field to
reward functions as a keyword argument. Nothing is recomputed from the decoded completion text, which would
lose what the env knew (the golden answers, truncation, the protocol's answer extraction).
"""

from __future__ import annotations

import math
from typing import Any

from hopgym.errors import ConfigError

__all__ = ["REWARD_FIELD", "hopgym_reward"]

#: The rollout output field (and reward-function keyword) carrying each episode's reward.
REWARD_FIELD = "hopgym_reward"


def hopgym_reward(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
    """The env's reward of each completion (pass it in ``GRPOTrainer(reward_funcs=[hopgym_reward])``)."""
    values = kwargs.get(REWARD_FIELD)
    if values is None:
        raise ConfigError(
            f"hopgym_reward needs the {REWARD_FIELD!r} field that hopgym's rollout function returns; pass "
            "rollout_func=HopgymRollout(env) to GRPOTrainer together with this reward"
        )
    if len(values) != len(completions):
        raise ConfigError(
            f"{len(values)} hopgym rewards for {len(completions)} completions: every completion must come from "
            "hopgym's rollout function"
        )
    rewards = [float(v) for v in values]
    bad = [i for i, r in enumerate(rewards) if not math.isfinite(r)]
    if bad:
        raise ConfigError(
            f"completion {bad[0]} has a non-finite hopgym reward {rewards[bad[0]]}; check the env's reward"
        )
    return rewards
