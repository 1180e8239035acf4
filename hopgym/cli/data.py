"""``hopgym data``: turn a QA dataset in any known format into hopgym's task file (and corpus).

``hopgym data prepare [--format F] IN --out DIR`` writes ``DIR/tasks.jsonl`` and, when the rows carry their
own paragraphs, ``DIR/corpus.jsonl``; ``hopgym data prepare --hf NAME [--hf-config C] [--hf-split S] --out
DIR`` reads a Hugging Face hub split instead; ``hopgym data formats`` lists the formats.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hopgym.errors import ConfigError, HopgymError

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("data", help="prepare QA datasets (HotpotQA, MuSiQue, 2Wiki, NQ, ...)")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    prepare = actions.add_parser(
        "prepare",
        help="write tasks.jsonl (and corpus.jsonl) from a dataset file or a Hugging Face split",
        description="Read a QA dataset and write DIR/tasks.jsonl (id, question, golden_answers, metadata) and, "
        "when its rows carry their own paragraphs (hotpotqa, musique, 2wiki), DIR/corpus.jsonl with each "
        "paragraph once and the supporting passage ids in each task's metadata. The format is sniffed "
        "unless --format is given.",
    )
    prepare.add_argument("input", nargs="?", type=Path, help="dataset file (.jsonl, .json, .csv, .parquet)")
    prepare.add_argument("--out", required=True, type=Path, help="directory to write tasks.jsonl into")
    prepare.add_argument("--format", dest="fmt", help="dataset format (see: hopgym data formats)")
    prepare.add_argument("--dataset", help="name for metadata.dataset (default: the format's dataset)")
    prepare.add_argument("--limit", type=int, help="keep the first N questions")
    prepare.add_argument("--passage-prefix", help="start of passage ids (default per format, e.g. hp)")
    prepare.add_argument("--question-field", default="question", help="generic: question field")
    prepare.add_argument(
        "--answer-field", default="answer", help="generic: answers field (dotted paths work)"
    )
    prepare.add_argument("--id-field", default="id", help="generic: id field ('' for row numbers)")
    prepare.add_argument(
        "--keep-unanswerable",
        action="store_true",
        help="musique: keep MuSiQue-Full's unanswerable questions (its official script does not score them)",
    )
    prepare.add_argument("--hf", metavar="NAME", help="read a Hugging Face hub dataset instead of a file")
    prepare.add_argument("--hf-config", help="the hub dataset's configuration, e.g. distractor")
    prepare.add_argument("--hf-split", default="validation", help="the split (default: validation)")
    prepare.set_defaults(handler=run)
    formats = actions.add_parser("formats", help="list the dataset formats")
    formats.set_defaults(handler=run)
    parser.set_defaults(handler=run, data_parser=parser)


def _prepare(args: argparse.Namespace) -> int:
    from hopgym.benchmarks.datasets import (
        FieldNames,
        PrepareOptions,
        read_dataset,
        read_hf_dataset,
        write_prepared,
    )

    if (args.input is None) == (args.hf is None):
        raise ConfigError("give a dataset file (IN) or --hf NAME, not both and not neither")
    try:
        fields = FieldNames(args.question_field, args.answer_field, args.id_field or None)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    options = PrepareOptions(
        dataset=args.dataset,
        passage_prefix=args.passage_prefix,
        limit=args.limit,
        fields=fields,
        keep_unanswerable=args.keep_unanswerable,
    )
    if args.hf is not None:
        dataset = read_hf_dataset(
            args.hf, args.fmt, config=args.hf_config, split=args.hf_split, options=options
        )
    else:
        dataset = read_dataset(args.input, args.fmt, options)
    written = write_prepared(dataset, args.out)
    out = sys.stdout
    out.write(f"{dataset.source}: format {dataset.format}\n")
    out.write(f"wrote {len(dataset.tasks)} tasks to {written['tasks']}\n")
    if dataset.skipped.get("unanswerable"):
        out.write(
            f"left out {dataset.skipped['unanswerable']} unanswerable questions (MuSiQue's official answer "
            "metrics skip them; --keep-unanswerable keeps them)\n"
        )
    if "corpus" in written:
        out.write(f"wrote {len(dataset.passages)} passages to {written['corpus']}\n")
        out.write(
            f"next: hopgym index build --corpus {written['corpus']} --out {args.out / 'bm25'} && "
            f"hopgym eval --data {written['tasks']} --retriever {args.out / 'bm25'} ...\n"
        )
    return 0


def _formats() -> int:
    from hopgym.benchmarks.datasets import FORMATS

    width = max(map(len, FORMATS))
    for name, spec in FORMATS.items():
        sys.stdout.write(f"{name:<{width}}  {spec.describe}\n")
    return 0


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "data_command", None)
    if action is None:
        args.data_parser.print_help()
        return 2
    try:
        return _prepare(args) if action == "prepare" else _formats()
    except HopgymError as exc:
        sys.stderr.write(f"hopgym data {action}: error: {exc}\n")
        return 2
