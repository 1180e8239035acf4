"""A small server that speaks the OpenAI API as the OpenAI API does, for tests of clients that must work
against any OpenAI-compatible server, not only vLLM.

What matters here is what it does *not* do that vLLM does: a matched stop string is cut from the returned
text and nothing says which one matched (finish reason ``stop``, no ``stop_reason``), ``usage`` counts are
the only extras, and a request with ``tools`` is refused unless ``supports_tools``. The "model" is a
``responder``: a function from the request to the whole text the model would write (or, for chat with
tools, to a tool call); the server applies ``stop`` and ``max_tokens`` to it (tokens are whitespace-separated
words) as a server applies them to sampling.

- ``GET /v1/models``; ``POST /v1/completions`` (``prompt``: a string); ``POST /v1/chat/completions``.
- ``api_key``: requests without ``Authorization: Bearer <key>`` get 401, as the OpenAI API answers.
- Bounded work per request: header block <= 16 KiB (431), body <= ``max_body_bytes`` (413), ``n`` <= 16,
  an idle keep-alive connection closed after ``idle_timeout_s``. JSON input only, never evaluated.
- Binds 127.0.0.1 by default; runs on its own event loop thread (``with OpenAIServer(...) as server:``).
- ``requests`` counts the generation requests answered; ``fail_with`` makes every request answer that HTTP
  status (e.g. 503) until set back to None.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from hopgym.errors import ConfigError

__all__ = ["ModelRequest", "OpenAIServer", "ToolCall", "apply_stop"]

logger = logging.getLogger(__name__)

_MAX_HEADER_BYTES = 16 * 1024
_MAX_N = 16
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class ModelRequest:
    """One choice to generate: ``prompt`` (completions) or ``messages`` (chat), and ``index`` of ``n``."""

    prompt: str | None
    messages: Sequence[Mapping[str, Any]] | None
    stop: tuple[str, ...]
    max_tokens: int
    index: int = 0
    tools: Sequence[Mapping[str, Any]] | None = None
    body: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The prompt, or the chat messages' contents joined (what a responder usually reads)."""
        if self.prompt is not None:
            return self.prompt
        return "\n".join(str(m.get("content") or "") for m in self.messages or ())


@dataclass(frozen=True)
class ToolCall:
    """What a responder returns to call a tool (chat with ``tools`` on a server that ``supports_tools``)."""

    name: str
    arguments: Mapping[str, Any]
    content: str | None = None


Responder = Callable[[ModelRequest], "str | ToolCall"]


