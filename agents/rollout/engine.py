"""The async episode engine: many episodes at once, each its own generate -> step -> generate coroutine.

No episode waits for another (no lock-step batched turns): concurrency comes from the policy backend batching
whatever requests are in flight, and from the env pool (:class:`~hopgym.envs.pool.EnvPool`), whose envs share
one micro-batching retriever that turns the searches of all episodes into batched backend calls. Episodes are
started lazily, at most ``concurrency`` at a time, so a run of 100k episodes never materialises 100k
coroutines. One episode's turn loop is :func:`~hopgym.agents.rollout.episode.run_episode`; a run's settings
are a :class:`~hopgym.agents.rollout.config.RolloutConfig`.

A policy, env or retriever exception ends that episode only: it is recorded with termination ``"failed"``
and ``error="Type: message"`` and no reward (never a silent zero), stored, counted, and retried on resume.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from hopgym.agents.policy import Policy, SamplingParams, token_policy
from hopgym.agents.rollout.config import RolloutConfig
from hopgym.agents.rollout.episode import failed_trajectory, run_episode
from hopgym.agents.rollout.store import TrajectoryStore
from hopgym.agents.rollout.trajectory import Trajectory
from hopgym.envs.pool import EnvPool, EnvSource
from hopgym.errors import ConfigError
from hopgym.types import Task

__all__ = [
    "EnvSource",
    "EpisodeRun",
    "RolloutConfig",
    "RunResult",
    "RunSummary",
    "collect_episodes",
    "run_episode",
    "run_episodes",
    "run_episodes_sync",
]


@dataclass
class RunSummary:
    """Live counters of a run (updated as episodes finish)."""

    planned: int = 0
    skipped: int = 0
    finished: int = 0
    failed: int = 0
    reward_sum: float = 0.0
    generated_tokens: int = 0
    terminations: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    started_at: float = field(default_factory=time.monotonic)
    wall_s: float = 0.0

    @property
    def mean_reward(self) -> float:
        """Mean reward of the episodes that did not fail (failed ones have no reward)."""
        ok = self.finished - self.failed
        return self.reward_sum / ok if ok else 0.0

    @property
    def episodes_per_s(self) -> float:
        return self.finished / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.generated_tokens / self.wall_s if self.wall_s > 0 else 0.0

    def record(self, traj: Trajectory) -> None:
        self.finished += 1
        self.terminations[traj.termination] += 1
        self.generated_tokens += traj.generated_tokens
        if traj.failed:
            self.failed += 1
            self.errors[(traj.error or "").partition(":")[0]] += 1
        else:
            self.reward_sum += traj.reward or 0.0
        self.wall_s = time.monotonic() - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "planned": self.planned,
            "skipped": self.skipped,
            "finished": self.finished,
            "failed": self.failed,
            "mean_reward": self.mean_reward,
            "generated_tokens": self.generated_tokens,
            "terminations": dict(self.terminations),
            "errors": dict(self.errors),
            "wall_s": self.wall_s,
            "episodes_per_s": self.episodes_per_s,
            "tokens_per_s": self.tokens_per_s,
        }


@dataclass(frozen=True)
class RunResult:
    trajectories: list[Trajectory]
    summary: RunSummary


_END = object()


class EpisodeRun:
    """An async iterator of trajectories in finishing order; ``summary`` is live. Use ``async with`` or
    ``aclose()`` to stop early (running episodes are cancelled, envs closed).

    ``envs`` is closed at the end when ``own_envs`` (the run built it); a pool you pass stays open for reuse.
    """

    def __init__(
        self,
        envs: EnvPool,
        policy: Policy,
        tasks: Iterable[str | Task] | None,
        config: RolloutConfig,
        *,
        store: TrajectoryStore | None = None,
        on_result: Callable[[Trajectory], None] | None = None,
        own_envs: bool = False,
    ) -> None:
        if config.max_episode_tokens is not None and token_policy(policy) is None:
            raise ConfigError(
                "max_episode_tokens needs a token-level policy (it caps the token sequence); drop it, or use "
                "a TokenPolicy backend"
            )
        self.summary = RunSummary()
        self.config = config
        self._envs = envs
        self._own_envs = own_envs
        self._policy = policy
        self._tasks = tasks
        self._store = store
        self._on_result = on_result
        self._gen: AsyncIterator[Trajectory] | None = None

    def __aiter__(self) -> EpisodeRun:
        return self

    async def __anext__(self) -> Trajectory:
        if self._gen is None:
            self._gen = self._generate()
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        if self._gen is not None:
            await self._gen.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> EpisodeRun:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _generate(self) -> AsyncIterator[Trajectory]:
        config = self.config
        try:
            if self._store is not None:
                self._store.open()  # locks the file first: a second writer is refused before any work
            done = self._store.done_keys() if self._store is not None else set()
            await self._envs.start()
        except BaseException:
            await self._close()
            raise
        results: asyncio.Queue[object] = asyncio.Queue(maxsize=config.concurrency)
        slots = asyncio.Semaphore(config.concurrency)
        running: set[asyncio.Task[None]] = set()

        async def episode(task_id: str, sample_index: int) -> None:
            try:
                try:
                    env = await self._envs.new_env()
                except Exception as exc:
                    traj = failed_trajectory(task_id, sample_index, exc, self._policy)
                else:
                    try:
                        traj = await run_episode(
                            env, self._policy, task_id, sample_index=sample_index, sampling=config.sampling,
                            max_episode_tokens=config.max_episode_tokens,
                        )  # fmt: skip
                    finally:
                        await env.aclose()
                if self._store is not None:
                    self._store.append(traj)
                self.summary.record(traj)
                if self._on_result is not None:
                    self._on_result(traj)
                await results.put(traj)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # store/callback failures end the run, not just the episode
                await results.put(exc)
            finally:
                slots.release()

        async def feed() -> None:
            try:
                task_ids: Iterable[str | Task] = (
                    self._tasks if self._tasks is not None else await self._envs.task_ids()
                )
                for item in task_ids:
                    task_id = item.id if isinstance(item, Task) else str(item)
                    for sample_index in range(config.samples_per_task):
                        self.summary.planned += 1
                        if (task_id, sample_index) in done:
                            self.summary.skipped += 1
                            continue
                        await slots.acquire()
                        task = asyncio.create_task(episode(task_id, sample_index))
                        running.add(task)
                        task.add_done_callback(running.discard)
                while running:
                    await asyncio.wait(set(running))
                await results.put(_END)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                await results.put(exc)

        feeder = asyncio.create_task(feed())
        try:
            while True:
                item = await results.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, Trajectory)
                yield item
        finally:
            feeder.cancel()
            for task in list(running):
                task.cancel()
            await asyncio.gather(feeder, *running, return_exceptions=True)
            await self._close()

    async def _close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._own_envs:
            await self._envs.aclose()
        self.summary.wall_s = time.monotonic() - self.summary.started_at


def rollout_config(
    config: RolloutConfig | None = None,
    *,
    concurrency: int | None = None,
    samples_per_task: int | None = None,
    sampling: SamplingParams | None = None,
    max_episode_tokens: int | None = None,
    retriever_batching: bool | Mapping[str, Any] | None = None,
) -> RolloutConfig:
    """``config`` (default: ``RolloutConfig()``) with the given fields replaced (None: keep)."""
    changes: dict[str, Any] = {
        "concurrency": concurrency,
        "samples_per_task": samples_per_task,
        "sampling": sampling,
        "max_episode_tokens": max_episode_tokens,
        "retriever_batching": retriever_batching,
    }
    base = config if config is not None else RolloutConfig()
    if not isinstance(base, RolloutConfig):
        raise ConfigError(f"config must be a RolloutConfig, got {type(base).__name__}")
    return dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})


def run_episodes(
    env: EnvSource | EnvPool,
    policy: Policy,
    tasks: Iterable[str | Task] | None = None,
    config: RolloutConfig | None = None,
    *,
    store: TrajectoryStore | str | Path | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    on_result: Callable[[Trajectory], None] | None = None,
    concurrency: int | None = None,
    samples_per_task: int | None = None,
    sampling: SamplingParams | None = None,
    max_episode_tokens: int | None = None,
    retriever_batching: bool | Mapping[str, Any] | None = None,
) -> EpisodeRun:
    """Run episodes of ``tasks`` (ids or Tasks; default: all the env's tasks) x ``samples_per_task``.

    ``env`` is an :class:`~hopgym.envs.pool.EnvPool` (kept open, for reuse across runs), or what one is built
    from for this run: a registered env id (built once with ``env_kwargs``), an env used as a prototype, or
    a factory called once per episode. ``config`` holds the run's settings; the keyword arguments
    ``concurrency`` ... ``retriever_batching`` replace single fields of it. ``tasks`` may be a lazy iterable.
    With ``store``, finished trajectories are appended as they come and (task, sample) pairs already finished
    there are skipped: rerunning resumes (the store is locked while the run writes: a second run on the same
    file is refused). ``on_result`` is called with each trajectory as it finishes. Iterate the result with
    ``async for``.
    """
    resolved = rollout_config(
        config,
        concurrency=concurrency,
        samples_per_task=samples_per_task,
        sampling=sampling,
        max_episode_tokens=max_episode_tokens,
        retriever_batching=retriever_batching,
    )
    if isinstance(env, EnvPool):
        if env_kwargs:
            raise ConfigError("env_kwargs apply to an env id; configure the EnvPool's source instead")
        pool, own = env, False
    else:
        pool = EnvPool(env, env_kwargs=env_kwargs, retriever_batching=resolved.retriever_batching)
        own = True
    if isinstance(store, (str, Path)):
        store = TrajectoryStore(store)
    return EpisodeRun(pool, policy, tasks, resolved, store=store, on_result=on_result, own_envs=own)


async def collect_episodes(
    env: EnvSource | EnvPool,
    policy: Policy,
    tasks: Iterable[str | Task] | None = None,
    config: RolloutConfig | None = None,
    *,
    store: TrajectoryStore | str | Path | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    on_result: Callable[[Trajectory], None] | None = None,
    concurrency: int | None = None,
    samples_per_task: int | None = None,
    sampling: SamplingParams | None = None,
    max_episode_tokens: int | None = None,
    retriever_batching: bool | Mapping[str, Any] | None = None,
) -> RunResult:
    """Run :func:`run_episodes` (same arguments) to the end; every trajectory, in finishing order, and the
    summary."""
    run = run_episodes(
        env,
        policy,
        tasks,
        config,
        store=store,
        env_kwargs=env_kwargs,
        on_result=on_result,
        concurrency=concurrency,
        samples_per_task=samples_per_task,
        sampling=sampling,
        max_episode_tokens=max_episode_tokens,
        retriever_batching=retriever_batching,
    )
    async with run:
        trajectories = [traj async for traj in run]
    return RunResult(trajectories, run.summary)


def run_episodes_sync(
    env: EnvSource | EnvPool,
    policy: Policy,
    tasks: Iterable[str | Task] | None = None,
    config: RolloutConfig | None = None,
    *,
    store: TrajectoryStore | str | Path | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    on_result: Callable[[Trajectory], None] | None = None,
    concurrency: int | None = None,
    samples_per_task: int | None = None,
    sampling: SamplingParams | None = None,
    max_episode_tokens: int | None = None,
    retriever_batching: bool | Mapping[str, Any] | None = None,
) -> RunResult:
    """Blocking :func:`collect_episodes` (same arguments; starts its own event loop)."""
    return asyncio.run(
        collect_episodes(
            env,
            policy,
            tasks,
            config,
            store=store,
            env_kwargs=env_kwargs,
            on_result=on_result,
            concurrency=concurrency,
            samples_per_task=samples_per_task,
            sampling=sampling,
            max_episode_tokens=max_episode_tokens,
            retriever_batching=retriever_batching,
        )
    )
