"""Conformance entry: the bm25s backend, built to an index directory and reopened from its manifest."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from hopgym.retrievers.base import Retriever
from hopgym.types import Passage

NAME = "bm25"


@contextlib.asynccontextmanager
async def open_retriever(passages: Sequence[Passage], workdir: Path) -> AsyncIterator[Retriever]:
    from hopgym.retrievers.manifest import build_index, open_index

    corpus = workdir / "corpus.jsonl"
    with corpus.open("w", encoding="utf-8") as fh:
        for p in passages:
            fh.write(json.dumps({"id": p.id, "title": p.title, "text": p.text}) + "\n")
    build_index("bm25", corpus, workdir / "index")
    retriever = open_index(workdir / "index")
    try:
        yield retriever
    finally:
        await retriever.aclose()
