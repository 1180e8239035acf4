"""Conformance entry: the in-memory BM25 retriever behind the LRU cache."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from hopgym.retrievers.base import Retriever
from hopgym.types import Passage

NAME = "cached"


@contextlib.asynccontextmanager
async def open_retriever(passages: Sequence[Passage], workdir: Path) -> AsyncIterator[Retriever]:
    from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
    from hopgym.retrievers.wrappers.cache import CachedRetriever

    # A tiny cache, so that evictions happen during the suite as well as hits.
    retriever = CachedRetriever(InMemoryBM25Retriever(passages), max_entries=8)
    try:
        yield retriever
    finally:
        await retriever.aclose()
