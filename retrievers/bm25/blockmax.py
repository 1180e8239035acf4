"""Exact top-k BM25 with block-max bounds (numba, releases the GIL).

Rows (passages) are grouped into blocks of ``block_rows`` consecutive rows. The *dense* terms, the most frequent
ones (chosen when the index opens, within a memory budget), get a precomputed row of their largest score in
each block (quantized up to uint8 against the term's own maximum, so still an upper bound) and the offset of
each block's first posting. The other, *sparse*, terms have short posting lists. In the kernels' term order
(fewest postings first) the dense terms of a query always come last. A query then runs:

1. Sparse terms, term at a time: exact partial scores per row, and the k best partial sums in a heap (a
   row's final score is at least its partial sum, so theta, the final k-th score, is at least the heap's).
   Rows whose partial sum comes within ``dense_top`` (the most the dense terms can add) of the heap are noted.
2. The blocks of the k best partial sums are scored exactly: theta gets a first value.
3. The noted rows whose partial sum plus their block's dense maxima can still reach theta: their blocks are
   scored by decreasing bound, in bands, so theta rises early and the rest are skipped.
4. Rows no sparse term touched score at most ``dense_top``; only when that can reach theta (queries made
   mostly of frequent words) are the remaining blocks bounded (best partial sum plus dense maxima, a
   vectorized pass) and scored by decreasing bound.

This is the document-range block-max idea of BMP (Mallia, Suel & Tonellotto, SIGIR 2024) on a term-major
index, with MaxScore's split into essential (sparse) and non-essential (dense) terms. A block is scored by
adding the dense terms, in order, to the rows' partial sums, so each row's score is bit for bit the one the
exhaustive kernel (``bm25_topk``) gives; ties are broken by row. Work is skipped only when a bound, with a
relative slack above float32 rounding, is strictly below theta, so the result is exactly the top k of
exhaustive scoring. Queries with a negative column score go to the exhaustive kernel: partial sums are lower
bounds only when no score is negative. The loops over postings index with unsigned integers, for the reason
``bm25_topk`` gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from hopgym.retrievers.bm25.topk import (
    _drain,
    _offer,
    _push,
    batch_arrays,
    exhaustive_one,
    query_terms,
)

__all__ = ["BlockBounds", "BlockWorkspace", "build_block_bounds", "default_block_rows", "search_batch"]

_SLACK = 1.0 + 1e-4
_EPS = 1e-7
# The first pass evaluates the blocks whose bound is within this fraction of the best bound; the k-th best
# score is typically 0.6-0.9 of it, so a handful of blocks give a theta that prunes most of the rest.
_FIRST_PASS = 0.85
_BAND = 0.1
# A term is dense (precomputed block maxima) when it has at least this many postings per block of the corpus.
_DENSE_MIN_FILL = 0.25


def default_block_rows(num_docs: int) -> int:
    """4 rows a block up to ~1M passages; larger blocks beyond, so the bounds stay at most 2^18 per term."""
    rows = 4
    while num_docs > rows * (1 << 18):
        rows *= 2
    return rows


@dataclass(frozen=True)
class BlockBounds:
    """Per-block maxima of the frequent terms; see the module docstring."""

    block_rows: int  # a power of two
    n_blocks: int
    slot: npt.NDArray[np.int32]  # per term: its row in ``maxq``/``starts``, or -1 (not dense)
    scale: npt.NDArray[np.float64]  # per dense term: the score one unit of ``maxq`` stands for
    maxq: npt.NDArray[np.uint8]  # (dense terms, n_blocks): block maxima, rounded up
    starts: npt.NDArray[np.int32]  # (dense terms, n_blocks + 1): offset of each block's first posting

    @property
    def nbytes(self) -> int:
        return int(self.slot.nbytes + self.scale.nbytes + self.maxq.nbytes + self.starts.nbytes)


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _fill_dense(
    indptr: Any, indices: Any, data: Any, dense_terms: Any, shift: int, maxq: Any, starts: Any, scale: Any
) -> None:
    n_blocks = maxq.shape[1]
    for s in range(len(dense_terms)):
        t = dense_terms[s]
        begin, end = indptr[t], indptr[t + 1]
        top = 0.0
        for p in range(begin, end):
            top = max(top, float(data[p]))
        # Slightly above max/255 so that max / scale stays below 255 after rounding.
        unit = top / 255.0 * (1.0 + 1e-6) if top > 0.0 else 1.0
        scale[s] = unit
        p = begin
        for b in range(n_blocks):
            starts[s, b] = p - begin
            limit = (b + 1) << shift
            mx = 0.0
            while p < end and indices[p] < limit:
                mx = max(mx, float(data[p]))
                p += 1
            q = np.ceil(mx / unit) if mx > 0.0 else 0.0
            maxq[s, b] = np.uint8(min(q, 255.0))
        starts[s, n_blocks] = end - begin


def build_block_bounds(
    matrix: tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float32]],
    num_docs: int,
    *,
    block_rows: int | None = None,
    memory_bytes: int = 256 << 20,
    dense_min_fill: float = _DENSE_MIN_FILL,
) -> BlockBounds:
    """Block maxima of the most frequent terms (those with at least ``dense_min_fill`` postings per block),
    most frequent first, within ``memory_bytes`` (5 bytes per block per term)."""
    indptr, indices, data = matrix
    rows = default_block_rows(num_docs) if block_rows is None else block_rows
    if rows < 1 or rows & (rows - 1):
        raise ValueError(f"block_rows must be a power of two, got {rows}")
    shift = rows.bit_length() - 1
    n_blocks = max(1, -(-num_docs // rows))
    df = np.diff(indptr)
    per_term = 5 * n_blocks + 4
    budget_terms = max(0, memory_bytes // per_term)
    frequent = np.flatnonzero(df >= max(1.0, dense_min_fill * n_blocks))
    # The most frequent first, ties by higher term id: the dense terms are then always the last ones of a
    # query in the kernels' term order (postings ascending, then term id ascending).
    dense_terms = frequent[np.lexsort((-frequent, -df[frequent]))][:budget_terms]
    dense_terms = np.sort(dense_terms).astype(np.int64)
    slot = np.full(len(df), -1, dtype=np.int32)
    slot[dense_terms] = np.arange(len(dense_terms), dtype=np.int32)
    maxq = np.zeros((len(dense_terms), n_blocks), dtype=np.uint8)
    starts = np.zeros((len(dense_terms), n_blocks + 1), dtype=np.int32)
    scale = np.ones(len(dense_terms), dtype=np.float64)
    if len(dense_terms):
        _fill_dense(indptr, indices, data, dense_terms, shift, maxq, starts, scale)
    return BlockBounds(rows, n_blocks, slot, scale, maxq, starts)


class BlockWorkspace:
    """Per-thread scratch, reused across queries (left zeroed): partial scores and heap flags per row, block
    bounds and marks per block, one block's scores."""

    def __init__(self, num_docs: int, bounds: BlockBounds) -> None:
        self.acc = np.zeros(max(num_docs, 1), dtype=np.float32)
        self.flags = np.zeros(max(num_docs, 1), dtype=np.uint8)
        self.ub = np.zeros(bounds.n_blocks, dtype=np.float32)
        self.done = np.zeros(bounds.n_blocks, dtype=np.uint8)
        self.picked = np.zeros(bounds.n_blocks, dtype=np.int64)
        self.local = np.zeros(bounds.block_rows, dtype=np.float32)


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _score_block(
    indptr: Any,
    indices: Any,
    data: Any,
    slot: Any,
    maxq: Any,
    starts: Any,
    shift: int,
    dense: Any,
    dense_w: Any,
    acc: Any,
    b: int,
    local: Any,
    k: int,
    heap_vals: Any,
    heap_docs: Any,
    size: int,
) -> int:
    """Offer the final scores of block ``b``'s rows to the top-k heap; returns the heap size.

    ``acc`` holds each row's exact partial score over the sparse terms; the dense terms come last in the
    kernels' term order, so adding them here gives the exhaustive kernel's sums bit for bit.
    """
    rows = 1 << shift
    base = b << shift
    for r in range(rows):
        local[r] = acc[base + r] if base + r < len(acc) else np.float32(0.0)
    for j in range(len(dense)):
        t = dense[j]
        s = slot[t]
        if maxq[s, b] == 0:
            continue  # no posting of this term in the block
        w = dense_w[j]
        offset = indptr[t]
        for p in range(np.uint64(offset + starts[s, b]), np.uint64(offset + starts[s, b + 1])):
            row = np.uint64(indices[p]) - np.uint64(base)
            local[row] = local[row] + w * data[p]
    for r in range(rows):
        v = local[r]
        if v > 0.0:
            size = _push(heap_vals, heap_docs, size, k, base + r, v)
    return size


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _score_new_block(
    indptr: Any,
    indices: Any,
    data: Any,
    slot: Any,
    maxq: Any,
    starts: Any,
    shift: int,
    dense: Any,
    dense_w: Any,
    acc: Any,
    b: int,
    done: Any,
    picked: Any,
    n_done: int,
    local: Any,
    k: int,
    heap_vals: Any,
    heap_docs: Any,
    size: int,
) -> tuple[int, int]:
    """Score block ``b`` unless it was scored already, noting it in ``done``/``picked[:n_done]`` (so it is
    cleared after the query); returns (heap size, n_done)."""
    if done[b]:
        return size, n_done
    done[b] = 1
    picked[n_done] = b
    size = _score_block(
        indptr, indices, data, slot, maxq, starts, shift, dense, dense_w, acc, b, local, k, heap_vals, heap_docs,
        size,
    )  # fmt: skip
    return size, n_done + 1


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _largest(ub: Any) -> Any:
    best = np.float32(0.0)
    for b in range(len(ub)):
        best = max(best, ub[b])
    return best


