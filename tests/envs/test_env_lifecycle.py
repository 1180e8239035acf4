"""Using an env out of order raises hopgym errors (that are also Gymnasium's); envs survive a failed reset;
unclosed sync envs release their thread; a long reward does not freeze the event loop."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import gymnasium
import gymnasium.error
import pytest

import hopgym
from hopgym.envs import AsyncSearchQAEnv, SearchQAEnv
from hopgym.envs.core import REWARD_THREAD_CHARS
from hopgym.errors import (
    ActionTypeError,
    ConfigError,
    DataError,
    EnvClosedError,
    EnvError,
    HopgymError,
    ResetNeeded,
)
from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.types import Passage, RewardInput, RewardResult, Task

PASSAGES = [Passage("p1", "Velmora Works", "Velmora Works was founded by Ilsa Tarrow in 1921.")]
TASKS = [Task("t1", "Who founded Velmora Works?", ("Ilsa Tarrow",))]


def _core(**kwargs: object) -> AsyncSearchQAEnv:
    return AsyncSearchQAEnv(TASKS, InMemoryBM25Retriever(PASSAGES), **kwargs)  # type: ignore[arg-type]


def test_env_errors_are_hopgym_and_gymnasium_errors() -> None:
    assert issubclass(ResetNeeded, EnvError) and issubclass(ResetNeeded, gymnasium.error.ResetNeeded)
    assert issubclass(EnvClosedError, HopgymError)
    assert issubclass(EnvClosedError, gymnasium.error.ClosedEnvironmentError)
    assert issubclass(ActionTypeError, HopgymError) and issubclass(ActionTypeError, TypeError)
    assert issubclass(ActionTypeError, gymnasium.error.InvalidAction)


async def test_step_before_reset_and_after_the_end_needs_a_reset() -> None:
    env = _core()
    with pytest.raises(ResetNeeded, match="call reset"):
        await env.step("<answer>x</answer>")
    await env.reset()
    await env.step("<answer>x</answer>")
    with pytest.raises(ResetNeeded):
        await env.step("<answer>x</answer>")
    with pytest.raises(ResetNeeded):
        env.truncate()


@pytest.mark.parametrize("action", [None, b"<answer>x</answer>", 3, ["<answer>x</answer>"]])
async def test_an_action_that_is_not_text_raises_action_type_error(action: object) -> None:
    env = _core()
    await env.reset()
    with pytest.raises(ActionTypeError, match="str"):
        await env.step(action)  # type: ignore[arg-type]
    _, reward, terminated, *_ = await env.step("<answer>Ilsa Tarrow</answer>")  # the episode goes on
    assert terminated and reward == 1.0


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"task_id": "nope"}, "'nope' is not among this env's 1 tasks"),
        ({"task_index": "0"}, "must be an int"),
        ({"task_index": True}, "must be an int"),
        ({"task_index": 5}, r"outside 0\.\.0"),
        ({"tsk_id": "t1"}, "unknown reset options"),
        (["task_id"], "must be a dict"),
    ],
)
async def test_bad_reset_options_raise_config_error(options: object, match: str) -> None:
    env = _core()
    with pytest.raises(ConfigError, match=match):
        await env.reset(options=options)  # type: ignore[arg-type]
    assert (await env.reset(options={"task_index": 0}))[1]["task_id"] == "t1"


def test_task_with_a_string_of_golden_answers_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"golden_answers must be a list"):
        Task("t", "q?", "Paris")  # type: ignore[arg-type]


async def test_the_async_core_cannot_be_used_after_aclose() -> None:
    env = _core()
    await env.reset()
    await env.aclose()
    with pytest.raises(EnvClosedError, match="closed"):
        await env.step("<answer>x</answer>")  # mid-episode
    with pytest.raises(EnvClosedError, match="closed"):
        await env.reset()
    with pytest.raises(gymnasium.error.ClosedEnvironmentError):
        env.truncate()
    twin = env.clone()  # a clone is a new, open env
    assert (await twin.reset())[1]["task_id"] == "t1"


def test_sync_env_errors() -> None:
    with pytest.raises(ConfigError, match="render_mode"):
        SearchQAEnv(_core(), render_mode="human")
    env = SearchQAEnv(_core())
    with pytest.raises(ResetNeeded):
        env.step("<answer>x</answer>")
    env.close()
    with pytest.raises(EnvClosedError):
        env.reset()


@pytest.mark.parametrize("make", [hopgym.make, gymnasium.make])
def test_a_failed_first_reset_leaves_a_made_env_usable(make: object) -> None:
    env = make("hopgym/HopWorld-v0")  # type: ignore[operator]
    try:
        with pytest.raises(ConfigError, match="task_id"):
            env.reset(options={"task_id": "no-such-task"})
        prompt, info = env.reset(seed=0)
        assert prompt and info["task_id"]
        _, reward, terminated, truncated, info = env.step("<answer>x</answer>")
        assert terminated and not truncated and reward == 0.0 and info["action_kind"] == "answer"
        env.reset(seed=1)
        env.step("<search>founder</search>")
    finally:
        env.close()


def _loop_threads() -> int:
    return sum(t.name == "hopgym-env-loop" for t in threading.enumerate())


def test_unclosed_sync_envs_release_their_thread_and_loop() -> None:
    gc.collect()
    before = _loop_threads()
    cores = []
    for _ in range(5):
        env = hopgym.make("hopgym/HopWorld-v0")
        env.reset(seed=0)
        cores.append(env.unwrapped.core)  # type: ignore[attr-defined]
        loop = env.unwrapped._runner.loop  # type: ignore[attr-defined]
        del env
    gc.collect()
    assert _loop_threads() == before
    assert loop.is_closed()
    assert all(core._closed for core in cores)  # the core was closed too


def test_closing_releases_the_thread_at_once() -> None:
    before = _loop_threads()
    env = SearchQAEnv(_core())
    assert _loop_threads() == before + 1
    env.close()
    env.close()
    assert _loop_threads() == before


def _slow_em(inp: RewardInput, /) -> RewardResult:
    """EM after ~0.3 s of CPU work: stands in for a long response or an expensive custom reward."""
    deadline = time.perf_counter() + 0.3
    while time.perf_counter() < deadline:
        pass
    score = float(inp.prediction == "Ilsa Tarrow")
    return RewardResult(score, {"em": score})


async def test_a_long_scoring_does_not_freeze_other_episodes() -> None:
    env = _core(reward=_slow_em)
    await env.reset()
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    padding = "x" * REWARD_THREAD_CHARS
    _, reward, terminated, _, info = await env.step(f"<think>{padding}</think><answer>Ilsa Tarrow</answer>")
    stop.set()
    await task
    assert terminated and reward == 1.0 and info["reward_components"] == {"em": 1.0}
    assert ticks >= 5  # about 30 on an idle machine; 0 when the reward runs on the loop
