"""Retrievers: the ``Retriever`` contract, ``load_retriever`` and the wrappers, around five families.

The face of the package: ``from hopgym.retrievers import Retriever, load_retriever, MicroBatchingRetriever``.
Families live in subpackages (``bm25``, ``dense``, ``elasticsearch``, ``server``, ``wrappers``) around the
shared core (``base``, ``corpus``, ``manifest``, ``passage_store``, ``loading``, ``http``). Importing this
package loads only the contract; every other name imports its module on first use, so no backend's
dependencies (numba, torch, faiss, elasticsearch, httpx) load until needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hopgym.lazy import lazy_exports
from hopgym.retrievers.base import Retriever
from hopgym.types import Passage

if TYPE_CHECKING:
    from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
    from hopgym.retrievers.corpus import iter_passages
    from hopgym.retrievers.http import HttpRetriever, HttpRetrieverConfig
    from hopgym.retrievers.loading import aload_retriever, load_retriever
    from hopgym.retrievers.manifest import build_index, open_index, register_backend
    from hopgym.retrievers.wrappers.batching import MicroBatchingRetriever
    from hopgym.retrievers.wrappers.cache import CachedRetriever
    from hopgym.retrievers.wrappers.hybrid import HybridRetriever, RRFConfig
    from hopgym.retrievers.wrappers.timeout import TimeoutRetriever

_LAZY = {
    "load_retriever": "hopgym.retrievers.loading",
    "aload_retriever": "hopgym.retrievers.loading",
    "build_index": "hopgym.retrievers.manifest",
    "open_index": "hopgym.retrievers.manifest",
    "register_backend": "hopgym.retrievers.manifest",
    "iter_passages": "hopgym.retrievers.corpus",
    "HttpRetriever": "hopgym.retrievers.http",
    "HttpRetrieverConfig": "hopgym.retrievers.http",
    "InMemoryBM25Retriever": "hopgym.retrievers.bm25.simple",
    "MicroBatchingRetriever": "hopgym.retrievers.wrappers.batching",
    "CachedRetriever": "hopgym.retrievers.wrappers.cache",
    "TimeoutRetriever": "hopgym.retrievers.wrappers.timeout",
    "HybridRetriever": "hopgym.retrievers.wrappers.hybrid",
    "RRFConfig": "hopgym.retrievers.wrappers.hybrid",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "CachedRetriever",
    "HttpRetriever",
    "HttpRetrieverConfig",
    "HybridRetriever",
    "InMemoryBM25Retriever",
    "MicroBatchingRetriever",
    "Passage",
    "RRFConfig",
    "Retriever",
    "TimeoutRetriever",
    "aload_retriever",
    "build_index",
    "iter_passages",
    "load_retriever",
    "open_index",
    "register_backend",
]
