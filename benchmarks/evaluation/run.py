"""One evaluation run on the episode engine: the oracle and any model go through the same ``run_episodes``.

A run directory holds ``trajectories.jsonl`` (a :class:`~hopgym.agents.rollout.store.TrajectoryStore`: every
attempt, appended as it finishes), ``config.json`` (the resolved settings, written first), ``summary.json``
(see :mod:`.summary`; written at the end and when the run is stopped), and ``report.md`` with ``plots/``
(:func:`hopgym.benchmarks.reports.write_report`). Rerunning the same command resumes: episodes already
finished are not played (nor requested from the server) again; failed ones are retried. A directory holding
a run with other result-changing settings is refused.

A failed episode (a server still down after its retries, a retriever error) is stored as failed, counted in
``summary.json`` and retried on the next run; it never scores 0. After ``max_consecutive_failures`` episodes
in a row failed, the run stops early (a server that is down would otherwise fail every remaining episode one
by one) and stays resumable. A server that refuses the ``tool_call`` protocol's ``tools`` stops the run at
once with the fix (``--protocol search_r1``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hopgym.agents.policy import Policy, SamplingParams
from hopgym.agents.rollout.engine import run_episodes
from hopgym.agents.rollout.store import TrajectoryStore
from hopgym.agents.rollout.trajectory import Trajectory
from hopgym.benchmarks.evaluation.config import EvalConfig, check_resume
from hopgym.benchmarks.evaluation.summary import build_summary, live_em
from hopgym.envs.core import AsyncSearchQAEnv
from hopgym.errors import ConfigError, DataError, HopgymError, RunStopped
from hopgym.retrievers.base import Retriever
from hopgym.types import Task

__all__ = ["CONFIG", "SUMMARY", "TRAJECTORIES", "EvalResult", "RunStopped", "run_eval"]

logger = logging.getLogger(__name__)

TRAJECTORIES = "trajectories.jsonl"
SUMMARY = "summary.json"
CONFIG = "config.json"


@dataclass(frozen=True)
class EvalResult:
    """What a run did: its summary, where it wrote, how many episodes it skipped as already done."""

    config: EvalConfig
    summary: dict[str, Any]
    run_dir: Path | None
    resumed: int
    played: int
    stopped: str | None = None


#: Called once before the first episode with (planned episodes, already done, description).
OnStart = Callable[[int, int, str], None]
#: Called with each finished trajectory and its EM (None when failed or without golden answers).
OnEpisode = Callable[[Trajectory, "float | None"], None]


async def run_eval(
    config: EvalConfig,
    *,
    trajectories: str | Path | None = None,
    on_start: OnStart | None = None,
    on_episode: OnEpisode | None = None,
    policy: Policy | None = None,
) -> EvalResult:
    """Run ``config`` (see the module docstring). ``trajectories`` stores the trajectories in that file
    instead of a run directory (no config/summary/report files). ``policy`` replaces the one ``config``
    describes (tests, custom backends); it is left open for its owner."""
    run_dir = Path(config.out) if config.out else None
    store_path = Path(trajectories) if trajectories is not None else None
    if run_dir is not None:
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--out {run_dir}: is a file; give a directory for the run's files")
        store_path = run_dir / TRAJECTORIES
    started = time.monotonic()
    env, retriever = await _build_env(config)
    own_policy = policy is None
    try:
        tasks = list(env.tasks[: config.limit] if config.limit else env.tasks)
        resolved = config.resolved(
            protocol=env.protocol.name,
            reward=_reward_name(config, env),
            top_k=env.config.top_k,
            max_turns=env.config.max_turns,
        )
        if run_dir is not None:
            _write_config(run_dir, resolved)
        if policy is None:
            policy = _build_policy(resolved, tasks, env)
        return await _play(resolved, env, policy, tasks, run_dir, store_path, started, on_start, on_episode)
    finally:
        if own_policy and policy is not None:
            await policy.aclose()
        await env.aclose()
        if retriever is not None:
            await retriever.aclose()


async def _play(
    config: EvalConfig,
    env: AsyncSearchQAEnv,
    policy: Policy,
    tasks: list[Task],
    run_dir: Path | None,
    store_path: Path | None,
    started: float,
    on_start: OnStart | None,
    on_episode: OnEpisode | None,
) -> EvalResult:
    by_id = {t.id: t for t in tasks}
    planned = {(t.id, i) for t in tasks for i in range(config.samples)}
    store = TrajectoryStore(store_path) if store_path is not None else None
    done = (_done_keys(store.path) & planned) if store is not None and store.path.exists() else set()
    before = _previous_summary(run_dir)
    if on_start is not None:
        on_start(len(planned), len(done), f"{_agent_label(config)} on {config.dataset_name}")
    in_memory: list[Trajectory] = []
    failures = _FailureWatch(config.max_consecutive_failures)
    stopped: str | None = None
    sampling = SamplingParams(
        max_tokens=config.max_tokens, temperature=config.temperature, seed=config.seed, logprobs=False
    )
    interrupted = True
    verdicts: dict[tuple[str, int], float] | None = None
    try:
        run = run_episodes(
            env, policy, tasks, store=store, concurrency=config.concurrency,
            samples_per_task=config.samples, sampling=sampling, on_result=failures.check,
        )  # fmt: skip
        async with run:
            async for traj in run:
                if store is None:
                    in_memory.append(traj)
                if on_episode is not None:
                    on_episode(traj, live_em(traj, by_id.get(traj.task_id)))
        interrupted = False
        if config.judge_model is not None:
            verdicts = await _judge(config, _latest(store, in_memory, planned), by_id, run_dir)
    except RunStopped as exc:
        stopped, interrupted = str(exc), False
    finally:
        # Also on Ctrl-C / cancellation: the summary then says how far the run got (complete: false).
        latest = _latest(store, in_memory, planned)
        tokens = _tokens(policy, before)
        wall = float((before or {}).get("wall_s") or 0.0) + (time.monotonic() - started)
        summary = build_summary(
            latest, by_id, reward_name=str(config.reward), dataset=config.dataset_name,
            planned=len(planned), wall_s=wall, tokens=tokens, judge=verdicts,
        )  # fmt: skip
        if stopped is not None:
            summary["stopped"] = stopped
        if run_dir is not None:
            _write_json(run_dir / SUMMARY, summary)
            if not interrupted:
                _write_report(run_dir, tasks)
    played = sum(1 for _ in latest) - len(done)
    return EvalResult(config, summary, run_dir, resumed=len(done), played=max(played, 0), stopped=stopped)


async def _judge(
    config: EvalConfig, trajectories: list[Trajectory], tasks: dict[str, Task], run_dir: Path | None
) -> dict[tuple[str, int], float]:
    """The judge's verdict score per finished episode; cached in ``run_dir`` (a rerun asks nothing twice)."""
    from hopgym.benchmarks.metrics.judge import JUDGE_CACHE_FILE, JudgeConfig, JudgeItem, LLMJudge

    judge = LLMJudge(
        # No api_key: the judge reads OPENAI_API_KEY; the model's --api-key is never sent to another server.
        JudgeConfig(str(config.judge_base_url), str(config.judge_model)),
        cache=run_dir / JUDGE_CACHE_FILE if run_dir is not None else None,
    )
    finished = [t for t in trajectories if not t.failed and t.task_id in tasks]
    items = [
        JudgeItem(tasks[t.task_id].question, tuple(tasks[t.task_id].golden_answers), t.answer)
        for t in finished
    ]
    try:
        found = await judge.judge_many(items)
    finally:
        await judge.aclose()
    return {t.key: verdict.score for t, verdict in zip(finished, found, strict=True)}


