"""Per-call time limits for any retriever."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from hopgym.errors import ConfigError, RetrieverError, RetrieverTimeout
from hopgym.retrievers.base import Retriever
from hopgym.types import Passage

__all__ = ["TimeoutRetriever"]


class TimeoutRetriever:
    """Raise :class:`RetrieverTimeout` when one ``search`` call of ``inner`` takes over ``timeout_s``.

    The waiting coroutine is cancelled; work already handed to a worker thread cannot be interrupted and
    finishes in the background, its result discarded. Closing this retriever closes ``inner`` if
    ``close_inner``.
    """

    def __init__(
        self, inner: Retriever, timeout_s: float, *, name: str | None = None, close_inner: bool = True
    ) -> None:
        if (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, (int, float))
            or not (math.isfinite(timeout_s) and timeout_s > 0)
        ):
            raise ConfigError(f"timeout_s={timeout_s!r} is invalid: use a number of seconds > 0")
        self.inner = inner
        self.timeout_s = float(timeout_s)
        self.name = name or type(inner).__name__
        self._close_inner = close_inner
        self._closed = False

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        if self._closed:
            raise RetrieverError("TimeoutRetriever is closed; create a new one to search again")
        task = asyncio.ensure_future(self.inner.search(queries, k))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.timeout_s)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            task.add_done_callback(_consume_outcome)
            raise RetrieverTimeout(
                f"{self.name} did not answer {len(queries)} queries within {self.timeout_s:g} s; "
                "raise the timeout or check that the backend is not overloaded"
            )
        return task.result()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._close_inner:
            await self.inner.aclose()


def _consume_outcome(task: asyncio.Future[Any]) -> None:
    # An abandoned call may still fail; reading its outcome keeps asyncio from logging it as unhandled.
    if not task.cancelled():
        task.exception()
