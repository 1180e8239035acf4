"""One argument to pick a retriever: ``load_retriever("indexes/wiki-bm25")``, ``load_retriever("http://host:8000")``.

Accepted specs:

- an index directory built by ``hopgym index build`` (its manifest names the backend);
- an ``http://`` or ``https://`` URL of a hopgym or Search-R1-style retrieval server;
- ``bm25:<corpus file>``: the ``bm25`` index backend (bm25s scores, hopgym's kernels) over that corpus,
  indexed in memory at load (no files written); needs the ``bm25`` extra;
- ``simple-bm25:<corpus file>``: the small pure-Python BM25 (no dependencies, for corpora of up to a few
  thousand passages), also in memory.

``memory:<corpus file>`` is the old name of ``simple-bm25:`` (deprecated).
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

from hopgym.errors import ConfigError
from hopgym.retrievers.base import Retriever
from hopgym.retrievers.corpus import iter_passages
from hopgym.retrievers.manifest import MANIFEST_NAME, open_index

__all__ = ["BM25", "SIMPLE_BM25", "aload_retriever", "load_retriever"]

_FORMS = (
    "an index directory (from `hopgym index build`), an http(s):// server URL, "
    "'bm25:<corpus file>' or 'simple-bm25:<corpus file>'"
)
SIMPLE_BM25 = "simple-bm25:"
BM25 = "bm25:"
_OLD_SIMPLE_BM25 = "memory:"


def load_retriever(spec: str | Path, **options: Any) -> Retriever:
    """Open the retriever ``spec`` names; ``options`` go to that backend (e.g. ``n_threads=2`` for bm25).

    Blocking: building in memory or opening a bm25 index (numba warm-up) takes seconds; in async code use
    :func:`aload_retriever`.
    """
    if isinstance(spec, Path):
        return _open_directory(spec, options)
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"retriever spec must be {_FORMS}; got {spec!r}")
    spec = spec.strip()
    lowered = spec.lower()
    if lowered.startswith(("http://", "https://")):
        from hopgym.retrievers.http import HttpRetriever

        return HttpRetriever(spec, **options)
    if lowered.startswith(_OLD_SIMPLE_BM25):
        warnings.warn(
            f"retriever spec {spec!r}: 'memory:' is now spelled 'simple-bm25:' (both 'bm25:' and "
            "'simple-bm25:' index in memory)",
            DeprecationWarning,
            stacklevel=2,
        )
        spec = SIMPLE_BM25 + spec[len(_OLD_SIMPLE_BM25) :]
        lowered = spec.lower()
    if lowered.startswith(SIMPLE_BM25):
        from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever

        return InMemoryBM25Retriever(list(iter_passages(_corpus_path(spec, SIMPLE_BM25))), **options)
    if lowered.startswith(BM25):
        from hopgym.retrievers.bm25.backend import BM25Retriever

        return BM25Retriever.from_passages(iter_passages(_corpus_path(spec, BM25)), **options)
    if "://" in spec:
        raise ConfigError(f"unsupported URL scheme in {spec!r}: use http:// or https://")
    return _open_directory(Path(spec), options)


async def aload_retriever(spec: str | Path, **options: Any) -> Retriever:
    """:func:`load_retriever` in a worker thread, so the event loop keeps running while it opens."""
    return await asyncio.to_thread(load_retriever, spec, **options)


def _corpus_path(spec: str, prefix: str) -> Path:
    path = spec[len(prefix) :].strip()
    if not path:
        raise ConfigError(f"{spec!r} names no corpus file: write {prefix}path/to/corpus.jsonl")
    return Path(path)


def _open_directory(path: Path, options: dict[str, Any]) -> Retriever:
    if not path.exists():
        raise ConfigError(f"retriever spec {str(path)!r} does not exist; it must be {_FORMS}")
    if path.is_file():
        raise ConfigError(
            f"{str(path)!r} is a file, not an index directory: build an index with `hopgym index build "
            f"--corpus {path} --out DIR`, or search it in memory with 'bm25:{path}'"
        )
    if not (path / MANIFEST_NAME).is_file():
        raise ConfigError(
            f"{str(path)!r} is not a hopgym index directory (no {MANIFEST_NAME}); "
            "build one with `hopgym index build`"
        )
    return open_index(path, **options)