class _FailureWatch:
    """Stops the run on an error no episode can get past (tools refused) or after ``limit`` failures in a
    row (the engine calls ``check`` with every trajectory; raising here ends the run)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.streak = 0

    def check(self, traj: Trajectory) -> None:
        if not traj.failed:
            self.streak = 0
            return
        error = traj.error or ""
        if error.startswith("ToolsNotSupported:"):
            raise ConfigError(error.partition(": ")[2])
        self.streak += 1
        if self.streak >= self.limit:
            raise RunStopped(
                f"stopped after {self.streak} episodes in a row failed (last: {error}); fix the cause and "
                "rerun the same command to resume (finished episodes are kept, failed ones retried)"
            )


def _done_keys(path: Path) -> set[tuple[str, int]]:
    """The finished episodes of a trajectories file; a record that is no trajectory (another file, an old
    ``--output`` results file) is named instead of failing with a traceback."""
    from hopgym.jsonl_log import JsonlLog

    records = list(JsonlLog(path, what="trajectory store").records())  # bad bytes/JSON: file:line errors
    keys: set[tuple[str, int]] = set()
    for index, record in enumerate(records, start=1):
        try:
            traj = Trajectory.from_dict(record)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"record {index} is not a trajectory ({type(exc).__name__}: {exc}); this file was not written "
                "by hopgym eval on the episode engine: give another --out/--output, or remove the file",
                path=str(path),
            ) from exc
        if not traj.failed:
            keys.add(traj.key)
    return keys


def _latest(
    store: TrajectoryStore | None, in_memory: list[Trajectory], planned: set[Any]
) -> list[Trajectory]:
    if store is None:
        return [t for t in in_memory if t.key in planned]
    if not store.path.exists():
        return []
    return [t for key, t in store.latest().items() if key in planned]


def _tokens(policy: Policy, before: dict[str, Any] | None) -> dict[str, int]:
    previous = (before or {}).get("tokens") or {}
    usage = getattr(policy, "usage", None) or {}
    return {
        "prompt": int(previous.get("prompt", 0)) + int(usage.get("prompt_tokens", 0)),
        "completion": int(previous.get("completion", 0)) + int(usage.get("completion_tokens", 0)),
    }


def _agent_label(config: EvalConfig) -> str:
    return str(config.model) if config.agent == "model" else config.agent


def _reward_name(config: EvalConfig, env: AsyncSearchQAEnv) -> str:
    given = config.reward or config.env_args.get("reward")
    if isinstance(given, str) and given:
        return given
    return str(env.protocol.default_reward)


async def _build_env(config: EvalConfig) -> tuple[AsyncSearchQAEnv, Retriever | None]:
    """The run's env, and the retriever to close after it when the env does not own it."""
    overrides: dict[str, Any] = {
        name: getattr(config, name)
        for name in ("protocol", "reward", "top_k", "max_turns")
        if getattr(config, name) is not None
    }
    if config.data is not None:
        from hopgym.envs.core import AsyncSearchQAEnv
        from hopgym.retrievers.loading import aload_retriever

        tasks = await asyncio.to_thread(_read_tasks, config)
        retriever = await aload_retriever(str(config.retriever))
        try:
            return AsyncSearchQAEnv(tasks, retriever, close_retriever=True, **overrides), None
        except BaseException:
            await retriever.aclose()
            raise
    from hopgym.envs import make_async
    from hopgym.retrievers.loading import aload_retriever

    kwargs = {**config.env_args, **overrides}
    # Opened here rather than by the env's factory, so every env id takes --retriever (HopWorld too).
    opened = await aload_retriever(config.retriever) if config.retriever else None
    if opened is not None:
        kwargs["retriever"] = opened
    try:
        # A task file is read while the env is built: off the event loop.
        return await asyncio.to_thread(make_async, str(config.env), **kwargs), opened
    except BaseException:
        if opened is not None:
            await opened.aclose()
        raise


