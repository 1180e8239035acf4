"""Conformance entry: reciprocal-rank fusion of the in-memory BM25 and the bm25s retriever."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from hopgym.retrievers.base import Retriever
from hopgym.types import Passage

NAME = "hybrid"


@contextlib.asynccontextmanager
async def open_retriever(passages: Sequence[Passage], workdir: Path) -> AsyncIterator[Retriever]:
    from hopgym.retrievers.bm25.backend import BM25Retriever
    from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
    from hopgym.retrievers.wrappers.hybrid import HybridRetriever

    retriever = HybridRetriever(InMemoryBM25Retriever(passages), BM25Retriever.from_passages(passages))
    try:
        yield retriever
    finally:
        await retriever.aclose()
