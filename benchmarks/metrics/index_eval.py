"""Measure a retriever on a task file: each question is one query; recall@k of its supporting passages and
whether the top k hold an answer (``hopgym index eval``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hopgym.benchmarks.metrics.retrieval import DEFAULT_KS, retrieval_summary, supporting_ids

if TYPE_CHECKING:
    from hopgym.retrievers.base import Retriever
    from hopgym.types import Task

__all__ = ["evaluate_retriever"]

_BATCH = 64


async def evaluate_retriever(
    retriever: Retriever, tasks: Sequence[Task], *, ks: Sequence[int] = DEFAULT_KS, batch_size: int = _BATCH
) -> dict[str, float]:
    """:func:`retrieval_summary` of ``retriever`` searched with every task's question (top ``max(ks)``)."""
    if not tasks:
        raise ValueError("no tasks to evaluate the retriever on")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: use at least 1")
    depth = max(ks)
    rankings: list[list[str]] = []
    texts: list[list[str]] = []
    for start in range(0, len(tasks), batch_size):
        batch = tasks[start : start + batch_size]
        hits = await retriever.search([t.question for t in batch], depth)
        rankings.extend([p.id for p in h] for h in hits)
        texts.extend([p.contents for p in h] for h in hits)
    return retrieval_summary(
        rankings,
        [supporting_ids(t.metadata) for t in tasks],
        ks=ks,
        texts=texts,
        golds=[t.golden_answers for t in tasks],
    )
