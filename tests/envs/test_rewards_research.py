r"""ReSearch reward against the seed's own code.

Expected values come from running ReSearch ``src/verl/utils/reward_score/re_search.py`` (``compute_score``,
commit c820a43, the last version before the repository became ReCall) on a Qwen chat prompt ending in
``<|im_start|>assistant\n`` followed by each response, plus the ``<|im_end|>`` EOS token when the generation
finished, as its reward manager decodes them.
"""

from __future__ import annotations

import pytest

from hopgym.envs.rewards import (
    extract_boxed,
    get_reward,
    research_format_error,
    research_format_reward,
    research_reward,
    research_score,
)
from hopgym.types import RewardInput

_SEARCH = (
    "<think> I should look up where the Eiffel Tower stands. </think>\n"
    "<search> Eiffel Tower location </search>\n"
    "<result>\n"
    '"Eiffel Tower"\nThe Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in '
    "Paris, France.\n\n"
    '"Tokyo Tower"\nTokyo Tower is a communications and observation tower in Tokyo, Japan.\n'
    "</result>\n"
)
_SECOND_SEARCH = (
    "<think> Which country has Paris as its capital? </think>\n"
    "<search> Paris capital country </search>\n"
    "<result>\n"
    '"Paris"\nParis is the capital and most populous city of France.\n'
    "</result>\n"
)


def _answer(text: str) -> str:
    return f"<think> I have enough information. </think>\n<answer> The final answer is {text} </answer>"


# (id, response, golds, finished, expected score)
RESEARCH_CASES: list[tuple[str, str, list[str], bool, float]] = [
    ("one-search-correct", _SEARCH + _answer("\\boxed{Paris}"), ["Paris"], True, 1.0),
    ("two-searches-correct", _SEARCH + _SECOND_SEARCH + _answer("\\boxed{France}"), ["France"], True, 1.0),
    ("partial-f1", _SEARCH + _answer("\\boxed{New York}"), ["New York City"], True, 0.8),
    ("wrong-answer-good-format", _SEARCH + _answer("\\boxed{Tokyo}"), ["Paris"], True, 0.1),
    ("cut-off", _SEARCH + _answer("\\boxed{Paris}"), ["Paris"], False, 0.0),
    ("no-think", "<answer> \\boxed{Paris} </answer>", ["Paris"], True, 0.0),
    ("unbalanced-think", "<think> a </think> <think> b\n" + _answer("\\boxed{Paris}"), ["Paris"], True, 0.0),
    ("two-answers", _answer("\\boxed{Lyon}") + "\n<answer> \\boxed{Paris} </answer>", ["Paris"], True, 0.0),
    ("no-boxed", _SEARCH + _answer("Paris"), ["Paris"], True, 0.0),
    (
        "search-without-result",
        "<think> look it up </think>\n<search> Eiffel Tower </search>\n" + _answer("\\boxed{Paris}"),
        ["Paris"],
        True,
        0.0,
    ),
    (
        "result-inside-search",
        "<think> t </think>\n<search> q <result> r </result> </search>\n" + _answer("\\boxed{Paris}"),
        ["Paris"],
        True,
        0.0,
    ),
    ("boxed-space-form-wins", _SEARCH + _answer("\\boxed{London} or \\boxed Paris$"), ["Paris"], True, 1.0),
    ("nested-braces", _SEARCH + _answer("\\boxed{\\text{Paris}}"), ["Paris"], True, 0.1),
    ("unbalanced-braces", _SEARCH + _answer("\\boxed{{Paris}"), ["Paris"], True, 0.0),
    ("last-boxed-wins", _SEARCH + _answer("\\boxed{London}, no, \\boxed{Paris}"), ["Paris"], True, 1.0),
    ("yes-vs-no", "<think> Not both. </think>\n<answer> \\boxed{no} </answer>", ["yes"], True, 0.1),
    ("second-gold", _answer("\\boxed{Big Apple}"), ["New York City", "Big Apple"], True, 1.0),
    ("unicode", _SEARCH + _answer("\\boxed{München}"), ["Munich", "München"], True, 1.0),
    ("punctuation-only-answer", _SEARCH + _answer("\\boxed{?}"), ["Paris"], True, 0.1),
    ("empty-response", "", ["Paris"], True, 0.0),
    ("last-boxed-without-brace", _answer("\\boxed{Paris} \\boxedx"), ["Paris"], True, 0.0),
    ("fbox-only", _answer("\\fbox{Paris}"), ["Paris"], True, 0.0),
    ("empty-response-cut-off", "", ["Paris"], False, 0.0),
    ("articles", _SEARCH + _answer("\\boxed{the Eiffel Tower}"), ["Eiffel Tower"], True, 1.0),
]
_IDS = [case[0] for case in RESEARCH_CASES]


@pytest.mark.parametrize(("case_id", "response", "golds", "finished", "expected"), RESEARCH_CASES, ids=_IDS)
def test_research_matches_seed(
    case_id: str, response: str, golds: list[str], finished: bool, expected: float
) -> None:
    assert research_score(response, golds, finished=finished) == pytest.approx(expected, abs=1e-12)
    inp = RewardInput(response=response, golden_answers=tuple(golds), finished=finished)
    assert research_reward(inp).score == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{Paris}", "Paris"),
        ("x \\boxed{a} y \\boxed{b{c}d} z", "b{c}d"),
        ("\\boxed{a} and \\boxed b$c", "b"),
        ("\\boxed{a", None),
        ("no box", None),
        ("\\fbox{a}", None),
    ],
)
def test_extract_boxed(text: str, expected: str | None) -> None:
    assert extract_boxed(text) == expected


def test_format_errors_name_the_rule() -> None:
    assert research_format_error(_SEARCH + _answer("\\boxed{Paris}")) is None
    assert research_format_error("<answer> \\boxed{x} </answer>") == "no <think> block"
    error = research_format_error("<think> t </think><search> q </search>" + _answer("\\boxed{x}"))
    assert error is not None and "<search>" in error


def test_components() -> None:
    good = research_reward(RewardInput(_SEARCH + _answer("\\boxed{Tokyo}"), ("Paris",)))
    assert (good.score, dict(good.reward_components)) == (0.1, {"format_ok": 1.0, "finished": 1.0, "f1": 0.0})
    cut = get_reward("research")(RewardInput(_SEARCH + _answer("\\boxed{Paris}"), ("Paris",), finished=False))
    assert (cut.score, dict(cut.reward_components)) == (0.0, {"format_ok": 1.0, "finished": 0.0, "f1": 0.0})
    assert research_format_reward(RewardInput("<answer> \\boxed{x} </answer>", ("x",))).score == 0.0
