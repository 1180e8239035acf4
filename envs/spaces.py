"""A free-text Gymnasium space (``gymnasium.spaces.Text`` rejects ordinary punctuation)."""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Any

import numpy as np
from gymnasium.spaces import Space

from hopgym.errors import ConfigError

__all__ = ["FreeText"]

# Sampling mixes printable characters with protocol fragments so random actions exercise the parsers.
_SAMPLE_FRAGMENTS = (
    "<search>", "</search>", "<answer>", "</answer>", "<think>", "</think>",
    "<|begin_of_query|>", "<|end_of_query|>", "\\boxed{", "}", " ", "\n", "é", "東",
)  # fmt: skip
_SAMPLE_CHARS = string.ascii_letters + string.digits + string.punctuation + " "


class FreeText(Space[str]):
    """Any Python string of at most ``max_length`` characters."""

    def __init__(self, max_length: int = 1_000_000, *, seed: int | np.random.Generator | None = None) -> None:
        if max_length < 1:
            raise ConfigError(f"max_length must be >= 1, got {max_length}")
        self.max_length = max_length
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        if mask is not None or probability is not None:
            raise NotImplementedError("FreeText.sample does not support masks")
        length = int(self.np_random.integers(0, min(self.max_length, 64) + 1))
        parts: list[str] = []
        while sum(map(len, parts)) < length:
            if self.np_random.random() < 0.2:
                parts.append(_SAMPLE_FRAGMENTS[int(self.np_random.integers(len(_SAMPLE_FRAGMENTS)))])
            else:
                parts.append(_SAMPLE_CHARS[int(self.np_random.integers(len(_SAMPLE_CHARS)))])
        return "".join(parts)[:length]

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    def to_jsonable(self, sample_n: Iterable[str]) -> list[str]:
        return list(sample_n)

    def from_jsonable(self, sample_n: list[str]) -> list[str]:
        return list(sample_n)

    def __repr__(self) -> str:
        return f"FreeText(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FreeText) and other.max_length == self.max_length

    def __hash__(self) -> int:
        return hash(("FreeText", self.max_length))
