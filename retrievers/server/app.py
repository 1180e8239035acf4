"""The retriever server: one FastAPI app answering every seed project's request shape.

``create_app(retriever, config)`` serves any :class:`Retriever` (tests pass one directly; ``hopgym
serve-retriever`` opens an index). Requests go through a :class:`MicroBatchingRetriever`, so concurrent
clients share batched backend calls. Request and response shapes are in :mod:`server_schemas`.
Needs the ``server`` extra (fastapi, uvicorn, prometheus-client), imported only when an app is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hopgym.errors import ConfigError, RetrieverError, RetrieverTimeout, RetrieverUnavailable, require
from hopgym.retrievers.base import Retriever
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
from hopgym.retrievers.wrappers.timeout import TimeoutRetriever
from hopgym.types import Passage

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.responses import Response

__all__ = ["ServerConfig", "create_app", "running_server"]

logger = logging.getLogger(__name__)

_ENDPOINTS = ("/retrieve", "/search", "/batch_search", "/queries", "/health", "/metrics")
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class ServerConfig:
    """Server limits and batching. ``token`` set: every endpoint but ``/health`` needs ``Bearer <token>``."""

    token: str | None = None
    max_k: int = 1000
    max_queries: int = 10_000
    max_body_bytes: int = 8 * 1024 * 1024
    batching: bool = True
    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    max_concurrency: int = 2
    timeout_s: float | None = 60.0

    def __post_init__(self) -> None:
        for name in ("max_k", "max_queries", "max_body_bytes", "max_batch_size", "max_concurrency"):
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
        if self.timeout_s is not None and not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ConfigError(
                f"timeout_s={self.timeout_s!r} is invalid: use seconds > 0, or None for no limit"
            )
        if self.token is not None and not self.token.strip():
            raise ConfigError("token is blank: pass a real secret, or None to serve without authentication")

    @property
    def limits(self) -> Limits:
        return Limits(max_k=self.max_k, max_queries=self.max_queries)


class _Metrics:
    def __init__(self) -> None:
        prometheus: Any = require(
            "prometheus_client", extra="server", purpose="the retriever server's /metrics"
        )
        self.registry = prometheus.CollectorRegistry()
        self.requests = prometheus.Counter(
            "hopgym_retriever_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = prometheus.Histogram(
            "hopgym_retriever_request_duration_seconds",
            "request latency by endpoint",
            ["endpoint"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.queries = prometheus.Counter(
            "hopgym_retriever_queries", "queries answered", registry=self.registry
        )
        self.batch_size = prometheus.Histogram(
            "hopgym_retriever_batch_size",
            "queries per backend call",
            registry=self.registry,
            buckets=_BATCH_BUCKETS,
        )
        self.pending = prometheus.Gauge(
            "hopgym_retriever_pending_queries", "queries waiting for a backend call", registry=self.registry
        )

    def render(self) -> tuple[bytes, str]:
        prometheus: Any = require("prometheus_client", extra="server")
        return prometheus.generate_latest(self.registry), prometheus.CONTENT_TYPE_LATEST


class _MetricsMiddleware:
    """Counts every request (refusals included) by endpoint and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: _Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in _ENDPOINTS else "other"
        status = 500
        started = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


async def _read_json(request: Request, max_bytes: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise RequestError(
            413, "request too large", f"{declared} bytes; this server takes at most {max_bytes}"
        )
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > max_bytes:
            raise RequestError(
                413, "request too large", f"over {max_bytes} bytes; send fewer or shorter queries"
            )
    try:
        return json.loads(chunks)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, "malformed JSON", str(exc)) from None


