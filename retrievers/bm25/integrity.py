"""Damage checks for a bm25 index directory, run when it opens.

What is checked, and when (``checksums.json`` records every file's size and sha256 at build time):

- always, every file's size (a truncated or replaced file);
- always, the sha256 of the small structural files: the tokenizer settings, the bm25s parameters and
  vocabulary, the column pointers (``indptr``) and the passage offsets. They are a few percent of the index,
  and a flipped byte in them would send the search kernels out of bounds or map terms to the wrong column;
- always, the big postings arrays' types and bounds, in one pass without the GIL
  (:func:`~hopgym.retrievers.bm25.postings_check.postings_problem`):
  pointers non-decreasing and within the arrays, rows strictly ascending in each column and below the passage
  count, scores finite. Damage to them can therefore not crash the kernels (which index without bounds
  checks);
- always, each passage row against its crc32 as it is read (see :mod:`hopgym.retrievers.passage_store`);
- with ``verify=True`` (``hopgym search --verify``), the sha256 of every file.

Not detected without ``verify``: a changed score in ``data.csc.index.npy`` that is still a finite number, or
a changed row in ``indices.csc.index.npy`` that keeps its column ascending and in range. Both change the
ranking, not memory safety. Damage done to the files after they were opened (they are memory-mapped) is not
seen either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hopgym.errors import DataError

__all__ = [
    "CHECKSUMS_FILE",
    "STRUCTURAL_FILES",
    "check_files",
    "check_postings",
    "check_vocab",
    "file_checksums",
    "sha256_file",
]

CHECKSUMS_FILE = "checksums.json"
#: Files whose sha256 is checked at every open (relative to the index directory).
STRUCTURAL_FILES = (
    "tokenizer.json",
    "bm25s/params.index.json",
    "bm25s/vocab.index.json",
    "bm25s/indptr.csc.index.npy",
    "passages.offsets.npy",
)
_REBUILD = "rebuild the index (`hopgym index build --force`)"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_checksums(directory: Path, files: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"}}`` for ``files`` (what ``checksums.json`` holds)."""
    return {
        path.relative_to(directory).as_posix(): {"size": path.stat().st_size, "sha256": sha256_file(path)}
        for path in files
    }


def check_files(directory: Path, *, verify: bool) -> None:
    """Sizes of every recorded file, sha256 of the structural ones (of all with ``verify``); DataError naming
    the file otherwise."""
    checksums_path = directory / CHECKSUMS_FILE
    try:
        checksums = json.loads(checksums_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"missing or unreadable ({exc}); {_REBUILD}", path=str(checksums_path)) from exc
    if not isinstance(checksums, dict) or not all(isinstance(v, dict) for v in checksums.values()):
        raise DataError(f"not a JSON object of file records; {_REBUILD}", path=str(checksums_path))
    missing = [name for name in STRUCTURAL_FILES if name not in checksums]
    if missing:
        raise DataError(
            f"records no checksum for {', '.join(missing)}; it is damaged, {_REBUILD}",
            path=str(checksums_path),
        )
    for name, expected in sorted(checksums.items()):
        path = directory / name
        if not path.is_file():
            raise DataError(f"index file is missing; {_REBUILD}", path=str(path))
        size = path.stat().st_size
        if size != expected.get("size"):
            raise DataError(
                f"index file has {size} bytes but was written with {expected.get('size')}: it is "
                f"truncated or was replaced; {_REBUILD}",
                path=str(path),
            )
        if (verify or name in STRUCTURAL_FILES) and sha256_file(path) != expected.get("sha256"):
            raise DataError(f"index file checksum does not match: it is damaged; {_REBUILD}", path=str(path))


def check_vocab(vocab: Mapping[str, Any], n_terms: int, path: Path) -> None:
    """Every vocabulary id is a distinct column of the score matrix (the kernels index columns unchecked)."""
    if len(vocab) != n_terms:
        raise DataError(
            f"vocabulary has {len(vocab)} terms for {n_terms} score columns; {_REBUILD}", path=str(path)
        )
    try:
        ids = np.fromiter(vocab.values(), dtype=np.int64, count=len(vocab))
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataError(f"vocabulary ids must be integers ({exc}); {_REBUILD}", path=str(path)) from exc
    if len(ids) and (
        int(ids.min()) < 0 or int(ids.max()) >= n_terms or np.count_nonzero(np.bincount(ids)) != len(ids)
    ):
        raise DataError(
            f"vocabulary ids are not the distinct columns 0..{n_terms - 1}; {_REBUILD}", path=str(path)
        )


def check_postings(scores: Mapping[str, Any], num_docs: int, directory: Path) -> None:
    """The score matrix's types and bounds (see the module docstring); DataError naming the damaged file."""
    expected = {"indptr": np.int64, "indices": np.int32, "data": np.float32}
    for key, dtype in expected.items():
        array = scores[key]
        if not isinstance(array, np.ndarray) or array.ndim != 1 or array.dtype != np.dtype(dtype):
            got = f"{getattr(array, 'dtype', type(array).__name__)}, {getattr(array, 'ndim', '?')}-d"
            raise DataError(
                f"expected a 1-d {np.dtype(dtype)} array, got {got}; {_REBUILD}",
                path=str(directory / f"{key}.csc.index.npy"),
            )
    from hopgym.retrievers.bm25.postings_check import PROBLEMS, postings_problem

    code, column = postings_problem(scores["indptr"], scores["indices"], scores["data"], num_docs)
    if code:
        name, what = PROBLEMS[int(code)]
        raise DataError(
            f"{what} (term column {int(column)}): it is damaged; {_REBUILD}", path=str(directory / name)
        )