def apply_stop(text: str, stop: Sequence[str], max_tokens: int) -> tuple[str, str]:
    """``text`` cut as the OpenAI API cuts it, and the finish reason: at the earliest stop string (which is
    dropped: ``stop``), else after ``max_tokens`` words (``length``), else whole (``stop``, the model's EOS)."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    if cut >= 0:
        text = text[:cut]
    words = text.split()
    if len(words) > max_tokens:
        # Keep the text up to the end of the max_tokens-th word, spacing and all.
        end = 0
        for word in words[:max_tokens]:
            end = text.index(word, end) + len(word)
        return text[:end], "length"
    return text, "stop"


class _HttpError(Exception):
    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


class OpenAIServer:
    """See the module docstring. ``model`` is the one model name served."""

    def __init__(
        self,
        responder: Responder,
        *,
        model: str = "test-model",
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        supports_tools: bool = False,
        max_body_bytes: int = 4 * 1024 * 1024,
        max_tokens_limit: int = 4096,
        idle_timeout_s: float = 30.0,
    ) -> None:
        if not callable(responder):
            raise ConfigError("OpenAIServer needs responder=, a function from a ModelRequest to text")
        if max_body_bytes < 1 or max_tokens_limit < 1:
            raise ConfigError("max_body_bytes and max_tokens_limit must be >= 1")
        self.responder = responder
        self.model = model
        self.host = host
        self.port = port
        self.api_key = api_key
        self.supports_tools = supports_tools
        self.max_body_bytes = max_body_bytes
        self.max_tokens_limit = max_tokens_limit
        self.idle_timeout_s = idle_timeout_s
        self.requests = 0
        self.fail_with: int | None = None
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port/v1``, what clients take as their base URL."""
        return f"http://{self.host}:{self.port}/v1"

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> OpenAIServer:
        """Serve on a daemon thread; returns once the port is bound."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="openai-test-server", daemon=True)
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise ConfigError(f"OpenAIServer could not listen on {self.host}:{self.port}: {self._error}")
        return self

    def stop(self) -> None:
        """Stop serving and close every connection (clients then see connection errors)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        self._thread = self._loop = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._connection, self.host, self.port, limit=_MAX_HEADER_BYTES)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            self._error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*asyncio.all_tasks(loop), return_exceptions=True))
            loop.close()

    # -- HTTP --------------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_timeout_s)
                except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    await self._send(writer, 431, _error("header block too large"), close=True)
                    return
                method, path, headers, problem = _parse_head(head)
                if problem is not None:
                    await self._send(writer, 400, _error(problem), close=True)
                    return
                keep_alive = headers.get("connection", "").lower() != "close"
                try:
                    body = await self._read_body(reader, headers)
                    status, answer = self._dispatch(method, path, headers, body)
                except _HttpError as exc:
                    status, answer = exc.status, _error(str(exc), exc.kind)
                    keep_alive = keep_alive and exc.status not in (411, 413)
                await self._send(writer, status, answer, close=not keep_alive)
                if not keep_alive:
                    return
        except asyncio.CancelledError:
            return  # the server is stopping: end the connection quietly
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_body(self, reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise _HttpError(411, "chunked request bodies are not accepted; send Content-Length")
        raw = headers.get("content-length", "0")
        if not raw.isdigit():
            raise _HttpError(400, f"invalid Content-Length {raw!r}")
        length = int(raw)
        if length > self.max_body_bytes:
            raise _HttpError(413, f"request body of {length} bytes exceeds {self.max_body_bytes}")
        try:
            return await asyncio.wait_for(reader.readexactly(length), self.idle_timeout_s) if length else b""
        except (asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
            raise _HttpError(400, "request body ended early") from exc

    async def _send(self, writer: asyncio.StreamWriter, status: int, answer: Any, *, close: bool) -> None:
        payload = json.dumps(answer).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n"
            f"connection: {'close' if close else 'keep-alive'}\r\n\r\n"
        ).encode()
        writer.write(head + payload)
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    def _dispatch(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        path = path.split("?", 1)[0].rstrip("/")
        routes = {"/v1/models": "GET", "/v1/completions": "POST", "/v1/chat/completions": "POST"}
        if path not in routes:
            raise _HttpError(404, f"no route {path}", kind="not_found")
        if method != routes[path]:
            raise _HttpError(405, f"{path} takes {routes[path]}")
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            raise _HttpError(401, "Incorrect API key provided", kind="invalid_api_key")
        if path == "/v1/models":
            return 200, {
                "object": "list",
                "data": [{"id": self.model, "object": "model", "owned_by": "hopgym-test"}],
            }
        if self.fail_with is not None:
            raise _HttpError(self.fail_with, "the test server is set to fail", kind="server_error")
        try:
            request = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise _HttpError(400, f"body is not JSON: {exc}") from exc
        if not isinstance(request, dict):
            raise _HttpError(400, "body must be a JSON object")
        with self._lock:
            self.requests += 1
            self.bodies.append(request)
        return 200, self._generate(request, chat=path.endswith("chat/completions"))

    def _generate(self, request: Mapping[str, Any], *, chat: bool) -> dict[str, Any]:
        if request.get("model") != self.model:
            raise _HttpError(
                404, f"The model {request.get('model')!r} does not exist", kind="model_not_found"
            )
        stop = request.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else stop
        if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) for s in stop) or len(stop) > 4:
            raise _HttpError(400, "stop must be a string or a list of at most 4 strings")
        max_tokens = request.get("max_tokens", 16)
        n = request.get("n", 1)
        for name, value, top in (("max_tokens", max_tokens, self.max_tokens_limit), ("n", n, _MAX_N)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise _HttpError(400, f"{name} must be an integer in 1..{top}")
        tools = request.get("tools")
        if tools is not None and not (chat and self.supports_tools):
            raise _HttpError(400, "tools are not supported by this model", kind="invalid_request_error")
        if chat:
            messages = request.get("messages")
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                raise _HttpError(400, "messages must be a list of objects")
            prompt = None
        else:
            prompt = request.get("prompt")
            if not isinstance(prompt, str):
                raise _HttpError(400, "prompt must be a string")
            messages = None
        prompt_tokens = len((prompt if prompt is not None else json.dumps(messages)).split())
        choices: list[dict[str, Any]] = []
        completion_tokens = 0
        for index in range(n):
            reply = self.responder(
                ModelRequest(prompt, messages, tuple(stop), max_tokens, index, tools, dict(request))
            )
            if isinstance(reply, ToolCall):
                if not chat or tools is None:
                    raise _HttpError(500, "the responder called a tool on a request without tools")
                call = {
                    "id": f"call_{index}",
                    "type": "function",
                    "function": {"name": reply.name, "arguments": json.dumps(dict(reply.arguments))},
                }
                message = {"role": "assistant", "content": reply.content, "tool_calls": [call]}
                choices.append({"index": index, "message": message, "finish_reason": "tool_calls"})
                continue
            text, finish = apply_stop(str(reply), stop, max_tokens)
            completion_tokens += len(text.split())
            if chat:
                message = {"role": "assistant", "content": text}
                choices.append({"index": index, "message": message, "finish_reason": finish})
            else:
                choices.append({"index": index, "text": text, "finish_reason": finish, "logprobs": None})
        return {
            "id": f"cmpl-{self.requests}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _error(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str], str | None]:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, path, version = lines[0].split(" ")
    except ValueError:
        return "", "", {}, "malformed request line"
    if not version.startswith("HTTP/1."):
        return "", "", {}, f"unsupported protocol {version!r}"
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            return "", "", {}, f"malformed header line {line[:80]!r}"
        headers[name.strip().lower()] = value.strip()
    return method, path, headers, None
