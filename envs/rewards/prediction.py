"""Rewards that score the protocol's extracted answer (``RewardInput.prediction``); no answer scores 0."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hopgym.types import RewardInput, RewardResult

from .qa import cover_em_score, em_score, f1_score, sub_em_score

__all__ = ["cover_em_reward", "em_reward", "f1_reward", "sub_em_reward"]


def _score_prediction(
    inp: RewardInput, metric: Callable[[str, Sequence[str]], float], name: str
) -> RewardResult:
    score = 0.0 if inp.prediction is None else metric(inp.prediction, inp.golden_answers)
    return RewardResult(score, {name: score})


def em_reward(inp: RewardInput, /) -> RewardResult:
    """SQuAD-style exact match of ``inp.prediction``."""
    return _score_prediction(inp, em_score, "em")


def f1_reward(inp: RewardInput, /) -> RewardResult:
    """Token F1 of ``inp.prediction``."""
    return _score_prediction(inp, f1_score, "f1")


def sub_em_reward(inp: RewardInput, /) -> RewardResult:
    """Substring exact match of ``inp.prediction``."""
    return _score_prediction(inp, sub_em_score, "sub_em")


def cover_em_reward(inp: RewardInput, /) -> RewardResult:
    """R1-Searcher's cover exact match of ``inp.prediction``."""
    return _score_prediction(inp, cover_em_score, "cover_em")
