"""The async episode engine: many episodes at once, each its own generate -> step -> generate coroutine.

No episode waits for another (no lock-step batched turns): concurrency comes from the policy backend batching
whatever requests are in flight, and from one shared :class:`~hopgym.retrievers.wrappers.batching.MicroBatchingRetriever`
that turns the searches of all episodes into batched backend calls. Episodes are started lazily, at most
``concurrency`` at a time, so a run of 100k episodes never materialises 100k coroutines.

Choices worth knowing:

- A generation cut by ``max_tokens`` (finish reason ``length``) is still stepped: the env sees a partial
  action, usually invalid, and the episode goes on, as it would in training; the turn records the reason.
- With ``max_episode_tokens`` (token-level policies only) the episode ends with termination ``"length"`` when
  the sequence is full; its reward is then computed by the env's reward function with ``finished=False``.
- A policy, env or retriever exception ends that episode only: it is recorded with termination ``"failed"``
  and ``error="Type: message"`` and no reward (never a silent zero), stored, counted, and retried on resume.
- With ``sampling.seed`` set, each turn gets its own seed derived from (seed, task id, sample index, turn), so
  the samples of a group differ but a rerun reproduces them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from hopgym.agents.policy import Context, Generation, Policy, SamplingParams
from hopgym.agents.rollout.store import TrajectoryStore
from hopgym.agents.rollout.trajectory import Termination, Trajectory, Turn
from hopgym.envs.core import AsyncSearchQAEnv
from hopgym.errors import ConfigError
from hopgym.retrievers.base import Retriever
from hopgym.retrievers.wrappers.batching import MicroBatchingRetriever
from hopgym.types import Task

__all__ = [
    "EnvSource",
    "EpisodeRun",
    "RunResult",
    "RunSummary",
    "collect_episodes",
    "run_episode",
    "run_episodes",
    "run_episodes_sync",
]

logger = logging.getLogger(__name__)

EnvFactory = Callable[[], "AsyncSearchQAEnv | Awaitable[AsyncSearchQAEnv]"]
EnvSource = str | AsyncSearchQAEnv | EnvFactory


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


class _Envs:
    """Makes one env per episode; env ids and prototype envs are cloned around one shared batching retriever."""

    def __init__(self, source: EnvSource, env_kwargs: Mapping[str, Any], batching: Mapping[str, Any] | None):
        self._source = source
        self._env_kwargs = dict(env_kwargs)
        self._batching = batching
        self._proto: AsyncSearchQAEnv | None = None
        self._shared: Retriever | None = None
        self._own_proto = False

    async def start(self) -> None:
        if isinstance(self._source, str):
            from hopgym.envs.registration import make_async

            self._proto, self._own_proto = make_async(self._source, **self._env_kwargs), True
        elif isinstance(self._source, AsyncSearchQAEnv):
            if self._env_kwargs:
                raise ConfigError("env_kwargs apply to an env id only; configure the env you pass instead")
            self._proto = self._source
        elif callable(self._source):
            return
        else:
            raise ConfigError(
                f"env must be a registered env id, an AsyncSearchQAEnv or a factory, got {type(self._source).__name__}"
            )
        inner = self._proto.retriever
        if self._batching is None or isinstance(inner, MicroBatchingRetriever):
            self._shared = inner
        else:
            self._shared = MicroBatchingRetriever(inner, close_inner=False, **self._batching)

    async def task_ids(self) -> list[str]:
        if self._proto is not None:
            return [t.id for t in self._proto.tasks]
        env = await self.new_env()
        try:
            return [t.id for t in env.tasks]
        finally:
            await env.aclose()

    async def new_env(self) -> AsyncSearchQAEnv:
        if self._proto is None:
            made = self._source()  # type: ignore[operator]
            env = await made if isinstance(made, Awaitable) else made
            if not isinstance(env, AsyncSearchQAEnv):
                raise ConfigError(f"the env factory returned {type(env).__name__}, not an AsyncSearchQAEnv")
            return env
        assert self._shared is not None
        return self._proto.clone(retriever=self._shared)

    async def aclose(self) -> None:
        # Close only the batching wrapper made here; the prototype closes (or not) its own retriever.
        if self._proto is not None and self._shared is not None and self._shared is not self._proto.retriever:
            await self._shared.aclose()
        if self._own_proto and self._proto is not None:
            await self._proto.aclose()


def _turn_seed(base: int, task_id: str, sample_index: int, turn: int) -> int:
    digest = hashlib.blake2b(f"{base}\0{task_id}\0{sample_index}\0{turn}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def _action_text(gen: Generation) -> str:
    """What the env parses: the text, or the assistant message as JSON when the backend returned tool calls."""
    if not gen.tool_calls:
        return gen.text
    message = {
        "role": "assistant",
        "content": gen.text or None,
        "tool_calls": [dict(c) for c in gen.tool_calls],
    }
    return json.dumps(message, ensure_ascii=False)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


async def run_episode(
    env: AsyncSearchQAEnv,
    policy: Policy,
    task_id: str,
    *,
    sample_index: int = 0,
    sampling: SamplingParams | None = None,
    max_episode_tokens: int | None = None,
    policy_name: str | None = None,
) -> Trajectory:
    """Play one episode of ``task_id`` on ``env``. Exceptions become a failed trajectory (CancelledError
    propagates)."""
    params = sampling or SamplingParams()
    name = policy_name or getattr(policy, "name", None) or type(policy).__name__
    started = time.time()
    turns: list[Turn] = []
    prompt = ""
    prompt_ids: list[int] | None = None
    context: Context | None = None

    def result(termination: Termination, **kwargs: Any) -> Trajectory:
        token_ids = mask = logprobs = spans = None
        if context is not None and context.token_ids is not None and prompt_ids is not None:
            token_ids, mask = tuple(context.token_ids), tuple(context.loss_mask or ())
            logprobs, spans = tuple(running_logprobs), tuple(running_spans)
        return Trajectory(
            task_id=task_id,
            sample_index=sample_index,
            group_id=task_id,
            termination=termination,
            turns=tuple(turns),
            prompt=prompt,
            prompt_token_count=None if prompt_ids is None else len(prompt_ids),
            token_ids=token_ids,
            loss_mask=mask,
            logprobs=logprobs,
            action_spans=spans,
            policy=str(name),
            started_at=started,
            finished_at=time.time(),
            **kwargs,
        )

    running_logprobs: list[float | None] = []
    running_spans: list[tuple[int, int]] = []
    try:
        prompt, info = await env.reset(options={"task_id": task_id})
        context = Context(prompt=prompt, messages=list(info["messages"]), tools=info.get("tools"))
        stop = tuple(dict.fromkeys((*info.get("stop", ()), *params.stop)))
        if policy.token_level:
            prompt_ids = list(policy.encode_prompt(context))
            context.token_ids = list(prompt_ids)
            context.loss_mask = [0] * len(prompt_ids)
            running_logprobs = [None] * len(prompt_ids)
        elif max_episode_tokens is not None:
            raise ConfigError("max_episode_tokens needs a token-level policy (it caps the token sequence)")
        turn_index = 0
        episode_params = dataclasses.replace(params, stop=stop)
        while True:
            turn_params = episode_params
            if params.seed is not None:
                turn_params = dataclasses.replace(
                    turn_params, seed=_turn_seed(params.seed, task_id, sample_index, turn_index)
                )
            if max_episode_tokens is not None and context.token_ids is not None:
                room = max_episode_tokens - len(context.token_ids)
                if room < 1:
                    return _length_result(env, result, turns)
                turn_params = dataclasses.replace(turn_params, max_tokens=min(turn_params.max_tokens, room))
            t0 = time.perf_counter()
            gen = await policy.generate(context, turn_params)
            generation_s = time.perf_counter() - t0
            if policy.token_level and gen.token_ids is None:
                raise TypeError(f"{name} is token-level but returned a generation without token ids")
            action = _action_text(gen)
            t1 = time.perf_counter()
            observation, reward, terminated, truncated, step_info = await env.step(action)
            step_s = time.perf_counter() - t1

            context.text += gen.text + observation
            assistant: dict[str, Any] = {"role": "assistant", "content": gen.text}
            if gen.tool_calls:
                assistant["tool_calls"] = [dict(c) for c in gen.tool_calls]
            context.messages.append(assistant)
            obs_ids: tuple[int, ...] | None = None
            if context.token_ids is not None and context.loss_mask is not None and gen.token_ids is not None:
                start = len(context.token_ids)
                context.token_ids += gen.token_ids
                context.loss_mask += [1] * len(gen.token_ids)
                running_logprobs += (
                    list(gen.logprobs) if gen.logprobs is not None else [None] * len(gen.token_ids)
                )
                running_spans.append((start, len(context.token_ids)))
                obs_ids = tuple(policy.encode(observation)) if observation else ()
                context.token_ids += obs_ids
                context.loss_mask += [0] * len(obs_ids)
                running_logprobs += [None] * len(obs_ids)
            if observation:
                context.messages.append(
                    env.protocol.observation_message(observation, step_info.get("tool_call_id"))
                )
            turns.append(
                Turn(
                    text=gen.text,
                    finish_reason=gen.finish_reason,
                    stop_reason=gen.stop_reason,
                    observation=observation,
                    action_kind=str(step_info["action_kind"]),
                    token_ids=gen.token_ids,
                    logprobs=gen.logprobs,
                    observation_token_ids=obs_ids,
                    query=step_info.get("query"),
                    answer=step_info.get("answer"),
                    passage_ids=tuple(step_info.get("passage_ids") or ()),
                    invalid_reason=step_info.get("invalid_reason"),
                    tool_calls=tuple(gen.tool_calls),
                    generation_s=generation_s,
                    step_s=step_s,
                )
            )
            turn_index += 1
            if terminated or truncated:
                return result(
                    "answered" if terminated else "max_turns",
                    reward=float(reward),
                    reward_components=dict(step_info["reward_components"]),
                    answer=step_info.get("answer"),
                    num_searches=int(step_info.get("num_searches", 0)),
                )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.warning("episode %s/%d failed: %s", task_id, sample_index, _error_text(exc))
        return result(
            "failed", error=_error_text(exc), num_searches=sum(t.action_kind == "search" for t in turns)
        )


def _length_result(env: AsyncSearchQAEnv, result: Callable[..., Trajectory], turns: list[Turn]) -> Trajectory:
    reward, components = env.truncate()
    return result(
        "length",
        reward=reward,
        reward_components=components,
        num_searches=sum(t.action_kind == "search" for t in turns),
    )


def _failed(task_id: str, sample_index: int, exc: BaseException, policy: Policy) -> Trajectory:
    logger.warning("episode %s/%d failed: %s", task_id, sample_index, _error_text(exc))
    now = time.time()
    return Trajectory(
        task_id=task_id,
        sample_index=sample_index,
        group_id=task_id,
        termination="failed",
        error=_error_text(exc),
        policy=str(getattr(policy, "name", None) or type(policy).__name__),
        started_at=now,
        finished_at=now,
    )


_END = object()


class EpisodeRun:
    """An async iterator of trajectories in finishing order; ``summary`` is live. Use ``async with`` or
    ``aclose()`` to stop early (running episodes are cancelled, envs closed)."""

    def __init__(
        self,
        env: EnvSource,
        policy: Policy,
        tasks: Iterable[str | Task] | None,
        *,
        concurrency: int,
        samples_per_task: int,
        sampling: SamplingParams,
        store: TrajectoryStore | None,
        env_kwargs: Mapping[str, Any],
        max_episode_tokens: int | None,
        on_result: Callable[[Trajectory], None] | None,
        retriever_batching: Mapping[str, Any] | None,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency={concurrency}: run at least one episode at a time (>= 1)")
        if samples_per_task < 1:
            raise ConfigError(f"samples_per_task={samples_per_task}: use >= 1 (n samples per task for GRPO)")
        if max_episode_tokens is not None and max_episode_tokens < 1:
            raise ConfigError(f"max_episode_tokens={max_episode_tokens}: use a positive limit, or None")
        self.summary = RunSummary()
        self._envs = _Envs(env, env_kwargs, retriever_batching)
        self._policy = policy
        self._tasks = tasks
        self._concurrency = concurrency
        self._samples = samples_per_task
        self._sampling = sampling
        self._store = store
        self._max_tokens = max_episode_tokens
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
        await self._envs.start()
        done = self._store.done_keys() if self._store is not None else set()
        if self._store is not None:
            self._store.open()
        results: asyncio.Queue[object] = asyncio.Queue(maxsize=self._concurrency)
        slots = asyncio.Semaphore(self._concurrency)
        running: set[asyncio.Task[None]] = set()

        async def episode(task_id: str, sample_index: int) -> None:
            try:
                try:
                    env = await self._envs.new_env()
                except Exception as exc:
                    traj = _failed(task_id, sample_index, exc, self._policy)
                else:
                    try:
                        traj = await run_episode(
                            env, self._policy, task_id, sample_index=sample_index, sampling=self._sampling,
                            max_episode_tokens=self._max_tokens,
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
                    for sample_index in range(self._samples):
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
            if self._store is not None:
                self._store.close()
            await self._envs.aclose()
            self.summary.wall_s = time.monotonic() - self.summary.started_at


def run_episodes(
    env: EnvSource,
    policy: Policy,
    tasks: Iterable[str | Task] | None = None,
    *,
    concurrency: int = 64,
    samples_per_task: int = 1,
    sampling: SamplingParams | None = None,
    store: TrajectoryStore | str | Path | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    max_episode_tokens: int | None = None,
    on_result: Callable[[Trajectory], None] | None = None,
    retriever_batching: Mapping[str, Any] | bool = True,
) -> EpisodeRun:
    """Run episodes of ``tasks`` (ids or Tasks; default: all the env's tasks) x ``samples_per_task``.

    ``env`` is a registered env id (built once with ``env_kwargs``), an env used as a prototype (both are
    cloned per episode around one shared MicroBatchingRetriever: ``retriever_batching`` is True for the default
    settings, a dict of its keyword arguments, or False to share the env's retriever as is), or a
    factory called once per episode (sharing its retriever is then up to it). ``tasks`` may be a lazy
    iterable. With ``store``, finished trajectories are appended as they come and (task, sample) pairs
    already finished there are skipped: rerunning resumes. Iterate the result with ``async for``.
    """
    if isinstance(store, (str, Path)):
        store = TrajectoryStore(store)
    return EpisodeRun(
        env,
        policy,
        tasks,
        concurrency=concurrency,
        samples_per_task=samples_per_task,
        sampling=sampling or SamplingParams(),
        store=store,
        env_kwargs=env_kwargs or {},
        max_episode_tokens=max_episode_tokens,
        on_result=on_result,
        retriever_batching=(
            dict(retriever_batching)
            if isinstance(retriever_batching, Mapping)
            else ({} if retriever_batching else None)
        ),
    )


async def collect_episodes(*args: Any, **kwargs: Any) -> RunResult:
    """Run :func:`run_episodes` to the end and return every trajectory with the summary."""
    run = run_episodes(*args, **kwargs)
    async with run:
        trajectories = [traj async for traj in run]
    return RunResult(trajectories, run.summary)


def run_episodes_sync(*args: Any, **kwargs: Any) -> RunResult:
    """Blocking :func:`collect_episodes` (starts its own event loop)."""
    return asyncio.run(collect_episodes(*args, **kwargs))
