"""BM25 family: the bm25s-format disk backend (``backend``), its analyzer, score matrix, the two exact top-k
kernels (``topk`` exhaustive, ``blockmax`` pruned) and the small pure-Python in-memory BM25 (``simple``).

Nothing heavy is imported here: numba and bm25s load with the backend module."""
