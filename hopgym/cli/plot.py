"""``hopgym plot RUN [RUN ...]``: training curves of one run, or several overlaid."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("plot", help="plot training curves of one or more runs")
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (hopgym train --out)")
    parser.add_argument(
        "--out", type=Path, help="PNG path (default: RUN/curves.png, or curves.png for several)"
    )
    parser.add_argument("--labels", nargs="+", help="legend labels, one per run")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from hopgym.errors import ConfigError
    from hopgym.trainers.plots import plot_runs

    out = args.out or (args.runs[0] / "curves.png" if len(args.runs) == 1 else Path("curves.png"))
    if args.labels and len(args.labels) != len(args.runs):
        print(f"error: {len(args.labels)} labels for {len(args.runs)} runs")
        return 2
    try:
        plot_runs(args.runs, out, labels=args.labels)
    except ConfigError as exc:
        print(f"error: {exc}")
        return 2
    print(f"wrote {out}")
    return 0
