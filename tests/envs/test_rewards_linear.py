"""Span finding in the rewards is linear and agrees with the seeds' regexes.

A model stuck repeating a tag produces responses such as 16k ``<answer>`` tags in a row; the seeds' non-greedy
regexes are quadratic on them (30 s for 125 KiB), and the reward runs inside ``env.step``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hopgym.envs.rewards import (
    extract_first_answer,
    extract_last_answer,
    r1_searcher_score,
    r1_searcher_stage1_score,
    research_score,
    search_r1_score,
)
from hopgym.envs.rewards.r1_searcher import _outside_documents

# The seeds' patterns, used here only as the reference the linear scans must agree with.
SEED_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
SEED_DOCUMENTS = re.compile(r"<\|begin_of_documents\|>.*?<\|end_of_documents\|>", re.DOTALL)

FRAGMENTS = [
    "<answer>",
    "</answer>",
    "<answer",
    "answer>",
    "<|begin_of_documents|>",
    "<|end_of_documents|>",
    "<|begin_of_documents|>\n(1)",
    " x ",
    "\n",
    "東",
    "Paris",
]
texts = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_answer_spans_match_the_seed_regex(text: str) -> None:
    spans = SEED_ANSWER.findall(text)
    assert extract_last_answer(text) == (spans[-1].strip() if spans else None)
    first = SEED_ANSWER.search(text)
    assert extract_first_answer(text) == (first.group(1) if first else None)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_document_blocks_removed_as_the_seed_regex(text: str) -> None:
    assert _outside_documents(text) == SEED_DOCUMENTS.sub("", text)


def _cpu_seconds(fn: Callable[[str, list[str]], float], response: str) -> float:
    """The least CPU time of several rounds of 3 calls (the minimum is the least noisy on a busy machine)."""
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(3):
            fn(response, ["x"])
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize(
    ("fn", "tag"),
    [
        (search_r1_score, "<answer>"),
        (search_r1_score, "<answer> x </answer>"),
        (r1_searcher_score, "<|begin_of_documents|>"),
        (r1_searcher_score, "<answer>"),
        (r1_searcher_stage1_score, "<|begin_of_documents|>"),
        (research_score, "<answer>"),
    ],
)
def test_scoring_repeated_tags_is_linear(fn: Callable[[str, list[str]], float], tag: str) -> None:
    # 8x the text must cost well under 8^2 = 64x the time; 20x leaves room for noise and cache effects.
    small, large = tag * 2000, tag * 16000
    fn(large, ["x"])  # warm up
    t_small, t_large = _cpu_seconds(fn, small), _cpu_seconds(fn, large)
    assert t_large <= 20 * t_small + 0.005, (t_small, t_large)


def test_a_125_kib_repeated_answer_tag_response_scores_quickly() -> None:
    response = "<answer>" * 16000  # 125 KiB; 30 s with the seed regex
    start = time.process_time()
    assert search_r1_score(response, ["x"]) == 0.0
    assert r1_searcher_score("<|begin_of_documents|>" * 6000, ["x"]) < 0
    assert time.process_time() - start < 1.0
