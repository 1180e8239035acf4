"""``hopgym index``: build a retrieval index directory from a corpus, or describe one.

``hopgym index build --backend bm25 --corpus corpus.jsonl --out indexes/bm25 [--option key=value ...]``
``hopgym index info indexes/bm25``
``hopgym index eval --data tasks.jsonl indexes/bm25`` (recall@1/3/5/10 of the tasks' supporting passages)
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from hopgym.cli.common import parse_key_values
from hopgym.errors import ConfigError, HopgymError

__all__ = ["parse_options", "register", "run"]


def register(subparsers: Any) -> None:
    from hopgym.retrievers.manifest import backend_names

    parser = subparsers.add_parser("index", help="build, describe or evaluate a retrieval index directory")
    actions = parser.add_subparsers(dest="index_command", metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="index a corpus (jsonl or parquet) into a self-describing directory",
        description="Index a corpus into DIR. Backend settings go in repeated --option KEY=VALUE (values are "
        "JSON when they parse, e.g. k1=1.2, stemmer=null); the bm25 ones also have named flags.",
    )
    build.add_argument(
        "--backend", choices=backend_names(), default="bm25", help="index backend (default: bm25)"
    )
    build.add_argument("--corpus", required=True, type=Path, help="corpus file (.jsonl or .parquet)")
    build.add_argument("--out", required=True, type=Path, help="index directory to create")
    build.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="backend option (repeatable)"
    )
    build.add_argument("--k1", type=float, help="bm25: term-frequency saturation (default 0.9)")
    build.add_argument("--b", type=float, help="bm25: length normalisation (default 0.4)")
    build.add_argument("--stemmer", help="bm25: PyStemmer algorithm, or 'none' (default english)")
    build.add_argument("--stopwords", help="bm25: en, en_plus or none (default en)")
    build.add_argument(
        "--dedupe",
        action="store_true",
        help="bm25: keep the first passage of each repeated id (by default a repeated id is an error)",
    )
    build.add_argument(
        "--force",
        action="store_true",
        help="replace an existing index in --out (once the new one is built; a failed build keeps the old)",
    )
    build.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    build.set_defaults(handler=run)
    info = actions.add_parser("info", help="print an index directory's manifest as JSON")
    info.add_argument("directory", type=Path)
    info.set_defaults(handler=run)
    evaluate = actions.add_parser(
        "eval",
        help="recall@k of the supporting passages (and answer in top k) for a task file's questions",
        description="Search INDEX with every question of --data (any dataset format hopgym data reads) and "
        "print recall@k of the supporting passages (metadata.supporting_passage_ids) and the share of "
        "questions with a golden answer in the top k passages.",
    )
    evaluate.add_argument("index", help="index directory, retriever server URL, or bm25:CORPUS")
    evaluate.add_argument(
        "--data", required=True, type=Path, help="task file (tasks.jsonl or a dataset file)"
    )
    evaluate.add_argument("--format", dest="data_format", help="dataset format of --data (default: sniffed)")
    evaluate.add_argument("--k", default="1,3,5,10", help="cutoffs, comma-separated (default: 1,3,5,10)")
    evaluate.add_argument("--limit", type=int, help="use the first N questions")
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.set_defaults(handler=run)
    parser.set_defaults(handler=run, index_parser=parser)


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``--option`` values as backend options."""
    return parse_key_values(pairs, flag="--option", example="k1=1.2")


def _named_options(args: argparse.Namespace) -> dict[str, Any]:
    named: dict[str, Any] = {}
    if args.k1 is not None:
        named["k1"] = args.k1
    if args.b is not None:
        named["b"] = args.b
    if args.dedupe:
        named["dedupe"] = True
    for key in ("stemmer", "stopwords"):
        value = getattr(args, key)
        if value is not None:
            named[key] = None if value.lower() in ("none", "null", "") else value
    return named


def _count_records(corpus: Path) -> int | None:
    """A quick passage count for the progress bar (None when it cannot be had cheaply)."""
    try:
        if corpus.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(str(corpus)).metadata.num_rows)
        count, last = 0, b"\n"
        with corpus.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                count += chunk.count(b"\n")
                last = chunk[-1:]
        return count + (last != b"\n")
    except (OSError, ImportError):
        return None


def _build(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hopgym.retrievers.manifest import build_index

    options = {**parse_options(args.option), **_named_options(args)}
    if not args.corpus.is_file():
        raise ConfigError(f"corpus file {args.corpus} not found")
    # build_index refuses an --out it must not replace (not an index, or holding the corpus), builds into
    # OUT.building/ and swaps it in only when complete.
    build = functools.partial(build_index, overwrite=args.force)
    if args.no_progress:
        manifest = build(args.backend, args.corpus, args.out, **options)
    else:
        total = _count_records(args.corpus)
        columns = (
            TextColumn(f"[bold]{args.backend}[/bold] indexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("passages"),
            TimeElapsedColumn(),
        )
        # The bar goes to stderr so stdout carries only the manifest JSON.
        with Progress(*columns, console=Console(stderr=True)) as bar:
            task = bar.add_task("index", total=total)

            def progress(done: int, reported_total: int | None) -> None:
                bar.update(task, completed=done, total=reported_total or total)

            manifest = build(args.backend, args.corpus, args.out, progress=progress, **options)
    sys.stdout.write(json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n")
    return 0


def _info(args: argparse.Namespace) -> int:
    from hopgym.retrievers.manifest import read_manifest

    manifest = read_manifest(args.directory)
    info = manifest.to_json()
    info["size_bytes"] = sum(p.stat().st_size for p in args.directory.rglob("*") if p.is_file())
    sys.stdout.write(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import asyncio

    from hopgym.benchmarks.datasets import PrepareOptions, load_dataset_tasks
    from hopgym.benchmarks.metrics.index_eval import evaluate_retriever
    from hopgym.retrievers.loading import load_retriever

    try:
        ks = sorted({int(k) for k in args.k.split(",") if k.strip()})
    except ValueError:
        raise ConfigError(f"--k {args.k!r}: give whole numbers separated by commas, e.g. 1,3,5,10") from None
    if not ks or ks[0] < 1:
        raise ConfigError(f"--k {args.k!r}: give cutoffs of at least 1, e.g. 1,3,5,10")
    tasks = load_dataset_tasks(args.data, args.data_format, PrepareOptions(limit=args.limit))
    retriever = load_retriever(Path(args.index) if Path(args.index).is_dir() else args.index)

    async def measure() -> dict[str, float]:
        try:
            return await evaluate_retriever(retriever, tasks, ks=ks)
        finally:
            await retriever.aclose()

    summary = asyncio.run(measure())
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return 0
    judged = int(summary["questions_with_supporting"])
    sys.stdout.write(f"{args.data}: {len(tasks)} questions, {judged} with supporting passage ids\n")
    for k in ks:
        recall = summary.get(f"recall@{k}")
        shown = f"{recall:.3f}" if recall is not None else "n/a"
        sys.stdout.write(
            f"recall@{k:<3} {shown}   answer_in_top@{k:<3} {summary[f'answer_in_top@{k}']:.3f}\n"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "index_command", None)
    if action is None:
        args.index_parser.print_help()
        return 2
    handlers = {"build": _build, "info": _info, "eval": _eval}
    try:
        return handlers[action](args)
    except HopgymError as exc:
        sys.stderr.write(f"hopgym index {action}: error: {exc}\n")
        return 2
