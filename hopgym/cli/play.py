"""``hopgym play``: play an episode yourself, typing the agent's turns."""

from __future__ import annotations

import argparse
from typing import Any

from hopgym.cli.common import add_env_arguments, parse_env_kwargs


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("play", help="play an episode interactively (you are the agent)")
    add_env_arguments(parser)
    parser.add_argument("--seed", type=int, default=None, help="reset seed (chooses the task)")
    parser.add_argument("--task-id", default=None, help="play this task id")
    parser.add_argument("--show-answer", action="store_true", help="reveal the golden answers at the end")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from hopgym.envs import make
    from hopgym.errors import HopgymError

    console = Console()
    try:
        env = make(args.env, **parse_env_kwargs(args.env_arg))
    except HopgymError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    try:
        options = {"task_id": args.task_id} if args.task_id else None
        prompt, info = env.reset(seed=args.seed, options=options)
        protocol = env.unwrapped.core.protocol  # type: ignore[attr-defined]
        console.rule(f"{args.env} · task {info['task_id']}")
        console.print(prompt, markup=False, highlight=False)
        console.print(
            f"[dim]Type one turn of agent text, e.g. {protocol.render_search('some query')!r} or "
            f"{protocol.render_answer('your answer')!r}. Turns end at a stop string: {list(protocol.stop)}. "
            "Ctrl-D quits.[/dim]"
        )
        while True:
            try:
                action = console.input("[bold cyan]agent> [/bold cyan]")
            except EOFError:
                console.print()
                return 0
            obs, reward, terminated, truncated, step_info = env.step(action)
            if step_info["invalid"]:
                console.print(f"[yellow]invalid action:[/yellow] {step_info['invalid_reason']}")
            console.print(obs, markup=False, highlight=False)
            if terminated or truncated:
                end = "answered" if terminated else "out of turns"
                console.print(
                    f"[bold]episode over ({end}); reward = {reward:g}[/bold] {step_info['reward_components']}"
                )
                if args.show_answer:
                    core = env.unwrapped.core  # type: ignore[attr-defined]
                    console.print(f"golden answers: {list(core.task.golden_answers)}")
                return 0
    finally:
        env.close()
