"""The bm25 backend searches small requests on the calling thread, within a bound on their postings."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hopgym.errors import ConfigError
from hopgym.types import Passage

pytest.importorskip("bm25s")
pytest.importorskip("numba")

from hopgym.retrievers.bm25.backend import BM25Retriever


def spy_threads(retriever: BM25Retriever) -> list[int]:
    """Record the thread each kernel call runs on (the real kernel still runs)."""
    seen: list[int] = []
    search_share = retriever._search_share

    def recording(token_ids: list[list[int]], k: int) -> Any:
        seen.append(threading.get_ident())
        return search_share(token_ids, k)

    retriever._search_share = recording  # type: ignore[method-assign]
    return seen


def ids(results: list[list[Passage]]) -> list[list[str]]:
    return [[p.id for p in hits] for hits in results]


@pytest.mark.asyncio
async def test_a_small_search_runs_on_the_calling_thread(conformance_passages: list[Passage]) -> None:
    retriever = BM25Retriever.from_passages(conformance_passages)
    seen = spy_threads(retriever)
    query = conformance_passages[3].title
    results = await retriever.search([query], 3)
    assert seen == [threading.get_ident()]
    assert ids(results) == ids(retriever.search_blocking([query], 3))
    assert results[0][0].score == retriever.search_blocking([query], 3)[0][0].score
    await retriever.aclose()


@pytest.mark.asyncio
async def test_larger_searches_go_to_a_worker_thread(conformance_passages: list[Passage]) -> None:
    titles = [p.title for p in conformance_passages[:30]]
    here = threading.get_ident()
    # Over the hit bound: 30 queries x k=3 > 64.
    retriever = BM25Retriever.from_passages(conformance_passages)
    seen = spy_threads(retriever)
    many = await retriever.search(titles, 3)
    assert seen and here not in seen
    assert ids(many) == ids(retriever.search_blocking(titles, 3))
    # Over the postings budget: a one-posting budget sends any real query to a thread.
    tight = BM25Retriever.from_passages(conformance_passages, inline_postings=1)
    seen = spy_threads(tight)
    one = await tight.search([titles[0]], 3)
    assert seen and here not in seen and ids(one) == ids(retriever.search_blocking([titles[0]], 3))
    # 0 turns inline search off.
    off = BM25Retriever.from_passages(conformance_passages, inline_postings=0)
    seen = spy_threads(off)
    await off.search([titles[0]], 3)
    assert seen and here not in seen
    for r in (retriever, tight, off):
        await r.aclose()


def test_inline_postings_must_not_be_negative(conformance_passages: list[Passage]) -> None:
    with pytest.raises(ConfigError, match="inline_postings must be an integer >= 0"):
        BM25Retriever.from_passages(conformance_passages[:5], inline_postings=-1)
