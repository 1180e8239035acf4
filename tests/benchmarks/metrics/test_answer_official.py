"""hopgym's answer metrics against each official evaluation script's rule, case by case.

The scripts (read at these commits; line numbers refer to them):

- HotpotQA ``hotpot_evaluate_v1.py`` (hotpotqa/hotpot fa3a363): ``normalize_answer`` l.8-23 (lowercase,
  delete ``string.punctuation``, replace a/an/the by a space, collapse whitespace); ``f1_score`` l.26-45
  (l.33-36: a yes/no/noanswer side that differs from the other scores 0); ``exact_match_score`` l.48-49.
  One gold per question; hopgym takes the max over the golden answers, which is the same for one.
- MuSiQue ``metrics/answer.py`` (StonyBrookNLP/musique 8b8d8ce): ``compute_exact`` l.38-39 (SQuAD
  normalization); ``compute_f1`` l.42-55 (l.47-49: if either side has no tokens, 1 when both have none, else
  0; no yes/no rule); ``metric_max_over_ground_truths`` l.58-63 over ``[answer] + answer_aliases``
  (``evaluate_v1.0.py`` l.44-46).
- FlashRAG ``flashrag/evaluator/metrics.py`` (RUC-NLPIR/FlashRAG ddaeb3c, the metrics ReSearch reports):
  ``F1_Score.token_level_scores`` l.56-82 (the HotpotQA rule per gold, max over golds; a str gold is one
  gold, l.58-59); ``ExactMatch.calculate_em`` l.146-164; ``Sub_ExactMatch.calculate_sub_em`` l.187-205
  (normalized gold ``in`` normalized prediction, l.202); ``utils.normalize_answer`` l.5-19.
- R1-Searcher ``evaluation/metric_calc_rule.py`` (RUCAIBox/R1-Searcher 5123272): ``normalize_answer``
  l.15-32 (``_`` -> space, lowercase, punctuation and ‘’´` -> space, articles, whitespace); ``bool_mapping``
  l.35-41 (the exact strings True/False -> yes/no, before normalizing); ``f1_score`` l.44-70;
  ``exact_match_score`` l.73-76; ``cover_exact_match_score_1`` l.79-88 (tokens by ``split(" ")``, every gold
  token among the prediction's); max over golds l.105-127.

The reference functions below restate those rules independently (regex pipeline, explicit loops) so that a
change in hopgym's implementation is caught; the case table's expected numbers were worked out by hand from
the rules above. Real-data cases take golden answers from the shared samples and perturb them.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hopgym.benchmarks.metrics import (
    ANSWER_METRICS,
    OFFICIAL_RULES,
    cover_em,
    exact_match,
    f1,
    musique_f1,
    official_scores,
    r1_searcher_em,
    r1_searcher_f1,
    score_prediction,
    sub_em,
)

# --- the scripts' rules, restated ---------------------------------------------------------------------------

_PUNCT = re.compile("[" + re.escape(string.punctuation) + "]")
_R1_PUNCT = re.compile("[" + re.escape(string.punctuation + "‘’´`") + "]")
_ARTICLE = re.compile(r"\b(a|an|the)\b")


def ref_squad_norm(text: str) -> str:
    return " ".join(_ARTICLE.sub(" ", _PUNCT.sub("", text.lower())).split())


def ref_r1_norm(text: str) -> str:
    text = {"True": "yes", "False": "no"}.get(text, text)
    return " ".join(_ARTICLE.sub(" ", _R1_PUNCT.sub(" ", text.replace("_", " ").lower())).split())


def _ref_token_f1(pred: list[str], gold: list[str]) -> float:
    common = 0
    remaining = list(gold)
    for token in pred:
        if token in remaining:
            remaining.remove(token)
            common += 1
    if common == 0:
        return 0.0
    precision = 1.0 * common / len(pred)
    recall = 1.0 * common / len(gold)
    return (2 * precision * recall) / (precision + recall)


def _ref_hotpot_f1_one(pred_norm: str, gold_norm: str) -> float:
    special = ("yes", "no", "noanswer")
    if (pred_norm in special or gold_norm in special) and pred_norm != gold_norm:
        return 0.0
    return _ref_token_f1(pred_norm.split(), gold_norm.split())


def ref_hotpot_em(pred: str, golds: Sequence[str]) -> float:
    return max([float(ref_squad_norm(pred) == ref_squad_norm(g)) for g in golds], default=0.0)


def ref_hotpot_f1(pred: str, golds: Sequence[str]) -> float:
    return max([_ref_hotpot_f1_one(ref_squad_norm(pred), ref_squad_norm(g)) for g in golds], default=0.0)


def ref_musique_f1(pred: str, golds: Sequence[str]) -> float:
    scores = []
    for gold in golds:
        p, g = ref_squad_norm(pred).split(), ref_squad_norm(gold).split()
        scores.append(float(p == g) if not p or not g else _ref_token_f1(p, g))
    return max(scores, default=0.0)


def ref_flashrag_sub_em(pred: str, golds: Sequence[str]) -> float:
    return max([float(ref_squad_norm(g) in ref_squad_norm(pred)) for g in golds], default=0.0)


def ref_r1_em(pred: str, golds: Sequence[str]) -> float:
    return max([float(ref_r1_norm(pred) == ref_r1_norm(g)) for g in golds], default=0.0)


def ref_r1_f1(pred: str, golds: Sequence[str]) -> float:
    return max([_ref_hotpot_f1_one(ref_r1_norm(pred), ref_r1_norm(g)) for g in golds], default=0.0)


def ref_r1_cover_em(pred: str, golds: Sequence[str]) -> float:
    pred_tokens = ref_r1_norm(pred).split(" ")
    return max([float(all(t in pred_tokens for t in ref_r1_norm(g).split(" "))) for g in golds], default=0.0)


Metric = Callable[[str, Sequence[str]], float]
# (rule, metric name) -> the script's rule; every entry of OFFICIAL_RULES has one.
REFERENCE: dict[tuple[str, str], Metric] = {
    ("hotpotqa", "em"): ref_hotpot_em,
    ("hotpotqa", "f1"): ref_hotpot_f1,
    ("musique", "em"): ref_hotpot_em,
    ("musique", "f1"): ref_musique_f1,
    ("flashrag", "em"): ref_hotpot_em,
    ("flashrag", "f1"): ref_hotpot_f1,
    ("flashrag", "sub_em"): ref_flashrag_sub_em,
    ("r1_searcher", "em"): ref_r1_em,
    ("r1_searcher", "f1"): ref_r1_f1,
    ("r1_searcher", "cover_em"): ref_r1_cover_em,
}


def test_every_official_metric_has_a_reference() -> None:
    assert {(rule, name) for rule, metrics in OFFICIAL_RULES.items() for name in metrics} == set(REFERENCE)


# --- hand-worked cases where the scripts differ ---------------------------------------------------------------

# (prediction, golds, rule, metric, expected, why)
CASES: list[tuple[str, list[str], str, str, float, str]] = [
    # HotpotQA l.33-36: the yes/no rule zeroes a verbose "yes" against gold "yes"; MuSiQue l.42-55 has no rule.
    ("yes it is", ["yes"], "hotpotqa", "f1", 0.0, "gold is yes and differs"),
    ("yes it is", ["yes"], "musique", "f1", 0.5, "P=1/3 R=1 -> 0.5"),
    ("yes", ["no"], "hotpotqa", "f1", 0.0, "special words differ"),
    ("no", ["No."], "hotpotqa", "f1", 1.0, "equal after normalization"),
    # MuSiQue l.47-49: both sides empty after normalization agree (1); HotpotQA returns ZERO_METRIC (l.41-42).
    ("The", ["a"], "musique", "f1", 1.0, "both normalize to no tokens"),
    ("The", ["a"], "hotpotqa", "f1", 0.0, "num_same == 0"),
    ("The", ["a"], "hotpotqa", "em", 1.0, "both normalize to ''"),
    ("Paris", ["--"], "musique", "f1", 0.0, "gold has no tokens, prediction has"),
    # MuSiQue max over answer + aliases (evaluate_v1.0.py l.44-46).
    (
        "lead",
        ["for Best Performance by a Leading Actress", "leading role", "lead"],
        "musique",
        "em",
        1.0,
        "alias",
    ),
    ("leading actress", ["leading role", "leading actress"], "musique", "f1", 1.0, "second alias"),
    # HotpotQA F1 arithmetic: "new york" vs "new york city": P=1, R=2/3 -> 0.8.
    ("New York", ["New York City"], "hotpotqa", "f1", 0.8, "token overlap"),
    ("New York", ["New York City"], "hotpotqa", "em", 0.0, "not equal"),
    # FlashRAG l.202: substring of normalized strings, character level ("york c" is inside "new york city").
    ("He was born in New York City.", ["New York City"], "flashrag", "sub_em", 1.0, "gold inside"),
    ("New York", ["New York City"], "flashrag", "sub_em", 0.0, "gold longer"),
    ("Paris", ["--"], "flashrag", "sub_em", 1.0, "empty gold is in everything"),
    ("1,000", ["1000"], "flashrag", "em", 1.0, "comma deleted"),
    # R1-Searcher l.22-24: punctuation becomes a space, so "1,000" -> "1 000" != "1000"; "U.S." -> "u s".
    ("1,000", ["1000"], "r1_searcher", "em", 0.0, "comma becomes a space"),
    ("U.S.", ["US"], "r1_searcher", "em", 0.0, "u s vs us"),
    ("U.S.", ["US"], "hotpotqa", "em", 1.0, "us vs us"),
    # R1-Searcher l.35-41: bool_mapping applies to the raw string only.
    ("True", ["yes"], "r1_searcher", "em", 1.0, "True -> yes"),
    ("true", ["yes"], "r1_searcher", "em", 0.0, "lowercase true is not mapped"),
    ("True", ["yes"], "hotpotqa", "em", 0.0, "no bool mapping"),
    ("New_York", ["new york"], "r1_searcher", "f1", 1.0, "underscore -> space"),
    ("O’Neill", ["O'Neill"], "r1_searcher", "em", 1.0, "both -> o neill"),
    ("O’Neill", ["O'Neill"], "hotpotqa", "em", 0.0, "’ is not ASCII punctuation"),
    # R1-Searcher l.79-88: cover ignores order and adjacency, tokens are whole words.
    ("Sartre, Jean-Paul", ["Jean Paul Sartre"], "r1_searcher", "cover_em", 1.0, "all tokens present"),
    ("New Yorker", ["New York"], "r1_searcher", "cover_em", 0.0, "york not a token"),
    ("the city of new york", ["New York", "NYC"], "r1_searcher", "cover_em", 1.0, "first gold covered"),
    ("yes it is", ["yes"], "r1_searcher", "f1", 0.0, "yes/no rule kept, l.50-59"),
    ("yes it is", ["yes"], "r1_searcher", "cover_em", 1.0, "token yes present"),
    # No golden answers: the scripts would fail on max([]); hopgym scores 0.
    ("Paris", [], "hotpotqa", "f1", 0.0, "no golds"),
    ("Paris", [], "musique", "f1", 0.0, "no golds"),
]


@pytest.mark.parametrize(("prediction", "golds", "rule", "metric", "expected", "why"), CASES)
def test_hand_worked_case(
    prediction: str, golds: list[str], rule: str, metric: str, expected: float, why: str
) -> None:
    got = official_scores(rule, prediction, golds)[metric]
    assert got == pytest.approx(expected, abs=1e-12), why
    assert got == REFERENCE[(rule, metric)](prediction, golds), why


# --- real golden answers, perturbed predictions -----------------------------------------------------------------


def _perturbations(gold: str) -> list[str]:
    words = gold.split()
    return [
        gold,
        gold.upper(),
        f"The {gold}.",
        f"{gold}, I think",
        f"It is {gold} (according to the passage)",
        " ".join(words[:-1]) if len(words) > 1 else gold[: max(1, len(gold) // 2)],
        " ".join(reversed(words)),
        gold.replace(" ", "_"),
        gold.replace("'", "’"),
        gold.replace("-", " "),
        "yes",
        "no",
        "True",
        "",
        "unknown",
    ]


def _real_gold_lists(shared_data: Callable[..., Path]) -> list[list[str]]:
    per_source: dict[str, int] = {}
    golds: list[list[str]] = []
    with shared_data("mixed", "seven_datasets_test.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            source = row["data_source"]
            if per_source.get(source, 0) < 12:
                per_source[source] = per_source.get(source, 0) + 1
                golds.append(list(row["golden_answers"]))
    with shared_data("musique", "format_sample.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            golds.append([row["answer"], *row["answer_aliases"]])
    return golds


def test_real_golds_perturbed_predictions_match_every_script(shared_data: Callable[..., Path]) -> None:
    gold_lists = _real_gold_lists(shared_data)
    assert len(gold_lists) >= 7 * 12
    checked = 0
    for golds in gold_lists:
        for gold in golds[:3]:
            for prediction in _perturbations(gold):
                for (rule, name), reference in REFERENCE.items():
                    got = OFFICIAL_RULES[rule][name](prediction, golds)
                    assert got == reference(prediction, golds), (rule, name, prediction, golds)
                    checked += 1
    assert checked > 10_000


# Pieces rather than characters, so that articles, yes/no and True/False come up often.
_TEXT = st.lists(
    st.sampled_from([*"ab yesnoThe_,.'’-Ü1", "the ", " a ", "yes", "no", "True", "an "]), max_size=8
).map("".join)


@settings(max_examples=300, deadline=None)
@given(prediction=_TEXT, golds=st.lists(_TEXT, max_size=3))
def test_random_text_matches_every_script(prediction: str, golds: list[str]) -> None:
    for (rule, name), reference in REFERENCE.items():
        assert OFFICIAL_RULES[rule][name](prediction, golds) == reference(prediction, golds), (rule, name)


# --- the reporting face ------------------------------------------------------------------------------------------


def test_score_prediction_has_the_four_metrics() -> None:
    scores = score_prediction("the city of New York", ["New York", "NYC"])
    assert tuple(scores) == ANSWER_METRICS
    assert scores == {"em": 0.0, "f1": 2 / 3, "sub_em": 1.0, "cover_em": 1.0}
    assert scores["em"] == exact_match("the city of New York", ["New York", "NYC"])
    assert scores["f1"] == f1("the city of New York", ["New York", "NYC"])
    assert scores["sub_em"] == sub_em("the city of New York", ["New York", "NYC"])
    assert scores["cover_em"] == cover_em("the city of New York", ["New York", "NYC"])


def test_no_prediction_scores_zero() -> None:
    assert score_prediction(None, ["Paris"]) == dict.fromkeys(ANSWER_METRICS, 0.0)
    assert official_scores("musique", None, ["Paris"]) == {"em": 0.0, "f1": 0.0}


def test_a_string_gold_is_one_answer_not_its_characters() -> None:
    # Iterated as characters, "Paris" would contain the gold "a" and "p" would cover-match.
    assert exact_match("p", "Paris") == 0.0
    assert sub_em("a map", "Paris") == 0.0
    assert cover_em("s", "Paris") == 0.0
    assert f1("Paris", "Paris") == 1.0
    assert musique_f1("Paris", "Paris") == 1.0
    assert r1_searcher_em("paris", "Paris") == 1.0
    assert r1_searcher_f1("paris", "Paris") == 1.0


def test_unknown_rule_names_the_known_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown metric rule 'squad'.*hotpotqa, musique, flashrag, r1_searcher"
    ):
        official_scores("squad", "a", ["a"])
