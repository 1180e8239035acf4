"""check_retriever: passes a correct retriever, and each check fails on a retriever broken in its one way."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace

import pytest

from hopgym.errors import ConfigError
from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.testing import RetrieverCheckError, acheck_retriever, check_retriever, conformance_passages
from hopgym.testing.retriever_check import RETRIEVER_CHECKS
from hopgym.types import Passage

PASSAGES = conformance_passages()


class Broken:
    """The in-memory BM25 retriever with one behaviour ``bend`` changes (per call: queries, k, answer)."""

    def __init__(
        self,
        passages: Sequence[Passage],
        bend: Callable[[list[str], int, list[list[Passage]]], list[list[Passage]]] | None = None,
        *,
        check_k: bool = True,
        yield_between: bool = False,
        close_once: bool = False,
    ) -> None:
        self.inner = InMemoryBM25Retriever(passages)
        self.bend = bend
        self.check_k = check_k
        self.yield_between = yield_between
        self.close_once = close_once
        self.closed = False
        self.last: list[str] = []

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        queries = list(queries)
        if not self.check_k and k < 1:
            return [[] for _ in queries]
        answer = await self.inner.search(queries, k)
        if self.yield_between:  # shared state read across an await: concurrent calls see each other's
            self.last = queries
            await asyncio.sleep(0)
            answer = await self.inner.search(self.last, k)
        return self.bend(queries, k, answer) if self.bend else answer

    async def aclose(self) -> None:
        if self.close_once and self.closed:
            raise RuntimeError("already closed")
        self.closed = True
        await self.inner.aclose()


def _map_hits(fn: Callable[[list[Passage]], list[Passage]]) -> Callable[..., list[list[Passage]]]:
    return lambda queries, k, answer: [fn(hits) for hits in answer]


def _unsorted(hits: list[Passage]) -> list[Passage]:
    return list(reversed(hits)) if len({p.score for p in hits}) > 1 else hits


# One retriever per check, broken so that this check (at least) fails.
BROKEN: dict[str, Callable[[Sequence[Passage]], Broken]] = {
    "result_types_and_shape": lambda ps: Broken(ps, _map_hits(_unsorted)),
    "finds_passage_by_its_own_text": lambda ps: Broken(
        ps, lambda q, k, answer: [random.Random(len(q)).sample(list(ps), len(h)) for h in answer]
    ),
    "passage_fields_round_trip": lambda ps: Broken(
        ps, _map_hits(lambda hits: [replace(p, text=p.text.upper()) for p in hits])
    ),
    "k_is_respected": lambda ps: Broken(
        ps, lambda q, k, answer: [h + h[:1] if k == 1 else h for h in answer]
    ),
    "k_larger_than_corpus": lambda ps: Broken(
        ps, lambda q, k, answer: [[] if k > len(ps) else h for h in answer]
    ),
    "k_below_one_is_a_config_error": lambda ps: Broken(ps, check_k=False),
    "empty_batch": lambda ps: Broken(ps, lambda q, k, answer: answer or [[]]),
    "blank_query_gives_empty_list": lambda ps: Broken(
        ps,
        lambda q, k, answer: [list(ps[:1]) if not qq.strip() else h for qq, h in zip(q, answer, strict=True)],
    ),
    "odd_queries_never_raise": lambda ps: Broken(
        ps, lambda q, k, answer: [] if any("🙂" in qq for qq in q) else answer
    ),
    "batch_order_preserved": lambda ps: Broken(
        ps, lambda q, k, answer: answer[1:] + answer[:1] if len(answer) > 3 else answer
    ),
    "concurrent_calls_match_sequential": lambda ps: Broken(ps, yield_between=True),
    "duplicate_queries_in_one_batch": lambda ps: Broken(
        ps, lambda q, k, answer: [h[i % len(h) :] if h else h for i, h in enumerate(answer)]
    ),
    "aclose_is_idempotent": lambda ps: Broken(ps, close_once=True),
}


def test_every_check_has_a_broken_retriever() -> None:
    assert set(BROKEN) == {*RETRIEVER_CHECKS, "aclose_is_idempotent"}


def test_a_correct_retriever_passes_as_factory_and_as_instance() -> None:
    check_retriever(InMemoryBM25Retriever)
    check_retriever(InMemoryBM25Retriever(PASSAGES), passages=PASSAGES)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_check_fails_on_its_broken_retriever(name: str) -> None:
    with pytest.raises(RetrieverCheckError) as info:
        check_retriever(BROKEN[name])
    assert name in info.value.failures, info.value.failures
    assert f"- {name}: " in str(info.value)


async def test_async_context_manager_factories_and_awaitables_are_accepted() -> None:
    @contextlib.asynccontextmanager
    async def opened(passages: Sequence[Passage]) -> AsyncIterator[InMemoryBM25Retriever]:
        retriever = InMemoryBM25Retriever(passages)
        try:
            yield retriever
        finally:
            await retriever.aclose()

    async def built(passages: Sequence[Passage]) -> InMemoryBM25Retriever:
        return InMemoryBM25Retriever(passages)

    await acheck_retriever(opened)
    await acheck_retriever(built)


async def test_sync_entry_point_refuses_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="await acheck_retriever"):
        check_retriever(InMemoryBM25Retriever)


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="no passages"):
        check_retriever(InMemoryBM25Retriever(PASSAGES))
    with pytest.raises(ConfigError, match="at least 50 passages"):
        check_retriever(InMemoryBM25Retriever, passages=PASSAGES[:10])
    with pytest.raises(ConfigError, match="unknown checks"):
        check_retriever(InMemoryBM25Retriever, skip=["nope"])


def test_skip_leaves_out_a_check() -> None:
    check_retriever(BROKEN["empty_batch"], skip=["empty_batch"])
