"""Exact exhaustive top-k BM25 over the bm25s score matrix, and the pieces both kernels share (numba, no GIL).

bm25s scores every document that any query term touches, then selects the top k from an array as long as the
corpus. This kernel accumulates the same scores term by term into a per-thread array, then offers each touched
row once to a k-entry heap, so there is no corpus-wide selection. It is the reference the pruned kernel
(``bm25_blockmax``) must match bit for bit, and what that kernel falls back to for a query with a negative
column score (the ``robertson`` idf can be negative, and then partial sums are no lower bounds).

Both kernels sum a row's score term by term in one order, fewest postings first (ties by term id), so a row's
float32 score is the same whichever kernel computes it; ties are broken by row.

The loops over postings index with unsigned integers: numba wraps a negative signed index around, a compare
and select on every access, which unsigned ones skip (about a fifth of the pruned kernel's time on a 200k
corpus).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["Workspace", "batch_arrays", "column_bounds", "search_batch"]


class Workspace:
    """Per-thread scratch arrays the size of the corpus; reused across queries (they are left zeroed)."""

    def __init__(self, num_docs: int) -> None:
        self.acc = np.zeros(max(num_docs, 1), dtype=np.float32)  # partial scores
        self.flags = np.zeros(max(num_docs, 1), dtype=np.uint8)  # _IN_HEAP: the row is in the top-k heap


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def column_bounds(indptr: Any, data: Any) -> tuple[Any, Any]:
    """Per-term (max, min) of its scores; 0 for a term with no postings."""
    n_terms = len(indptr) - 1
    hi = np.zeros(n_terms, dtype=np.float32)
    lo = np.zeros(n_terms, dtype=np.float32)
    for t in range(n_terms):
        start, end = indptr[t], indptr[t + 1]
        if end > start:
            mx = data[start]
            mn = data[start]
            for p in range(start + 1, end):
                v = data[p]
                if v > mx:
                    mx = v
                if v < mn:
                    mn = v
            hi[t] = mx
            lo[t] = mn
    return hi, lo


# The heap keeps the k best (score, row) pairs seen so far with the worst on top: "better" means a higher
# score, or the same score and a lower row, so the final order breaks ties by row.
@numba.njit(nogil=True, cache=True, inline="always")  # type: ignore[untyped-decorator]
def _better(v: float, d: int, u: float, e: int) -> bool:
    return v > u or (v == u and d < e)


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _sift_down(vals: Any, docs: Any, size: int, i: int) -> None:
    while True:
        worst = i
        left = 2 * i + 1
        right = left + 1
        if left < size and _better(vals[worst], docs[worst], vals[left], docs[left]):
            worst = left
        if right < size and _better(vals[worst], docs[worst], vals[right], docs[right]):
            worst = right
        if worst == i:
            return
        vals[i], vals[worst] = vals[worst], vals[i]
        docs[i], docs[worst] = docs[worst], docs[i]
        i = worst


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _sift_up(vals: Any, docs: Any, i: int) -> None:
    while i > 0:
        parent = (i - 1) // 2
        if _better(vals[parent], docs[parent], vals[i], docs[i]):
            vals[i], vals[parent] = vals[parent], vals[i]
            docs[i], docs[parent] = docs[parent], docs[i]
            i = parent
        else:
            return


_IN_HEAP = 1


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _offer(heap_vals: Any, heap_docs: Any, size: int, k: int, flags: Any, acc: Any, d: int, v: float) -> int:
    """Offer row ``d`` with its current partial score ``v`` to a heap of partial scores.

    Entries may hold a stale (lower) score for a row updated since it went in. A stale top is refreshed before
    it is compared, which keeps the invariant: every row outside the heap scores at most its top.
    """
    if flags[d] & _IN_HEAP:
        return size
    if size < k:
        heap_vals[size] = v
        heap_docs[size] = d
        flags[d] |= _IN_HEAP
        _sift_up(heap_vals, heap_docs, size)
        return size + 1
    if not _better(v, d, heap_vals[0], heap_docs[0]):
        return size
    while heap_vals[0] != acc[heap_docs[0]]:
        heap_vals[0] = acc[heap_docs[0]]
        _sift_down(heap_vals, heap_docs, size, 0)
    if _better(v, d, heap_vals[0], heap_docs[0]):
        flags[heap_docs[0]] &= ~_IN_HEAP
        heap_vals[0] = v
        heap_docs[0] = d
        flags[d] |= _IN_HEAP
        _sift_down(heap_vals, heap_docs, size, 0)
    return size


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _refresh(heap_vals: Any, heap_docs: Any, size: int, acc: Any) -> None:
    """Bring stale heap entries up to the rows' current scores and restore the heap order."""
    for i in range(size):
        heap_vals[i] = acc[heap_docs[i]]
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(heap_vals, heap_docs, size, i)


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def query_terms(indptr: Any, raw_terms: Any) -> tuple[Any, Any]:
    """The query's distinct terms in summation order (fewest postings first, ties by term id) and their
    weights: a repeated query term counts once per occurrence, as in bm25s and Lucene."""
    sorted_terms = np.sort(raw_terms)
    terms = np.empty(len(sorted_terms), dtype=np.int64)
    weights = np.empty(len(sorted_terms), dtype=np.float32)
    m = 0
    for i in range(len(sorted_terms)):
        if m > 0 and terms[m - 1] == sorted_terms[i]:
            weights[m - 1] += 1.0
        else:
            terms[m] = sorted_terms[i]
            weights[m] = 1.0
            m += 1
    postings = np.empty(m, dtype=np.int64)
    for i in range(m):
        postings[i] = indptr[terms[i] + 1] - indptr[terms[i]]
    order = np.argsort(postings, kind="mergesort")  # stable: ties stay in term id order
    return terms[:m][order], weights[:m][order]


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _push(heap_vals: Any, heap_docs: Any, size: int, k: int, d: int, v: float) -> int:
    """Offer row ``d`` with its final score ``v`` to the top-k heap; returns the new heap size."""
    if size < k:
        heap_vals[size] = v
        heap_docs[size] = d
        _sift_up(heap_vals, heap_docs, size)
        return size + 1
    if _better(v, d, heap_vals[0], heap_docs[0]):
        heap_vals[0] = v
        heap_docs[0] = d
        _sift_down(heap_vals, heap_docs, size, 0)
    return size


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _drain(heap_vals: Any, heap_docs: Any, size: int, rows_out: Any, scores_out: Any) -> int:
    """Write the heap best to worst; returns the number of hits scoring above 0 (the others are dropped)."""
    # Pop the worst entry into the last free slot until the heap is empty.
    for last in range(size - 1, -1, -1):
        rows_out[last] = heap_docs[0]
        scores_out[last] = heap_vals[0]
        heap_vals[0] = heap_vals[last]
        heap_docs[0] = heap_docs[last]
        _sift_down(heap_vals, heap_docs, last, 0)
    count = 0
    while count < size and scores_out[count] > 0.0:
        count += 1
    return count


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def exhaustive_one(
    indptr: Any, indices: Any, data: Any, raw_terms: Any, k: int, acc: Any, flags: Any, rows_out: Any,
    scores_out: Any,
) -> Any:  # fmt: skip
    """Score every posting of the query's terms; returns the hit count.

    With no negative score, rows are offered to a heap of partial sums as they grow (a sum can only rise, so
    only a row at least the heap's top can end in the top k). Otherwise each touched row is offered once, with
    its final score, after all terms.
    """
    if len(raw_terms) == 0:
        return 0
    terms, weights = query_terms(indptr, raw_terms)
    heap_vals = np.empty(k, dtype=np.float32)
    heap_docs = np.empty(k, dtype=np.int64)
    size = 0
    monotone = True
    for j in range(len(terms)):
        t = terms[j]
        w = weights[j]
        floor = heap_vals[0] if size == k else -np.inf
        for p in range(np.uint64(indptr[t]), np.uint64(indptr[t + 1])):
            d = np.uint64(indices[p])
            v = acc[d] + w * data[p]
            acc[d] = v
            if data[p] < 0.0:
                monotone = False
            if monotone and v >= floor:
                size = _offer(heap_vals, heap_docs, size, k, flags, acc, np.int64(d), v)
                if size == k:
                    floor = heap_vals[0]
    if monotone:
        _refresh(heap_vals, heap_docs, size, acc)
    else:
        for i in range(size):
            flags[heap_docs[i]] = 0
        size = 0
        for j in range(len(terms)):
            t = terms[j]
            for p in range(np.uint64(indptr[t]), np.uint64(indptr[t + 1])):
                row = np.int64(indices[p])
                size = _offer(heap_vals, heap_docs, size, k, flags, acc, row, acc[row])
    # Leave the workspace zeroed for the next query.
    for j in range(len(terms)):
        t = terms[j]
        for p in range(np.uint64(indptr[t]), np.uint64(indptr[t + 1])):
            d = np.uint64(indices[p])
            acc[d] = 0.0
            flags[d] = 0
    return _drain(heap_vals, heap_docs, size, rows_out, scores_out)


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _search_range(
    indptr: Any, indices: Any, data: Any, query_ptr: Any, query_terms: Any, k: int, acc: Any, flags: Any,
    rows_out: Any, scores_out: Any, counts_out: Any,
) -> None:  # fmt: skip
    for q in range(len(query_ptr) - 1):
        counts_out[q] = exhaustive_one(
            indptr, indices, data, query_terms[query_ptr[q] : query_ptr[q + 1]], k, acc, flags,
            rows_out[q], scores_out[q],
        )  # fmt: skip


