"""The BM25 top-k kernels (exhaustive, and block-max pruned in several layouts) against exact scoring, on random
matrices and on the HotpotQA index.

Random matrices use multiples of 1/4 as scores: their float32 sums are exact in any order, so the reference
can be exact too, ties included (which the kernels must break by row).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from hopgym.retrievers.bm25 import blockmax as bm25_blockmax
from hopgym.retrievers.bm25 import topk as bm25_topk
from hopgym.retrievers.bm25.backend import BM25Retriever
from hopgym.retrievers.manifest import build_index, open_index

Matrix = tuple[np.ndarray, np.ndarray, np.ndarray]


def random_matrix(rng: np.random.Generator, n_docs: int, n_terms: int, *, negative: bool = False) -> Matrix:
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for t in range(n_terms):
        # From very rare to very common terms, so some queries prune and others do not.
        df = int(rng.integers(0, n_docs + 1)) if t % 3 else int(rng.integers(0, max(2, n_docs // 10)))
        rows = np.sort(rng.choice(n_docs, size=df, replace=False))
        values = rng.integers(1, 17, size=df) / 4.0
        if negative and t % 4 == 0:
            values = -values / 2
        indices += rows.tolist()
        data += values.tolist()
        indptr.append(len(indices))
    return (
        np.asarray(indptr, dtype=np.int64),
        np.asarray(indices, dtype=np.int32),
        np.asarray(data, dtype=np.float32),
    )


def reference(matrix: Matrix, n_docs: int, query: list[int], k: int) -> list[tuple[int, float]]:
    indptr, indices, data = matrix
    scores = np.zeros(n_docs, dtype=np.float64)
    for t in query:
        scores[indices[indptr[t] : indptr[t + 1]]] += data[indptr[t] : indptr[t + 1]]
    ranked = sorted((-s, row) for row, s in enumerate(scores.tolist()) if s > 0)
    return [(row, -neg) for neg, row in ranked[:k]]


# Block layouts the pruned kernel must give the same answers with: no dense term (every term scored from its
# postings, bounds from partial sums), the default, every term dense (only the block-bound path), and a
# memory budget that keeps some frequent terms sparse.
LAYOUTS = {
    "no-dense": {"block_rows": 4, "memory_bytes": 0},
    "default": {},
    "all-dense-1-row": {"block_rows": 1, "dense_min_fill": 0.0},
    "all-dense-16-rows": {"block_rows": 16, "dense_min_fill": 0.0},
    "budget": {"block_rows": 2, "dense_min_fill": 0.0, "memory_bytes": 3000},
}


def kernel(matrix: Matrix, n_docs: int, queries: list[list[int]], k: int, *, layout: str | None):
    """Hits of each query from the exhaustive kernel (``layout`` None) or the pruned one."""
    if layout is None:
        workspace = bm25_topk.Workspace(n_docs)
        rows, scores, counts = bm25_topk.search_batch(matrix, queries, k, workspace)
        arrays = [workspace.acc, workspace.flags]
    else:
        bounds = bm25_topk.column_bounds(matrix[0], matrix[2])
        blocks = bm25_blockmax.build_block_bounds(matrix, n_docs, **LAYOUTS[layout])
        workspace = bm25_blockmax.BlockWorkspace(n_docs, blocks)
        rows, scores, counts = bm25_blockmax.search_batch(matrix, bounds, blocks, queries, k, workspace)
        arrays = [workspace.acc, workspace.flags, workspace.done]
    # The workspace is left clean for the next call.
    assert not any(a.any() for a in arrays)
    return [
        [(int(r), float(s)) for r, s in zip(rows[q, :n], scores[q, :n], strict=True)]
        for q, n in enumerate(counts)
    ]


@pytest.mark.parametrize("negative", [False, True], ids=["positive", "with-negative-scores"])
def test_kernel_matches_exhaustive_scoring_with_ties_broken_by_row(negative: bool) -> None:
    rng = np.random.default_rng(7 if negative else 3)
    cases = 0
    for _ in range(60):
        n_docs = int(rng.integers(1, 400))
        n_terms = int(rng.integers(1, 30))
        matrix = random_matrix(rng, n_docs, n_terms, negative=negative)
        queries = [
            rng.integers(0, n_terms, size=int(rng.integers(0, 12))).tolist()  # repeats count twice
            for _ in range(20)
        ]
        for k in (1, 3, 10, n_docs + 5):
            expected = [reference(matrix, n_docs, q, k) for q in queries]
            for layout in (None, *LAYOUTS):
                assert kernel(matrix, n_docs, queries, k, layout=layout) == expected, layout
                cases += len(queries)
    assert cases == 60 * 20 * 4 * (1 + len(LAYOUTS))


def test_pruning_changes_nothing_on_a_skewed_matrix() -> None:
    # Rare high-scoring terms and long low-scoring lists: the case pruning is for.
    rng = np.random.default_rng(11)
    n_docs, n_terms = 5000, 12
    indptr, indices, data = [0], [], []
    for t in range(n_terms):
        df = 20 if t < 4 else 3000
        rows = np.sort(rng.choice(n_docs, size=df, replace=False))
        values = rng.integers(8, 17, size=df) / 4.0 if t < 4 else rng.integers(1, 3, size=df) / 4.0
        indices += rows.tolist()
        data += values.tolist()
        indptr.append(len(indices))
    matrix = (np.asarray(indptr), np.asarray(indices, dtype=np.int32), np.asarray(data, dtype=np.float32))
    queries = [list(range(n_terms)), [0, 5, 6, 7, 8], [1, 2, 9, 10, 11, 4]]
    for k in (1, 3, 7):
        expected = [reference(matrix, n_docs, q, k) for q in queries]
        for layout in (None, *LAYOUTS):
            assert kernel(matrix, n_docs, queries, k, layout=layout) == expected, layout


@pytest.fixture(scope="module")
def hotpot_index(tmp_path_factory: pytest.TempPathFactory, hotpot_corpus: Path) -> Path:
    out = tmp_path_factory.mktemp("bm25-topk") / "index"
    build_index("bm25", hotpot_corpus, out)
    return out


def test_pruned_and_exhaustive_search_agree_on_every_hotpotqa_question(
    hotpot_index: Path, hotpot_questions: list[str]
) -> None:
    pruned = open_index(hotpot_index)
    exhaustive = open_index(hotpot_index, pruning=False)
    assert isinstance(pruned, BM25Retriever) and isinstance(exhaustive, BM25Retriever)
    for k in (1, 3, 10):
        a = pruned._search_rows(hotpot_questions, k)
        b = exhaustive._search_rows(hotpot_questions, k)
        assert a == b
        assert all(len(hits) == k for hits in a[:50])  # real questions match something
        for hits in a:
            keys = [(-s, r) for r, s in hits]
            assert keys == sorted(keys)


def test_scores_match_bm25s_own_retrieve(hotpot_index: Path, hotpot_questions: list[str]) -> None:
    retriever = open_index(hotpot_index)
    assert isinstance(retriever, BM25Retriever)
    questions = hotpot_questions[:200]
    ours = retriever._search_rows(questions, 10)
    token_ids = [retriever._tokenizer.encode_query(q) for q in questions]
    theirs = retriever._model.retrieve(token_ids, k=10, show_progress=False, return_as="tuple", n_threads=1)
    for q, hits in enumerate(ours):
        ref = dict(zip(theirs.documents[q].tolist(), theirs.scores[q].tolist(), strict=True))
        kth = float(theirs.scores[q][-1])
        for row, score in hits:
            if score > kth + 1e-4:  # clear of any tie at the cut, bm25s must have it with the same score
                assert ref[row] == pytest.approx(score, rel=1e-5)
        assert [s for _, s in hits] == pytest.approx(
            sorted(ref.values(), reverse=True)[: len(hits)], rel=1e-5
        )


def test_threads_and_concurrent_callers_get_the_same_results(
    hotpot_index: Path, hotpot_questions: list[str]
) -> None:
    serial = open_index(hotpot_index)
    threaded = open_index(hotpot_index, n_threads=2)
    assert isinstance(serial, BM25Retriever) and isinstance(threaded, BM25Retriever)
    expected = serial._search_rows(hotpot_questions, 3)
    assert threaded._search_rows(hotpot_questions, 3) == expected

    results: dict[int, list[list[tuple[int, float]]]] = {}

    def run(i: int) -> None:
        part = hotpot_questions[i::4]
        results[i] = serial._search_rows(part, 3)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for i in range(4):
        assert results[i] == expected[i::4]
