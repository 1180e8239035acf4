"""The streaming score matrix must equal the one bm25s builds from in-memory token lists."""

from __future__ import annotations

import numpy as np
import pytest

from hopgym.errors import ConfigError
from hopgym.retrievers.bm25.matrix import BM25_METHODS, TermCounts, score_matrix

bm25s = pytest.importorskip("bm25s")

DOCS = [
    [0, 1, 2, 1],
    [2, 3],
    [4, 4, 4, 0, 5, 6],
    [],
    [1],
    [6, 5, 4, 3, 2, 1, 0, 0],
    [7, 2, 7],
]
N_VOCAB = 8


def _dense(data, indices, indptr, n_docs, n_vocab):
    dense = np.zeros((n_docs, n_vocab), dtype=np.float32)
    for term in range(n_vocab):
        for j in range(indptr[term], indptr[term + 1]):
            dense[indices[j], term] = data[j]
    return dense


def _build(docs, chunk_docs, **params):
    counts = TermCounts(chunk_docs=chunk_docs)
    for doc in docs:
        counts.add(doc)
    return score_matrix(*counts.finish(), n_vocab=N_VOCAB, **params)


@pytest.mark.parametrize("method", BM25_METHODS)
@pytest.mark.parametrize(("k1", "b"), [(0.9, 0.4), (1.5, 0.75), (1.2, 0.0)])
def test_matches_bm25s_index(method, k1, b):
    reference = bm25s.BM25(k1=k1, b=b, method=method)
    vocab = {f"t{i}": i for i in range(N_VOCAB)}
    reference.index((DOCS, vocab), show_progress=False, create_empty_token=False)
    ref = reference.scores

    ours = _build(DOCS, chunk_docs=3, k1=k1, b=b, method=method)

    assert ours.num_docs == ref["num_docs"] == len(DOCS)
    np.testing.assert_array_equal(ours.indptr, ref["indptr"])
    expected = _dense(ref["data"], ref["indices"], ref["indptr"], len(DOCS), N_VOCAB)
    actual = _dense(ours.data, ours.indices, ours.indptr, len(DOCS), N_VOCAB)
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=0)
    assert ours.data.dtype == np.float32 and ours.indices.dtype == np.int32 and ours.indptr.dtype == np.int64


def test_rows_ascend_within_each_column():
    m = _build(DOCS, chunk_docs=2, k1=0.9, b=0.4, method="lucene")
    for term in range(N_VOCAB):
        rows = m.indices[m.indptr[term] : m.indptr[term + 1]]
        assert list(rows) == sorted(rows)


def test_chunk_size_does_not_change_the_matrix():
    one = _build(DOCS, chunk_docs=1, k1=0.9, b=0.4, method="lucene")
    big = _build(DOCS, chunk_docs=10_000, k1=0.9, b=0.4, method="lucene")
    for a, b in ((one.data, big.data), (one.indices, big.indices), (one.indptr, big.indptr)):
        np.testing.assert_array_equal(a, b)


def test_term_counts_are_term_frequencies():
    counts = TermCounts(chunk_docs=2)
    counts.add([3, 1, 3, 3])
    counts.add([])
    counts.add([1])
    assert counts.num_docs == 3
    docs, terms, tfs, lengths = counts.finish()
    assert list(zip(docs.tolist(), terms.tolist(), tfs.tolist(), strict=True)) == [
        (0, 1, 1),
        (0, 3, 3),
        (2, 1, 1),
    ]
    assert lengths.tolist() == [4, 0, 1]


def test_lucene_score_by_hand():
    # One term in doc 0 (tf=2, dl=2) of a two-document corpus whose other doc has length 4: avgdl = 3.
    counts = TermCounts()
    counts.add([0, 0])
    counts.add([1, 1, 1, 1])
    m = score_matrix(*counts.finish(), n_vocab=2, k1=0.9, b=0.4, method="lucene")
    idf = np.log(1 + (2 - 1 + 0.5) / (1 + 0.5))
    expected = idf * 2 / (2 + 0.9 * (1 - 0.4 + 0.4 * 2 / 3))
    assert m.data[0] == pytest.approx(expected, rel=1e-6)
    assert m.avg_doc_len == 3.0


def test_unsupported_method_is_a_config_error():
    with pytest.raises(ConfigError, match="bm25l"):
        score_matrix(*TermCounts().finish(), n_vocab=0, k1=0.9, b=0.4, method="bm25l")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="chunk_docs"):
        TermCounts(chunk_docs=0)
