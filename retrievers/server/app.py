"""The retriever server: one app answering every seed project's request shape.

``create_app(retriever, config)`` serves any :class:`Retriever` (tests pass one directly; ``hopgym
serve-retriever`` opens an index). Requests go through a :class:`MicroBatchingRetriever`, so concurrent
clients share batched backend calls. Request and response shapes are in :mod:`server.schemas`; the HTTP
transport is :mod:`server.http_protocol`.

The per-request path is kept short, since a small BM25 search costs less than a web framework's handling:
the body is parsed by orjson (when installed) straight into the endpoint's request, the answer is encoded
once, byte for byte as FastAPI's JSONResponse (Search-R1's server) writes it, and metric children are
looked up once. Every request's work is bounded: body bytes, queries, k, queries x k, response bytes, the
time to send headers and body, and the backend's time.
Needs the ``server`` extra (httptools, prometheus-client, orjson), imported only when an app is built.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hmac
import itertools
import json
import logging
import math
import signal
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from hopgym.errors import ConfigError, RetrieverError, RetrieverTimeout, RetrieverUnavailable, require
from hopgym.retrievers.base import Retriever
from hopgym.retrievers.server.http_protocol import HttpServer
from hopgym.retrievers.server.schemas import (
    Limits,
    RequestError,
    SearchRequest,
    batch_search_response,
    parse_batch_search,
    parse_queries,
    parse_retrieve,
    parse_search,
    queries_response,
    retrieve_response,
    search_response,
)
from hopgym.retrievers.wrappers.batching import MicroBatchingRetriever
from hopgym.types import Passage

__all__ = ["RetrieverApp", "ServerConfig", "create_app", "running_server", "serve"]

logger = logging.getLogger(__name__)

_ENDPOINTS = ("/retrieve", "/search", "/batch_search", "/queries", "/health", "/metrics")
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_JSON_HEADERS = [(b"content-type", b"application/json")]

Headers = list[tuple[bytes, bytes]]
Parser = Callable[[Any, Limits], SearchRequest]
Shaper = Callable[[SearchRequest, list[list[Passage]]], Any]

_ROUTES: dict[str, tuple[Parser, Shaper]] = {
    "/retrieve": (parse_retrieve, retrieve_response),
    "/search": (parse_search, search_response),
    "/batch_search": (parse_batch_search, batch_search_response),
    "/queries": (parse_queries, queries_response),
}


@dataclass(frozen=True)
class ServerConfig:
    """Server limits and batching. ``token`` set: every endpoint but ``/health`` needs ``Bearer <token>``.

    ``max_results`` bounds queries x k of one request and ``max_response_bytes`` its JSON answer (both 413).
    ``header_timeout_s`` is how long a connection may take to send a request's headers (it is then closed;
    needs httptools), ``body_timeout_s`` how long to send its body (408), ``timeout_s`` the backend's time
    per request (504).
    """

    token: str | None = None
    max_k: int = 1000
    max_queries: int = 10_000
    max_results: int = 20_000
    max_body_bytes: int = 8 * 1024 * 1024
    max_response_bytes: int = 32 * 1024 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    batching: bool = True
    max_batch_size: int = 64
    max_wait_ms: float = 0.0
    max_concurrency: int = 2
    timeout_s: float | None = 60.0

    def __post_init__(self) -> None:
        for name in (
            "max_k",
            "max_queries",
            "max_results",
            "max_body_bytes",
            "max_response_bytes",
            "max_batch_size",
            "max_concurrency",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} is invalid: use an integer >= 1")
        if not (
            isinstance(self.max_wait_ms, (int, float))
            and math.isfinite(self.max_wait_ms)
            and self.max_wait_ms >= 0
        ):
            raise ConfigError(
                f"max_wait_ms={self.max_wait_ms!r} is invalid: use a number of milliseconds >= 0"
            )
        for name in ("header_timeout_s", "body_timeout_s"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value > 0)
            ):
                raise ConfigError(f"{name}={value!r} is invalid: use seconds > 0")
        if self.timeout_s is not None and not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ConfigError(
                f"timeout_s={self.timeout_s!r} is invalid: use seconds > 0, or None for no limit"
            )
        if self.token is not None and not self.token.strip():
            raise ConfigError("token is blank: pass a real secret, or None to serve without authentication")

    @property
    def limits(self) -> Limits:
        return Limits(max_k=self.max_k, max_queries=self.max_queries, max_results=self.max_results)


class _Histogram:
    """Prometheus histogram counts kept as plain numbers (``le`` buckets, the last one +Inf)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self, go_float: Callable[[float], str]) -> list[tuple[str, float]]:
        cumulative = list(itertools.accumulate(self.counts))
        return [(go_float(b), float(c)) for b, c in zip((*self.bounds, math.inf), cumulative, strict=True)]


