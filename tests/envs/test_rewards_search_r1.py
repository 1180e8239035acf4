"""Search-R1 rewards against the seed's own code.

Expected values come from running Search-R1 ``verl/utils/reward_score/qa_em.py`` (``compute_score_em`` and
``compute_score_subem``, commit a14dc3a) on Search-R1's base prompt followed by each response, as its
RewardManager does.
"""

from __future__ import annotations

import pytest

from hopgym.envs.rewards import (
    extract_last_answer,
    get_reward,
    search_r1_reward,
    search_r1_score,
    search_r1_sub_reward,
)
from hopgym.types import RewardInput

_SEARCH_TURN = (
    "<think> I need to find which city the Eiffel Tower is in. </think>\n"
    "<search> Eiffel Tower location </search>\n\n"
    '<information>Doc 1(Title: "Eiffel Tower") The Eiffel Tower is a wrought-iron lattice tower on the '
    "Champ de Mars in Paris, France.\n"
    'Doc 2(Title: "Tokyo Tower") Tokyo Tower is a communications and observation tower in Tokyo, Japan.\n'
    "</information>\n\n"
)
_SECOND_SEARCH_TURN = (
    "<think> Now I need the country whose capital is Paris. </think>\n"
    "<search> Paris capital of which country </search>\n\n"
    '<information>Doc 1(Title: "Paris") Paris is the capital and most populous city of France.\n'
    "</information>\n\n"
)

# (id, response, golds, em reward, sub-em reward)
SEARCH_R1_CASES: list[tuple[str, str, list[str], float, float]] = [
    (
        "one-search-correct",
        _SEARCH_TURN + "<think> The documents say Paris. </think>\n<answer> Paris </answer>",
        ["Paris"],
        1.0,
        1.0,
    ),
    (
        "two-searches-correct",
        _SEARCH_TURN
        + _SECOND_SEARCH_TURN
        + "<think> So the country is France. </think>\n<answer> France </answer>",
        ["France", "French Republic"],
        1.0,
        1.0,
    ),
    ("wrong-answer", _SEARCH_TURN + "<answer> Tokyo </answer>", ["Paris"], 0.0, 0.0),
    ("no-answer-tag", _SEARCH_TURN + "<think> I am not sure. </think>", ["Paris"], 0.0, 0.0),
    ("several-answers-last-correct", "<answer> Lyon </answer> <answer> Paris </answer>", ["Paris"], 1.0, 1.0),
    ("several-answers-last-wrong", "<answer> Paris </answer> <answer> Lyon </answer>", ["Paris"], 0.0, 0.0),
    ("articles-and-punctuation", "<answer> The Eiffel Tower. </answer>", ["Eiffel Tower"], 1.0, 1.0),
    ("cut-off-inside-answer", _SEARCH_TURN + "<answer> Par", ["Paris"], 0.0, 0.0),
    ("empty-response", "", ["Paris"], 0.0, 0.0),
    ("nested-open-tags", "<answer> London <answer> Paris </answer>", ["Paris"], 0.0, 1.0),
    ("yes", "<think> Both are American. </think>\n<answer> yes </answer>", ["yes"], 1.0, 1.0),
    ("yes-vs-no", "<answer> no </answer>", ["yes"], 0.0, 0.0),
    ("unicode", "<answer> São Paulo </answer>", ["Sao Paulo", "São Paulo"], 1.0, 1.0),
    ("empty-answer", "<answer></answer>", ["Paris"], 0.0, 0.0),
    ("punctuation-only-answer", "<answer> ?! </answer>", ["Paris"], 0.0, 0.0),
    ("multiline-answer", "<answer>\nParis\n</answer>", ["Paris"], 1.0, 1.0),
    ("verbose-answer", "<answer> It is Paris, France </answer>", ["Paris"], 0.0, 1.0),
    (
        "answer-inside-think-then-final",
        "<think> maybe <answer> Rome </answer>? no. </think>\n<answer> Paris </answer>",
        ["Paris"],
        1.0,
        1.0,
    ),
    ("close-before-open", "</answer> Paris <answer>", ["Paris"], 0.0, 0.0),
    ("second-gold", "<answer> NYC </answer>", ["New York City", "NYC"], 1.0, 1.0),
]
_IDS = [case[0] for case in SEARCH_R1_CASES]


@pytest.mark.parametrize(("case_id", "response", "golds", "em", "sub_em"), SEARCH_R1_CASES, ids=_IDS)
def test_search_r1_matches_seed(
    case_id: str, response: str, golds: list[str], em: float, sub_em: float
) -> None:
    assert search_r1_score(response, golds) == em
    assert search_r1_score(response, golds, sub=True) == sub_em
    inp = RewardInput(response=response, golden_answers=tuple(golds))
    assert search_r1_reward(inp).score == em
    assert search_r1_sub_reward(inp).score == sub_em


def test_no_answer_scores_zero_even_when_gold_is_the_prompt_example() -> None:
    # Deliberate difference: the seed scores prompt + response, so with no answer span it compares the
    # prompt's example "<answer> Beijing </answer>" and would pay 1.0 here. hopgym sees the response only.
    assert search_r1_score("<think> no idea </think>", ["Beijing"]) == 0.0


def test_extract_last_answer() -> None:
    assert extract_last_answer("<answer> a </answer> x <answer>\n b \n</answer>") == "b"
    assert extract_last_answer("<answer> a <answer> b </answer>") == "a <answer> b"
    assert extract_last_answer("<answer> unfinished") is None


def test_components_and_registry_names() -> None:
    inp = RewardInput(response=_SEARCH_TURN + "<answer> Paris, France </answer>", golden_answers=("Paris",))
    em = get_reward("search_r1")(inp)
    sub = get_reward("search_r1_sub")(inp)
    assert (em.score, dict(em.reward_components)) == (0.0, {"has_answer": 1.0, "em": 0.0})
    assert (sub.score, dict(sub.reward_components)) == (1.0, {"has_answer": 1.0, "sub_em": 1.0})
    missing = get_reward("search_r1")(RewardInput(response="<think> hmm </think>", golden_answers=("Paris",)))
    assert dict(missing.reward_components) == {"has_answer": 0.0, "em": 0.0}


def test_reward_ignores_prediction_field() -> None:
    # The protocol rewards read the whole response, as the seed does, not the env's extracted prediction.
    inp = RewardInput(response="<answer> Lyon </answer>", golden_answers=("Paris",), prediction="Paris")
    assert search_r1_reward(inp).score == 0.0
