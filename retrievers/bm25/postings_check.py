"""One pass over a bm25s score matrix that finds damage the search kernels cannot survive (numba, no GIL).

The kernels index the postings without bounds checks, so the index must be checked once before them; see
:mod:`hopgym.retrievers.bm25.integrity` for what is checked where.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["PROBLEMS", "postings_problem"]

# Problem codes of postings_problem.
_OK, _POINTERS, _ROWS, _SCORES = 0, 1, 2, 3
PROBLEMS = {
    _POINTERS: ("indptr.csc.index.npy", "column pointers decrease or point past the postings"),
    _ROWS: ("indices.csc.index.npy", "a posting's row is out of range or out of order"),
    _SCORES: ("data.csc.index.npy", "a score is not a finite number"),
}


@numba.njit(nogil=True, cache=True)  # type: ignore[untyped-decorator]
def postings_problem(indptr: Any, indices: Any, data: Any, num_docs: int) -> tuple[int, int]:
    """(problem code, column) of the first damaged column, or (0, -1): one pass over the postings."""
    n_terms = len(indptr) - 1
    nnz = len(indices)
    if n_terms < 0 or indptr[0] != 0 or indptr[n_terms] != nnz or len(data) != nnz:
        return _POINTERS, 0
    for t in range(n_terms):
        start, end = indptr[t], indptr[t + 1]
        if start > end or end > nnz:
            return _POINTERS, t
        previous = -1
        for p in range(start, end):
            row = indices[p]
            if row <= previous or row >= num_docs:
                return _ROWS, t
            previous = row
            if not np.isfinite(data[p]):
                return _SCORES, t
    return _OK, -1
