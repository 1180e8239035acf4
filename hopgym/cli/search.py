"""``hopgym search --index SPEC "query" [-k 3]``: run one query and print the passages as JSON.

SPEC is anything :func:`hopgym.retrievers.loading.load_retriever` accepts: an index directory, a server URL,
``bm25:corpus.jsonl`` or ``simple-bm25:corpus.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from hopgym.errors import HopgymError
from hopgym.types import Passage

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search", help="search an index (or server) and print the passages as JSON"
    )
    parser.add_argument(
        "--index",
        required=True,
        metavar="SPEC",
        help="index directory, http(s) URL, bm25:FILE or simple-bm25:FILE (both index FILE in memory)",
    )
    parser.add_argument("query", help="the query text")
    parser.add_argument("-k", type=int, default=3, help="number of passages (default 3)")
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="retriever option (repeatable)"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="check every index file's checksum before searching (reads the whole index; the cheap "
        "structural checks run on every open anyway)",
    )
    parser.set_defaults(handler=run)


async def _search(spec: str, query: str, k: int, options: dict[str, Any]) -> list[Passage]:
    from hopgym.retrievers.loading import aload_retriever

    retriever = await aload_retriever(spec, **options)
    try:
        (hits,) = await retriever.search([query], k)
    finally:
        await retriever.aclose()
    return hits


def run(args: argparse.Namespace) -> int:
    from hopgym.cli.index import parse_options

    try:
        options = parse_options(args.option)
        if args.verify:
            options["verify"] = True
        hits = asyncio.run(_search(args.index, args.query, args.k, options))
    except HopgymError as exc:
        sys.stderr.write(f"hopgym search: error: {exc}\n")
        return 2
    sys.stdout.write(json.dumps([p.to_dict() for p in hits], ensure_ascii=False, indent=2) + "\n")
    return 0
