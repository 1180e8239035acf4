"""The reward-function contract."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from hopgym.types import RewardInput, RewardResult

__all__ = ["RewardFn"]


@runtime_checkable
class RewardFn(Protocol):
    """A pure function from an episode's text and golden answers to a score with named components."""

    def __call__(self, inp: RewardInput, /) -> RewardResult: ...
