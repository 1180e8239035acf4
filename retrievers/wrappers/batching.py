"""Micro-batching: many concurrent ``search()`` calls become a few batched backend calls.

Hundreds of episodes each asking one query at a time would cost one backend call per query; batched
backends (bm25s, FAISS, a GPU encoder, a remote server) are far cheaper per query in batches. Batching
only pays under contention, so a request goes to the backend at once, in its caller's task, when a backend
slot is free and nothing else is queued: a lone client pays two counter updates over calling the backend
itself. Requests queue (grouped by ``k``) only while every slot is busy, and a slot that frees up takes a
whole queue, up to ``max_batch_size`` queries: under load batches grow by themselves. ``max_wait_ms`` > 0
(off by default) also holds a request for companions while other calls are in flight, for backends whose
calls cost the same whatever their size (a remote GPU server with many slots).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hopgym.errors import ConfigError, RetrieverError
from hopgym.retrievers.base import Retriever
from hopgym.retrievers.search_args import check_search_args
from hopgym.types import Passage

__all__ = ["BatchingStats", "MicroBatchingRetriever"]

logger = logging.getLogger(__name__)


@dataclass
class BatchingStats:
    """Counters since creation. ``mean_batch_size`` is queries per backend call."""

    requests: int = 0
    queries: int = 0
    batches: int = 0
    batched_queries: int = 0
    max_batch_seen: int = 0

    @property
    def mean_batch_size(self) -> float:
        return self.batched_queries / self.batches if self.batches else 0.0


@dataclass
class _Request:
    queries: list[str]
    future: asyncio.Future[list[list[Passage]]]
    arrived: float


@dataclass
class _Queue:
    requests: deque[_Request] = field(default_factory=deque)
    size: int = 0
    timer: asyncio.TimerHandle | None = None


class MicroBatchingRetriever:
    """Coalesce concurrent searches into batched calls of ``inner``.

    ``max_concurrency`` bounds the backend calls in flight (1-2 suits a CPU-bound backend; more suits a
    remote one). ``on_batch`` is called with the number of queries of every backend call (for metrics).
    A request larger than ``max_batch_size`` goes alone, never split. An error of a backend call reaches
    every waiter of that batch; a cancelled waiter is dropped without disturbing the others, and a backend
    call whose waiters were all cancelled is cancelled too. Closing this retriever runs what is queued,
    waits for calls in flight, then closes ``inner`` if ``close_inner``. ``crowded`` (optional) tells
    whether more callers are about to search in this turn of the event loop; while it does, a request queues
    even with a slot free, and the queue goes out together once the crowd has arrived.
    """

    def __init__(
        self,
        inner: Retriever,
        *,
        max_batch_size: int = 64,
        max_wait_ms: float = 0.0,
        max_concurrency: int = 2,
        on_batch: Callable[[int], None] | None = None,
        close_inner: bool = True,
        crowded: Callable[[], bool] | None = None,
    ) -> None:
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise ConfigError(
                f"max_batch_size={max_batch_size!r} is invalid: use an integer >= 1 (64 is usual)"
            )
        if not (isinstance(max_wait_ms, (int, float)) and math.isfinite(max_wait_ms) and max_wait_ms >= 0):
            raise ConfigError(
                f"max_wait_ms={max_wait_ms!r} is invalid: use a number of milliseconds >= 0 (0: no waiting)"
            )
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ConfigError(f"max_concurrency={max_concurrency!r} is invalid: use an integer >= 1")
        self.inner = inner
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_concurrency = max_concurrency
        self.stats = BatchingStats()
        self._on_batch = on_batch
        self._close_inner = close_inner
        # Whether more callers are about to search in this turn of the event loop (e.g. the server's
        # requests parsed but not yet started): a backend that answers without yielding never keeps a slot
        # busy, so this is how its concurrent requests find each other. Queued then, they go out together
        # once the crowd has arrived (one loop turn at most).
        self._crowded = crowded
        self._flush_soon = False
        self._queues: dict[int, _Queue] = {}
        self._active = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closed = False
        self._drained: asyncio.Future[None] | None = None

    @property
    def pending_queries(self) -> int:
        """Queries queued and not yet sent to the backend."""
        return sum(q.size for q in self._queues.values())

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        queries = check_search_args(queries, k)
        if self._closing:
            raise RetrieverError("MicroBatchingRetriever is closed; create a new one to search again")
        request_queries = list(queries)
        if not request_queries:
            return []
        if (
            self._active < self.max_concurrency
            and not self._queues
            and (self._active == 0 or self.max_wait_s == 0)
            and (self._crowded is None or not self._crowded())
        ):
            # Nothing to batch with: queueing would only add a task switch or a wait.
            self.stats.requests += 1
            self.stats.queries += len(request_queries)
            return await self._run_now(request_queries, k)
        loop = asyncio.get_running_loop()
        request = _Request(request_queries, loop.create_future(), loop.time())
        self.stats.requests += 1
        self.stats.queries += len(request_queries)
        queue = self._queues.setdefault(k, _Queue())
        queue.requests.append(request)
        queue.size += len(request_queries)
        if self._crowded is not None and self._crowded():
            if not self._flush_soon:
                self._flush_soon = True
                loop.call_soon(self._flush)
        else:
            self._dispatch()
        # Awaiting the future directly: cancelling this call cancels only this request's future.
        return await request.future

    async def _run_now(self, queries: list[str], k: int) -> list[list[Passage]]:
        self._active += 1
        try:
            self._count_batch(len(queries))
            results = await self.inner.search(queries, k)
            if len(results) != len(queries):
                raise self._wrong_count(len(results), len(queries))
            return results
        finally:
            self._release()
            if self._queues and not self._closed:
                self._dispatch()

    def _release(self) -> None:
        self._active -= 1
        if self._active == 0 and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _count_batch(self, size: int) -> None:
        self.stats.batches += 1
        self.stats.batched_queries += size
        self.stats.max_batch_seen = max(self.stats.max_batch_seen, size)
        if self._on_batch is not None:
            self._on_batch(size)

    def _wrong_count(self, got: int, sent: int) -> RetrieverError:
        return RetrieverError(
            f"{type(self.inner).__name__} returned {got} result lists for {sent} queries; a backend must "
            "return one list per query"
        )

    def _flush(self) -> None:
        self._flush_soon = False
        if not self._closed:
            self._dispatch()

    def _on_timer(self, k: int) -> None:
        queue = self._queues.get(k)
        if queue is not None:
            queue.timer = None
        self._dispatch()

    def _due(self, queue: _Queue, now: float) -> bool:
        # An idle backend gets work at once: waiting for companions only pays while calls are in flight.
        if self._closing or self._active == 0 or queue.size >= self.max_batch_size or self.max_wait_s == 0:
            return True
        return bool(queue.requests) and now - queue.requests[0].arrived >= self.max_wait_s

    def _dispatch(self) -> None:
        """Start backend calls for due queues, oldest first, while a slot is free."""
        loop = asyncio.get_running_loop()
        while self._active < self.max_concurrency:
            now = loop.time()
            due = [
                (q.requests[0].arrived, k)
                for k, q in self._queues.items()
                if q.requests and self._due(q, now)
            ]
            if not due:
                break
            _, k = min(due)
            batch = self._take_batch(k)
            if batch:
                self._active += 1
                task = loop.create_task(self._run_batch(k, batch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                for request in batch:
                    request.future.add_done_callback(functools.partial(_abandon_if_unwanted, task, batch))
        self._rearm_timers(loop)

    def _take_batch(self, k: int) -> list[_Request]:
        queue = self._queues[k]
        batch: list[_Request] = []
        size = 0
        while queue.requests:
            head = queue.requests[0]
            if head.future.done():  # its caller was cancelled before the batch was sent
                queue.requests.popleft()
                queue.size -= len(head.queries)
                continue
            if batch and size + len(head.queries) > self.max_batch_size:
                break
            queue.requests.popleft()
            queue.size -= len(head.queries)
            batch.append(head)
            size += len(head.queries)
        if not queue.requests:
            if queue.timer is not None:
                queue.timer.cancel()
            del self._queues[k]
        return batch

    def _rearm_timers(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for k, queue in self._queues.items():
            if queue.timer is not None or not queue.requests:
                continue
            deadline = queue.requests[0].arrived + self.max_wait_s
            # A queue already due waits for a free slot: the end of a running batch dispatches it.
            if deadline > now:
                queue.timer = loop.call_at(deadline, self._on_timer, k)

    async def _run_batch(self, k: int, batch: list[_Request]) -> None:
        try:
            live = [r for r in batch if not r.future.done()]
            if not live:
                return
            queries = [q for r in live for q in r.queries]
            self._count_batch(len(queries))
            try:
                results = await self.inner.search(queries, k)
                if len(results) != len(queries):
                    raise self._wrong_count(len(results), len(queries))
            except Exception as exc:
                for request in live:
                    if not request.future.done():
                        request.future.set_exception(exc)
                return
            except BaseException:
                # This task itself was cancelled (loop shutdown): its waiters cannot be answered.
                for request in live:
                    request.future.cancel()
                raise
            offset = 0
            for request in live:
                part = results[offset : offset + len(request.queries)]
                offset += len(request.queries)
                if not request.future.done():
                    request.future.set_result(part)
        finally:
            self._release()
            if not self._closed:
                self._dispatch()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closing = True
        # Queued requests still get answers: a closing server finishes what it accepted.
        self._dispatch()
        while self._tasks or self._active:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            else:  # only calls running in their callers' tasks are left
                self._drained = asyncio.get_running_loop().create_future()
                await self._drained
        self._closed = True
        if self._close_inner:
            await self.inner.aclose()


def _abandon_if_unwanted(
    task: asyncio.Task[None], batch: list[_Request], future: asyncio.Future[list[list[Passage]]]
) -> None:
    # Once every waiter of a batch has been cancelled, its backend call serves nobody: stop it.
    if future.cancelled() and not task.done() and all(r.future.cancelled() for r in batch):
        task.cancel()
