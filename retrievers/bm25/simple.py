"""A dependency-free BM25 retriever over passages held in memory (HopWorld, tests, small corpora).

Scoring follows Lucene's BM25 (the one Pyserini, and so Search-R1, uses): ``idf = ln(1 + (N - df + 0.5) /
(df + 0.5))`` and ``idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))`` summed over query tokens (a token
repeated in the query counts again). The title is indexed together with the text, as in Search-R1's
``contents`` field. Tokens are lowercased runs of unicode word characters minus a small stopword list;
there is no stemming, so exact names stay distinguishable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from hopgym.errors import ConfigError, RetrieverError
from hopgym.retrievers.search_args import check_search_args
from hopgym.types import Passage

__all__ = ["STOPWORDS", "InMemoryBM25Retriever", "tokenize"]

logger = logging.getLogger(__name__)

#: Function words that carry no retrieval signal; deliberately short so that content words are never lost.
_STOPWORD_TEXT = (
    "a an and are as at be been but by did do does for from had has have he her his how i if in into is "
    "it its of on or she so than that the their them then there these they this those to was were what when "
    "where which who whom whose why will with"
)
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())

_TOKEN_RE = re.compile(r"\w+")

# Below this much work (queries x passages) a thread hop costs more than the search itself.
_INLINE_WORK_LIMIT = 20_000


def tokenize(text: str) -> list[str]:
    """Lowercased unicode word tokens of ``text`` without stopwords."""
    return [t for t in _TOKEN_RE.findall(text.lower()) if t not in STOPWORDS]


@dataclasses.dataclass(frozen=True)
class _Postings:
    doc_ids: npt.NDArray[np.int64]
    # The BM25 contribution of this term to each document: it does not depend on the query.
    weights: npt.NDArray[np.float64]


class InMemoryBM25Retriever:
    """BM25 over ``passages`` (k1=0.9, b=0.4: the Pyserini and Search-R1 defaults).

    Ties are broken by passage order. Results are copies of the input passages with ``score`` set.
    """

    def __init__(self, passages: Sequence[Passage], *, k1: float = 0.9, b: float = 0.4) -> None:
        if not (math.isfinite(k1) and k1 >= 0):
            raise ConfigError(
                f"k1={k1!r} is invalid: BM25 term saturation must be a finite number >= 0 (0.9 is usual)"
            )
        if not (0.0 <= b <= 1.0):
            raise ConfigError(
                f"b={b!r} is invalid: BM25 length normalisation must lie in [0, 1] (0.4 is usual)"
            )
        self.k1 = k1
        self.b = b
        self._passages: tuple[Passage, ...] | None = tuple(passages)
        self._index = self._build_index(self._passages)

    def _build_index(self, passages: Sequence[Passage]) -> dict[str, _Postings]:
        term_docs: dict[str, list[int]] = {}
        term_tfs: dict[str, list[int]] = {}
        lengths = np.zeros(len(passages), dtype=np.float64)
        for doc_id, passage in enumerate(passages):
            tokens = tokenize(f"{passage.title} {passage.text}")
            lengths[doc_id] = len(tokens)
            for term, tf in Counter(tokens).items():
                term_docs.setdefault(term, []).append(doc_id)
                term_tfs.setdefault(term, []).append(tf)
        n_docs = len(passages)
        avgdl = float(lengths.mean()) if n_docs and lengths.sum() > 0 else 1.0
        norms = self.k1 * (1.0 - self.b + self.b * lengths / avgdl)
        index: dict[str, _Postings] = {}
        for term, docs in term_docs.items():
            doc_ids = np.asarray(docs, dtype=np.int64)
            tfs = np.asarray(term_tfs[term], dtype=np.float64)
            df = len(docs)
            idf = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
            index[term] = _Postings(doc_ids, idf * tfs / (tfs + norms[doc_ids]))
        logger.debug("indexed %d passages, %d terms", n_docs, len(index))
        return index

    def __len__(self) -> int:
        return len(self._passages or ())

    @property
    def closed(self) -> bool:
        return self._passages is None

    def search_sync(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        """The blocking form of :meth:`search`, for callers outside an event loop."""
        queries = check_search_args(queries, k)
        passages, index = self._index_or_raise()
        return [_search_one(passages, index, q, k) for q in queries]

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        queries = check_search_args(queries, k)
        passages, index = self._index_or_raise()
        if len(queries) * max(len(passages), 1) <= _INLINE_WORK_LIMIT:
            return [_search_one(passages, index, q, k) for q in queries]
        return await asyncio.to_thread(lambda: [_search_one(passages, index, q, k) for q in queries])

    async def aclose(self) -> None:
        self._passages = None
        self._index = {}

    def _index_or_raise(self) -> tuple[tuple[Passage, ...], dict[str, _Postings]]:
        if self._passages is None:
            raise RetrieverError("InMemoryBM25Retriever is closed; create a new one to search again")
        # Searches hold on to these two, so a concurrent aclose() cannot pull the index from under them.
        return self._passages, self._index


def _search_one(
    passages: tuple[Passage, ...], index: dict[str, _Postings], query: str, k: int
) -> list[Passage]:
    postings = [index[t] for t in tokenize(query) if t in index]
    if not postings:
        return []
    doc_ids = np.concatenate([p.doc_ids for p in postings])
    weights = np.concatenate([p.weights for p in postings])
    candidates, inverse = np.unique(doc_ids, return_inverse=True)
    scores = np.bincount(inverse, weights=weights)
    # lexsort sorts by its last key first: best score, then earliest passage (candidates are ascending).
    order = np.lexsort((candidates, -scores))[:k]
    return [dataclasses.replace(passages[int(candidates[i])], score=float(scores[i])) for i in order]
