"""The synchronous ``gymnasium.Env`` facade over the async core.

The async core runs on a private event-loop thread owned by the facade, so the facade works from plain
synchronous code and from inside a running event loop (e.g. a notebook) alike. ``close()`` stops that thread;
a facade dropped without ``close()`` closes its core and stops its thread when it is garbage-collected.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar, cast

import gymnasium
import numpy as np

from hopgym.envs.core import AsyncSearchQAEnv
from hopgym.envs.spaces import FreeText
from hopgym.errors import ConfigError, EnvClosedError

__all__ = ["SearchQAEnv"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: How long closing waits for the core's ``aclose()`` (e.g. an owned HTTP retriever's) before giving up.
_CLOSE_TIMEOUT_S = 30.0


class _LoopThread:
    """An event loop running forever on a daemon thread; ``run`` submits a coroutine and waits for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="hopgym-env-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is self._thread:
            return  # collected on its own loop: the thread ends when the loop stops; it cannot join itself
        self._thread.join()
        self.loop.close()


def _shut_down(runner: _LoopThread, core: AsyncSearchQAEnv, collected: bool) -> None:
    """Close ``core`` on its loop, then stop the loop and its thread.

    ``collected`` is True when a facade that was never closed is being garbage-collected: errors are then
    logged, since there is no caller to raise them to.
    """
    try:
        if threading.current_thread() is not runner._thread:
            runner.run(core.aclose(), timeout=_CLOSE_TIMEOUT_S)
    except Exception:
        if not collected:
            raise
        logger.exception("closing a garbage-collected hopgym env failed")
    finally:
        runner.stop()


class SearchQAEnv(gymnasium.Env[str, str]):
    """A real ``gymnasium.Env[str, str]`` driving an :class:`AsyncSearchQAEnv`.

    Build it from a core (``SearchQAEnv(core)``) or get one from ``hopgym.make(...)``. ``close()`` is idempotent
    and closes the core.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 4}  # noqa: RUF012 - gymnasium.Env declares it so

    def __init__(self, core: AsyncSearchQAEnv, *, render_mode: str | None = None) -> None:
        if render_mode not in (None, "ansi"):
            raise ConfigError(
                f"render_mode={render_mode!r}: only 'ansi' (text) rendering is supported; pass 'ansi' or None"
            )
        self.core = core
        self.render_mode = render_mode
        self.observation_space = FreeText()
        self.action_space = FreeText()
        self._runner: _LoopThread | None = _LoopThread()
        # Holds the runner and the core, never self, so an unclosed facade can still be collected.
        self._closer = weakref.finalize(self, _shut_down, self._runner, core, True)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._runner is None:
            coro.close()
            raise EnvClosedError("the environment is closed: close() was called; make a new one")
        return self._runner.run(coro)

    # Gymnasium's np_random and env_checker read ``_np_random``: share the core's generator.
    @property
    def _np_random(self) -> np.random.Generator | None:
        return self.core._np_random

    @_np_random.setter
    def _np_random(self, value: np.random.Generator | None) -> None:
        self.core._np_random = value

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        if seed is not None:
            self._np_random_seed = seed
        obs, info = self._run(self.core.reset(seed=seed, options=options))
        # A ResetInfo at run time is a plain dict; Gymnasium's signature says dict[str, Any].
        return obs, cast(dict[str, Any], info)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self._run(self.core.step(action))
        return obs, reward, terminated, truncated, cast(dict[str, Any], info)

    def render(self) -> str | None:
        return self.core.render() if self.render_mode == "ansi" else None

    def close(self) -> None:
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        self._closer.detach()
        _shut_down(runner, self.core, False)
