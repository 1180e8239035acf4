"""Learning benchmark (issue 12 §3): does RL visibly teach the from-scratch HopWorld policy to search?

Runs ``hopgym train --preset hopworld-tiny`` once per setting with the same budget (steps and
``run.max_minutes``) from the same cached warm-up model: GRPO (``group_norm``), REINFORCE++ (``reinforce``),
REINFORCE++-baseline (``reinforce_baseline``), and GRPO with retrieved-token masking off
(``rollout.mask_observations=false``). Each run is a separate process with one torch thread; ``--parallel 2``
runs two at once (on 2 cores each then gets about one core; the figures say so). Then it reads every run's
``metrics.jsonl`` and writes, under ``--out`` (default ``benchmarks/results/learning``):

- ``curves.png``: held-out 2-hop (and 3-hop) success vs wall time and vs step, mean searches and
  invalid-action rate of the training rollouts, one line per setting;
- ``table.md``: per setting, held-out success before/after, the best, when (step, minutes) 2-hop first
  reached the target (0.9), steps done, wall minutes, mean searches and invalid-action rate at the end;
- ``metrics.json``: the eval and training series the plot was drawn from, and the machine's load.

Usage: ``python benchmarks/learning.py [--minutes 15] [--steps 200] [--parallel 2] [--runs grpo,...]
[--set section.field=value ...]``. Run directories go under ``--runs-dir`` (default ``runs/learning``),
which is not committed.

Results on this machine are recorded in ``benchmarks/results/learning/table.md`` (with the load average at
the time: the 2 cores were shared with other jobs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

_CLI = [sys.executable, "-c", "import sys; from hopgym.cli import main; sys.exit(main())"]

RUNS: dict[str, tuple[str, list[str]]] = {
    "grpo": ("GRPO (group_norm)", ["algorithm.estimator=group_norm"]),
    "reinforce": ("REINFORCE++ (reinforce)", ["algorithm.estimator=reinforce"]),
    "reinforce_baseline": ("REINFORCE++-baseline", ["algorithm.estimator=reinforce_baseline"]),
    "grpo_nomask": (
        "GRPO, retrieved tokens not masked",
        ["algorithm.estimator=group_norm", "rollout.mask_observations=false"],
    ),
}
TARGET = 0.9


def _train(name: str, runs_dir: Path, minutes: float, steps: int, extra: Sequence[str]) -> Path:
    out = runs_dir / name
    overrides = [*RUNS[name][1], f"run.max_minutes={minutes}", f"run.steps={steps}", *extra]
    cmd = [*_CLI, "train", "--preset", "hopworld-tiny", "--out", str(out), *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = runs_dir / f"{name}.log"
    print(f"[{time.strftime('%H:%M:%S')}] start {name}: {' '.join(cmd[4:])}", flush=True)
    with log.open("w") as handle:
        code = subprocess.call(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env)
    print(f"[{time.strftime('%H:%M:%S')}] end {name}: exit {code} (log {log})", flush=True)
    return out


def _series(run_dir: Path) -> dict[str, Any]:
    from hopgym.trainers.metrics import read_metrics

    path = run_dir / "metrics.jsonl"
    records = read_metrics(path) if path.exists() else []
    evals = [r for r in records if r.get("kind") == "eval"]
    train = [r for r in records if r.get("kind") != "eval"]
    return {"eval": evals, "train": train}


def _first_reach(evals: list[dict[str, Any]], key: str) -> tuple[int, float] | None:
    for record in evals:
        if record.get(key, 0.0) >= TARGET:
            return int(record["step"]), float(record["elapsed_s"]) / 60.0
    return None


def _table(results: dict[str, dict[str, Any]], load: str, parallel: int) -> str:
    lines = [
        "| setting | 2-hop before | 2-hop after | 2-hop best | 3-hop before | 3-hop after | 2-hop >= 0.9 at "
        "(step, min) | steps | wall min | searches (last step) | invalid (last step) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, data in results.items():
        evals, train = data["eval"], data["train"]
        if not evals:
            lines.append(f"| {RUNS[name][0]} | no eval recorded | | | | | | | | | |")
            continue
        two, three = "eval/2hop/success_rate", "eval/3hop/success_rate"
        reach = _first_reach(evals, two)
        last = train[-1] if train else {}
        lines.append(
            f"| {RUNS[name][0]} | {evals[0].get(two, float('nan')):.2f} | {evals[-1].get(two, float('nan')):.2f} "
            f"| {max(e.get(two, 0.0) for e in evals):.2f} | {evals[0].get(three, float('nan')):.2f} "
            f"| {evals[-1].get(three, float('nan')):.2f} | "
            f"{f'{reach[0]}, {reach[1]:.1f}' if reach else 'not reached'} | {last.get('step', 0)} "
            f"| {evals[-1]['elapsed_s'] / 60:.1f} | {last.get('mean_searches', float('nan')):.2f} "
            f"| {last.get('invalid_action_rate', float('nan')):.3f} |"
        )
    lines += [
        "",
        f"Machine: 2 CPU cores shared with other jobs; load average at the end: {load}. {parallel} run(s) at "
        "a time, one torch thread each. Held-out sets: 2-hop on world 2001, 3-hop on world 2002 (greedy); RL "
        "on world 1000; warm-up on worlds below 1000. Wall minutes include the periodic evaluations.",
    ]
    return "\n".join(lines) + "\n"


def _plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    panels = [
        (axes[0][0], "eval", "elapsed_s", "eval/2hop/success_rate", "held-out 2-hop success vs minutes"),
        (axes[0][1], "eval", "step", "eval/2hop/success_rate", "held-out 2-hop success vs step"),
        (axes[0][2], "eval", "elapsed_s", "eval/3hop/success_rate", "held-out 3-hop success vs minutes"),
        (axes[1][0], "train", "step", "success_rate", "training success (sampled) vs step"),
        (axes[1][1], "train", "step", "mean_searches", "mean searches per episode (training)"),
        (axes[1][2], "train", "step", "invalid_action_rate", "invalid-action rate (training)"),
    ]
    for ax, kind, x_key, y_key, title in panels:
        for name, data in results.items():
            rows = [r for r in data[kind] if y_key in r and x_key in r]
            xs = [r[x_key] / 60.0 if x_key == "elapsed_s" else r[x_key] for r in rows]
            ax.plot(xs, [r[y_key] for r in rows], marker="o" if kind == "eval" else None, label=RUNS[name][0])
        if "success" in y_key and kind == "eval":
            ax.axhline(TARGET, color="grey", linestyle=":", linewidth=1)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("minutes" if x_key == "elapsed_s" else "step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("hopworld-tiny: RL from a warm-up policy on held-out HopWorld worlds (2 CPU cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=15.0, help="RL wall budget per run (run.max_minutes)"
    )
    parser.add_argument("--steps", type=int, default=200, help="step cap per run (run.steps)")
    parser.add_argument("--parallel", type=int, default=2, help="runs at once (one torch thread each)")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated subset of {list(RUNS)}")
    parser.add_argument("--set", action="append", default=[], help="extra SECTION.FIELD=VALUE override")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/learning"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/learning"))
    parser.add_argument(
        "--model", type=Path, help="start every run from this model directory instead of the preset's warm-up"
    )
    parser.add_argument("--report-only", action="store_true", help="only re-read existing run directories")
    args = parser.parse_args(argv)
    names = [n for n in args.runs.split(",") if n]
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        parser.error(f"unknown runs {unknown}; choose from {list(RUNS)}")
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    if args.model is not None:
        args.set = [f"model.path={args.model.resolve()}", "model.warmup=", *args.set]
    if not args.report_only and args.model is None:
        # Build the warm-up model once (cached by its config), before the runs race to build it.
        from hopgym.trainers.config import train_config_from_dict
        from hopgym.trainers.presets import preset_dict, run_warmup

        config = train_config_from_dict(preset_dict("hopworld-tiny"))
        started = time.perf_counter()
        model_dir, info = run_warmup(
            config.model.warmup, dict(config.model.warmup_options), seed=config.run.seed
        )
        print(
            f"warm-up model {model_dir} ({'reused' if info.get('reused') else 'built'} in "
            f"{time.perf_counter() - started:.0f} s): {json.dumps(info.get('held_out'))}",
            flush=True,
        )

    if not args.report_only:
        with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
            list(pool.map(lambda n: _train(n, args.runs_dir, args.minutes, args.steps, args.set), names))
    results = {n: _series(args.runs_dir / n) for n in names}
    args.out.mkdir(parents=True, exist_ok=True)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    (args.out / "table.md").write_text(_table(results, load, args.parallel), encoding="utf-8")
    _plot(results, args.out / "curves.png")
    (args.out / "metrics.json").write_text(
        json.dumps({"load_average": load, "parallel": args.parallel, "runs": results}, indent=1),
        encoding="utf-8",
    )
    print((args.out / "table.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
