"""Search-R1's outcome reward: exact match of the last ``<answer>`` span (``qa_em.compute_score_em``)."""

from __future__ import annotations

from collections.abc import Sequence

from hopgym.types import RewardInput, RewardResult

from .extract import extract_last_answer
from .qa import em_score, sub_em_score

__all__ = ["search_r1_reward", "search_r1_score", "search_r1_sub_reward"]

# Search-R1 scores prompt + response and ignores the first <answer> span, which sits in its prompt. When the
# response has no span, the seed therefore compares the prompt's example answer ("Beijing") with the golds;
# hopgym sees only the response and gives 0 there, as the issue specifies.


def search_r1_score(response: str, golds: Sequence[str], *, sub: bool = False) -> float:
    """EM (or substring EM with ``sub``) of the last ``<answer>`` span's content; 0.0 without one."""
    return _score(extract_last_answer(response), golds, sub=sub)


def _score(answer: str | None, golds: Sequence[str], *, sub: bool) -> float:
    if answer is None:
        return 0.0
    return sub_em_score(answer, golds) if sub else em_score(answer, golds)


def _result(inp: RewardInput, *, sub: bool) -> RewardResult:
    answer = extract_last_answer(inp.response)
    score = _score(answer, inp.golden_answers, sub=sub)
    return RewardResult(score, {"has_answer": float(answer is not None), "sub_em" if sub else "em": score})


def search_r1_reward(inp: RewardInput, /) -> RewardResult:
    """Search-R1's EM reward on ``inp.response``."""
    return _result(inp, sub=False)


def search_r1_sub_reward(inp: RewardInput, /) -> RewardResult:
    """Search-R1's substring-EM reward on ``inp.response``."""
    return _result(inp, sub=True)
