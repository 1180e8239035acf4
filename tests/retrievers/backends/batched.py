"""Conformance entry: the in-memory BM25 retriever behind the micro-batching wrapper."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from hopgym.retrievers.base import Retriever
from hopgym.types import Passage

NAME = "batched"


@contextlib.asynccontextmanager
async def open_retriever(passages: Sequence[Passage], workdir: Path) -> AsyncIterator[Retriever]:
    from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
    from hopgym.retrievers.wrappers.batching import MicroBatchingRetriever

    # A small batch limit so that the suite's 16-query concurrent test spans several batches.
    retriever = MicroBatchingRetriever(InMemoryBM25Retriever(passages), max_batch_size=4, max_wait_ms=1.0)
    try:
        yield retriever
    finally:
        await retriever.aclose()