@numba.njit(nogil=True, cache=True, inline="always")  # type: ignore[untyped-decorator]
def _cut(heap_vals: Any, size: int, k: int) -> float:
    """The bound a row needs to reach theta, the k-th best final score so far, allowing for rounding."""
    return (float(heap_vals[0]) - _EPS) / _SLACK if size == k else -np.inf


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _search_one(
    indptr: Any,
    indices: Any,
    data: Any,
    upper: Any,
    lower: Any,
    slot: Any,
    scale: Any,
    maxq: Any,
    starts: Any,
    shift: int,
    raw_terms: Any,
    k: int,
    acc: Any,
    flags: Any,
    ub: Any,
    done: Any,
    picked: Any,
    local: Any,
    rows_out: Any,
    scores_out: Any,
) -> Any:
    if len(raw_terms) == 0:
        return 0
    for i in range(len(raw_terms)):
        if lower[raw_terms[i]] < 0.0:
            # Partial sums are no lower bounds with negative scores: score every posting instead.
            return exhaustive_one(indptr, indices, data, raw_terms, k, acc, flags, rows_out, scores_out)
    terms, weights = query_terms(indptr, raw_terms)
    m = len(terms)
    n_sparse = 0
    while n_sparse < m and slot[terms[n_sparse]] < 0:
        n_sparse += 1
    dense = terms[n_sparse:]
    dense_w = weights[n_sparse:]
    dense_c = np.empty(len(dense), dtype=np.float32)  # a dense term's bound per unit of its block maxima
    dense_top = 0.0  # the most all dense terms together can add to a row
    for j in range(len(dense)):
        dense_c[j] = np.float32(float(dense_w[j]) * scale[slot[dense[j]]])
        dense_top += float(dense_w[j]) * float(upper[dense[j]])

    # 1. Exact partial scores over the sparse terms, keeping the k best partial sums in a heap. A row's final
    # score is at least its partial sum, so theta will be at least the heap's top, and a row can only reach
    # it if its partial sum plus ``dense_top`` does: rows that come close are noted as they go (a row may be
    # noted more than once), so step 3 need not walk the postings again.
    n_sparse_postings = 0
    for j in range(n_sparse):
        n_sparse_postings += indptr[terms[j] + 1] - indptr[terms[j]]
    noted = np.empty(n_sparse_postings, dtype=np.int64)
    n_noted = 0
    part_vals = np.empty(k, dtype=np.float32)
    part_docs = np.empty(k, dtype=np.int64)
    n_part = 0
    for j in range(n_sparse):
        t = terms[j]
        w = weights[j]
        floor = part_vals[0] if n_part == k else -np.inf
        near = floor - dense_top * _SLACK - _EPS
        for p in range(np.uint64(indptr[t]), np.uint64(indptr[t + 1])):
            d = np.uint64(indices[p])
            v = acc[d] + w * data[p]
            acc[d] = v
            if v >= near:
                noted[n_noted] = d
                n_noted += 1
                if v >= floor:
                    n_part = _offer(part_vals, part_docs, n_part, k, flags, acc, np.int64(d), v)
                    if n_part == k:
                        floor = part_vals[0]
                        near = floor - dense_top * _SLACK - _EPS
    for i in range(n_part):
        flags[part_docs[i]] = 0

    # 2. The blocks of the best partial sums first: they set theta.
    heap_vals = np.empty(k, dtype=np.float32)
    heap_docs = np.empty(k, dtype=np.int64)
    size = 0
    n_done = 0
    for i in range(n_part):
        size, n_done = _score_new_block(
            indptr, indices, data, slot, maxq, starts, shift, dense, dense_w, acc, part_docs[i] >> shift, done,
            picked, n_done, local, k, heap_vals, heap_docs, size,
        )  # fmt: skip

    # 3. Every other row a sparse term touched whose partial sum plus the dense terms' maxima in its block can
    # reach theta: their blocks are scored by decreasing bound, in bands, so theta rises early.
    cut = _cut(heap_vals, size, k)
    cand_blocks = np.empty(n_noted, dtype=np.int64)
    cand_bounds = np.empty(n_noted, dtype=np.float64)
    n_cand = 0
    top = 0.0
    for i in range(n_noted):
        d = np.uint64(noted[i])
        a = float(acc[d])
        if a + dense_top < cut:
            continue
        b = d >> np.uint64(shift)
        if done[b]:
            continue
        bound = a
        for jj in range(len(dense)):
            bound += float(dense_c[jj]) * float(maxq[np.uint64(slot[dense[jj]]), b])
        if bound < cut:
            continue
        cand_blocks[n_cand] = b
        cand_bounds[n_cand] = bound
        n_cand += 1
        top = max(top, bound)
    hi = np.inf
    lo = top * (1.0 - _BAND)
    while n_cand > 0:
        lo = max(lo, cut)
        for i in range(n_cand):
            bound = cand_bounds[i]
            if bound >= lo and bound < hi and bound >= cut:
                size, n_done = _score_new_block(
                    indptr, indices, data, slot, maxq, starts, shift, dense, dense_w, acc, cand_blocks[i], done,
                    picked, n_done, local, k, heap_vals, heap_docs, size,
                )  # fmt: skip
                cut = _cut(heap_vals, size, k)
        if lo <= cut or lo <= 0.0:
            break  # the band reached theta (or 0): every candidate left is below it
        hi = lo
        lo = lo - top * _BAND

    # 4. Rows no sparse term touched score at most ``dense_top``: look at them only if that can reach theta.
    if size < k or dense_top >= cut:
        size = _remaining_blocks(
            indptr, indices, data, slot, scale, maxq, starts, shift, terms, weights, n_sparse, acc, ub, done,
            picked[n_done:], local, k, heap_vals, heap_docs, size,
        )  # fmt: skip

    # Leave the workspace zeroed for the next query.
    for i in range(n_done):
        done[picked[i]] = 0
    for j in range(n_sparse):
        t = terms[j]
        for p in range(np.uint64(indptr[t]), np.uint64(indptr[t + 1])):
            acc[np.uint64(indices[p])] = 0.0
    return _drain(heap_vals, heap_docs, size, rows_out, scores_out)


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _remaining_blocks(
    indptr: Any,
    indices: Any,
    data: Any,
    slot: Any,
    scale: Any,
    maxq: Any,
    starts: Any,
    shift: int,
    terms: Any,
    weights: Any,
    n_sparse: int,
    acc: Any,
    ub: Any,
    done: Any,
    picked: Any,
    local: Any,
    k: int,
    heap_vals: Any,
    heap_docs: Any,
    size: int,
) -> int:
    """Score the blocks not scored yet whose bound (best partial sum plus the dense terms' block maxima) can
    reach theta, by decreasing bound in bands, so theta rises early; returns the heap size."""
    ub[:] = 0.0
    for j in range(n_sparse):
        t = terms[j]
        for p in range(np.uint64(indptr[t]), np.uint64(indptr[t + 1])):
            d = np.uint64(indices[p])
            block = d >> np.uint64(shift)
            ub[block] = max(ub[block], acc[d])
    dense = terms[n_sparse:]
    dense_w = weights[n_sparse:]
    for j in range(len(dense)):
        s = slot[dense[j]]
        c = np.float32(float(dense_w[j]) * scale[s])
        row = maxq[s]
        for b in range(len(ub)):
            ub[b] += c * np.float32(row[b])
    best = _largest(ub)
    lo = best * _FIRST_PASS
    hi = np.inf
    while best > 0.0:
        # The blocks with a bound in [lo, hi), in row order; the last band takes every block with a posting.
        floor = max(lo, _cut(heap_vals, size, k))
        n = 0
        for b in range(len(ub)):
            u = ub[b]
            if u >= floor and u < hi and u > 0.0 and done[b] == 0:
                picked[n] = b
                n += 1
        for i in range(n):
            b = picked[i]
            if ub[b] >= _cut(heap_vals, size, k):
                size = _score_block(
                    indptr, indices, data, slot, maxq, starts, shift, dense, dense_w, acc, b, local, k,
                    heap_vals, heap_docs, size,
                )  # fmt: skip
        if lo <= 0.0 or _cut(heap_vals, size, k) >= lo:
            break  # every block left is below theta
        hi = lo
        lo = lo - best * _BAND if lo > best * (_BAND + 1e-3) else 0.0
    return size


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def _search_range(
    indptr: Any,
    indices: Any,
    data: Any,
    upper: Any,
    lower: Any,
    slot: Any,
    scale: Any,
    maxq: Any,
    starts: Any,
    shift: int,
    query_ptr: Any,
    query_terms: Any,
    k: int,
    acc: Any,
    flags: Any,
    ub: Any,
    done: Any,
    picked: Any,
    local: Any,
    rows_out: Any,
    scores_out: Any,
    counts_out: Any,
) -> None:
    for q in range(len(query_ptr) - 1):
        counts_out[q] = _search_one(
            indptr, indices, data, upper, lower, slot, scale, maxq, starts, shift,
            query_terms[query_ptr[q] : query_ptr[q + 1]], k, acc, flags, ub, done, picked, local,
            rows_out[q], scores_out[q],
        )  # fmt: skip


def search_batch(
    matrix: tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float32]],
    bounds: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]],
    blocks: BlockBounds,
    queries: list[list[int]],
    k: int,
    workspace: BlockWorkspace,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Top ``k`` rows of each query (lists of term ids), as :func:`bm25_topk.search_batch` returns them
    (``bounds``: the per-term maxima and minima from ``column_bounds``)."""
    indptr, indices, data = matrix
    upper, lower = bounds
    query_ptr, flat, rows, scores, counts = batch_arrays(queries, k)
    _search_range(
        indptr, indices, data, upper, lower, blocks.slot, blocks.scale, blocks.maxq, blocks.starts,
        blocks.block_rows.bit_length() - 1, query_ptr, flat, k, workspace.acc, workspace.flags,
        workspace.ub, workspace.done, workspace.picked, workspace.local, rows, scores, counts,
    )  # fmt: skip
    return rows, scores, counts