def create_app(
    retriever: Retriever, config: ServerConfig | None = None, *, close_retriever: bool = False
) -> FastAPI:
    """A FastAPI app serving ``retriever``; it closes ``retriever`` at shutdown if ``close_retriever``."""
    fastapi: Any = require("fastapi", extra="server", purpose="the retriever server")
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.responses import JSONResponse

    cfg = config or ServerConfig()
    metrics = _Metrics()
    limits = cfg.limits
    backend: Retriever = retriever
    batcher: MicroBatchingRetriever | None = None
    if cfg.batching:
        batcher = MicroBatchingRetriever(
            retriever,
            max_batch_size=cfg.max_batch_size,
            max_wait_ms=cfg.max_wait_ms,
            max_concurrency=cfg.max_concurrency,
            on_batch=metrics.batch_size.observe,
            close_inner=False,
        )
        backend = batcher
        metrics.pending.set_function(lambda: batcher.pending_queries)
    if cfg.timeout_s is not None:
        backend = TimeoutRetriever(backend, cfg.timeout_s, name=type(retriever).__name__, close_inner=False)
    name = type(retriever).__name__

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        yield
        if batcher is not None:
            await batcher.aclose()
        if close_retriever:
            await retriever.aclose()

    app = fastapi.FastAPI(title="hopgym retriever", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.retriever = retriever
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.config = cfg

    def error_response(error: RequestError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(error.body(), status_code=error.status, headers=headers)

    async def on_request_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestError)
        return error_response(exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse(
            {
                "error": exc.detail if isinstance(exc.detail, str) else f"HTTP {exc.status_code}",
                "detail": f"{request.method} {request.url.path}: the endpoints are POST /retrieve, /search, "
                "/batch_search, /queries and GET /health, /metrics",
            },
            status_code=exc.status_code,
            headers=exc.headers,
        )

    app.add_exception_handler(RequestError, on_request_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_middleware(_MetricsMiddleware, metrics=metrics)

    def authorize(request: Request) -> None:
        if cfg.token is None:
            return
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credentials.strip().encode(), cfg.token.encode()
        ):
            raise RequestError(401, "unauthorized", "send the header 'Authorization: Bearer <token>'")

    async def run(search_request: SearchRequest) -> list[list[Passage]]:
        if batcher is None:
            metrics.batch_size.observe(len(search_request.queries))
        try:
            results = await backend.search(search_request.queries, search_request.k)
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
        metrics.queries.inc(len(search_request.queries))
        return results

    Parser = Callable[[Any, Limits], SearchRequest]
    Shaper = Callable[[SearchRequest, list[list[Passage]]], Any]

    def search_endpoint(parse: Parser, shape: Shaper) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            authorize(request)
            search_request = parse(await _read_json(request, cfg.max_body_bytes), limits)
            return JSONResponse(shape(search_request, await run(search_request)))

        return endpoint

    routes: list[tuple[str, Parser, Shaper]] = [
        ("/retrieve", parse_retrieve, retrieve_response),
        ("/search", parse_search, search_response),
        ("/batch_search", parse_batch_search, batch_search_response),
        ("/queries", parse_queries, queries_response),
    ]
    # Plain Starlette routes: the endpoints parse bodies themselves, for exact error bodies and size limits.
    for path, parse, shape in routes:
        app.add_route(path, search_endpoint(parse, shape), methods=["POST"])

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "healthy", "retriever": name, "batching": batcher is not None})

    async def metrics_endpoint(request: Request) -> Response:
        authorize(request)
        payload, content_type = metrics.render()
        from starlette.responses import Response as PlainResponse

        return PlainResponse(payload, media_type=content_type)

    app.add_route("/health", health, methods=["GET"])
    app.add_route("/metrics", metrics_endpoint, methods=["GET"])
    built: FastAPI = app
    return built


@contextlib.asynccontextmanager
async def running_server(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in this event loop; yields the base URL (port 0 picks a free port).

    For tests and benchmarks: signal handlers are left alone, and leaving the block shuts the server down.
    """
    uvicorn: Any = require("uvicorn", extra="server", purpose="serving the retriever")

    class QuietServer(uvicorn.Server):  # type: ignore[misc]
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            yield

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = QuietServer(config)

    async def serve() -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind; a SystemExit would stop the whole loop
            raise ConfigError(
                f"cannot serve on {host}:{port} (address in use or not local?); see the log"
            ) from None

    task = asyncio.get_running_loop().create_task(serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RetrieverUnavailable("the retriever server stopped during startup; see the log")
            await asyncio.sleep(0.01)
        # Ask the listening socket: port 0 means the OS picked one.
        bound_port = server.servers[0].sockets[0].getsockname()[1]
        url_host = f"[{host}]" if ":" in host else host
        yield f"http://{url_host}:{bound_port}"
    finally:
        server.should_exit = True
        await task
