"""Answer metrics of the QA benchmarks: a prediction against its golden answers (the best-matching one wins).

The four numbers ``hopgym eval`` reports are the functions of :mod:`hopgym.envs.rewards.qa` (the rewards and the
benchmark must never disagree, so there is one implementation):

- ``exact_match``: SQuAD normalization (lowercase, delete ASCII punctuation, drop a/an/the, collapse
  whitespace), then string equality. HotpotQA's ``exact_match_score``, FlashRAG's ``ExactMatch`` and MuSiQue's
  ``compute_exact`` are this rule.
- ``f1``: token-multiset F1 of the normalized strings, 0 when either side normalizes to yes/no/noanswer and
  they differ. HotpotQA's ``f1_score`` and FlashRAG's ``F1_Score`` (what ReSearch reports).
- ``sub_em``: some normalized golden answer is a substring of the normalized prediction (FlashRAG's
  ``Sub_ExactMatch``, reported as "acc").
- ``cover_em``: R1-Searcher's ``cover_exact_match_score_1``: its own normalization (``True``/``False`` ->
  yes/no, ``_`` and punctuation become spaces), then every space-separated token of some golden answer
  occurs among the prediction's tokens (order and adjacency ignored).

The scripts that differ in a detail have their own functions, so a table can quote a paper's exact number:
``musique_f1`` (no yes/no rule; an empty side scores 1 only against another empty side) and
``r1_searcher_em`` / ``r1_searcher_f1`` (R1-Searcher's normalization under EM and F1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from hopgym.envs.rewards.normalize import normalize_answer, normalize_cover
from hopgym.envs.rewards.qa import cover_em_score, cover_f1_score, em_score, f1_score, sub_em_score

__all__ = [
    "ANSWER_METRICS",
    "OFFICIAL_RULES",
    "Golds",
    "cover_em",
    "exact_match",
    "f1",
    "musique_f1",
    "normalize_answer",
    "normalize_cover",
    "official_scores",
    "r1_searcher_em",
    "r1_searcher_f1",
    "score_prediction",
    "sub_em",
]

# A single golden answer may be given as a string (FlashRAG accepts that too); it is never iterated as chars.
Golds = Sequence[str] | str

ANSWER_METRICS = ("em", "f1", "sub_em", "cover_em")


def _golds(golds: Golds) -> Sequence[str]:
    return [golds] if isinstance(golds, str) else golds


def exact_match(prediction: str, golds: Golds) -> float:
    """1.0 when the SQuAD-normalized prediction equals some SQuAD-normalized golden answer, else 0.0."""
    return em_score(prediction, _golds(golds))


def f1(prediction: str, golds: Golds) -> float:
    """Best token F1 over golden answers, HotpotQA's rule (yes/no/noanswer mismatches score 0)."""
    return f1_score(prediction, _golds(golds))


def sub_em(prediction: str, golds: Golds) -> float:
    """1.0 when some normalized golden answer is a substring of the normalized prediction (FlashRAG)."""
    return sub_em_score(prediction, _golds(golds))


def cover_em(prediction: str, golds: Golds) -> float:
    """1.0 when every token of some golden answer is among the prediction's tokens (R1-Searcher)."""
    return cover_em_score(prediction, _golds(golds))


def r1_searcher_em(prediction: str, golds: Golds) -> float:
    """R1-Searcher's ``exact_match_score``: equality after its normalization (punctuation becomes space)."""
    normalized = normalize_cover(prediction)
    return 1.0 if any(normalize_cover(gold) == normalized for gold in _golds(golds)) else 0.0


def r1_searcher_f1(prediction: str, golds: Golds) -> float:
    """R1-Searcher's ``f1_score``: HotpotQA's F1 rule over R1-Searcher's normalization."""
    return cover_f1_score(prediction, _golds(golds))


def _musique_f1_one(prediction: str, gold: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not prediction_tokens or not gold_tokens:
        # An answer that normalizes to nothing matches only another such answer.
        return float(prediction_tokens == gold_tokens)
    num_same = sum((Counter(prediction_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def musique_f1(prediction: str, golds: Golds) -> float:
    """MuSiQue's answer F1 (``compute_f1``, max over answer and aliases): SQuAD v2's rule, no yes/no rule."""
    return max((_musique_f1_one(prediction, gold) for gold in _golds(golds)), default=0.0)


def score_prediction(prediction: str | None, golds: Golds) -> dict[str, float]:
    """``{"em", "f1", "sub_em", "cover_em"}`` of one prediction; no prediction (None) scores 0 on all."""
    if prediction is None:
        return dict.fromkeys(ANSWER_METRICS, 0.0)
    answers = _golds(golds)
    return {
        "em": em_score(prediction, answers),
        "f1": f1_score(prediction, answers),
        "sub_em": sub_em_score(prediction, answers),
        "cover_em": cover_em_score(prediction, answers),
    }


_Metric = Callable[[str, Golds], float]

# Each official evaluation script's answer metrics, by the names that script prints.
OFFICIAL_RULES: Mapping[str, Mapping[str, _Metric]] = {
    "hotpotqa": {"em": exact_match, "f1": f1},
    "musique": {"em": exact_match, "f1": musique_f1},
    "flashrag": {"em": exact_match, "f1": f1, "sub_em": sub_em},
    "r1_searcher": {"em": r1_searcher_em, "cover_em": cover_em, "f1": r1_searcher_f1},
}


def official_scores(rule: str, prediction: str | None, golds: Golds) -> dict[str, float]:
    """The metrics of one official script (a key of ``OFFICIAL_RULES``) for one prediction."""
    try:
        metrics = OFFICIAL_RULES[rule]
    except KeyError:
        known = ", ".join(OFFICIAL_RULES)
        raise ValueError(f"unknown metric rule {rule!r}: use one of {known}") from None
    if prediction is None:
        return dict.fromkeys(metrics, 0.0)
    return {name: metric(prediction, golds) for name, metric in metrics.items()}
