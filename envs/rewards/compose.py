"""Weighted sums of rewards, e.g. a format reward plus an answer reward."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from hopgym.errors import ConfigError
from hopgym.types import RewardInput, RewardResult

from .base import RewardFn

__all__ = ["ComposedReward", "compose"]


@dataclass(frozen=True)
class ComposedReward:
    """Score = sum of weight * part score.

    Components hold each part's unweighted score under its name and the part's own components as
    ``"name.component"``.
    """

    parts: tuple[tuple[str, RewardFn, float], ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise ConfigError("compose: no parts given; pass at least one {'name': (reward_fn, weight)}")
        names = [name for name, _, _ in self.parts]
        if len(set(names)) != len(names):
            raise ConfigError(f"compose: part names must be unique, got {names}; rename the duplicates")
        for name, fn, weight in self.parts:
            if not name or "." in name:
                raise ConfigError(
                    f"compose: part name {name!r} must be non-empty and contain no '.' (it prefixes "
                    "component names); choose another name"
                )
            if not callable(fn):
                raise ConfigError(f"compose: part {name!r} is {fn!r}, not a reward function; pass a RewardFn")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise ConfigError(f"compose: part {name!r} has weight {weight!r}; use a finite number")

    def __call__(self, inp: RewardInput, /) -> RewardResult:
        total = 0.0
        components: dict[str, float] = {}
        for name, fn, weight in self.parts:
            result = fn(inp)
            total += weight * result.score
            components[name] = result.score
            for key, value in result.reward_components.items():
                components[f"{name}.{key}"] = value
        return RewardResult(total, components)


def compose(parts: Mapping[str, tuple[RewardFn, float]]) -> ComposedReward:
    """Combine rewards: ``compose({"format": (research_format_reward, 0.2), "answer": (em_reward, 1.0)})``."""
    return ComposedReward(tuple((name, fn, weight) for name, (fn, weight) in parts.items()))