def batch_arrays(
    queries: list[list[int]], k: int
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32],
    npt.NDArray[np.int64],
]:  # fmt: skip
    """The queries flattened (offsets, term ids) and the empty (rows, scores, counts) outputs of a batch."""
    n = len(queries)
    query_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(q) for q in queries], out=query_ptr[1:])
    flat = np.fromiter((t for q in queries for t in q), dtype=np.int64, count=int(query_ptr[-1]))
    rows = np.full((n, k), -1, dtype=np.int64)
    scores = np.zeros((n, k), dtype=np.float32)
    counts = np.zeros(n, dtype=np.int64)
    return query_ptr, flat, rows, scores, counts


def search_batch(
    matrix: tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float32]],
    queries: list[list[int]],
    k: int,
    workspace: Workspace,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Top ``k`` rows of each query (lists of term ids): (rows, scores, counts) with shape (n, k), (n, k), (n,).

    Row ``q`` holds ``counts[q]`` hits by descending score, then ascending row; documents scoring 0 (no
    shared term) are never returned. Runs without the GIL; a workspace serves one call at a time.
    """
    indptr, indices, data = matrix
    query_ptr, flat, rows, scores, counts = batch_arrays(queries, k)
    _search_range(
        indptr, indices, data, query_ptr, flat, k, workspace.acc, workspace.flags, rows, scores, counts
    )
    return rows, scores, counts
