"""Benchmark metrics: answer metrics equal to the official scripts (:mod:`.answer`) and retrieval quality
(:mod:`.retrieval`). Pure functions, no I/O."""

from __future__ import annotations

from hopgym.benchmarks.metrics.answer import (
    ANSWER_METRICS,
    OFFICIAL_RULES,
    Golds,
    cover_em,
    exact_match,
    f1,
    musique_f1,
    normalize_answer,
    normalize_cover,
    official_scores,
    r1_searcher_em,
    r1_searcher_f1,
    score_prediction,
    sub_em,
)
from hopgym.benchmarks.metrics.retrieval import (
    DEFAULT_KS,
    answer_in_passages,
    episode_retrieval_summary,
    recall_at_k,
    retrieval_summary,
    supporting_ids,
    supporting_recall,
)

__all__ = [
    "ANSWER_METRICS",
    "DEFAULT_KS",
    "OFFICIAL_RULES",
    "Golds",
    "answer_in_passages",
    "cover_em",
    "episode_retrieval_summary",
    "exact_match",
    "f1",
    "musique_f1",
    "normalize_answer",
    "normalize_cover",
    "official_scores",
    "r1_searcher_em",
    "r1_searcher_f1",
    "recall_at_k",
    "retrieval_summary",
    "score_prediction",
    "sub_em",
    "supporting_ids",
    "supporting_recall",
]
