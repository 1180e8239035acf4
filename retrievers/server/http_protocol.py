"""The retriever server's HTTP/1.1 transport: an asyncio protocol over httptools' parser.

A general ASGI server spends more per request than a small BM25 search costs (message dicts, a body event,
two writes per response); this one parses with httptools, hands the complete request to
:meth:`RetrieverApp.respond` and writes the answer in one write. It keeps what matters for a service:
keep-alive and pipelining (answered in order), ``Expect: 100-continue``, chunked request bodies, a deadline
for each request's headers (idle keep-alive connections included) and one for its body, a body size limit
checked before reading, and a graceful shutdown that lets requests in flight finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

from hopgym.errors import require
from hopgym.retrievers.server.schemas import RequestError

if TYPE_CHECKING:
    from hopgym.retrievers.server.app import RetrieverApp

__all__ = ["HttpServer"]

logger = logging.getLogger(__name__)

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LINGER_S = 2.0

Headers = list[tuple[bytes, bytes]]


class _Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "size", "started", "url")

    def __init__(self) -> None:
        self.method = ""
        self.url = b""
        self.headers: Headers = []
        self.body: list[bytes] = []
        self.size = 0
        self.keep_alive = True
        self.started = 0.0


class _Connection(asyncio.Protocol):
    """One client connection: requests are parsed as bytes arrive and answered one at a time, in order."""

    def __init__(self, server: HttpServer) -> None:
        httptools: Any = require("httptools", extra="server", purpose="the retriever server")
        self._server = server
        self._app = server.app
        self._config = server.app.config
        self._loop = server.loop
        self._parser = httptools.HttpRequestParser(self)
        self._parse_error: type[Exception] = httptools.HttpParserError
        self._transport: asyncio.Transport | None = None
        self._request: _Request | None = None  # being parsed
        self._ready: deque[_Request] = deque()  # parsed, waiting for the one being answered
        self._task: asyncio.Task[None] | None = None  # answering
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._discarding = False
        self._waiting = False  # an answer task was created and has not started yet

    # -- asyncio.Protocol ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not subclass asyncio.Transport).
        self._transport = cast(asyncio.Transport, transport)
        self._server.connections.add(self)
        self._arm(self._config.header_timeout_s, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.forget(self)
        self._disarm()
        if self._request is not None:
            logger.debug("a client disconnected during its request")
        if self._task is not None and not self._task.done():
            self._task.cancel()  # nobody is waiting for the answer; free the backend slot
        if self._waiting:  # that task will never start
            self._waiting = False
            self._server.waiting -= 1
        self._ready.clear()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        try:
            self._parser.feed_data(data)
        except self._parse_error as exc:
            cause = exc.__context__  # httptools wraps what a callback raised
            if isinstance(cause, RequestError):
                self._fail(cause.status, cause.error, cause.detail)
            else:
                self._fail(400, "malformed HTTP", str(exc) or "the request is not valid HTTP/1.1")

    # -- httptools callbacks ---------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._request = _Request()

    def on_url(self, url: bytes) -> None:
        assert self._request is not None
        self._request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._request is not None
        self._request.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        request = self._request
        assert request is not None
        request.method = self._parser.get_method().decode("ascii", "replace")
        request.keep_alive = self._parser.should_keep_alive()
        request.started = time.perf_counter()
        limit = self._config.max_body_bytes
        expect_continue = False
        for name, value in request.headers:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise RequestError(
                    413, "request too large", f"{int(value)} bytes; this server takes at most {limit}"
                )
            if name == b"expect" and value.lower() == b"100-continue":
                expect_continue = True
        if expect_continue and self._transport is not None:
            self._transport.write(_CONTINUE)
        # The header deadline is met; the body has its own.
        self._arm(self._config.body_timeout_s, self._body_too_slow)

    def on_body(self, body: bytes) -> None:
        request = self._request
        assert request is not None
        request.size += len(body)
        if request.size > self._config.max_body_bytes:
            raise RequestError(
                413,
                "request too large",
                f"over {self._config.max_body_bytes} bytes; send fewer or shorter queries",
            )
        request.body.append(body)

    def on_message_complete(self) -> None:
        request = self._request
        assert request is not None
        self._request = None
        self._disarm()
        if self._task is None:
            self._start(request)
        else:
            self._ready.append(request)
            if self._transport is not None and len(self._ready) > 8:  # a client pipelining too far ahead
                self._transport.pause_reading()

    # -- answering -------------------------------------------------------------------------------------

    def _start(self, request: _Request) -> None:
        self._task = self._loop.create_task(self._answer(request))
        self._waiting = True
        self._server.waiting += 1

    async def _answer(self, request: _Request) -> None:
        if self._waiting:
            self._waiting = False
            self._server.waiting -= 1
        path = request.url.partition(b"?")[0].decode("latin-1")
        body = request.body[0] if len(request.body) == 1 else b"".join(request.body)
        try:
            status, headers, payload = await self._app.respond(request.method, path, request.headers, body)
        except Exception as exc:  # respond answers every failure itself; this is a bug, still answered
            logger.exception("%s %s failed", request.method, path)
            status = 500
            headers, payload = self._app.error_response(
                RequestError(500, "internal error", f"{type(exc).__name__}: {exc}")
            )
        self._app.record(path, status, time.perf_counter() - request.started)
        self._write(
            status, headers, b"" if request.method == "HEAD" else payload, len(payload), request.keep_alive
        )
        self._task = None
        if self._transport is None:
            return
        if not request.keep_alive or self._closing:
            self._transport.close()
        elif self._ready:
            self._transport.resume_reading()
            self._start(self._ready.popleft())
        elif self._timer is None:
            # Idle, or in the middle of the next request's headers: they must arrive in time (this is
            # also the keep-alive timeout). A body already on its way keeps its own deadline.
            self._arm(self._config.header_timeout_s, self._headers_too_slow)

    def _write(self, status: int, headers: Headers, body: bytes, length: int, keep_alive: bool) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
        lines.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
        lines.append(b"content-length: %d\r\n" % length)
        if not keep_alive or self._closing:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        lines.append(body)
        self._transport.write(b"".join(lines))

    def _fail(self, status: int, error: str, detail: str) -> None:
        """Answer a request that cannot be read to its end, then close: the stream is out of step."""
        self._disarm()
        self._request = None
        self._ready.clear()
        if self._task is not None:  # an earlier request is being answered; the stream ends with it
            self._closing = True
            if self._transport is not None:
                self._transport.pause_reading()
            return
        self._app.record("other", status, 0.0)
        headers, body = self._app.error_response(RequestError(status, error, detail))
        self._write(status, headers, body, len(body), False)
        # Closing with unread bytes would reset the connection and could destroy the answer before the
        # client reads it: read and drop the rest for a moment instead, until the client hangs up.
        self._discarding = True
        self._arm(_LINGER_S, self._close)

    def _close(self) -> None:
        self._timer = None
        if self._transport is not None:
            self._transport.close()

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self._loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_too_slow(self) -> None:
        self._timer = None
        if self._transport is not None and self._task is None:
            logger.debug(
                "closing a connection that sent no complete request in %g s", self._config.header_timeout_s
            )
            self._transport.close()

    def _body_too_slow(self) -> None:
        self._timer = None
        self._fail(
            408,
            "request timeout",
            f"the request body did not arrive within {self._config.body_timeout_s:g} s (body_timeout_s)",
        )

    def shutdown(self) -> None:
        """Close when idle; a request being answered finishes first."""
        self._closing = True
        if self._task is None and self._transport is not None:
            self._transport.close()


class HttpServer:
    """Serves a :class:`RetrieverApp` on ``host:port`` in the running event loop."""

    def __init__(self, app: RetrieverApp, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop
        app.attach(self)
        self.connections: set[_Connection] = set()
        # Requests whose answer tasks are created but not started: requests that arrived together, which the
        # app's batcher lets meet (see MicroBatchingRetriever's ``crowded``).
        self.waiting = 0
        self._server: asyncio.Server | None = None
        self._drained: asyncio.Event | None = None

    def forget(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if not self.connections and self._drained is not None:
            self._drained.set()

    async def start(self, host: str, port: int) -> int:
        """Listen; the bound port (``port`` 0 picks a free one)."""
        self._server = await self.loop.create_server(lambda: _Connection(self), host, port, backlog=2048)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop listening, let requests in flight finish (up to ``grace_s``), close, then close the app."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.shutdown()
        if self.connections:
            self._drained = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), grace_s)
        for connection in list(self.connections):
            if connection._transport is not None:
                connection._transport.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        await self.app.aclose()
