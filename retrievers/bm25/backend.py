"""The embedded BM25 backend: bm25s with its numba scorer, a streaming build and a memory-mapped index.

Build with ``hopgym index build --backend bm25`` (or :func:`hopgym.retrievers.manifest.build_index`), open
with :func:`~hopgym.retrievers.manifest.open_index`, or index passages in memory with
:meth:`BM25Retriever.from_passages`. Defaults (k1=0.9, b=0.4, Lucene scoring, Lucene's 33 English stopwords)
follow the pyserini settings Search-R1 uses; the stemmer defaults to Snowball English ("porter" is
pyserini's).

Search runs hopgym's own kernels over the bm25s score matrix, without the GIL, so concurrent searches and
``n_threads`` > 1 run on several cores: :mod:`hopgym.retrievers.bm25.blockmax` (exact top-k with block-max
pruning, ties broken by row; its per-block maxima of the frequent terms are computed when the index opens) and
the exhaustive :mod:`hopgym.retrievers.bm25.topk` it must match bit for bit (``pruning=false``). numba compiles the kernel once per machine (cached on disk; the first compile takes several
seconds); the retriever runs one tiny query when it is created (``warmup=True``) so that cost is paid at open
rather than by the first episode.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hopgym.errors import ConfigError, DataError, RetrieverError, require
from hopgym.options import check_fields, split_options
from hopgym.retrievers.bm25.analyzer import DEFAULT_TOKEN_PATTERN, Tokenizer, TokenizerConfig
from hopgym.retrievers.bm25.integrity import CHECKSUMS_FILE, file_checksums
from hopgym.retrievers.bm25.matrix import BM25_METHODS, BM25Method, TermCounts, score_matrix
from hopgym.retrievers.corpus import CorpusFormat, corpus_fingerprint, iter_passages
from hopgym.retrievers.manifest import MANIFEST_NAME, IndexManifest, ProgressFn, new_manifest
from hopgym.retrievers.passage_store import (
    CRC_FILE,
    OFFSETS_FILE,
    PASSAGES_FILE,
    DiskPassageStore,
    MemoryPassageStore,
    PassageStore,
    PassageStoreWriter,
)
from hopgym.retrievers.search_args import check_search_args
from hopgym.types import Passage

__all__ = ["BACKEND", "BM25Backend", "BM25Config", "BM25OpenOptions", "BM25Retriever"]

logger = logging.getLogger(__name__)

BM25S_DIR = "bm25s"
TOKENIZER_FILE = "tokenizer.json"
_PROGRESS_EVERY = 1000
# A batch is split across threads only when each chunk has at least this many queries; each thread takes a few
# chunks, so one chunk's tokenizing and passage decoding overlaps another one's search.
_MIN_QUERIES_PER_THREAD = 8
_CHUNKS_PER_THREAD = 4
# An async search of at most this many hits (queries x k) is tokenized on the calling thread, and searched
# there too when its terms' postings fit the inline budget (BM25OpenOptions.inline_postings).
_INLINE_MAX_HITS = 64


@dataclass(frozen=True)
class BM25Config:
    """Build-time settings, recorded in the manifest; an index is searched with the ones it was built with."""

    k1: float = 0.9
    b: float = 0.4
    method: BM25Method = "lucene"
    stemmer: str | None = "english"
    stopwords: str | tuple[str, ...] | None = "en"
    lowercase: bool = True
    token_pattern: str = DEFAULT_TOKEN_PATTERN

    def __post_init__(self) -> None:
        check_fields(self, owner="", skip=("method",))
        if self.k1 < 0:
            raise ConfigError(f"k1 must be >= 0 (term-frequency saturation; Lucene uses 0.9), got {self.k1}")
        if not 0.0 <= self.b <= 1.0:
            raise ConfigError(f"b must be in [0, 1] (length normalisation; Lucene uses 0.4), got {self.b}")
        if self.method not in BM25_METHODS:
            raise ConfigError(
                f"method {self.method!r} is not supported; use one of {', '.join(BM25_METHODS)}"
            )
        self.tokenizer_config()  # validates the tokenizer fields

    def tokenizer_config(self) -> TokenizerConfig:
        return TokenizerConfig(
            stemmer=self.stemmer,
            stopwords=self.stopwords,
            lowercase=self.lowercase,
            token_pattern=self.token_pattern,
        )


@dataclass(frozen=True)
class BM25OpenOptions:
    """Search-time settings.

    ``n_threads`` > 1 splits each batch across that many threads; concurrent searches also run side by side
    (the kernel releases the GIL). ``pruning`` false scores every document the query's terms touch instead
    of skipping those that cannot reach the top k (same results, slower; for benchmarks and debugging).
    Every open checks the index for damage at a small cost (:mod:`hopgym.retrievers.bm25.integrity`);
    ``verify`` also checks every file's sha256 (reads the whole index). ``corpus`` checks that the index was
    built from that corpus file.

    ``inline_postings`` bounds the work an async ``search`` does on the event loop's own thread: a small
    request (at most 64 hits) whose query terms touch at most that many postings in all is searched there,
    since handing it to a worker thread costs more CPU than the search itself (a 4-term query over 5k
    passages: ~20 µs of kernel against ~50-100 µs for the thread hop); larger ones go to a worker thread so
    the loop is never held long (the kernel scores at most the postings of its terms, a few ns each). 0
    sends every search to a thread.
    """

    n_threads: int = 1
    mmap: bool = True
    warmup: bool = True
    verify: bool = False
    corpus: str | None = None
    pruning: bool = True
    inline_postings: int = 32_768

    def __post_init__(self) -> None:
        check_fields(self, owner="")
        if self.n_threads < 1:
            raise ConfigError(f"n_threads must be an integer >= 1, got {self.n_threads!r}")
        if self.inline_postings < 0:
            raise ConfigError(
                f"inline_postings must be an integer >= 0 (0: every search on a worker thread), got "
                f"{self.inline_postings!r}"
            )


@dataclass(frozen=True)
class _BuildOptions:
    chunk_docs: int = 8192
    format: CorpusFormat = "auto"
    dedupe: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.dedupe, bool):
            raise ConfigError(f"dedupe must be true or false, got {self.dedupe!r}")
        check_fields(self, owner="")
        if self.chunk_docs < 1:
            raise ConfigError(f"chunk_docs must be an integer >= 1, got {self.chunk_docs!r}")


def _split_options(options: Mapping[str, Any], *classes: type, context: str) -> list[dict[str, Any]]:
    """Route keyword options to the dataclasses that accept them; unknown keys are a ConfigError."""
    return split_options(
        options,
        *classes,
        what="bm25",
        fixed={f.name for f in fields(BM25Config)} if context == "open" else (),
        fixed_hint="when opening an index: it was fixed when the index was built (see `hopgym index info DIR`); "
        "rebuild the index to change it",
    )


def _new_bm25s(config: BM25Config) -> Any:
    bm25s: Any = require("bm25s", extra="bm25", purpose="the BM25 retriever")
    require("numba", extra="bm25", purpose="the BM25 retriever's numba scorer")
    return bm25s.BM25(k1=config.k1, b=config.b, method=config.method, backend="numba")


def _index(
    passages: Iterable[Passage],
    config: BM25Config,
    *,
    chunk_docs: int,
    on_passage: Callable[[Passage], None] | None = None,
    progress: ProgressFn | None = None,
) -> tuple[Any, Tokenizer, int, float]:
    """Tokenize passages one by one and build the bm25s model (not yet saved).

    Returns (model, tokenizer, passage count, average document length in terms).
    """
    tokenizer = Tokenizer(config.tokenizer_config())
    counts = TermCounts(chunk_docs=chunk_docs)
    for passage in passages:
        if on_passage is not None:
            on_passage(passage)
        # Search-R1 indexes the whole `contents` ("Title"\ntext), so titles are searchable too.
        counts.add(tokenizer.encode_for_index(f"{passage.title}\n{passage.text}"))
        if progress is not None and counts.num_docs % _PROGRESS_EVERY == 0:
            progress(counts.num_docs, None)
    n_docs = counts.num_docs
    if progress is not None:
        progress(n_docs, n_docs)
    docs, terms, tfs, lengths = counts.finish()
    matrix = score_matrix(
        docs,
        terms,
        tfs,
        lengths,
        n_vocab=len(tokenizer.vocab),
        k1=config.k1,
        b=config.b,
        method=config.method,
    )
    model = _new_bm25s(config)
    model.scores = {
        "data": matrix.data,
        "indices": matrix.indices,
        "indptr": matrix.indptr,
        "num_docs": matrix.num_docs,
    }
    model.vocab_dict = tokenizer.vocab
    model.unique_token_ids_set = set(tokenizer.vocab.values())
    model.nonoccurrence_array = None
    return model, tokenizer, n_docs, matrix.avg_doc_len


class BM25Retriever:
    """BM25 search over a bm25s score matrix; see the module docstring. Passages come from a row-addressed store.

    Each search thread uses a scratch workspace as large as the corpus (about 5 bytes a passage); they are
    pooled and reused.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Tokenizer,
        store: PassageStore,
        *,
        n_threads: int = 1,
        pruning: bool = True,
        warmup: bool = True,
        inline_postings: int = BM25OpenOptions.inline_postings,
        description: str = "bm25",
    ) -> None:
        from hopgym.retrievers.bm25 import blockmax as bm25_blockmax
        from hopgym.retrievers.bm25 import topk as bm25_topk

        self._topk = bm25_topk
        self._blockmax = bm25_blockmax
        self._model = model
        self._tokenizer = tokenizer
        self._store = store
        self._n_threads = n_threads
        self._pruning = pruning
        self._inline_postings = inline_postings
        self._description = description
        self._num_docs = int(model.scores["num_docs"])
        self._indptr: npt.NDArray[np.int64] = model.scores["indptr"]
        self._indices: npt.NDArray[np.int32] = model.scores["indices"]
        self._data: npt.NDArray[np.float32] = model.scores["data"]
        self._matrix = (self._indptr, self._indices, self._data)
        self._bounds: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None
        self._blocks: Any = None
        self._workspaces: list[Any] = []
        self._pool: ThreadPoolExecutor | None = None
        self._state_lock = threading.Lock()
        self._inflight = 0
        self._closed = False
        if warmup:
            self.warmup()

    def __repr__(self) -> str:
        return f"BM25Retriever({self._description}, passages={self._num_docs})"

    @property
    def num_passages(self) -> int:
        return self._num_docs

    @classmethod
    def from_passages(cls, passages: Iterable[Passage], **params: Any) -> BM25Retriever:
        """Index passages in memory. ``params``: :class:`BM25Config` fields, ``n_threads``, ``pruning``,
        ``warmup`` and ``inline_postings``."""
        build_kw, open_kw = _split_options(params, BM25Config, BM25OpenOptions, context="build")
        for key in ("mmap", "verify", "corpus"):
            if key in open_kw:
                raise ConfigError(f"{key} only applies to an index directory, not to from_passages")
        config = BM25Config(**build_kw)
        open_options = BM25OpenOptions(**open_kw)
        kept: list[Passage] = []
        model, tokenizer, _, _ = _index(passages, config, chunk_docs=8192, on_passage=kept.append)
        return cls(
            model,
            tokenizer,
            MemoryPassageStore(kept),
            n_threads=open_options.n_threads,
            pruning=open_options.pruning,
            warmup=open_options.warmup,
            inline_postings=open_options.inline_postings,
            description="in-memory",
        )

    def warmup(self) -> None:
        """Compute the bounds and run one tiny query, so nothing is compiled or computed during search."""
        if self._num_docs == 0 or len(self._indptr) < 2:
            return
        started = time.perf_counter()
        self._search_share([[0]], 1)
        logger.info("bm25: search kernel ready in %.1f s", time.perf_counter() - started)

    def _kernel_inputs(self) -> tuple[tuple[Any, Any], Any]:
        # Computed on first use (passes over the scores) rather than stored, so older indexes work as they are.
        with self._state_lock:
            if self._bounds is None:
                self._bounds = self._topk.column_bounds(self._indptr, self._data)
            if self._pruning and self._blocks is None:
                self._blocks = self._blockmax.build_block_bounds(self._matrix, self._num_docs)
                logger.info(
                    "bm25: block maxima of %d frequent terms (%.0f MiB)",
                    len(self._blocks.scale),
                    self._blocks.nbytes / 2**20,
                )
            return self._bounds, self._blocks

    def _take_workspace(self) -> Any:
        with self._state_lock:
            if self._workspaces:
                return self._workspaces.pop()
        if self._pruning:
            _, blocks = self._kernel_inputs()
            return self._blockmax.BlockWorkspace(self._num_docs, blocks)
        return self._topk.Workspace(self._num_docs)

    def _give_workspace(self, workspace: Any) -> None:
        with self._state_lock:
            self._workspaces.append(workspace)

    def _search_share(self, token_ids: list[list[int]], k: int) -> list[list[tuple[int, float]]]:
        bounds, blocks = self._kernel_inputs()
        workspace = self._take_workspace()
        try:
            if self._pruning:
                rows, scores, counts = self._blockmax.search_batch(
                    self._matrix, bounds, blocks, token_ids, k, workspace
                )
            else:
                rows, scores, counts = self._topk.search_batch(self._matrix, token_ids, k, workspace)
        finally:
            self._give_workspace(workspace)
        # One conversion of the whole batch: per-query numpy slicing costs more than the rest of the loop.
        return [
            list(zip(r[:n], s[:n], strict=True))
            for r, s, n in zip(rows.tolist(), scores.tolist(), counts.tolist(), strict=True)
        ]

    def _search_parallel(
        self,
        queries: Sequence[str],
        k: int,
        then: Callable[[list[list[tuple[int, float]]]], list[Any]] | None = None,
    ) -> list[Any]:
        """(row, score) hits of each query, mapped by ``then`` (e.g. to passages), in chunks on ``n_threads``
        threads when the batch is large enough.

        Each chunk is tokenized, searched and mapped in one thread, so one chunk's Python work (which holds
        the GIL) overlaps the search of another (which does not).
        """

        def chunk_hits(part: Sequence[str]) -> list[Any]:
            hits = self._search_share(self._encode(part), k)
            return hits if then is None else then(hits)

        if self._n_threads == 1 or len(queries) < 2 * _MIN_QUERIES_PER_THREAD:
            return chunk_hits(queries)
        with self._state_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._n_threads, thread_name_prefix="hopgym-bm25")
            pool = self._pool
        size = max(_MIN_QUERIES_PER_THREAD, -(-len(queries) // (self._n_threads * _CHUNKS_PER_THREAD)))
        parts = pool.map(
            lambda start: chunk_hits(queries[start : start + size]), range(0, len(queries), size)
        )
        return [hits for part in parts for hits in part]

    def _encode(self, queries: Sequence[str]) -> list[list[int]]:
        return [self._tokenizer.encode_query(q) if q.strip() else [] for q in queries]

    def _search_rows(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        """Blocking search returning (row, score) pairs by descending score, ties broken by row.

        Documents sharing no term with the query (score 0) are never returned, as in Lucene.
        """
        if self._num_docs == 0:
            return [[] for _ in queries]
        return self._search_parallel(queries, min(k, self._num_docs))

    def search_blocking(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        """The synchronous form of :meth:`search` (for benchmarks and code without an event loop)."""
        queries = check_search_args(queries, k)
        self._enter()
        try:
            if self._num_docs == 0:
                return [[] for _ in queries]
            return self._search_parallel(queries, min(k, self._num_docs), self._passages)
        finally:
            self._leave()

    def _passages(self, hits: list[list[tuple[int, float]]]) -> list[list[Passage]]:
        get = self._store.get
        return [[get(row, score) for row, score in row_hits] for row_hits in hits]

    def _search_tokens(self, token_ids: list[list[int]], k: int) -> list[list[Passage]]:
        """Search already tokenized queries in this thread."""
        self._enter()
        try:
            return self._passages(self._search_share(token_ids, k))
        finally:
            self._leave()

    def _postings(self, token_ids: list[list[int]]) -> int:
        """How many postings the kernel may visit for these queries (the length of each term's column)."""
        indptr = self._indptr
        return sum(int(indptr[t + 1]) - int(indptr[t]) for terms in token_ids for t in terms)

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        queries = check_search_args(queries, k)
        if not queries:
            return []
        if self._closed:
            raise RetrieverError(f"{self!r} is closed; open the index again")
        if self._num_docs == 0:
            return [[] for _ in queries]
        k = min(k, self._num_docs)
        if self._inline_postings and len(queries) * k <= _INLINE_MAX_HITS:
            # Small: tokenized here, and searched here too when its postings fit the budget (see
            # BM25OpenOptions.inline_postings); a thread hop would cost more than the search.
            token_ids = self._encode(queries)
            if self._postings(token_ids) <= self._inline_postings:
                return self._search_tokens(token_ids, k)
            return await asyncio.to_thread(self._search_tokens, token_ids, k)
        return await asyncio.to_thread(self.search_blocking, queries, k)

    def _enter(self) -> None:
        with self._state_lock:
            if self._closed:
                raise RetrieverError(f"{self!r} is closed; open the index again")
            self._inflight += 1

    def _leave(self) -> None:
        with self._state_lock:
            self._inflight -= 1
            release = self._closed and self._inflight == 0
        if release:
            self._release()

    def _release(self) -> None:
        self._store.close()
        with self._state_lock:
            pool, self._pool = self._pool, None
            self._workspaces.clear()
        if pool is not None:
            pool.shutdown(wait=False)

    async def aclose(self) -> None:
        """Close the index files; searches still running finish first (the last one releases the files)."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            release = self._inflight == 0
        if release:
            self._release()


def _index_files(directory: Path) -> list[Path]:
    files = [directory / name for name in (PASSAGES_FILE, OFFSETS_FILE, CRC_FILE, TOKENIZER_FILE)]
    files += sorted((directory / BM25S_DIR).iterdir())
    return files


class BM25Backend:
    """The registry entry for ``--backend bm25``."""

    name = "bm25"

    def build(
        self, corpus: Path, out: Path, options: Mapping[str, Any], progress: ProgressFn | None
    ) -> IndexManifest:
        config_kw, build_kw = _split_options(options, BM25Config, _BuildOptions, context="build")
        config = BM25Config(**config_kw)
        build_options = _BuildOptions(**build_kw)
        if not corpus.is_file():
            raise DataError("corpus file not found (check the path)", path=str(corpus))
        started = time.perf_counter()
        # A stale manifest must not describe the half-written files of this build if it fails.
        (out / MANIFEST_NAME).unlink(missing_ok=True)
        fingerprint = corpus_fingerprint(corpus)
        with PassageStoreWriter(out) as writer:
            model, tokenizer, n_docs, avg_doc_len = _index(
                iter_passages(corpus, format=build_options.format, dedupe=build_options.dedupe),
                config,
                chunk_docs=build_options.chunk_docs,
                on_passage=writer.add,
                progress=progress,
            )
        if n_docs == 0:
            raise DataError("corpus has no passages; nothing to index", path=str(corpus))
        model.save(out / BM25S_DIR, show_progress=False)
        tokenizer_json = {"config": tokenizer.config.to_json(), "stopwords": sorted(tokenizer.stopwords)}
        (out / TOKENIZER_FILE).write_text(json.dumps(tokenizer_json, indent=2) + "\n", encoding="utf-8")
        checksums = file_checksums(out, _index_files(out))
        (out / CHECKSUMS_FILE).write_text(
            json.dumps(checksums, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        bm25s: Any = require("bm25s", extra="bm25")
        params = {
            "k1": config.k1,
            "b": config.b,
            "method": config.method,
            "vocab_size": len(tokenizer.vocab),
            "avg_doc_len": round(avg_doc_len, 3),
            "bm25s_version": getattr(bm25s, "__version__", "unknown"),
        }
        manifest = new_manifest(
            self.name,
            corpus=corpus,
            corpus_sha256=fingerprint,
            passage_count=n_docs,
            params=params,
            encoder={"kind": "lexical", **tokenizer.config.to_json()},
            started=started,
        )
        logger.info("bm25: indexed %d passages into %s in %.1f s", n_docs, out, manifest.build_seconds)
        return manifest

    def open(self, directory: Path, manifest: IndexManifest, options: Mapping[str, Any]) -> BM25Retriever:
        (open_kw,) = _split_options(options, BM25OpenOptions, context="open")
        open_options = BM25OpenOptions(**open_kw)
        if manifest.backend != self.name:
            raise ConfigError(f"{directory} is a {manifest.backend!r} index, not a bm25 index")
        from hopgym.retrievers.bm25.integrity import check_files

        check_files(directory, verify=open_options.verify)
        if open_options.corpus is not None:
            actual = corpus_fingerprint(open_options.corpus)
            if actual != manifest.corpus_sha256:
                raise DataError(
                    f"the index was built from a different corpus (sha256 {manifest.corpus_sha256[:12]}…, "
                    f"this file is {actual[:12]}…); rebuild the index from this corpus",
                    path=str(open_options.corpus),
                )
        tokenizer_path = directory / TOKENIZER_FILE
        try:
            tokenizer_json = json.loads(tokenizer_path.read_text(encoding="utf-8"))
            tokenizer_config = TokenizerConfig.from_json(tokenizer_json["config"])
            stopwords = tuple(tokenizer_json["stopwords"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"unreadable tokenizer settings ({exc}); rebuild the index", path=str(tokenizer_path)
            ) from exc
        expected_encoder = {"kind": "lexical", **tokenizer_config.to_json()}
        if manifest.encoder is not None and dict(manifest.encoder) != expected_encoder:
            raise DataError(
                f"the manifest's tokenizer {dict(manifest.encoder)} differs from the index files' "
                f"{expected_encoder}; the directory mixes two builds, rebuild it",
                path=str(directory),
            )
        model = self._load_model(directory / BM25S_DIR, manifest, mmap=open_options.mmap)
        store = DiskPassageStore(directory, expected_count=manifest.passage_count)
        if not store.row_checksums:
            logger.warning(
                "bm25: %s was built before passage rows had checksums: damaged passage text is only found "
                "with verify=true; rebuild the index to check every row as it is read",
                directory,
            )
        tokenizer = Tokenizer(tokenizer_config, vocab=model.vocab_dict, stopwords=stopwords)
        return BM25Retriever(
            model,
            tokenizer,
            store,
            n_threads=open_options.n_threads,
            pruning=open_options.pruning,
            warmup=open_options.warmup,
            inline_postings=open_options.inline_postings,
            description=str(directory),
        )

    @staticmethod
    def _load_model(path: Path, manifest: IndexManifest, *, mmap: bool) -> Any:
        bm25s: Any = require("bm25s", extra="bm25", purpose="the BM25 retriever")
        require("numba", extra="bm25", purpose="the BM25 retriever's numba scorer")
        try:
            model = bm25s.BM25.load(str(path), mmap=mmap, load_vocab=True, backend="numba")
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise DataError(
                f"the bm25s index files are unreadable ({exc}); rebuild the index", path=str(path)
            ) from exc
        scores = model.scores
        n_vocab = len(model.vocab_dict)
        problems = []
        if scores["num_docs"] != manifest.passage_count:
            problems.append(f"{scores['num_docs']} documents but the manifest says {manifest.passage_count}")
        if len(scores["indptr"]) != n_vocab + 1:
            problems.append(f"{len(scores['indptr']) - 1} term columns for a vocabulary of {n_vocab}")
        elif int(scores["indptr"][-1]) != len(scores["data"]) or len(scores["data"]) != len(
            scores["indices"]
        ):
            problems.append("the score arrays have inconsistent lengths")
        for key in ("k1", "b", "method"):
            if key in manifest.params and getattr(model, key) != manifest.params[key]:
                problems.append(
                    f"{key}={getattr(model, key)!r} but the manifest says {manifest.params[key]!r}"
                )
        if problems:
            raise DataError(
                f"the bm25s index does not match its manifest: {'; '.join(problems)}; rebuild it",
                path=str(path),
            )
        from hopgym.retrievers.bm25.integrity import check_postings, check_vocab

        check_vocab(model.vocab_dict, len(scores["indptr"]) - 1, path / "vocab.index.json")
        check_postings(scores, int(scores["num_docs"]), path)
        return model


BACKEND = BM25Backend()
