"""TimeoutRetriever: per-call limits that name the backend and the limit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from hopgym.errors import ConfigError, RetrieverError, RetrieverTimeout
from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.retrievers.wrappers.timeout import TimeoutRetriever
from hopgym.types import Passage


class SlowRetriever:
    def __init__(self, inner: InMemoryBM25Retriever, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.cancelled = 0
        self.closed = 0

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return await self.inner.search(queries, k)

    async def aclose(self) -> None:
        self.closed += 1


@pytest.fixture
def bm25(conformance_passages: list[Passage]) -> InMemoryBM25Retriever:
    return InMemoryBM25Retriever(conformance_passages)


async def test_fast_calls_pass_through(bm25: InMemoryBM25Retriever) -> None:
    retriever = TimeoutRetriever(SlowRetriever(bm25, 0.0), 5.0)
    (hits,) = await retriever.search(["Shirley Temple"], 2)
    assert [p.id for p in hits] == [p.id for p in bm25.search_sync(["Shirley Temple"], 2)[0]]


async def test_slow_call_raises_retriever_timeout_naming_backend_and_limit(
    bm25: InMemoryBM25Retriever,
) -> None:
    slow = SlowRetriever(bm25, 10.0)
    retriever = TimeoutRetriever(slow, 0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(RetrieverTimeout, match=r"SlowRetriever did not answer 1 queries within 0.05 s"):
        await retriever.search(["Shirley Temple"], 2)
    assert loop.time() - started < 5.0
    await asyncio.sleep(0)
    assert slow.cancelled == 1, "the abandoned backend call must be cancelled"


async def test_name_overrides_backend_name(bm25: InMemoryBM25Retriever) -> None:
    retriever = TimeoutRetriever(SlowRetriever(bm25, 10.0), 0.01, name="wiki-bm25")
    with pytest.raises(RetrieverTimeout, match="wiki-bm25"):
        await retriever.search(["x"], 1)


async def test_backend_errors_pass_through_unchanged(bm25: InMemoryBM25Retriever) -> None:
    retriever = TimeoutRetriever(bm25, 5.0)
    with pytest.raises(ConfigError):
        await retriever.search(["x"], 0)

    class OwnTimeout:
        async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
            raise RetrieverTimeout("the backend's own limit")

        async def aclose(self) -> None:
            return None

    with pytest.raises(RetrieverTimeout, match="the backend's own limit"):
        await TimeoutRetriever(OwnTimeout(), 5.0).search(["x"], 1)


async def test_cancelling_the_caller_cancels_the_backend_call(bm25: InMemoryBM25Retriever) -> None:
    slow = SlowRetriever(bm25, 10.0)
    task = asyncio.create_task(TimeoutRetriever(slow, 5.0).search(["x"], 1))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert slow.cancelled == 1


async def test_close(bm25: InMemoryBM25Retriever) -> None:
    slow = SlowRetriever(bm25, 0.0)
    retriever = TimeoutRetriever(slow, 1.0)
    await retriever.aclose()
    await retriever.aclose()
    assert slow.closed == 1
    with pytest.raises(RetrieverError, match="closed"):
        await retriever.search(["x"], 1)
    await TimeoutRetriever(slow, 1.0, close_inner=False).aclose()
    assert slow.closed == 1


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), True])
def test_bad_timeout(bm25: InMemoryBM25Retriever, bad: float) -> None:
    with pytest.raises(ConfigError, match="timeout_s"):
        TimeoutRetriever(bm25, bad)
