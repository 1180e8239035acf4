"""ReSearch's reward: F1 of the ``\\boxed{}`` answer, gated by format (``re_search.compute_score``)."""

from __future__ import annotations

from collections.abc import Sequence

from hopgym.types import RewardInput, RewardResult

from .extract import extract_boxed, extract_first_answer
from .qa import f1_score

__all__ = [
    "WRONG_ANSWER_SCORE",
    "research_format_error",
    "research_format_reward",
    "research_reward",
    "research_score",
]

#: What ReSearch pays for a well-formed episode whose answer shares no token with any golden answer.
WRONG_ANSWER_SCORE = 0.1


def research_format_error(response: str) -> str | None:
    """Why ``response`` breaks ReSearch's format rules, or None when it follows them."""
    think_open, think_close = response.count("<think>"), response.count("</think>")
    if think_open != think_close:
        return "<think> and </think> counts differ"
    if think_open == 0:
        return "no <think> block"
    if response.count("<answer>") != 1 or response.count("</answer>") != 1:
        return "needs exactly one <answer> and one </answer>"
    position = 0
    while (search_start := response.find("<search>", position)) != -1:
        search_end = response.find("</search>", search_start)
        result_start = response.find("<result>", search_start)
        result_end = response.find("</result>", result_start) if result_start != -1 else -1
        if -1 in (search_end, result_start, result_end):
            return "a <search> lacks its </search>, <result> or </result>"
        if not search_start < search_end < result_start < result_end:
            return "search/result tags are out of order"
        position = result_end
    answer_start, answer_end = response.find("<answer>"), response.find("</answer>")
    if answer_start > answer_end:
        return "</answer> comes before <answer>"
    # The seed slices from the opening tag, so the check also sees "<answer>" itself (harmless).
    answer_span = response[answer_start:answer_end]
    if "\\boxed{" not in answer_span or "}" not in answer_span:
        return "the answer has no \\boxed{...}"
    return None


def research_score(response: str, golds: Sequence[str], *, finished: bool = True) -> float:
    r"""0 on bad format, cut-off generation or no ``\boxed`` answer; else the F1, or 0.1 if the F1 is 0."""
    return _evaluate(response, golds, finished=finished).score


def _evaluate(response: str, golds: Sequence[str], *, finished: bool) -> RewardResult:
    format_ok = research_format_error(response) is None
    f1 = 0.0
    if format_ok and finished:
        answer_span = extract_first_answer(response)
        answer = extract_boxed(answer_span) if answer_span is not None else None
        if answer is not None:
            f1 = f1_score(answer, golds)
            score = f1 if f1 > 0 else WRONG_ANSWER_SCORE
        else:
            score = 0.0
    else:
        score = 0.0
    return RewardResult(score, {"format_ok": float(format_ok), "finished": float(finished), "f1": f1})


def research_reward(inp: RewardInput, /) -> RewardResult:
    """ReSearch's reward on ``inp.response`` (0 when ``inp.finished`` is False)."""
    return _evaluate(inp.response, inp.golden_answers, finished=inp.finished)


def research_format_reward(inp: RewardInput, /) -> RewardResult:
    """1.0 when ``inp.response`` follows ReSearch's format rules, else 0.0 (for ``compose``)."""
    ok = research_format_error(inp.response) is None
    return RewardResult(float(ok), {"format_ok": float(ok)})
