"""``hopgym envs``: list the registered environments."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("envs", help="list registered hopgym environments")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import gymnasium
    from rich.console import Console
    from rich.table import Table

    from hopgym.envs import hopgym_env_ids

    rows: list[dict[str, Any]] = []
    for env_id in hopgym_env_ids():
        kwargs = dict(gymnasium.spec(env_id).kwargs)
        factory = kwargs.pop("core_factory")
        rows.append({"id": env_id, "factory": factory, "kwargs": kwargs})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="hopgym environments")
    table.add_column("id")
    table.add_column("kwargs")
    table.add_column("core factory", overflow="fold")
    for row in rows:
        table.add_row(row["id"], json.dumps(row["kwargs"]), row["factory"])
    Console().print(table)
    return 0
