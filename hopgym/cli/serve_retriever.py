"""``hopgym serve-retriever``: serve an index over HTTP in every seed project's API."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from hopgym.errors import ConfigError, HopgymError, require

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
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--token",
        default=None,
        help="require 'Authorization: Bearer TOKEN' (default: none); visible to other users in `ps`, "
        "so prefer --token-env or --token-file",
    )
    secret.add_argument(
        "--token-env", default=None, metavar="VAR", help="read the bearer token from environment variable VAR"
    )
    secret.add_argument(
        "--token-file",
        default=None,
        metavar="FILE",
        type=Path,
        help="read the bearer token from FILE (its first line; keep it readable by you alone)",
    )
    parser.add_argument("--max-k", type=int, default=1000, help="largest k a request may ask (default: 1000)")
    parser.add_argument(
        "--max-queries", type=int, default=10_000, help="most queries in one request (default: 10000)"
    )
    parser.add_argument(
        "--max-results",
        type=int,
        default=20_000,
        help="most passages one request may ask for, queries x k (default: 20000)",
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=8 * 1024 * 1024, help="largest request body (default: 8 MiB)"
    )
    parser.add_argument(
        "--max-response-bytes",
        type=int,
        default=32 * 1024 * 1024,
        help="largest response body (default: 32 MiB)",
    )
    parser.add_argument(
        "--header-timeout-s",
        type=float,
        default=10.0,
        help="close a connection whose request headers take longer (default: 10 s)",
    )
    parser.add_argument(
        "--body-timeout-s",
        type=float,
        default=30.0,
        help="answer 408 to a request whose body takes longer (default: 30 s)",
    )
    parser.add_argument("--no-batching", action="store_true", help="send each request to the backend alone")
    parser.add_argument(
        "--max-batch-size", type=int, default=64, help="most queries per backend call (default: 64)"
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=0.0,
        help="how long a query may wait for companions while a backend slot is free and another call runs "
        "(default: 0, never: requests are batched only while every slot is busy)",
    )
    parser.add_argument(
        "--timeout-s", type=float, default=60.0, help="per-request backend time limit (default: 60 s)"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.set_defaults(handler=run)


def read_token(args: argparse.Namespace) -> str | None:
    """The bearer token from ``--token``, ``--token-env VAR`` or ``--token-file FILE`` (None: no token)."""
    if args.token_env is not None:
        value = os.environ.get(args.token_env)
        if value is None or not value.strip():
            raise ConfigError(
                f"--token-env {args.token_env}: the environment variable is unset or blank; export it "
                "before starting the server"
            )
        return value.strip()
    if args.token_file is not None:
        try:
            text = Path(args.token_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--token-file {args.token_file}: cannot read it ({exc})") from None
        lines = text.splitlines()
        token = lines[0].strip() if lines else ""
        if not token:
            raise ConfigError(f"--token-file {args.token_file}: line 1 is empty; write the token there")
        return token
    given: str | None = args.token
    return given


def run(args: argparse.Namespace) -> int:
    try:
        require("httptools", extra="server", purpose="hopgym serve-retriever")
        from hopgym.cli.index import parse_options
        from hopgym.retrievers.loading import load_retriever
        from hopgym.retrievers.server.app import ServerConfig, create_app, serve

        token = read_token(args)
        config = ServerConfig(
            token=token,
            max_k=args.max_k,
            max_queries=args.max_queries,
            max_results=args.max_results,
            max_body_bytes=args.max_body_bytes,
            max_response_bytes=args.max_response_bytes,
            header_timeout_s=args.header_timeout_s,
            body_timeout_s=args.body_timeout_s,
            batching=not args.no_batching,
            max_batch_size=args.max_batch_size,
            max_wait_ms=args.max_wait_ms,
            timeout_s=args.timeout_s,
        )
        retriever = load_retriever(args.index, **parse_options(args.option))
    except HopgymError as exc:
        logger.error("%s", exc)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1") and token is None:
        logger.warning(
            "serving on %s without --token: anyone who can reach this port can query the index", args.host
        )
    app = create_app(retriever, config, close_retriever=True)
    logging.getLogger("hopgym").setLevel(args.log_level.upper())
    serve(app, host=args.host, port=args.port)
    return 0
