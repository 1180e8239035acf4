"""What the damage checks cost when a bm25 index opens, against the open itself (same process, interleaved).

    python benchmarks/bm25_open_checks.py --index DIR [--rounds 5]
    python benchmarks/bm25_open_checks.py --synthetic 200000   # builds the retrieval benchmark's corpus

Prints, per round and as medians: a default open without the numba warm-up (``warmup=False``, checks
included), the same with ``warmup=True`` (what a server or ``hopgym search`` does; it also computes the
kernels' score bounds), ``verify=True``, and each check alone: file sizes plus the structural sha256s, the
vocabulary ids, the postings' bounds pass. The ratio is the default checks' share of a default open. Run it
twice: the first run of a process compiles numba's kernels (cached on disk afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from hopgym.retrievers.bm25.integrity import check_files, check_postings, check_vocab
from hopgym.retrievers.manifest import build_index, open_index


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _open_and_close(index: Path, **options: object) -> None:
    retriever = open_index(index, **options)
    asyncio.run(retriever.aclose())


def _synthetic_index(n: int, cache_dir: Path) -> Path:
    from hopgym.benchmarks.retrieval import synthetic_corpus

    source = Path(__file__).resolve().parents[2] / "shared" / "data" / "hotpotqa" / "corpus.jsonl"
    corpus = synthetic_corpus(source, n, 13, cache_dir)
    index = cache_dir / f"bm25-{corpus.stem}"
    if not (index / "hopgym-index.json").is_file():
        print(f"building {index} ...", flush=True)
        build_index("bm25", corpus, index)
    return index


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path)
    parser.add_argument(
        "--synthetic", type=int, help="build/reuse the synthetic corpus of this many passages"
    )
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/hopgym-bench"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.index is None:
        if args.synthetic is None:
            parser.error("pass --index DIR or --synthetic N")
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        args.index = _synthetic_index(args.synthetic, args.cache_dir)
    index: Path = args.index

    import bm25s

    model = bm25s.BM25.load(str(index / "bm25s"), mmap=True, load_vocab=True, backend="numba")
    scores = model.scores
    sizes = {
        p.name: p.stat().st_size for p in [*index.iterdir(), *(index / "bm25s").iterdir()] if p.is_file()
    }
    print(json.dumps({"index": str(index), "num_docs": int(scores["num_docs"]), "bytes": sizes}, indent=1))

    cases: dict[str, Callable[[], object]] = {
        "open (warmup=False)": lambda: _open_and_close(index, warmup=False),
        "open (warmup=True)": lambda: _open_and_close(index),
        "open (verify=True, warmup=False)": lambda: _open_and_close(index, warmup=False, verify=True),
        "check: sizes + structural sha256": lambda: check_files(index, verify=False),
        "check: vocabulary ids": lambda: check_vocab(model.vocab_dict, len(scores["indptr"]) - 1, index),
        "check: postings bounds pass": lambda: check_postings(scores, int(scores["num_docs"]), index),
        "check: every file's sha256 (verify)": lambda: check_files(index, verify=True),
    }
    for fn in cases.values():  # compile and fault the files in once
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            times[name].append(_timed(fn))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(
            f"{name:40s} median {medians[name] * 1000:8.1f} ms   rounds {[round(v * 1000, 1) for v in values]}"
        )
    checks = sum(medians[n] for n in cases if n.startswith("check:") and "verify" not in n)
    print(
        f"default checks: {checks * 1000:.1f} ms = {checks / medians['open (warmup=False)']:.2f}x of an open "
        f"without warm-up, {checks / medians['open (warmup=True)']:.2f}x of one with warm-up"
    )


if __name__ == "__main__":
    main()