class _Metrics:
    """The server's counters, rendered in Prometheus' text format by ``/metrics``.

    Requests are counted in plain dicts and lists (only the event-loop thread writes them) and turned into
    metric families when scraped: prometheus_client's own counters take a lock and hash their labels on
    every update, which cost a tenth of a small search's whole request.
    """

    def __init__(self) -> None:
        prometheus: Any = require(
            "prometheus_client", extra="server", purpose="the retriever server's /metrics"
        )
        self._prometheus = prometheus
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, _Histogram] = {}
        self.queries = 0
        self.batch_size = _Histogram(_BATCH_BUCKETS)
        self.pending: Callable[[], int] = lambda: 0
        self.registry = prometheus.CollectorRegistry()
        self.registry.register(self)

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        timer = self.latency.get(endpoint)
        if timer is None:
            timer = self.latency[endpoint] = _Histogram(_LATENCY_BUCKETS)
        timer.observe(seconds)

    def collect(self) -> Iterator[Any]:
        """The metric families (prometheus_client's collector protocol)."""
        core = self._prometheus.metrics_core
        go_float = self._prometheus.utils.floatToGoString
        requests = core.CounterMetricFamily(
            "hopgym_retriever_requests", "HTTP requests by endpoint and status", labels=["endpoint", "status"]
        )
        for (endpoint, status), count in sorted(self.requests.items()):
            requests.add_metric([endpoint, str(status)], count)
        yield requests
        latency = core.HistogramMetricFamily(
            "hopgym_retriever_request_duration_seconds", "request latency by endpoint", labels=["endpoint"]
        )
        for endpoint, histogram in sorted(self.latency.items()):
            latency.add_metric([endpoint], histogram.buckets(go_float), histogram.total)
        yield latency
        yield core.CounterMetricFamily("hopgym_retriever_queries", "queries answered", value=self.queries)
        batch = core.HistogramMetricFamily("hopgym_retriever_batch_size", "queries per backend call")
        batch.add_metric([], self.batch_size.buckets(go_float), self.batch_size.total)
        yield batch
        yield core.GaugeMetricFamily(
            "hopgym_retriever_pending_queries", "queries waiting for a backend call", value=self.pending()
        )

    def render(self) -> tuple[bytes, str]:
        return self._prometheus.generate_latest(self.registry), self._prometheus.CONTENT_TYPE_LATEST


