"""Text-level answer metrics: a prediction string against a list of golden answers (best match wins)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from .normalize import normalize_answer, normalize_cover

__all__ = ["cover_em_score", "cover_f1_score", "em_score", "f1_score", "sub_em_score", "token_f1"]

# Token F1 cannot tell a wrong yes/no answer from a right one ("no" vs "yes" share nothing, but "yes it is" vs
# "no it is" would share tokens), so the HotpotQA metric zeroes any mismatch involving these words.
_SPECIAL_ANSWERS = frozenset({"yes", "no", "noanswer"})


def em_score(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalized prediction equals some normalized golden answer."""
    normalized = normalize_answer(prediction)
    for gold in golds:  # a loop, not any(<generator>): this runs at the end of every episode
        if normalize_answer(gold) == normalized:
            return 1.0
    return 0.0


def sub_em_score(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when some normalized golden answer is a substring of the normalized prediction."""
    normalized = normalize_answer(prediction)
    return 1.0 if any(normalize_answer(gold) in normalized for gold in golds) else 0.0


def token_f1(normalized_prediction: str, normalized_gold: str) -> float:
    """Multiset token F1 of two already-normalized strings, with the yes/no/noanswer rule."""
    if normalized_prediction != normalized_gold and (
        normalized_prediction in _SPECIAL_ANSWERS or normalized_gold in _SPECIAL_ANSWERS
    ):
        return 0.0
    prediction_tokens = normalized_prediction.split()
    gold_tokens = normalized_gold.split()
    num_same = sum((Counter(prediction_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    # Same arithmetic as the seed projects, so scores agree to the last bit.
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def _best_f1(prediction: str, golds: Sequence[str], normalize: Callable[[str], str]) -> float:
    normalized = normalize(prediction)
    return max((token_f1(normalized, normalize(gold)) for gold in golds), default=0.0)


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    """Best token F1 over golden answers after SQuAD-style normalization (ReSearch / HotpotQA F1)."""
    return _best_f1(prediction, golds, normalize_answer)


def cover_f1_score(prediction: str, golds: Sequence[str]) -> float:
    """Best token F1 over golden answers after R1-Searcher's normalization (its stage-2 answer reward)."""
    return _best_f1(prediction, golds, normalize_cover)


def cover_em_score(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when every token of some golden answer occurs among the prediction's tokens (R1-Searcher)."""
    # R1-Searcher splits on a single space, not on whitespace runs: an answer that normalizes to "" is then
    # the one token "" and is covered only by a prediction that also normalizes to "".
    prediction_tokens = set(normalize_cover(prediction).split(" "))
    for gold in golds:
        if all(token in prediction_tokens for token in normalize_cover(gold).split(" ")):
            return 1.0
    return 0.0
