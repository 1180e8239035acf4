"""MicroBatchingRetriever: coalescing, routing, limits, errors, cancellation and close."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from hopgym.errors import ConfigError, RetrieverError
from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.retrievers.wrappers.batching import MicroBatchingRetriever
from hopgym.types import Passage


class Recording:
    """A real BM25 retriever that records each call and can be held at a gate or made to fail.

    Each call yields to the event loop once, as every batched backend does (bm25s and FAISS search in a
    worker thread, HTTP waits on a socket); the in-memory BM25 alone would answer without yielding.
    """

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.inner = InMemoryBM25Retriever(passages)
        self.calls: list[tuple[list[str], int]] = []
        self.gate: asyncio.Event | None = None
        self.fail_on: str | None = None
        self.closed = 0
        self.called = asyncio.Event()
        self.tasks: list[asyncio.Task[object] | None] = []

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        self.calls.append((list(queries), k))
        self.tasks.append(asyncio.current_task())
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if self.fail_on is not None and self.fail_on in queries:
            raise RetrieverError(f"backend failed on {self.fail_on!r}")
        return await self.inner.search(queries, k)

    async def aclose(self) -> None:
        self.closed += 1
        await self.inner.aclose()


@pytest.fixture(scope="module")
def passages(conformance_passages: list[Passage]) -> list[Passage]:
    return conformance_passages


@pytest.fixture(scope="module")
def titles(passages: list[Passage]) -> list[str]:
    return [p.title for p in passages]


def ids(hits: Sequence[Passage]) -> list[str]:
    return [p.id for p in hits]


async def test_a_lone_query_does_not_wait(passages, titles) -> None:
    batcher = MicroBatchingRetriever(Recording(passages), max_wait_ms=60_000.0)
    (hits,) = await asyncio.wait_for(batcher.search([titles[0]], 2), timeout=5)
    assert ids(hits) == ids(InMemoryBM25Retriever(passages).search_sync([titles[0]], 2)[0])
    await batcher.aclose()


async def test_a_lone_request_runs_in_its_callers_task(passages, titles) -> None:
    # No batch task, no queue, no timer: the backend is called from the request's own task.
    inner = Recording(passages)
    batcher = MicroBatchingRetriever(inner, max_wait_ms=60_000.0)
    caller = asyncio.create_task(batcher.search([titles[0]], 2))
    await caller
    assert inner.tasks == [caller]
    assert batcher.stats.batches == 1 and batcher.stats.batched_queries == 1
    await batcher.aclose()


async def test_a_request_with_a_free_slot_is_sent_at_once_while_another_call_runs(passages, titles) -> None:
    inner = Recording(passages)
    inner.gate = asyncio.Event()
    sizes: list[int] = []
    batcher = MicroBatchingRetriever(inner, max_concurrency=2, on_batch=sizes.append)
    first = asyncio.create_task(batcher.search([titles[0]], 2))
    await inner.called.wait()
    second = asyncio.create_task(batcher.search([titles[1]], 2))
    for _ in range(3):  # a few loop turns, far less than any batch window; the first call is still held
        await asyncio.sleep(0)
    assert [q for q, _ in inner.calls] == [[titles[0]], [titles[1]]]
    assert inner.tasks == [first, second] and batcher.pending_queries == 0
    inner.gate.set()
    await asyncio.gather(first, second)
    assert sizes == [1, 1]
    await batcher.aclose()


async def test_requests_batch_when_every_slot_is_busy(passages, titles) -> None:
    # Contention: with both slots held, the next requests queue and leave together when a slot frees.
    inner = Recording(passages)
    inner.gate = asyncio.Event()
    batcher = MicroBatchingRetriever(inner, max_concurrency=2)
    held = [asyncio.create_task(batcher.search([q], 2)) for q in titles[:2]]
    for _ in range(3):  # both start in their own tasks' first steps
        await asyncio.sleep(0)
    later = [asyncio.create_task(batcher.search([q], 2)) for q in titles[2:12]]
    await asyncio.sleep(0)
    assert len(inner.calls) == 2 and batcher.pending_queries == 10
    inner.gate.set()
    results = await asyncio.gather(*held, *later)
    assert [len(q) for q, _ in inner.calls] == [1, 1, 10]
    expected = InMemoryBM25Retriever(passages).search_sync(titles[:12], 2)
    assert [ids(r[0]) for r in results] == [ids(h) for h in expected]
    await batcher.aclose()


async def test_aclose_waits_for_calls_running_in_their_callers_tasks(passages, titles) -> None:
    inner = Recording(passages)
    inner.gate = asyncio.Event()
    batcher = MicroBatchingRetriever(inner)
    running = asyncio.create_task(batcher.search([titles[0]], 2))
    await inner.called.wait()
    closing = asyncio.create_task(batcher.aclose())
    await asyncio.sleep(0.01)
    assert not closing.done() and inner.closed == 0
    inner.gate.set()
    await asyncio.wait_for(closing, timeout=5)
    assert len((await running)[0]) == 2 and inner.closed == 1


async def test_concurrent_single_queries_become_few_backend_calls(passages, titles) -> None:
    inner = Recording(passages)
    batcher = MicroBatchingRetriever(inner, max_batch_size=64, max_wait_ms=5.0)
    queries = titles[:50]
    results = await asyncio.gather(*(batcher.search([q], 3) for q in queries))
    expected = InMemoryBM25Retriever(passages).search_sync(queries, 3)
    assert [ids(r[0]) for r in results] == [ids(h) for h in expected]
    assert [p.score for r in results for p in r[0]] == [p.score for h in expected for p in h]
    assert len(inner.calls) <= 2, f"50 concurrent queries took {len(inner.calls)} backend calls"
    assert sum(len(q) for q, _ in inner.calls) == 50
    assert batcher.stats.requests == 50 and batcher.stats.batches == len(inner.calls)
    assert batcher.stats.mean_batch_size == 50 / len(inner.calls)
    await batcher.aclose()


async def test_batches_never_exceed_max_batch_size(passages, titles) -> None:
    inner = Recording(passages)
    sizes: list[int] = []
    batcher = MicroBatchingRetriever(inner, max_batch_size=8, max_wait_ms=5.0, on_batch=sizes.append)
    results = await asyncio.gather(*(batcher.search([q], 2) for q in titles[:50]))
    assert len(results) == 50
    assert all(len(q) <= 8 for q, _ in inner.calls)
    assert sizes == [len(q) for q, _ in inner.calls]
    assert sum(sizes) == 50 and len(sizes) >= 7
    assert batcher.stats.max_batch_seen == 8
    await batcher.aclose()


async def test_multi_query_requests_are_kept_whole_and_routed_back(passages, titles) -> None:
    inner = Recording(passages)
    batcher = MicroBatchingRetriever(inner, max_batch_size=8, max_wait_ms=5.0)
    sizes = [3, 5, 2, 7, 1, 20, 4]  # 20 is over the limit: it goes alone, unsplit
    requests, start = [], 0
    for n in sizes:
        requests.append(titles[start : start + n])
        start += n
    results = await asyncio.gather(*(batcher.search(r, 3) for r in requests))
    direct = InMemoryBM25Retriever(passages)
    for request, got in zip(requests, results, strict=True):
        assert [ids(h) for h in got] == [ids(h) for h in direct.search_sync(request, 3)]
    sent = [q for q, _ in inner.calls]
    for request in requests:
        # Every request appears contiguously inside exactly one backend call.
        assert sum(1 for call in sent if request[0] in call) == 1
        call = next(c for c in sent if request[0] in c)
        i = call.index(request[0])
        assert call[i : i + len(request)] == request
    assert any(len(call) == 20 for call in sent)
    assert all(len(call) <= 8 for call in sent if len(call) != 20)
    await batcher.aclose()


async def test_requests_are_grouped_by_k(passages, titles) -> None:
    inner = Recording(passages)
    batcher = MicroBatchingRetriever(inner, max_batch_size=64, max_wait_ms=5.0)
    ks = [1, 3, 5] * 10
    results = await asyncio.gather(*(batcher.search([titles[i]], k) for i, k in enumerate(ks)))
    # One call per k, plus the first request, which went alone to the idle backend.
    assert sorted(k for _, k in inner.calls) == [1, 1, 3, 5]
    assert all(len(set(ks[titles.index(q)] for q in call)) == 1 for call, _ in inner.calls)
    direct = InMemoryBM25Retriever(passages)
    for i, (k, got) in enumerate(zip(ks, results, strict=True)):
        assert ids(got[0]) == ids(direct.search_sync([titles[i]], k)[0])
        assert len(got[0]) <= k
    await batcher.aclose()


async def test_backend_error_reaches_every_waiter_of_that_batch_only(passages, titles) -> None:
    inner = Recording(passages)
    batcher = MicroBatchingRetriever(inner, max_batch_size=4, max_wait_ms=5.0)
    inner.fail_on = titles[1]
    queries = titles[:12]
    outcomes = await asyncio.gather(*(batcher.search([q], 2) for q in queries), return_exceptions=True)
    poisoned = next(call for call, _ in inner.calls if titles[1] in call)
    failed = [q for q, o in zip(queries, outcomes, strict=True) if isinstance(o, BaseException)]
    assert failed == poisoned and len(inner.calls) >= 3
    assert all(isinstance(o, RetrieverError) for o in outcomes if isinstance(o, BaseException))
    expected = InMemoryBM25Retriever(passages).search_sync(queries, 2)
    for q, o, hits in zip(queries, outcomes, expected, strict=True):
        if q not in poisoned:
            assert isinstance(o, list) and ids(o[0]) == ids(hits)
    inner.fail_on = None
    assert len((await batcher.search([titles[1]], 2))[0]) == 2
    await batcher.aclose()


async def test_cancelled_waiter_before_dispatch_is_dropped(passages, titles) -> None:
    inner = Recording(passages)
    batcher = MicroBatchingRetriever(inner, max_batch_size=64, max_wait_ms=50.0)
    tasks = [asyncio.create_task(batcher.search([q], 2)) for q in titles[:10]]
    await asyncio.sleep(0)  # all ten are queued, none sent
    tasks[3].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[3], asyncio.CancelledError)
    expected = InMemoryBM25Retriever(passages).search_sync(titles[:10], 2)
    assert [ids(d[0]) for i, d in enumerate(done) if i != 3] == [
        ids(h) for i, h in enumerate(expected) if i != 3
    ]
    assert inner.calls and titles[3] not in [q for call, _ in inner.calls for q in call]
    await batcher.aclose()


async def test_cancelled_waiter_after_dispatch_does_not_disturb_the_others(passages, titles) -> None:
    inner = Recording(passages)
    inner.gate = asyncio.Event()
    batcher = MicroBatchingRetriever(inner, max_batch_size=64, max_wait_ms=1.0)
    tasks = [asyncio.create_task(batcher.search([q], 2)) for q in titles[:5]]
    await inner.called.wait()
    tasks[0].cancel()
    inner.gate.set()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[0], asyncio.CancelledError)
    expected = InMemoryBM25Retriever(passages).search_sync(titles[1:5], 2)
    assert [ids(d[0]) for d in done[1:]] == [ids(h) for h in expected]
    await batcher.aclose()


async def test_requests_queue_up_while_the_backend_is_busy(passages, titles) -> None:
    inner = Recording(passages)
    inner.gate = asyncio.Event()
    batcher = MicroBatchingRetriever(inner, max_batch_size=64, max_wait_ms=0.5, max_concurrency=1)
    first = asyncio.create_task(batcher.search([titles[0]], 2))
    await inner.called.wait()
    later = [asyncio.create_task(batcher.search([q], 2)) for q in titles[1:21]]
    await asyncio.sleep(0.02)  # far past max_wait: still queued, because the only slot is busy
    assert len(inner.calls) == 1 and batcher.pending_queries == 20
    inner.gate.set()
    await asyncio.gather(first, *later)
    assert [len(q) for q, _ in inner.calls] == [1, 20]
    await batcher.aclose()


async def test_aclose_answers_queued_requests_then_closes_inner(passages, titles) -> None:
    inner = Recording(passages)
    inner.gate = asyncio.Event()
    batcher = MicroBatchingRetriever(inner, max_batch_size=64, max_wait_ms=60_000.0)
    tasks = [asyncio.create_task(batcher.search([q], 2)) for q in titles[:5]]
    await inner.called.wait()
    # The first request went straight to the idle backend; the other four wait for companions.
    assert len(inner.calls) == 1 and batcher.pending_queries == 4
    inner.gate.set()
    await asyncio.wait_for(batcher.aclose(), timeout=5)
    assert [len(call) for call, _ in inner.calls] == [1, 4]
    expected = InMemoryBM25Retriever(passages).search_sync(titles[:5], 2)
    assert [ids(t.result()[0]) for t in tasks] == [ids(h) for h in expected]
    assert inner.closed == 1
    await batcher.aclose()
    assert inner.closed == 1
    with pytest.raises(RetrieverError, match="closed"):
        await batcher.search(["anything"], 2)


async def test_close_inner_false_leaves_inner_open(passages, titles) -> None:
    inner = Recording(passages)
    batcher = MicroBatchingRetriever(inner, close_inner=False)
    await batcher.search([titles[0]], 1)
    await batcher.aclose()
    assert inner.closed == 0
    assert len((await inner.search([titles[0]], 1))[0]) == 1


async def test_empty_request_and_bad_k(passages) -> None:
    inner = Recording(passages)
    batcher = MicroBatchingRetriever(inner)
    assert await batcher.search([], 3) == []
    for k in (0, -1, True):
        with pytest.raises(ConfigError):
            await batcher.search(["film"], k)
    assert inner.calls == []
    await batcher.aclose()


async def test_wrong_length_answer_is_an_error() -> None:
    class Short:
        async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
            return [[]]

        async def aclose(self) -> None:
            return None

    batcher = MicroBatchingRetriever(Short(), max_wait_ms=1.0)
    with pytest.raises(RetrieverError, match="returned 1 result lists for 2"):
        await batcher.search(["a", "b"], 1)
    await batcher.aclose()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_batch_size": 0},
        {"max_batch_size": 2.5},
        {"max_wait_ms": -1},
        {"max_wait_ms": float("nan")},
        {"max_concurrency": 0},
    ],
)
def test_bad_settings_are_config_errors(passages, kwargs) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        MicroBatchingRetriever(InMemoryBM25Retriever(passages[:5]), **kwargs)


async def test_requests_arriving_together_share_a_call_to_a_backend_that_never_yields(
    passages, titles
) -> None:
    # The in-memory BM25 answers without yielding, so a backend slot is never seen busy: without the
    # crowded hook every request would go out alone. The hook says two more callers are about to search.
    inner = InMemoryBM25Retriever(passages)
    sizes: list[int] = []
    waiting = [2]

    def crowded() -> bool:
        return waiting[0] > 0

    batcher = MicroBatchingRetriever(inner, on_batch=sizes.append, crowded=crowded)

    async def caller(query: str) -> list[list[Passage]]:
        waiting[0] -= 1  # this caller has started; the others are still to come
        return await batcher.search([query], 2)

    waiting[0] = 3
    results = await asyncio.gather(*(caller(q) for q in titles[:3]))
    assert sizes == [3]
    assert [ids(r[0]) for r in results] == [ids(h) for h in inner.search_sync(titles[:3], 2)]
    # A lone caller (nobody else about to search) goes out at once, in its own task.
    waiting[0] = 0
    sizes.clear()
    assert ids((await batcher.search([titles[4]], 2))[0]) == ids(inner.search_sync([titles[4]], 2)[0])
    assert sizes == [1] and batcher.pending_queries == 0
    await batcher.aclose()


async def test_a_crowd_that_never_searches_does_not_strand_a_queued_request(passages, titles) -> None:
    # crowded() stays true (e.g. the other requests were /health calls): the queued request still goes
    # out at the end of the loop turn.
    inner = InMemoryBM25Retriever(passages)
    batcher = MicroBatchingRetriever(inner, crowded=lambda: True)
    async with asyncio.timeout(5):
        hits = await batcher.search([titles[0]], 1)
    assert ids(hits[0]) == ids(inner.search_sync([titles[0]], 1)[0])
    await batcher.aclose()
