"""Retrieval quality: recall@k of the supporting passages, and whether the retrieved text holds an answer.

- ``recall_at_k(ranking, supporting, k)``: the share of a question's supporting passage ids found among the
  first ``k`` ids retrieved (0.5 when one of two is there); None when the question has no supporting ids.
- ``supporting_recall(retrieved, supporting)``: the same over everything an episode retrieved, in any order.
- ``answer_in_passages(texts, golds, k)``: 1.0 when one of the first ``k`` passages contains some golden
  answer, both SQuAD-normalized (FlashRAG's ``Retrieval_Recall``; an answer that normalizes to nothing is in
  every passage, as there).
- ``retrieval_summary(...)``: the means over questions, keyed ``recall@k`` and ``answer_in_top@k``, with the
  number of questions each mean is over.
- ``episode_retrieval_summary(...)``: for agent runs (``hopgym eval``), over the episodes whose task has
  supporting ids: ``supporting_recall`` (everything the episode retrieved), ``first_search_recall`` (its
  first search's passages) and ``all_supporting_found`` (share of episodes that saw every supporting passage).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from statistics import fmean

from hopgym.envs.rewards.normalize import normalize_answer

__all__ = [
    "DEFAULT_KS",
    "answer_in_passages",
    "episode_retrieval_summary",
    "recall_at_k",
    "retrieval_summary",
    "supporting_ids",
    "supporting_recall",
]

DEFAULT_KS = (1, 3, 5, 10)
SUPPORTING_KEY = "supporting_passage_ids"


def supporting_ids(metadata: Mapping[str, object]) -> frozenset[str]:
    """A task's supporting passage ids (``metadata["supporting_passage_ids"]``), empty when unknown."""
    value = metadata.get(SUPPORTING_KEY)
    if isinstance(value, (list, tuple)):
        return frozenset(str(v) for v in value)
    return frozenset()


def recall_at_k(ranking: Sequence[str], supporting: Iterable[str], k: int) -> float | None:
    """Share of ``supporting`` among the first ``k`` of ``ranking``; None without supporting ids."""
    if k < 1:
        raise ValueError(f"k={k}: recall is over at least the first passage; use k >= 1")
    gold = frozenset(supporting)
    if not gold:
        return None
    return len(gold.intersection(ranking[:k])) / len(gold)


def supporting_recall(retrieved: Iterable[str], supporting: Iterable[str]) -> float | None:
    """Share of ``supporting`` among all ids ``retrieved`` (an episode's searches together)."""
    gold = frozenset(supporting)
    if not gold:
        return None
    return len(gold.intersection(retrieved)) / len(gold)


def answer_in_passages(texts: Sequence[str], golds: Sequence[str], k: int | None = None) -> float:
    """1.0 when one of the first ``k`` texts (all when None) contains a normalized golden answer."""
    normalized_golds = [normalize_answer(g) for g in golds]
    for text in texts[:k] if k is not None else texts:
        normalized = normalize_answer(text)
        if any(gold in normalized for gold in normalized_golds):
            return 1.0
    return 0.0


def retrieval_summary(
    rankings: Sequence[Sequence[str]],
    supporting: Sequence[Iterable[str]],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    texts: Sequence[Sequence[str]] | None = None,
    golds: Sequence[Sequence[str]] | None = None,
) -> dict[str, float]:
    """Mean ``recall@k`` over the questions that have supporting ids (``questions_with_supporting`` says how
    many), and, given the passages' ``texts`` and ``golds``, mean ``answer_in_top@k`` over all questions."""
    if len(rankings) != len(supporting):
        raise ValueError(
            f"{len(rankings)} rankings but {len(supporting)} supporting-id sets: give one per question"
        )
    out: dict[str, float] = {"questions": float(len(rankings))}
    gold_sets = [frozenset(s) for s in supporting]
    judged = [(r, g) for r, g in zip(rankings, gold_sets, strict=True) if g]
    out["questions_with_supporting"] = float(len(judged))
    for k in ks:
        scores = [recall_at_k(r, g, k) for r, g in judged]
        if judged:
            out[f"recall@{k}"] = fmean(s for s in scores if s is not None)
    if texts is not None and golds is not None:
        if not (len(texts) == len(golds) == len(rankings)):
            raise ValueError("texts and golds need one entry per question, like rankings")
        for k in ks:
            out[f"answer_in_top@{k}"] = fmean(
                answer_in_passages(t, g, k) for t, g in zip(texts, golds, strict=True)
            )
    return out


def episode_retrieval_summary(
    episodes: Iterable[tuple[Sequence[Sequence[str]], Iterable[str]]],
) -> dict[str, float]:
    """Retrieval of agent episodes, each given as (the passage ids of each search in order, the task's supporting
    ids). Episodes without supporting ids are left out (``episodes_with_supporting`` says how many count); an
    episode that never searched has recall 0. Empty dict when no episode counts."""
    recalls: list[float] = []
    first: list[float] = []
    complete = 0
    for searches, supporting in episodes:
        gold = frozenset(supporting)
        if not gold:
            continue
        found = gold.intersection(pid for search in searches for pid in search)
        recalls.append(len(found) / len(gold))
        first.append(len(gold.intersection(searches[0])) / len(gold) if searches else 0.0)
        complete += found == gold
    if not recalls:
        return {}
    return {
        "episodes_with_supporting": float(len(recalls)),
        "supporting_recall": fmean(recalls),
        "first_search_recall": fmean(first),
        "all_supporting_found": complete / len(recalls),
    }
