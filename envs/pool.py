"""An env pool: one env per concurrent episode, all sharing one micro-batching retriever.

Hundreds of episodes at once each need their own env (an env holds one episode's state), but they should not
each hold a retriever: the pool makes every env with :meth:`AsyncSearchQAEnv.clone` from one prototype, around
one :class:`~hopgym.retrievers.wrappers.batching.MicroBatchingRetriever` that turns the searches of all
episodes into batched backend calls. Rollout engines and trainers use it so that they never touch retrievers.

The source is a registered env id (built once with ``env_kwargs``, closed with the pool), an env used as the
prototype (left open: it is the caller's), or a factory called once per env (sharing a retriever is then up
to the factory).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, TypeAlias

from hopgym.envs.core import AsyncSearchQAEnv
from hopgym.errors import ConfigError
from hopgym.retrievers.base import Retriever
from hopgym.retrievers.wrappers.batching import MicroBatchingRetriever

__all__ = ["EnvFactory", "EnvPool", "EnvSource"]

EnvFactory: TypeAlias = Callable[[], "AsyncSearchQAEnv | Awaitable[AsyncSearchQAEnv]"]
EnvSource: TypeAlias = "str | AsyncSearchQAEnv | EnvFactory"


class EnvPool:
    """Makes one env per episode (see the module docstring).

    ``retriever_batching``: ``True`` wraps the prototype's retriever in a ``MicroBatchingRetriever`` with its
    default settings, a mapping gives its keyword arguments (``max_batch_size``, ``max_wait_ms``,
    ``max_concurrency``, ``on_batch``), ``False`` shares the retriever as it is. A prototype whose retriever
    already batches is shared as it is. The pool starts on first use; close it with ``aclose()`` or ``async
    with``.
    """

    def __init__(
        self,
        source: EnvSource,
        *,
        env_kwargs: Mapping[str, Any] | None = None,
        retriever_batching: bool | Mapping[str, Any] = True,
    ) -> None:
        if not isinstance(source, (str, AsyncSearchQAEnv)) and not callable(source):
            raise ConfigError(
                f"env must be a registered env id, an AsyncSearchQAEnv or a factory, got {type(source).__name__}"
            )
        if env_kwargs and not isinstance(source, str):
            raise ConfigError("env_kwargs apply to an env id only; configure the env you pass instead")
        if not isinstance(retriever_batching, (bool, Mapping)):
            raise ConfigError(
                f"retriever_batching={retriever_batching!r}: use True, False or a mapping of "
                "MicroBatchingRetriever options"
            )
        self._source = source
        self._env_kwargs = dict(env_kwargs or {})
        self._batching = (
            dict(retriever_batching)
            if isinstance(retriever_batching, Mapping)
            else ({} if retriever_batching else None)
        )
        self._proto: AsyncSearchQAEnv | None = None
        self._shared: Retriever | None = None
        self._own_proto = False
        self._started = False

    @property
    def retriever(self) -> Retriever | None:
        """The retriever every env of the pool searches with (None before start, and for factories)."""
        return self._shared

    async def start(self) -> None:
        """Build the prototype and the shared retriever (idempotent; every other method calls it)."""
        if self._started:
            return
        self._started = True
        if isinstance(self._source, str):
            from hopgym.envs.registration import make_async

            self._proto, self._own_proto = make_async(self._source, **self._env_kwargs), True
        elif isinstance(self._source, AsyncSearchQAEnv):
            self._proto = self._source
        else:
            return
        inner = self._proto.retriever
        if self._batching is None or isinstance(inner, MicroBatchingRetriever):
            self._shared = inner
        else:
            self._shared = MicroBatchingRetriever(inner, close_inner=False, **self._batching)

    async def task_ids(self) -> list[str]:
        """The ids of the env's tasks, in order."""
        await self.start()
        if self._proto is not None:
            return [t.id for t in self._proto.tasks]
        env = await self.new_env()
        try:
            return [t.id for t in env.tasks]
        finally:
            await env.aclose()

    async def new_env(self) -> AsyncSearchQAEnv:
        """A fresh env for one episode; the caller closes it (closing never closes the shared retriever)."""
        await self.start()
        if self._proto is None:
            made = self._source()  # type: ignore[operator]
            env = await made if isinstance(made, Awaitable) else made
            if not isinstance(env, AsyncSearchQAEnv):
                raise ConfigError(f"the env factory returned {type(env).__name__}, not an AsyncSearchQAEnv")
            return env
        return self._proto.clone(retriever=self._shared)

    @contextlib.asynccontextmanager
    async def env(self) -> AsyncIterator[AsyncSearchQAEnv]:
        """``async with pool.env() as env:`` one episode's env, closed on exit."""
        env = await self.new_env()
        try:
            yield env
        finally:
            await env.aclose()

    async def aclose(self) -> None:
        # Close only the batching wrapper made here; the prototype closes (or not) its own retriever.
        if self._proto is not None and self._shared is not None and self._shared is not self._proto.retriever:
            await self._shared.aclose()
        if self._own_proto and self._proto is not None:
            await self._proto.aclose()
        self._proto, self._shared, self._own_proto, self._started = None, None, False, False

    async def __aenter__(self) -> EnvPool:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
