"""R1-Searcher rewards against the seed's own code.

Expected values come from running R1-Searcher (commit 631167c) ``train/reward_server_qwen_zero.py``
(``MathRuleProxy.get_reward``, the stage-2 reward, Qwen base prompt ending in ``Assistant: <think>``, EOS
``<|endoftext|>``) and ``train/reward_server_llama_stage1.py`` (stage 1, Llama chat prompt ending in
``<think>``, EOS ``<|eot_id|>``) on each response. The servers take a single golden answer; so do these cases.
"""

from __future__ import annotations

import pytest

from hopgym.envs.rewards import (
    get_reward,
    r1_searcher_format_errors,
    r1_searcher_reward,
    r1_searcher_score,
    r1_searcher_stage1_reward,
    r1_searcher_stage1_score,
)
from hopgym.types import RewardInput

_RETRIEVAL = (
    " I need to find where the Eiffel Tower is. <|begin_of_query|> Eiffel Tower location<|end_of_query|>\n\n"
    "<|begin_of_documents|>\n"
    "(1)Eiffel Tower\nThe Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in "
    "Paris, France.\n"
    "(2)Tokyo Tower\nTokyo Tower is a communications and observation tower in Tokyo, Japan.\n"
    "<|end_of_documents|>\n\n"
)
_SECOND_RETRIEVAL = (
    "Next, the country. <|begin_of_query|> Paris capital country<|end_of_query|>\n\n"
    "<|begin_of_documents|>\n(1)Paris\nParis is the capital and most populous city of France.\n"
    "<|end_of_documents|>\n\n"
)
_NO_HITS = (
    " Let me search. <|begin_of_query|> obscure query<|end_of_query|>\n\n"
    "<|begin_of_documents|>\nNone<|end_of_documents|>\n\n"
)


def _final(answer: str) -> str:
    return f"The documents answer it. </think>\n\n<answer> {answer} </answer>"


# (id, response, golds, stage-2 score, stage-1 score)
R1_SEARCHER_CASES: list[tuple[str, str, list[str], float, float]] = [
    ("one-retrieval-correct", _RETRIEVAL + _final("Paris"), ["Paris"], 1.0, 2.0),
    ("two-retrievals-correct", _RETRIEVAL + _SECOND_RETRIEVAL + _final("France"), ["France"], 1.0, 2.0),
    ("no-retrieval-correct", " I already know this. " + _final("Paris"), ["Paris"], 1.0, 1.5),
    ("partial-f1", _RETRIEVAL + _final("New York"), ["New York City"], 0.8, 0.0),
    ("verbose-covering-answer", _RETRIEVAL + _final("the city of Paris"), ["Paris"], 0.5, 2.0),
    ("wrong-answer", _RETRIEVAL + _final("Tokyo"), ["Paris"], 0.0, 0.0),
    ("no-answer-tags", _RETRIEVAL + "I still do not know. </think>", ["Paris"], -2.0, -0.5),
    ("extra-think-tag", "<think>" + _RETRIEVAL + _final("Paris"), ["Paris"], -1.0, 1.5),
    (
        "mentions-assistant",
        _RETRIEVAL + "As the assistant, I conclude. " + _final("Paris"),
        ["Paris"],
        -1.0,
        2.0,
    ),
    (
        "answer-over-ten-words",
        _RETRIEVAL + _final("it is the city of Paris which is in the north of France"),
        ["Paris"],
        1 / 6 - 2,
        2.0,
    ),
    (
        "answer-exactly-ten-words",
        _RETRIEVAL + _final("one two three four five six seven eight nine Paris"),
        ["Paris"],
        2 / 11,
        2.0,
    ),
    ("cjk-outside-documents", _RETRIEVAL + "答案是巴黎。" + _final("Paris"), ["Paris"], -1.0, 2.0),
    (
        "cjk-inside-documents-only",
        _RETRIEVAL.replace("Paris, France.", "Paris, France (巴黎)."),
        ["Paris"],
        -2.0,
        -0.5,
    ),
    (
        "cjk-inside-documents-with-answer",
        _RETRIEVAL.replace("Paris, France.", "Paris, France (巴黎).") + _final("Paris"),
        ["Paris"],
        1.0,
        2.0,
    ),
    (
        "cut-off-after-query",
        " <|begin_of_query|> Eiffel Tower location<|end_of_query|>",
        ["Paris"],
        -2.0,
        -1.0,
    ),
    ("no-hits-retrieval", _NO_HITS + _final("Paris"), ["Paris"], -1.0, 1.5),
    ("two-answers", _RETRIEVAL + _final("Lyon") + "\n<answer> Paris </answer>", ["Paris"], -1.0, 1.5),
    ("python-true", _RETRIEVAL + _final("True"), ["yes"], 1.0, 2.0),
    ("yes-vs-no", _RETRIEVAL + _final("no"), ["yes"], 0.0, 0.0),
    ("typographic-apostrophe", _RETRIEVAL + _final("O’Neill"), ["O'Neill"], 1.0, 2.0),
    (
        "answer-mentions-documents-marker",
        _RETRIEVAL + "</think>\n\n<answer> Paris begin_of_documents </answer>",
        ["Paris"],
        0.4 - 2,
        2.0,
    ),
    ("empty-response", "", ["Paris"], -2.0, -1.0),
    ("punctuation-only-gold", _RETRIEVAL + _final("Paris"), ["?"], -2.0 + 2.0, 0.0),
    ("word-order", _RETRIEVAL + _final("France, Paris"), ["Paris France"], 1.0, 2.0),
    ("unicode-answer", _RETRIEVAL + _final("São Paulo"), ["São Paulo"], 1.0, 2.0),
]
_IDS = [case[0] for case in R1_SEARCHER_CASES]


