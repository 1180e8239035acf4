"""Conformance entry: the dense FAISS backend with the offline MiniLM encoder, built to an index directory and
reopened from its manifest. Encoding 300 passages takes tens of seconds on 2 cores, hence ``slow``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from hopgym.retrievers.base import Retriever
from hopgym.types import Passage

NAME = "dense"
MARKS = [pytest.mark.slow]


@contextlib.asynccontextmanager
async def open_retriever(passages: Sequence[Passage], workdir: Path) -> AsyncIterator[Retriever]:
    from hopgym.retrievers.manifest import build_index, open_index

    corpus = workdir / "corpus.jsonl"
    with corpus.open("w", encoding="utf-8") as fh:
        for p in passages:
            fh.write(json.dumps({"id": p.id, "title": p.title, "text": p.text}) + "\n")
    await asyncio.to_thread(build_index, "dense", corpus, workdir / "index")
    retriever = await asyncio.to_thread(open_index, workdir / "index")
    try:
        yield retriever
    finally:
        await retriever.aclose()
