"""The ``hopgym`` command: one entry point, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from hopgym.version import __version__

__all__ = ["build_parser", "main"]

# Each module defines ``register(subparsers)``, which adds its parser and sets ``handler`` to a function
# ``(argparse.Namespace) -> int``. Modules are imported lazily so ``hopgym --help`` stays fast.
_COMMAND_MODULES = (
    "envs",
    "play",
    "eval",
    "score",
    "index",
    "search",
    "serve_retriever",
    "train",
    "plot",
    "view",
    "data",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hopgym",
        description="Search-QA environments, retrievers and agents for LLMs that reason with search.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)"
    )
    parser.add_argument("--version", action="version", version=f"hopgym {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"hopgym.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2), format="%(levelname)s %(name)s: %(message)s"
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
