"""Streaming construction of the bm25s score matrix (pure numpy).

``bm25s.BM25.index`` wants every document's token list in memory at once. For large corpora the build instead
feeds one passage at a time to :class:`TermCounts`, which keeps only (doc, term, tf) triples in compact numpy
chunks, then :func:`score_matrix` computes the same CSC matrix bm25s would (term-major columns, documents as
rows, float32 scores, int32 row indices, int64 column pointers) so the result can be saved and searched by
bm25s unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from hopgym.errors import ConfigError

__all__ = ["BM25_METHODS", "BM25Method", "ScoreMatrix", "TermCounts", "score_matrix"]

BM25Method = Literal["lucene", "robertson", "atire"]
#: The bm25s scoring variants whose matrix holds the whole score (BM25L/BM25+ need a per-query correction).
BM25_METHODS: tuple[BM25Method, ...] = ("lucene", "robertson", "atire")


@dataclass(frozen=True)
class ScoreMatrix:
    """A CSC matrix (columns = terms) in the layout bm25s stores as ``scores``."""

    data: npt.NDArray[np.float32]
    indices: npt.NDArray[np.int32]
    indptr: npt.NDArray[np.int64]
    num_docs: int
    avg_doc_len: float


class TermCounts:
    """Per-document term frequencies, accumulated in chunks so raw token lists are never all kept."""

    def __init__(self, *, chunk_docs: int = 8192) -> None:
        if chunk_docs < 1:
            raise ConfigError(f"chunk_docs must be >= 1, got {chunk_docs}")
        self._chunk_docs = chunk_docs
        self._pending_tokens: list[int] = []
        self._pending_lengths: list[int] = []
        self._docs: list[npt.NDArray[np.int32]] = []
        self._terms: list[npt.NDArray[np.int32]] = []
        self._tfs: list[npt.NDArray[np.int32]] = []
        self._lengths: list[npt.NDArray[np.int32]] = []
        self._flushed = 0

    @property
    def num_docs(self) -> int:
        return self._flushed + len(self._pending_lengths)

    def add(self, term_ids: list[int]) -> None:
        """Record one document's term ids (in any order, repeats counted)."""
        self._pending_tokens.extend(term_ids)
        self._pending_lengths.append(len(term_ids))
        if len(self._pending_lengths) >= self._chunk_docs:
            self._flush()

    def _flush(self) -> None:
        if not self._pending_lengths:
            return
        lengths = np.asarray(self._pending_lengths, dtype=np.int64)
        first = self._flushed
        docs = np.repeat(np.arange(first, first + len(lengths), dtype=np.int64), lengths)
        tokens = np.asarray(self._pending_tokens, dtype=np.int64)
        # One sort of (doc, term) keys gives both the unique pairs and their counts, doc-major.
        keys, counts = np.unique((docs << 32) | tokens, return_counts=True)
        self._docs.append((keys >> 32).astype(np.int32))
        self._terms.append((keys & 0xFFFFFFFF).astype(np.int32))
        self._tfs.append(counts.astype(np.int32))
        self._lengths.append(lengths.astype(np.int32))
        self._flushed += len(lengths)
        self._pending_tokens = []
        self._pending_lengths = []

    def finish(
        self,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.int32]]:
        """(doc ids, term ids, term frequencies, document lengths), doc-major."""
        self._flush()

        def cat(parts: list[npt.NDArray[np.int32]]) -> npt.NDArray[np.int32]:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)

        result = (cat(self._docs), cat(self._terms), cat(self._tfs), cat(self._lengths))
        self._docs, self._terms, self._tfs, self._lengths = [], [], [], []
        return result


def _idf(df: npt.NDArray[np.int64], n_docs: int, method: BM25Method) -> npt.NDArray[np.float32]:
    # The variants of Kamphuis et al. (ECIR 2020), as bm25s computes them: float64, then stored as float32.
    dff = df.astype(np.float64)
    with np.errstate(divide="ignore"):
        if method == "lucene":
            idf = np.log1p((n_docs - dff + 0.5) / (dff + 0.5))
        elif method == "robertson":
            idf = np.log(np.maximum((n_docs - dff + 0.5) / (dff + 0.5), 1.0))
        else:  # atire
            idf = np.log(n_docs / dff)
    idf[df == 0] = 0.0
    return idf.astype(np.float32)


def score_matrix(
    docs: npt.NDArray[np.int32],
    terms: npt.NDArray[np.int32],
    tfs: npt.NDArray[np.int32],
    doc_lengths: npt.NDArray[np.int32],
    *,
    n_vocab: int,
    k1: float,
    b: float,
    method: BM25Method,
) -> ScoreMatrix:
    """The BM25 score of every (document, term) pair, as a term-major CSC matrix."""
    if method not in BM25_METHODS:
        raise ConfigError(f"method {method!r} is not supported; use one of {', '.join(BM25_METHODS)}")
    n_docs = len(doc_lengths)
    avg_doc_len = float(doc_lengths.mean()) if n_docs else 0.0
    df = np.bincount(terms, minlength=n_vocab).astype(np.int64)
    idf = _idf(df, n_docs, method)

    tf = tfs.astype(np.float64)
    # Empty documents have no pairs, so avg_doc_len is only 0 when there is nothing to score.
    norm = k1 * ((1 - b) + b * doc_lengths[docs].astype(np.float64) / (avg_doc_len or 1.0))
    tfc = tf * (k1 + 1) / (tf + norm) if method == "atire" else tf / (norm + tf)
    scores = (idf[terms].astype(np.float64) * tfc).astype(np.float32)

    # Input is doc-major; a stable sort on the term keeps rows ascending inside each column.
    order = np.argsort(terms, kind="stable")
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    return ScoreMatrix(
        data=scores[order],
        indices=docs[order].astype(np.int32),
        indptr=indptr,
        num_docs=n_docs,
        avg_doc_len=avg_doc_len,
    )
