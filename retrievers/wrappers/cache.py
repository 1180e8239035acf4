"""An LRU cache in front of any retriever.

RL rollouts ask the same questions again and again (n samples per prompt, the same first hop every epoch),
so answering repeats from memory saves most backend work.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from hopgym.errors import ConfigError, RetrieverError
from hopgym.retrievers.base import Retriever
from hopgym.retrievers.search_args import check_search_args
from hopgym.types import Passage

__all__ = ["CacheStats", "CachedRetriever", "normalize_query"]


def normalize_query(query: str) -> str:
    """The cache's notion of "the same query": whitespace collapsed and casefolded."""
    return " ".join(query.split()).casefold()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class CachedRetriever:
    """Serve repeated (normalized query, k) pairs from an LRU of ``max_entries`` results.

    All misses of one call go to ``inner`` in one batched call (each distinct query once); a failed inner
    call caches nothing. Blank queries return ``[]`` without reaching ``inner``. Closing this retriever
    closes ``inner`` if ``close_inner``.
    """

    def __init__(self, inner: Retriever, *, max_entries: int = 10_000, close_inner: bool = True) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigError(f"max_entries={max_entries!r} is invalid: use an integer >= 1 (10000 is usual)")
        self.inner = inner
        self.max_entries = max_entries
        self.stats = CacheStats()
        self._close_inner = close_inner
        self._entries: OrderedDict[tuple[str, int], tuple[Passage, ...]] = OrderedDict()
        self._closed = False

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        queries = check_search_args(queries, k)
        if self._closed:
            raise RetrieverError("CachedRetriever is closed; create a new one to search again")
        keys = [(normalize_query(q), k) for q in queries]
        found: dict[tuple[str, int], tuple[Passage, ...]] = {}
        # Distinct missing keys, each with the first original spelling (case may matter to the backend).
        missing: dict[tuple[str, int], str] = {}
        for query, key in zip(queries, keys, strict=True):
            if not key[0]:
                continue
            if key in found or key in missing:
                self.stats.hits += 1  # a repeat within this call is answered once
                continue
            cached = self._entries.get(key)
            if cached is None:
                missing[key] = query
                self.stats.misses += 1
            else:
                self._entries.move_to_end(key)
                found[key] = cached
                self.stats.hits += 1
        if missing:
            fetched = await self.inner.search(list(missing.values()), k)
            if len(fetched) != len(missing):
                raise RetrieverError(
                    f"{type(self.inner).__name__} returned {len(fetched)} result lists for {len(missing)} "
                    "queries; a backend must return one list per query"
                )
            for key, hits in zip(missing, fetched, strict=True):
                found[key] = tuple(hits)
                self._store(key, found[key])
        return [list(found[key]) if key[0] else [] for key in keys]

    def _store(self, key: tuple[str, int], value: tuple[Passage, ...]) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.stats.evictions += 1

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._entries.clear()
        if self._close_inner:
            await self.inner.aclose()
