"""Conformance entry: HttpRetriever talking to a real hopgym retriever server (uvicorn on a loopback port)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from hopgym.retrievers.base import Retriever
from hopgym.types import Passage

NAME = "http"


@contextlib.asynccontextmanager
async def open_retriever(passages: Sequence[Passage], workdir: Path) -> AsyncIterator[Retriever]:
    from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
    from hopgym.retrievers.http import HttpRetriever
    from hopgym.retrievers.server.app import ServerConfig, create_app, running_server

    app = create_app(InMemoryBM25Retriever(passages), ServerConfig(max_wait_ms=1.0), close_retriever=True)
    async with running_server(app) as base_url:
        retriever = HttpRetriever(base_url, timeout_s=10.0)
        try:
            yield retriever
        finally:
            await retriever.aclose()
