"""``hopgym eval``: run an agent over an environment's tasks and report its score.

Results stream to ``--output`` as JSON lines while the run goes; rerunning with the same output skips the
tasks already done, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from hopgym.cli.common import add_env_arguments, parse_env_kwargs

AGENTS = ("oracle",)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate an agent on an environment (default: oracle on HopWorld)"
    )
    add_env_arguments(parser)
    parser.add_argument(
        "--agent", choices=AGENTS, default="oracle", help="which agent plays (default: oracle)"
    )
    parser.add_argument("--episodes", type=int, default=100, help="number of tasks to play (default: 100)")
    parser.add_argument(
        "--output", default=None, help="append per-episode results to this JSONL file (resumes)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from hopgym.errors import HopgymError

    console = Console(stderr=True)
    if args.episodes < 1:
        console.print("[red]error:[/red] --episodes must be >= 1")
        return 2
    if args.output is not None and Path(args.output).is_dir():
        # Checked before the env is built: that can take minutes, and the log would fail only then.
        example = escape(str(Path(args.output) / "results.jsonl"))
        console.print(
            f"[red]error:[/red] --output {escape(args.output)}: is a directory; give a file path, e.g. {example}"
        )
        return 2
    try:
        summary = asyncio.run(_evaluate(args, console))
    except HopgymError as exc:
        # escape: messages quote data (e.g. "['x']") that rich would otherwise read as markup and drop.
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; rerun with the same --output to resume[/yellow]")
        return 130
    print(summary)
    return 0


async def _evaluate(args: argparse.Namespace, console: Any) -> str:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from hopgym.agents.oracle_episode import play_oracle_episode
    from hopgym.envs import make_async
    from hopgym.jsonl_log import JsonlLog

    env = make_async(args.env, **parse_env_kwargs(args.env_arg))
    async with env:
        task_ids = [t.id for t in env.tasks[: args.episodes]]
        log = JsonlLog(args.output) if args.output else None
        results: dict[str, dict[str, Any]] = {}
        if log is not None:
            results = {r["task_id"]: r for r in log.records() if r.get("task_id") in set(task_ids)}
            log.open()
        todo = [t for t in task_ids if t not in results]
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        try:
            with Progress(*columns, console=console, transient=True) as progress:
                bar = progress.add_task(
                    f"{args.agent} on {args.env}", total=len(task_ids), completed=len(results)
                )
                for task_id in todo:
                    record = (await play_oracle_episode(env, task_id)).to_dict()
                    results[task_id] = record
                    if log is not None:
                        log.append(record)
                    progress.advance(bar)
        finally:
            if log is not None:
                log.close()
    rewards = [float(r["reward"]) for r in results.values()]
    searches = [int(r["num_searches"]) for r in results.values()]
    resumed = len(task_ids) - len(todo)
    return (
        f"{args.agent} on {args.env}: {len(rewards)} episodes"
        + (f" ({resumed} resumed)" if resumed else "")
        + f", mean reward {sum(rewards) / len(rewards):.3f}, mean searches {sum(searches) / len(searches):.2f}"
    )
