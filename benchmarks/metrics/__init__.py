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
