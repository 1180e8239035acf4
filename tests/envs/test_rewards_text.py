"""Text-level metrics against the seed projects' own functions.

Expected values were computed by running, on these exact inputs: Search-R1
``verl/utils/reward_score/qa_em.py`` (``em_check``, ``subem_check``; commit a14dc3a); ReSearch
``src/verl/utils/reward_score/re_search.py`` (``get_f1_score``; commit c820a43); R1-Searcher
``train/reward_server_qwen_zero.py`` (``cover_exact_match_score_1``, maximized over golds; commit 631167c).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hopgym.envs.rewards import (
    cover_em_score,
    cover_f1_score,
    em_score,
    f1_score,
    normalize_answer,
    normalize_cover,
    sub_em_score,
)

# (id, prediction, golds, em, f1, sub_em, cover_em)
TEXT_CASES: list[tuple[str, str, list[str], float, float, float, float]] = [
    ("exact", "Paris", ["Paris"], 1.0, 1.0, 1.0, 1.0),
    ("case-and-punctuation", "paris!", ["Paris"], 1.0, 1.0, 1.0, 1.0),
    ("leading-article", "The Beatles", ["Beatles"], 1.0, 1.0, 1.0, 1.0),
    ("articles-inside", "an apple a day", ["apple day"], 1.0, 1.0, 1.0, 1.0),
    ("second-gold-matches", "NYC", ["New York City", "NYC"], 1.0, 1.0, 1.0, 1.0),
    ("partial-overlap", "New York", ["New York City"], 0.0, 0.8, 0.0, 0.0),
    ("verbose-superset", "the city of New York", ["New York"], 0.0, 2 / 3, 1.0, 1.0),
    ("yes-vs-no", "yes", ["no"], 0.0, 0.0, 0.0, 0.0),
    ("yes-gold-verbose-prediction", "yes, it is", ["yes"], 0.0, 0.0, 1.0, 1.0),
    ("python-true-vs-yes", "True", ["yes"], 0.0, 0.0, 0.0, 1.0),
    ("noanswer-gold", "no answer", ["noanswer"], 0.0, 0.0, 0.0, 0.0),
    ("empty-prediction", "", ["Paris"], 0.0, 0.0, 0.0, 0.0),
    ("punctuation-only-both", "...", ["?!"], 1.0, 0.0, 1.0, 1.0),
    ("punctuation-only-gold", "Paris", ["--"], 0.0, 0.0, 1.0, 0.0),
    ("unicode-umlaut", "Zürich", ["zürich"], 1.0, 1.0, 1.0, 1.0),
    ("accents-not-folded", "Café de Flore", ["cafe de flore"], 0.0, 2 / 3, 0.0, 0.0),
    ("hyphen", "Jean-Paul Sartre", ["Jean Paul Sartre"], 0.0, 0.4, 0.0, 1.0),
    ("typographic-apostrophe", "O’Neill", ["O'Neill"], 0.0, 0.0, 0.0, 1.0),
    ("underscore", "New_York", ["New York"], 0.0, 0.0, 0.0, 1.0),
    ("no-golds", "Paris", [], 0.0, 0.0, 0.0, 0.0),
    ("repeated-token", "paris paris", ["paris"], 0.0, 2 / 3, 1.0, 1.0),
    ("thousands-comma", "1,000", ["1000"], 1.0, 1.0, 1.0, 0.0),
    ("letter-a-is-an-article", "Vitamin A", ["vitamin"], 1.0, 1.0, 1.0, 1.0),
    ("word-order", "Sartre Jean Paul", ["Jean Paul Sartre"], 0.0, 1.0, 0.0, 1.0),
    ("cjk", "北京", ["北京"], 1.0, 1.0, 1.0, 1.0),
    ("whitespace", "  New   York\n", ["new york"], 1.0, 1.0, 1.0, 1.0),
    ("python-false-both", "False", ["False"], 1.0, 1.0, 1.0, 1.0),
    ("no-with-period", "no", ["No."], 1.0, 1.0, 1.0, 1.0),
    ("only-articles", "The", ["a"], 1.0, 0.0, 1.0, 1.0),
]
_IDS = [case[0] for case in TEXT_CASES]


@pytest.mark.parametrize(
    ("case_id", "prediction", "golds", "em", "f1", "sub_em", "cover_em"), TEXT_CASES, ids=_IDS
)
def test_metrics_match_seed_code(
    case_id: str, prediction: str, golds: list[str], em: float, f1: float, sub_em: float, cover_em: float
) -> None:
    assert em_score(prediction, golds) == em
    assert f1_score(prediction, golds) == pytest.approx(f1, abs=1e-12)
    assert sub_em_score(prediction, golds) == sub_em
    assert cover_em_score(prediction, golds) == cover_em


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Eiffel-Tower!", "eiffeltower"),
        ("A tale of an apple", "tale of apple"),
        ("Théâtre", "théâtre"),
        ("O’Neill's", "o’neills"),
        ("", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Eiffel-Tower!", "eiffel tower"),
        ("O’Neill's", "o neill s"),
        ("snake_case", "snake case"),
        ("True", "yes"),
        ("False", "no"),
        ("true", "true"),  # only the exact Python spellings are mapped
        (" True", "true"),
    ],
)
def test_normalize_cover(text: str, expected: str) -> None:
    assert normalize_cover(text) == expected


def test_cover_f1_uses_r1_searcher_normalization() -> None:
    # SQuAD-style deletion glues "o'neill" into one token; R1-Searcher's spaces keep two.
    assert f1_score("O’Neill", ["O'Neill"]) == 0.0
    assert cover_f1_score("O’Neill", ["O'Neill"]) == 1.0
    assert cover_f1_score("True", ["yes"]) == 1.0
    assert cover_f1_score("no", ["yes"]) == 0.0


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@given(_text)
def test_normalizations_are_idempotent(text: str) -> None:
    assert normalize_answer(normalize_answer(text)) == normalize_answer(text)
    once = normalize_cover(text)
    assert normalize_cover(once) == once


@given(_text, st.lists(_text, max_size=3))
def test_metric_relations(prediction: str, golds: list[str]) -> None:
    em, f1, sub = em_score(prediction, golds), f1_score(prediction, golds), sub_em_score(prediction, golds)
    assert 0.0 <= f1 <= 1.0
    assert em <= sub
    if em and normalize_answer(prediction):
        assert f1 == 1.0
