"""R1-Searcher's rewards (``train/reward_server_qwen_zero.py`` and ``train/reward_server_llama_stage1.py``).

R1-Searcher's prompt ends with ``<think>``, so a well-formed response has no ``<think>`` of its own and
exactly one ``</think>``. Its reward servers compare against one golden answer; hopgym takes the best over
all golden answers, which is the same when there is one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hopgym.types import RewardInput, RewardResult

from .extract import extract_r1_searcher_answer, find_spans
from .qa import cover_em_score, cover_f1_score

__all__ = [
    "FORMAT_PENALTY",
    "MAX_ANSWER_WORDS",
    "r1_searcher_format_errors",
    "r1_searcher_format_reward",
    "r1_searcher_reward",
    "r1_searcher_score",
    "r1_searcher_stage1_reward",
    "r1_searcher_stage1_score",
    "retrieval_tags_balanced",
    "think_answer_format_ok",
]

#: Subtracted from the stage-2 score when any format rule is broken.
FORMAT_PENALTY = 2.0
#: Stage-2 answers longer than this many words are penalized.
MAX_ANSWER_WORDS = 10

# Every retrieval round must look exactly like "<|begin_of_documents|>\n(1)...<|end_of_documents|>\n\n" after
# one "<|begin_of_query|>...<|end_of_query|>"; counting all these variants catches missing or mangled parts.
_RETRIEVAL_MARKERS = (
    "<|begin_of_documents|>\n",
    "<|end_of_documents|>\n\n",
    "<|begin_of_query|>",
    "<|end_of_query|>",
    "<|begin_of_documents|>",
    "<|end_of_documents|>",
    "<|begin_of_documents|>\n(1)",
)
_DOCUMENTS_OPEN = "<|begin_of_documents|>"
_DOCUMENTS_CLOSE = "<|end_of_documents|>"
_CJK = re.compile("[\u4e00-\u9fff]")


def _has_answer_tags(response: str) -> bool:
    return "<answer>" in response and "</answer>" in response


def _retrieval_counts(response: str) -> list[int]:
    return [response.count(marker) for marker in _RETRIEVAL_MARKERS]


def retrieval_tags_balanced(response: str, *, min_rounds: int = 0) -> bool:
    """True when every query/document marker occurs equally often, and at least ``min_rounds`` times."""
    counts = _retrieval_counts(response)
    return len(set(counts)) == 1 and counts[0] >= min_rounds


def think_answer_format_ok(response: str) -> bool:
    """No ``<think>`` (the prompt opened it), one ``</think>``, one ``<answer>`` and one ``</answer>``."""
    return (
        response.count("<think>") == 0
        and response.count("</think>") == 1
        and response.count("<answer>") == 1
        and response.count("</answer>") == 1
    )


def _outside_documents(response: str) -> str:
    """``response`` without its document blocks, as the seed's ``re.sub`` of ``begin.*?end`` (DOTALL) leaves
    it, in one pass (the regex is quadratic on repeated unclosed markers)."""
    parts = []
    pos = 0
    for start, end in find_spans(response, _DOCUMENTS_OPEN, _DOCUMENTS_CLOSE):
        parts.append(response[pos:start])
        pos = end
    parts.append(response[pos:])
    return "".join(parts)


def _has_cjk_outside_documents(response: str) -> bool:
    return _CJK.search(_outside_documents(response)) is not None


def r1_searcher_format_errors(response: str) -> list[str]:
    """Every stage-2 format rule ``response`` breaks (empty when it follows them all)."""
    errors = []
    if not retrieval_tags_balanced(response):
        errors.append("query/document markers are unbalanced")
    if "Assistant" in response or "assistant" in response:
        errors.append("the response contains 'Assistant'")
    if not think_answer_format_ok(response):
        errors.append("needs no <think>, one </think>, one <answer> and one </answer>")
    answer = extract_r1_searcher_answer(response)
    if "begin_of_query" in answer or "begin_of_documents" in answer:
        errors.append("the answer contains a query or document marker")
    if len(answer.split()) > MAX_ANSWER_WORDS:
        errors.append(f"the answer has more than {MAX_ANSWER_WORDS} words")
    if _has_cjk_outside_documents(response):
        errors.append("CJK characters outside the documents")
    return errors


def _stage2(response: str, golds: Sequence[str]) -> RewardResult:
    f1 = cover_f1_score(extract_r1_searcher_answer(response), golds) if _has_answer_tags(response) else 0.0
    format_ok = not r1_searcher_format_errors(response)
    score = f1 if format_ok else f1 - FORMAT_PENALTY
    return RewardResult(score, {"f1": f1, "format_ok": float(format_ok)})


def r1_searcher_score(response: str, golds: Sequence[str]) -> float:
    """Stage-2 reward: answer F1 (R1-Searcher normalization), minus 2 if any format rule is broken."""
    return _stage2(response, golds).score


def _stage1(response: str, golds: Sequence[str]) -> RewardResult:
    correct = _has_answer_tags(response) and cover_em_score(extract_r1_searcher_answer(response), golds) > 0
    retrieval_ok = retrieval_tags_balanced(response, min_rounds=1)
    format_ok = think_answer_format_ok(response)
    score = (1.0 if correct else -1.0) + 0.5 * retrieval_ok + 0.5 * format_ok
    return RewardResult(
        score,
        {"cover_em": float(correct), "retrieval_ok": float(retrieval_ok), "format_ok": float(format_ok)},
    )


def r1_searcher_stage1_score(response: str, golds: Sequence[str]) -> float:
    """Stage-1 reward: +1/-1 for cover-EM, +0.5 for well-formed retrievals (one or more), +0.5 for format."""
    return _stage1(response, golds).score


def r1_searcher_reward(inp: RewardInput, /) -> RewardResult:
    """R1-Searcher's stage-2 reward on ``inp.response``."""
    return _stage2(inp.response, inp.golden_answers)


def r1_searcher_stage1_reward(inp: RewardInput, /) -> RewardResult:
    """R1-Searcher's stage-1 reward on ``inp.response``."""
    return _stage1(inp.response, inp.golden_answers)


def r1_searcher_format_reward(inp: RewardInput, /) -> RewardResult:
    """1.0 when ``inp.response`` follows every stage-2 format rule, else 0.0 (for ``compose``)."""
    ok = not r1_searcher_format_errors(inp.response)
    return RewardResult(float(ok), {"format_ok": float(ok)})
