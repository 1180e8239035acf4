"""``hopgym eval``: evaluate the HopWorld oracle or any OpenAI-compatible model as a search agent.

::

    hopgym eval --data FILE | --env ID  [--retriever SPEC]
                --agent oracle | --base-url URL --model NAME [--api chat|completions] [--api-key K]
                [--protocol P] [--reward NAME] [--top-k 3] [--max-turns 4] [--max-tokens 512]
                [--temperature 0] [-n SAMPLES] [--limit N] [--concurrency 64] [--seed S] --out DIR
    hopgym eval --compare DIR [DIR ...] [--out DIR]

Episodes run on the episode engine (:func:`hopgym.benchmarks.evaluation.run_eval`); with ``--out`` the run
directory gets ``trajectories.jsonl``, ``config.json``, ``summary.json``, ``report.md`` and plots, and
rerunning the same command resumes. With no arguments: the oracle on 100 HopWorld questions (the quickstart).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hopgym.cli.common import parse_env_kwargs

AGENTS = ("oracle",)
_QUICKSTART_EPISODES = 100


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate an agent (the HopWorld oracle or an OpenAI-compatible model); compare runs",
        description="Evaluate an agent on QA tasks through the episode engine, or compare finished runs.",
    )
    source = parser.add_argument_group("tasks and retriever")
    source.add_argument("--data", help="task file (FlashRAG jsonl, NQ-open, HotpotQA, MuSiQue, 2Wiki, ...)")
    source.add_argument("--format", dest="data_format", help="format of --data (default: sniffed)")
    source.add_argument("--env", help="registered env id instead of --data (default: hopgym/HopWorld-v0)")
    source.add_argument(
        "--env-arg", action="append", metavar="KEY=VALUE", help="extra env kwarg for --env (repeatable)"
    )
    source.add_argument(
        "--retriever", help="index directory, http(s) retriever server URL, or bm25:CORPUS.jsonl (in memory)"
    )
    source.add_argument("--dataset", help="name for the run's tasks in tables (default: from --data)")
    agent = parser.add_argument_group("agent")
    agent.add_argument(
        "--agent", choices=AGENTS, help="the scripted HopWorld oracle (default without a model)"
    )
    agent.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    agent.add_argument("--model", help="model name the server serves (GET /v1/models)")
    agent.add_argument("--api", choices=("chat", "completions"), default="chat", help="default: chat")
    agent.add_argument("--api-key", help="bearer key (default: $OPENAI_API_KEY; never written to files)")
    agent.add_argument("--extra-body", help="JSON object merged into every request, e.g. '{\"top_k\": 20}'")
    agent.add_argument("--timeout", type=float, default=300.0, help="seconds per request (default: 300)")
    agent.add_argument("--max-retries", type=int, default=3, help="retries of a failed request (default: 3)")
    agent.add_argument("--judge-base-url", help="LLM-as-judge: an OpenAI-compatible chat server (optional)")
    agent.add_argument("--judge-model", help="the judge's model name (verdicts cached in the run directory)")
    episode = parser.add_argument_group("episodes")
    episode.add_argument("--protocol", help="search_r1 | research | r1_searcher | tool_call (default: env's)")
    episode.add_argument(
        "--method",
        default="agent",
        help="agent (default: the model searches as --protocol says) | direct | naive_rag | iter_retgen | ircot "
        "(the seed papers' baselines; see hopgym.envs.protocols.baselines)",
    )
    episode.add_argument("--reward", help="registered reward name (default: the protocol's)")
    episode.add_argument("--top-k", type=int, help="passages per search (default: env's, 3)")
    episode.add_argument("--max-turns", type=int, help="actions per episode (default: env's)")
    episode.add_argument("--max-tokens", type=int, default=512, help="tokens per turn (default: 512)")
    episode.add_argument("--temperature", type=float, default=0.0, help="default: 0 (greedy)")
    episode.add_argument("-n", "--samples", type=int, default=1, help="episodes per task (default: 1)")
    episode.add_argument(
        "--limit", type=int, help="first N tasks only (default: all; 100 for the quickstart)"
    )
    episode.add_argument("--episodes", type=int, dest="limit", help=argparse.SUPPRESS)  # the old name
    episode.add_argument("--concurrency", type=int, default=64, help="episodes in flight (default: 64)")
    episode.add_argument("--seed", type=int, help="sampling seed (each turn gets its own, derived)")
    output = parser.add_argument_group("output")
    output.add_argument("--out", help="run directory (resumable); with --compare, where the table goes")
    output.add_argument(
        "--output", help="only a trajectories JSONL file instead of a run directory (resumes)"
    )
    output.add_argument(
        "--compare", nargs="+", metavar="DIR", help="compare finished runs: one table, markdown, CSV and PNG"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from hopgym.errors import HopgymError

    console = Console(stderr=True)

    def fail(message: str) -> int:
        # escape: messages quote data (e.g. "['x']") that rich would otherwise read as markup and drop.
        console.print(f"[red]error:[/red] {escape(message)}")
        return 2

    if args.compare:
        return _compare(args, console, fail)
    if args.output is not None and args.out is not None:
        return fail("give --out DIR (a run directory) or --output FILE (trajectories only), not both")
    if args.output is not None and Path(args.output).is_dir():
        # Checked before the env is built: that can take minutes, and the log would fail only then.
        return fail(
            f"--output {args.output}: is a directory; give a file path, e.g. {Path(args.output) / 'results.jsonl'}"
        )
    try:
        config = _config(args)
    except HopgymError as exc:
        return fail(str(exc))
    try:
        result = asyncio.run(_evaluate(config, args.output, console))
    except HopgymError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; rerun the same command to resume[/yellow]")
        return 130
    print(_headline(result))
    if result.stopped:
        console.print(f"[yellow]{escape(result.stopped)}[/yellow]")
        return 1
    failed = int(result.summary.get("failed") or 0)
    if failed:
        console.print(
            f"[yellow]{failed} episode(s) failed (kept apart, not scored; see summary.json 'errors'); "
            "rerun the same command to retry them[/yellow]"
        )
        return 1
    return 0


def _config(args: argparse.Namespace) -> Any:
    from hopgym.benchmarks.evaluation import EvalConfig
    from hopgym.envs.protocols.baselines import method_settings
    from hopgym.errors import ConfigError

    extra_body: dict[str, Any] = {}
    if args.extra_body:
        try:
            extra_body = json.loads(args.extra_body)
        except ValueError as exc:
            raise ConfigError(
                f"--extra-body is not valid JSON ({exc}); give an object, e.g. '{{\"top_k\": 20}}'"
            ) from exc
        if not isinstance(extra_body, dict):
            raise ConfigError("--extra-body must be a JSON object, e.g. '{\"top_k\": 20}'")
    model_run = args.base_url is not None or args.model is not None
    if model_run and args.agent == "oracle":
        raise ConfigError(
            "--agent oracle plays without a model; drop --base-url/--model, or drop --agent oracle"
        )
    limit = args.limit
    if limit is None and args.data is None and args.env is None:
        limit = _QUICKSTART_EPISODES  # the quickstart: `hopgym eval` alone stays a few seconds
    return EvalConfig(
        data=args.data,
        env=args.env,
        env_args=parse_env_kwargs(args.env_arg),
        retriever=args.retriever,
        data_format=args.data_format,
        agent="model" if model_run else "oracle",
        base_url=args.base_url,
        model=args.model,
        api=args.api,
        api_key=args.api_key if args.api_key is not None else os.environ.get("OPENAI_API_KEY") or None,
        extra_body=extra_body,
        reward=args.reward,
        top_k=args.top_k,
        **method_settings(args.method, protocol=args.protocol, max_turns=args.max_turns),
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        samples=args.samples,
        limit=limit,
        concurrency=args.concurrency,
        seed=args.seed,
        timeout_s=args.timeout,
        max_retries=args.max_retries,
        judge_base_url=args.judge_base_url,
        judge_model=args.judge_model,
        out=args.out,
        dataset=args.dataset,
    )


async def _evaluate(config: Any, output: str | None, console: Any) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from hopgym.benchmarks.evaluation import run_eval

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[live]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    live = {"em_sum": 0.0, "scored": 0, "failed": 0}
    with Progress(*columns, console=console, transient=True) as progress:
        bar: list[Any] = []

        def on_start(planned: int, done: int, description: str) -> None:
            bar.append(progress.add_task(description, total=planned, completed=done, live=""))

        def on_episode(traj: Any, em: float | None) -> None:
            if traj.failed:
                live["failed"] += 1
            elif em is not None:
                live["em_sum"] += em
                live["scored"] += 1
            text = f"EM {live['em_sum'] / live['scored']:.3f}" if live["scored"] else ""
            text += f"  failed {int(live['failed'])}" if live["failed"] else ""
            progress.update(bar[0], advance=0 if traj.failed else 1, live=text)

        return await run_eval(config, trajectories=output, on_start=on_start, on_episode=on_episode)


def _headline(result: Any) -> str:
    summary = result.summary
    metrics = summary.get("metrics") or {}
    reward_name = result.config.reward
    parts = [
        f"{'oracle' if result.config.agent == 'oracle' else result.config.model} on {result.config.dataset_name}"
    ]
    count = f"{summary.get('episodes', 0)} episodes"
    if result.resumed:
        count += f" ({result.resumed} resumed)"
    parts.append(count)
    if metrics.get(reward_name) is not None:
        parts.append(f"mean reward {metrics[reward_name]:.3f}")
    for name in ("em", "f1"):
        if metrics.get(name) is not None:
            parts.append(f"{name.upper()} {metrics[name]:.3f}")
    if summary.get("mean_searches") is not None:
        parts.append(f"mean searches {summary['mean_searches']:.2f}")
    if summary.get("failed"):
        parts.append(f"{summary['failed']} failed")
    line = ", ".join(parts[:1]) + ": " + ", ".join(parts[1:])
    if result.run_dir is not None:
        line += f"\nwrote {result.run_dir}/ (summary.json, trajectories.jsonl, report.md)"
    return line


def _compare(args: argparse.Namespace, console: Any, fail: Callable[[str], int]) -> int:
    from hopgym.benchmarks.evaluation.compare import compare_runs, write_comparison
    from hopgym.errors import HopgymError

    try:
        table = compare_runs([Path(d) for d in args.compare])
        files = write_comparison(table, Path(args.out or "compare"))
    except HopgymError as exc:
        return fail(str(exc))
    print(table.to_markdown())
    console.print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0
