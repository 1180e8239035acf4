"""``hopgym view DIR``: write the static trajectory viewer of a ``hopgym eval`` run."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "view",
        help="write DIR/viewer/index.html, an HTML trajectory viewer of a hopgym eval run (opens from disk)",
    )
    parser.add_argument("run_dir", metavar="DIR", help="the --out directory of hopgym eval")
    parser.add_argument(
        "--data",
        default=None,
        help="task file with the golden answers (default: the one named in DIR/config.json)",
    )
    parser.add_argument(
        "--out", default=None, help="where to write the page (default: DIR/viewer/index.html)"
    )
    parser.add_argument("--format", default=None, help="format of --data (default: sniffed, as hopgym eval)")
    parser.add_argument("--report", action="store_true", help="also (re)write DIR/report.md and DIR/plots/")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from hopgym.benchmarks.reports import load_run, write_report
    from hopgym.benchmarks.viewer import write_viewer
    from hopgym.errors import HopgymError

    console = Console(stderr=True)
    try:
        tasks = None
        if args.data is not None:
            from hopgym.benchmarks.reports.run_data import read_task_file

            tasks = read_task_file(args.data, args.format)
        data = load_run(args.run_dir, tasks=tasks)
        if not data.tasks:
            console.print(
                "[yellow]golden answers unknown[/yellow] (config.json names no readable task file): "
                "pass --data FILE to show them"
            )
        path = write_viewer(args.run_dir, out=args.out, run=data)
        if args.report:
            console.print(f"wrote {escape(str(write_report(args.run_dir, run=data)))}")
    except HopgymError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    print(path.resolve().as_uri())
    return 0