@pytest.mark.parametrize(("case_id", "response", "golds", "stage2", "stage1"), R1_SEARCHER_CASES, ids=_IDS)
def test_r1_searcher_matches_seed(
    case_id: str, response: str, golds: list[str], stage2: float, stage1: float
) -> None:
    assert r1_searcher_score(response, golds) == pytest.approx(stage2, abs=1e-12)
    assert r1_searcher_stage1_score(response, golds) == pytest.approx(stage1, abs=1e-12)
    inp = RewardInput(response=response, golden_answers=tuple(golds))
    assert r1_searcher_reward(inp).score == pytest.approx(stage2, abs=1e-12)
    assert r1_searcher_stage1_reward(inp).score == pytest.approx(stage1, abs=1e-12)


def test_best_gold_wins() -> None:
    # The seed servers take one answer; with several, hopgym keeps the best.
    response = _RETRIEVAL + _final("Paris")
    assert r1_searcher_score(response, ["Lyon", "Paris"]) == 1.0
    assert r1_searcher_stage1_score(response, ["Lyon", "Paris"]) == 2.0


def test_format_errors_list_every_broken_rule() -> None:
    assert r1_searcher_format_errors(_RETRIEVAL + _final("Paris")) == []
    # Without <answer> the "answer" is the whole text, which here holds a query marker: five rules broken.
    errors = r1_searcher_format_errors("<think> Assistant: 巴黎 <|begin_of_query|> q")
    assert len(errors) == 5
    assert any("marker" in error and "answer" in error for error in errors)
    assert any("Assistant" in error for error in errors)
    assert any("CJK" in error for error in errors)


def test_components() -> None:
    stage2 = get_reward("r1_searcher")(RewardInput(_RETRIEVAL + _final("New York"), ("New York City",)))
    assert stage2.score == pytest.approx(0.8)
    assert dict(stage2.reward_components) == {"f1": pytest.approx(0.8), "format_ok": 1.0}
    stage1 = get_reward("r1_searcher_stage1")(RewardInput(" I know. " + _final("Paris"), ("Paris",)))
    assert (stage1.score, dict(stage1.reward_components)) == (
        1.5,
        {"cover_em": 1.0, "retrieval_ok": 0.0, "format_ok": 1.0},
    )
