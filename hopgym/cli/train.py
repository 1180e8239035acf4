"""``hopgym train``: the built-in trainer (or OpenRLHF on Ray) from a preset, a TOML file and overrides."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a policy with GRPO / REINFORCE++ / REINFORCE++-baseline",
        description=(
            "Train a search agent with reinforcement learning. Settings come from --preset and/or --config "
            "(TOML: [model], [env], [rollout], [algorithm], [optim], [run], [eval]), then SECTION.FIELD=VALUE "
            "overrides, e.g. `hopgym train --preset hopworld-tiny algorithm.estimator=reinforce`."
        ),
    )
    parser.add_argument("overrides", nargs="*", metavar="SECTION.FIELD=VALUE", help="override one setting")
    parser.add_argument("--config", type=Path, help="a TOML config file")
    parser.add_argument("--preset", help="a named preset (see --list-presets)")
    parser.add_argument("--out", type=Path, help="the run directory (default: runs/<preset or config name>)")
    parser.add_argument(
        "--resume", type=Path, metavar="DIR", help="continue the run in DIR at its last checkpoint"
    )
    parser.add_argument(
        "--backend",
        choices=("builtin", "openrlhf"),
        default="builtin",
        help="builtin: this machine (CPU or one GPU); openrlhf: prepare the data and launch OpenRLHF on Ray (GPUs)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="--backend openrlhf: print the command, run nothing"
    )
    parser.add_argument("--gpus", type=int, default=8, help="--backend openrlhf: GPUs per node (default 8)")
    parser.add_argument("--nodes", type=int, default=1, help="--backend openrlhf: nodes (default 1)")
    parser.add_argument(
        "--ray-address",
        default="",
        help="--backend openrlhf: submit to this Ray cluster (e.g. http://HEAD:8265)",
    )
    parser.add_argument(
        "--openrlhf-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="--backend openrlhf: one more train_ppo_ray flag, passed as given: --openrlhf-arg=--FLAG=VALUE (repeatable)",
    )
    parser.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    parser.add_argument("--list-options", action="store_true", help="print every SECTION.FIELD with its help")
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config as TOML and exit"
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from hopgym.errors import ConfigError

    try:
        return _train(args)
    except ConfigError as exc:
        print(f"error: {exc}")
        return 2


def _train(args: argparse.Namespace) -> int:
    from hopgym.trainers.config import config_to_dict, describe_options, load_config
    from hopgym.trainers.presets import PRESETS

    if args.list_presets:
        for name in PRESETS:
            print(name)
        return 0
    if args.list_options:
        for key, default, help_text in describe_options():
            print(f"{key} = {default}\n    {help_text}")
        return 0
    from hopgym.trainers.trainer import Trainer

    if args.resume is not None:
        if args.config or args.preset or args.overrides:
            print("error: --resume continues a run with its saved config; drop --config/--preset/overrides")
            return 2
        trainer = Trainer.resume(args.resume)
        return _drive(trainer)
    config = load_config(args.config, preset=args.preset, overrides=args.overrides)
    if args.print_config:
        from hopgym.trainers.trainer import _to_toml

        print(_to_toml(config_to_dict(config)))
        return 0
    name = args.preset or (args.config.stem if args.config else "run")
    out = args.out or Path("runs") / name
    if args.backend == "openrlhf":
        return _openrlhf(config, out, args)
    return _drive(Trainer(config, out))


def _openrlhf(config: Any, out: Path, args: argparse.Namespace) -> int:
    """Map the config to OpenRLHF's agent config, prompt file and ``train_ppo_ray`` command, and run it."""
    import shlex
    import subprocess

    from hopgym.trainers.openrlhf.config import AgentConfig
    from hopgym.trainers.openrlhf.data import prepare_openrlhf_data
    from hopgym.trainers.openrlhf.launch import OpenRLHFLaunch, openrlhf_command

    model = config.model.path
    if config.model.warmup:
        from hopgym.trainers.presets import run_warmup

        model, _ = run_warmup(config.model.warmup, dict(config.model.warmup_options), seed=config.run.seed)
    rollout, optim = config.rollout, config.optim
    agent = AgentConfig(
        env=config.env.id,
        env_kwargs=dict(config.env.kwargs),
        max_tokens=rollout.max_tokens,
        max_episode_retries=rollout.max_episode_retries,
    )
    data = prepare_openrlhf_data(agent, out / "openrlhf_data", max_tasks=config.env.max_tasks)
    batch = rollout.prompts_per_step * rollout.samples_per_prompt
    launch = OpenRLHFLaunch(
        pretrain=str(Path(model).absolute()),
        prompt_data=str(data.prompts),
        agent_config=str(data.agent_config),
        out_dir=str(out.absolute()),
        samples_per_prompt=rollout.samples_per_prompt,
        rollout_batch_size=rollout.prompts_per_step,
        train_batch_size=batch // optim.mini_batches,
        micro_train_batch_size=optim.micro_batch_size,
        max_len=rollout.max_episode_tokens,
        temperature=rollout.temperature,
        top_p=rollout.top_p,
        lr=optim.lr,
        max_epochs=optim.epochs,
        seed=config.run.seed,
        num_nodes=args.nodes,
        gpus_per_node=args.gpus,
        dynamic_filtering=rollout.dynamic_filtering,
        ray_address=args.ray_address,
        extra_args=tuple(args.openrlhf_arg),
    )
    command = openrlhf_command(config.algorithm, launch)
    print(shlex.join(command))
    if args.dry_run:
        print(f"# {data.tasks} prompts in {data.prompts}; agent config {data.agent_config}")
        return 0
    return subprocess.run(command, check=False).returncode


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _drive(trainer: Any) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    steps = trainer.config.run.steps
    with Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("train", total=steps, status="starting")

        def on_step(record: dict[str, Any]) -> None:
            if record.get("kind") == "eval":
                parts = [
                    f"{k.split('/')[1]} {v:.2f}" for k, v in record.items() if k.endswith("/success_rate")
                ]
                progress.console.print(f"step {record['step']}: held-out success " + ", ".join(parts))
                return
            progress.update(
                task,
                completed=record["step"],
                status=(
                    f"reward {record.get('reward_mean', 0):.3f}  success {record.get('success_rate', 0):.2f}  "
                    f"searches {record.get('mean_searches', 0):.2f}  {record.get('tokens_per_s', 0):.0f} tok/s"
                ),
            )

        trainer.on_step = on_step
        result = trainer.train()
    for key in sorted(set(result.before) | set(result.after)):
        name = key.split("/")[1]
        before, after = result.before.get(key), result.after.get(key)
        console.print(f"held-out {name} success: {_fmt(before)} -> {_fmt(after)}")
    console.print(f"run directory: {result.run_dir} (metrics.jsonl, curves.png, checkpoints/)")
    console.print(json.dumps({"steps": result.steps, "wall_s": round(result.wall_s, 1)}))
    return 0