def _read_tasks(config: EvalConfig) -> list[Task]:
    from hopgym.benchmarks.datasets.prepare import PrepareOptions, load_dataset_tasks

    return load_dataset_tasks(str(config.data), config.data_format, PrepareOptions(limit=config.limit))


def _build_policy(config: EvalConfig, tasks: list[Task], env: AsyncSearchQAEnv) -> Policy:
    if config.agent == "oracle":
        from hopgym.agents.scripted_policy import ScriptedOraclePolicy

        if not all(isinstance(t.metadata.get("hopworld"), dict) for t in tasks):
            raise ConfigError(
                "--agent oracle plays HopWorld tasks only (it reads metadata['hopworld']); evaluate a model "
                "on this data with --base-url URL --model NAME"
            )
        return ScriptedOraclePolicy(tasks, env.protocol)
    from hopgym.agents.openai_policy import OpenAIPolicy

    return OpenAIPolicy(
        str(config.base_url),
        str(config.model),
        api_key=config.api_key,
        mode="chat" if config.api == "chat" else "completions",
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        extra_body=config.extra_body,
        protocol=env.protocol,
        max_connections=max(config.concurrency, 1),
    )


def _previous_summary(run_dir: Path | None) -> dict[str, Any] | None:
    if run_dir is None or not (run_dir / SUMMARY).is_file():
        return None
    try:
        value = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("%s is unreadable; token and time totals restart from this run", run_dir / SUMMARY)
        return None
    return value if isinstance(value, dict) else None


def _write_config(run_dir: Path, config: EvalConfig) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    current = config.to_json()
    path = run_dir / CONFIG
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc}); fix or delete it") from exc
        if isinstance(previous, dict):
            check_resume(previous, current, path)
    _write_json(path, current)


def _write_json(path: Path, value: Any) -> None:
    # Beside the target, then renamed: a killed run never leaves half a file under the name.
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _write_report(run_dir: Path, tasks: list[Task]) -> None:
    """``report.md`` and plots, from :mod:`hopgym.benchmarks.reports` (a report problem never loses the
    run's results: it is logged)."""
    try:
        from hopgym.benchmarks.reports import write_report

        write_report(run_dir, tasks=tasks)
    except (HopgymError, OSError, ValueError) as exc:
        logger.warning("could not write the report of %s: %s", run_dir, exc)
