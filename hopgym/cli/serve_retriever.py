"""``hopgym serve-retriever``: serve an index over HTTP in every seed project's API."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from hopgym.errors import HopgymError, require

__all__ = ["register", "run"]

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve-retriever",
        help="serve an index over HTTP (Search-R1 /retrieve, FlashRAG /search and /batch_search, "
        "R1-Searcher /queries)",
        description=(
            "Serve a hopgym index directory over HTTP. Endpoints: POST /retrieve (Search-R1, verl, "
            "SkyRL-gym), POST /search and /batch_search (ReSearch / FlashRAG), POST /queries (R1-Searcher), "
            "GET /health, GET /metrics (Prometheus). Concurrent requests are micro-batched into shared "
            "backend calls."
        ),
    )
    parser.add_argument(
        "--index",
        required=True,
        metavar="DIR",
        help="index directory from `hopgym index build` (or a retriever spec: bm25:FILE, simple-bm25:FILE)",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="option for opening the index, e.g. n_threads=2 for bm25 (repeatable)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, local only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' (default: none)")
    parser.add_argument("--max-k", type=int, default=1000, help="largest k a request may ask (default: 1000)")
    parser.add_argument(
        "--max-queries", type=int, default=10_000, help="most queries in one request (default: 10000)"
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=8 * 1024 * 1024, help="largest request body (default: 8 MiB)"
    )
    parser.add_argument("--no-batching", action="store_true", help="send each request to the backend alone")
    parser.add_argument(
        "--max-batch-size", type=int, default=64, help="most queries per backend call (default: 64)"
    )
    parser.add_argument(
        "--max-wait-ms", type=float, default=2.0, help="longest a query waits for a batch (default: 2 ms)"
    )
    parser.add_argument(
        "--timeout-s", type=float, default=60.0, help="per-request backend time limit (default: 60 s)"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        require("fastapi", extra="server", purpose="hopgym serve-retriever")
        uvicorn: Any = require("uvicorn", extra="server", purpose="hopgym serve-retriever")
        from hopgym.cli.index import parse_options
        from hopgym.retrievers.loading import load_retriever
        from hopgym.retrievers.server.app import ServerConfig, create_app

        config = ServerConfig(
            token=args.token,
            max_k=args.max_k,
            max_queries=args.max_queries,
            max_body_bytes=args.max_body_bytes,
            batching=not args.no_batching,
            max_batch_size=args.max_batch_size,
            max_wait_ms=args.max_wait_ms,
            timeout_s=args.timeout_s,
        )
        retriever = load_retriever(args.index, **parse_options(args.option))
    except HopgymError as exc:
        logger.error("%s", exc)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1") and args.token is None:
        logger.warning(
            "serving on %s without --token: anyone who can reach this port can query the index", args.host
        )
    app = create_app(retriever, config, close_retriever=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
