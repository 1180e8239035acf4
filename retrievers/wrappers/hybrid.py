"""Reciprocal-rank fusion (RRF) of two retrievers, e.g. BM25 + dense.

Each passage's fused score is ``sum_i w_i / (rrf_k + rank_i)`` over the lists it appears in (ranks from 1),
as in Cormack et al. (SIGIR 2009). Raw scores are never mixed, so backends with incomparable scales fuse
cleanly. Passages are matched by id.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hopgym.errors import ConfigError
from hopgym.retrievers.base import Retriever
from hopgym.retrievers.search_args import check_search_args
from hopgym.types import Passage

__all__ = ["HybridRetriever", "RRFConfig", "reciprocal_rank_fusion"]


@dataclass(frozen=True)
class RRFConfig:
    """``weights`` scale each list's contribution; ``rrf_k`` damps the top ranks (60 is the usual value);
    ``depth`` is how many passages to take from each list (None: ``max(k, 10)``; never fewer than k)."""

    weights: tuple[float, float] = (1.0, 1.0)
    rrf_k: float = 60.0
    depth: int | None = None

    def __post_init__(self) -> None:
        weights = tuple(self.weights)
        if len(weights) != 2:
            raise ConfigError(f"weights must hold two numbers (one per retriever), got {self.weights!r}")
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
                raise ConfigError(
                    f"weights must be finite numbers > 0, got {self.weights!r}; to use one retriever alone, "
                    "search it directly"
                )
        object.__setattr__(self, "weights", (float(weights[0]), float(weights[1])))
        rrf_k = self.rrf_k
        if (
            isinstance(rrf_k, bool)
            or not isinstance(rrf_k, (int, float))
            or not math.isfinite(rrf_k)
            or rrf_k < 0
        ):
            raise ConfigError(f"rrf_k must be a finite number >= 0 (60 is usual), got {rrf_k!r}")
        if self.depth is not None and (
            isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 1
        ):
            raise ConfigError(f"depth must be an integer >= 1 or None, got {self.depth!r}")

    def depth_for(self, k: int) -> int:
        return max(k, self.depth if self.depth is not None else 10)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Passage]], weights: Sequence[float], *, rrf_k: float, k: int
) -> list[Passage]:
    """Fuse ranked lists into the top ``k`` passages, ``score`` set to the fused score.

    Ties are broken by the passage's best rank in any list, then by the earlier list it appears in, then by
    id, so the result does not depend on timing. A passage's fields are taken from the first list holding it;
    an id repeated inside one list counts at its first rank only.
    """
    if len(rankings) != len(weights):
        raise ConfigError(f"got {len(rankings)} rankings but {len(weights)} weights")
    fused: dict[str, float] = {}
    best: dict[str, tuple[int, int]] = {}
    first_seen: dict[str, Passage] = {}
    for list_index, (ranking, weight) in enumerate(zip(rankings, weights, strict=True)):
        seen: set[str] = set()
        for rank, passage in enumerate(ranking, start=1):
            if passage.id in seen:
                continue
            seen.add(passage.id)
            fused[passage.id] = fused.get(passage.id, 0.0) + weight / (rrf_k + rank)
            best[passage.id] = min(best.get(passage.id, (rank, list_index)), (rank, list_index))
            first_seen.setdefault(passage.id, passage)
    order = sorted(fused, key=lambda pid: (-fused[pid], best[pid], pid))[:k]
    return [replace(first_seen[pid], score=fused[pid]) for pid in order]


class HybridRetriever:
    """Search two retrievers concurrently and fuse their rankings with RRF (see the module docstring)."""

    def __init__(
        self,
        first: Retriever,
        second: Retriever,
        *,
        weights: tuple[float, float] = (1.0, 1.0),
        rrf_k: float = 60.0,
        depth: int | None = None,
    ) -> None:
        self.config = RRFConfig(weights=weights, rrf_k=rrf_k, depth=depth)
        self.first = first
        self.second = second
        self._closed = False

    def __repr__(self) -> str:
        return f"HybridRetriever({self.first!r}, {self.second!r}, {self.config})"

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        queries = check_search_args(queries, k)
        if not queries:
            return []
        depth = self.config.depth_for(k)
        # return_exceptions: if one side fails, still wait for the other instead of leaving it running.
        first, second = await asyncio.gather(
            self.first.search(queries, depth), self.second.search(queries, depth), return_exceptions=True
        )
        if isinstance(first, BaseException):
            raise first
        if isinstance(second, BaseException):
            raise second
        return [
            reciprocal_rank_fusion([a, b], self.config.weights, rrf_k=self.config.rrf_k, k=k)
            for a, b in zip(first, second, strict=True)
        ]

    async def aclose(self) -> None:
        """Close both retrievers (the second even if closing the first fails)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.first.aclose()
        finally:
            await self.second.aclose()
