"""Conformance entry: the pure-Python in-memory BM25 retriever."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from hopgym.retrievers.base import Retriever
from hopgym.types import Passage

NAME = "memory"


@contextlib.asynccontextmanager
async def open_retriever(passages: Sequence[Passage], workdir: Path) -> AsyncIterator[Retriever]:
    from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever

    retriever = InMemoryBM25Retriever(passages)
    try:
        yield retriever
    finally:
        await retriever.aclose()
