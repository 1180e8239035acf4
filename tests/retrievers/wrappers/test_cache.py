"""CachedRetriever: hits and misses, normalization, one batched call per miss set, LRU order, errors."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hopgym.errors import ConfigError, RetrieverError
from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.retrievers.wrappers.cache import CachedRetriever, normalize_query
from hopgym.types import Passage


class Recording:
    def __init__(self, passages: Sequence[Passage]) -> None:
        self.inner = InMemoryBM25Retriever(passages)
        self.calls: list[list[str]] = []
        self.fail = False
        self.closed = 0

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        self.calls.append(list(queries))
        if self.fail:
            raise RetrieverError("backend down")
        return await self.inner.search(queries, k)

    async def aclose(self) -> None:
        self.closed += 1


@pytest.fixture
def inner(conformance_passages: list[Passage]) -> Recording:
    return Recording(conformance_passages)


def ids(hits: Sequence[Passage]) -> list[str]:
    return [p.id for p in hits]


def test_normalize_query_collapses_whitespace_and_case() -> None:
    assert normalize_query("  Who  WROTE\tHamlet?\n") == "who wrote hamlet?"
    assert normalize_query("Straße") == normalize_query("STRASSE")  # casefold, not lower
    assert normalize_query(" \t ") == ""


async def test_repeats_are_served_from_the_cache(inner: Recording) -> None:
    cache = CachedRetriever(inner)
    first = await cache.search(["Shirley Temple", "Janet Waldo"], 3)
    again = await cache.search(["  shirley   TEMPLE ", "Janet Waldo"], 3)
    assert [ids(h) for h in again] == [ids(h) for h in first]
    assert inner.calls == [["Shirley Temple", "Janet Waldo"]]
    assert (cache.stats.hits, cache.stats.misses) == (2, 2)
    assert cache.stats.hit_rate == 0.5


async def test_only_misses_reach_the_backend_in_one_call(inner: Recording) -> None:
    cache = CachedRetriever(inner)
    await cache.search(["Shirley Temple"], 3)
    results = await cache.search(["Janet Waldo", "shirley temple", "Lord High Treasurer", "janet  waldo"], 3)
    assert inner.calls[1] == ["Janet Waldo", "Lord High Treasurer"]
    expected = await inner.inner.search(
        ["Janet Waldo", "Shirley Temple", "Lord High Treasurer", "Janet Waldo"], 3
    )
    assert [ids(h) for h in results] == [ids(h) for h in expected]
    assert (cache.stats.hits, cache.stats.misses) == (2, 3)  # the repeated "janet  waldo" is a hit


async def test_k_is_part_of_the_key(inner: Recording) -> None:
    cache = CachedRetriever(inner)
    one = await cache.search(["Shirley Temple"], 1)
    three = await cache.search(["Shirley Temple"], 3)
    assert len(one[0]) == 1 and len(three[0]) == 3
    assert len(inner.calls) == 2


async def test_lru_evicts_the_least_recently_used(inner: Recording) -> None:
    cache = CachedRetriever(inner, max_entries=2)
    await cache.search(["Shirley Temple"], 2)
    await cache.search(["Janet Waldo"], 2)
    await cache.search(["Shirley Temple"], 2)  # now the most recent
    await cache.search(["Lord High Treasurer"], 2)  # evicts Janet Waldo
    assert len(cache) == 2 and cache.stats.evictions == 1
    inner.calls.clear()
    await cache.search(["Shirley Temple", "Janet Waldo"], 2)
    assert inner.calls == [["Janet Waldo"]]


async def test_blank_queries_skip_the_backend(inner: Recording) -> None:
    cache = CachedRetriever(inner)
    assert await cache.search(["", "  \n"], 3) == [[], []]
    assert await cache.search([], 3) == []
    assert inner.calls == []


async def test_failures_are_not_cached(inner: Recording) -> None:
    cache = CachedRetriever(inner)
    inner.fail = True
    with pytest.raises(RetrieverError, match="backend down"):
        await cache.search(["Shirley Temple"], 2)
    inner.fail = False
    assert len((await cache.search(["Shirley Temple"], 2))[0]) == 2
    assert len(inner.calls) == 2 and len(cache) == 1


async def test_callers_cannot_corrupt_the_cache(inner: Recording) -> None:
    cache = CachedRetriever(inner)
    (hits,) = await cache.search(["Shirley Temple"], 3)
    before = ids(hits)
    hits.clear()
    (again,) = await cache.search(["Shirley Temple"], 3)
    assert ids(again) == before


async def test_bad_k_and_close(inner: Recording) -> None:
    cache = CachedRetriever(inner)
    with pytest.raises(ConfigError):
        await cache.search([""], 0)
    await cache.aclose()
    await cache.aclose()
    assert inner.closed == 1
    with pytest.raises(RetrieverError, match="closed"):
        await cache.search(["x"], 1)
    keep = CachedRetriever(inner, close_inner=False)
    await keep.aclose()
    assert inner.closed == 1


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_bad_max_entries(inner: Recording, bad: object) -> None:
    with pytest.raises(ConfigError, match="max_entries"):
        CachedRetriever(inner, max_entries=bad)  # type: ignore[arg-type]