class _Deadlines:
    """Cancels the backend calls of requests older than ``seconds``, from one periodic check.

    ``asyncio.timeout`` arms and disarms a timer per request, which cost as much as a small search; here a
    request registers its task in a dict and one timer, armed only while requests are in flight, looks
    every ``tick`` seconds (an eighth of the limit, at most 1 s). A request therefore times out between
    ``seconds`` and ``seconds + tick`` after it started.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.tick = min(1.0, seconds / 8)
        self._running: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def start(self, task: asyncio.Task[Any], loop: asyncio.AbstractEventLoop) -> None:
        self._running[task] = loop.time() + self.seconds
        if self._timer is None:
            self._timer = loop.call_later(self.tick, self._check, loop)

    def finish(self, task: asyncio.Task[Any]) -> bool:
        """Forget ``task``; whether its time ran out (and it was cancelled for that)."""
        self._running.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        late = [task for task, deadline in self._running.items() if deadline <= now]
        for task in late:
            del self._running[task]
            self._expired.add(task)
            task.cancel()
        if self._running:
            self._timer = loop.call_later(self.tick, self._check, loop)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _json_loader() -> Callable[[bytes], Any]:
    try:
        import orjson
    except ImportError:  # the stdlib parser: slower, same answers and errors
        return json.loads
    loads: Callable[[bytes], Any] = orjson.loads
    return loads


def _parse_json(loads: Callable[[bytes], Any], body: bytes) -> Any:
    try:
        return loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers both parsers' decode errors, bad UTF-8 and integers over Python's 4300 digits;
        # orjson refuses nesting deeper than 1024, the stdlib parser runs out of stack (RecursionError).
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise RequestError(400, "malformed JSON", reason) from None


def _dump(payload: Any) -> bytes:
    # What FastAPI's JSONResponse (Search-R1's server) writes, byte for byte: compact, UTF-8, no NaN.
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _fast_dumper() -> Callable[[Any], bytes] | None:
    try:
        import orjson
    except ImportError:
        return None
    dumps: Callable[[Any], bytes] = orjson.dumps
    return dumps


def _orjson_writes_like_json(results: Sequence[Sequence[Passage]]) -> bool:
    """Whether orjson writes these answers' scores as :func:`_dump` does.

    Both write strings alike (compact, UTF-8, the same escapes) and a float as its shortest repr, except
    that orjson spells magnitudes below 1e-4 without an exponent (``0.00001`` for ``1e-05``) and writes
    NaN and infinities as null where ``_dump`` refuses them; such answers take the stdlib path.
    """
    for hits in results:
        for passage in hits:
            score = passage.score
            if not (score == 0.0 or 1e-4 <= abs(score) < 1e16):  # NaN fails both
                return False
    return True


class RetrieverApp:
    """Answers one parsed request; ``state`` holds ``retriever``, ``batcher`` (None without batching),
    ``metrics`` and ``config``. :class:`HttpServer` (or :func:`running_server`) serves it."""

    def __init__(self, retriever: Retriever, config: ServerConfig, *, close_retriever: bool) -> None:
        self.config = config
        self._limits = config.limits
        self._metrics = _Metrics()
        self._loads = _json_loader()
        self._fast_dump = _fast_dumper()
        self._deadlines = None if config.timeout_s is None else _Deadlines(config.timeout_s)
        self._retriever = retriever
        self._close_retriever = close_retriever
        self._closed = False
        self._name = type(retriever).__name__
        self._backend: Retriever = retriever
        self._batcher: MicroBatchingRetriever | None = None
        self._transport: HttpServer | None = None
        if config.batching:
            batcher = MicroBatchingRetriever(
                retriever,
                max_batch_size=config.max_batch_size,
                max_wait_ms=config.max_wait_ms,
                max_concurrency=config.max_concurrency,
                on_batch=self._metrics.batch_size.observe,
                close_inner=False,
                crowded=self._crowded,
            )
            self._backend = self._batcher = batcher
            self._metrics.pending = lambda: batcher.pending_queries
        self._token = config.token.encode() if config.token is not None else None
        self.state = SimpleNamespace(
            retriever=retriever, batcher=self._batcher, metrics=self._metrics, config=config
        )

    def attach(self, transport: HttpServer) -> None:
        """Called by the transport serving this app, so the batcher can see requests that arrived together."""
        self._transport = transport

    def _crowded(self) -> bool:
        # Other requests are parsed and about to run: this one waits a loop turn for them (see batching).
        return self._transport is not None and self._transport.waiting > 0

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._deadlines is not None:
            self._deadlines.close()
        if self._batcher is not None:
            await self._batcher.aclose()
        if self._close_retriever:
            await self._retriever.aclose()

    def record(self, path: str, status: int, seconds: float) -> None:
        """Count one answered request in ``/metrics``."""
        self._metrics.record(path if path in _ENDPOINTS else "other", status, seconds)

    @staticmethod
    def error_response(error: RequestError) -> tuple[Headers, bytes]:
        headers = [*_JSON_HEADERS, (b"www-authenticate", b"Bearer")] if error.status == 401 else _JSON_HEADERS
        return headers, _dump(error.body())

    async def respond(
        self, method: str, path: str, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, Headers, bytes]:
        """The status, headers and body answering one request (header names lower-case); never raises."""
        try:
            return await self._respond(method, path, headers, body)
        except RequestError as error:
            return (error.status, *self.error_response(error))
        except Exception as exc:  # a server bug or MemoryError: still a JSON answer, and serving goes on
            logger.exception("%s %s failed", method, path)
            return (
                500,
                *self.error_response(RequestError(500, "internal error", f"{type(exc).__name__}: {exc}")),
            )

    async def _respond(
        self, method: str, path: str, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, Headers, bytes]:
        route = _ROUTES.get(path)
        if route is not None and method == "POST":
            self._authorize(headers)
            parse, shape = route
            request = parse(_parse_json(self._loads, body), self._limits)
            results = await self._search(request)
            return 200, _JSON_HEADERS, self._encode(shape(request, results), request, results)
        if path == "/health" and method in ("GET", "HEAD"):
            health = {"status": "healthy", "retriever": self._name, "batching": self._batcher is not None}
            return 200, _JSON_HEADERS, _dump(health)
        if path == "/metrics" and method in ("GET", "HEAD"):
            self._authorize(headers)
            payload, content_type = self._metrics.render()
            return 200, [(b"content-type", content_type.encode())], payload
        endpoints = (
            "the endpoints are POST /retrieve, /search, /batch_search, /queries and GET /health, /metrics"
        )
        if route is None and path not in _ENDPOINTS:
            return (
                404,
                _JSON_HEADERS,
                _dump({"error": "Not Found", "detail": f"{method} {path}: {endpoints}"}),
            )
        allow = b"POST" if route is not None else b"GET, HEAD"
        detail = {"error": "Method Not Allowed", "detail": f"{method} {path}: {endpoints}"}
        return 405, [*_JSON_HEADERS, (b"allow", allow)], _dump(detail)

    def _authorize(self, headers: Sequence[tuple[bytes, bytes]]) -> None:
        if self._token is None:
            return
        credentials = b""
        for name, value in headers:
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    credentials = b""
                break
        if not credentials or not hmac.compare_digest(credentials.strip(), self._token):
            raise RequestError(401, "unauthorized", "send the header 'Authorization: Bearer <token>'")

    async def _search(self, request: SearchRequest) -> list[list[Passage]]:
        if self._batcher is None:
            self._metrics.batch_size.observe(len(request.queries))
        deadlines = self._deadlines
        task = asyncio.current_task() if deadlines is not None else None
        expired = False
        try:
            if deadlines is not None and task is not None:
                deadlines.start(task, asyncio.get_running_loop())
            try:
                results = await self._backend.search(request.queries, request.k)
            finally:
                if deadlines is not None and task is not None:
                    expired = deadlines.finish(task)
        except asyncio.CancelledError:
            if not expired or task is None or task.uncancel() > 0:
                raise  # cancelled by someone else too (the client left, the server stops)
            raise RequestError(
                504,
                "retriever timeout",
                f"{self._name} did not answer {len(request.queries)} queries within "
                f"{self.config.timeout_s:g} s; raise the timeout or check that the backend is not "
                "overloaded",
            ) from None
        except RetrieverTimeout as exc:
            raise RequestError(504, "retriever timeout", str(exc)) from exc
        except RetrieverUnavailable as exc:
            raise RequestError(503, "retriever unavailable", str(exc)) from exc
        except ConfigError as exc:
            raise RequestError(422, "invalid request", str(exc)) from exc
        except RetrieverError as exc:
            logger.exception("retriever failed")
            raise RequestError(500, "retriever failed", str(exc)) from exc
        except Exception as exc:  # a backend bug: still a JSON answer, and the server keeps serving
            logger.exception("retriever raised an unexpected error")
            raise RequestError(500, "retriever failed", f"{type(exc).__name__}: {exc}") from exc
        self._metrics.queries += len(request.queries)
        return results

    def _encode(self, payload: Any, request: SearchRequest, results: Sequence[Sequence[Passage]]) -> bytes:
        limit = self.config.max_response_bytes
        body = None
        if self._fast_dump is not None and _orjson_writes_like_json(results):
            with contextlib.suppress(TypeError):  # orjson's refusals (e.g. a lone surrogate): the stdlib path
                body = self._fast_dump(payload)
        try:
            if body is None:
                body = _dump(payload)
        except ValueError as exc:  # a NaN or infinite score: JSON has no such number
            logger.error("unencodable response: %s", exc)
            raise RequestError(
                500, "retriever failed", f"the answer cannot be written as JSON: {exc}"
            ) from None
        if len(body) > limit:
            raise RequestError(
                413,
                "response too large",
                f"the answer to {len(request.queries)} queries x k={request.k} is {len(body)} bytes; this "
                f"server sends at most {limit} (max_response_bytes): ask for fewer queries or a smaller k",
            )
        return body


def create_app(
    retriever: Retriever, config: ServerConfig | None = None, *, close_retriever: bool = False
) -> RetrieverApp:
    """An app serving ``retriever``; it closes ``retriever`` at shutdown if ``close_retriever``."""
    return RetrieverApp(retriever, config or ServerConfig(), close_retriever=close_retriever)


@contextlib.asynccontextmanager
async def running_server(app: RetrieverApp, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` in this event loop; yields the base URL (port 0 picks a free port).

    Leaving the block stops the server: requests in flight finish (up to 5 s), then the app is closed.
    """
    server = HttpServer(app, asyncio.get_running_loop())
    try:
        bound = await server.start(host, port)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve on {host}:{port} ({exc.strerror or exc}); pick another port"
        ) from None
    try:
        url_host = f"[{host}]" if ":" in host else host
        yield f"http://{url_host}:{bound}"
    finally:
        await server.stop()


def serve(app: RetrieverApp, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``app`` until SIGINT or SIGTERM (``hopgym serve-retriever``), on uvloop when installed."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with running_server(app, host=host, port=port) as url:
            logger.info("serving %s on %s (Ctrl-C stops)", type(app.state.retriever).__name__, url)
            await stop.wait()
            logger.info("shutting down: finishing requests in flight")

    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
