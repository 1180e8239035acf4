"""Failure handling of the Elasticsearch backend, against a scripted HTTP server at the socket boundary.

noida-db ignores credentials and never throttles, so refusals (401/403/429/5xx), version-mismatch answers,
non-Elasticsearch servers and slow answers are played by a tiny asyncio HTTP server; the real
``elasticsearch`` client talks to it over a loopback socket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("elasticsearch")

from hopgym.errors import ConfigError, DataError, RetrieverError, RetrieverTimeout, RetrieverUnavailable
from hopgym.retrievers.elasticsearch.backend import ElasticsearchRetriever, index_into_elasticsearch
from hopgym.retrievers.elasticsearch.config import (
    BulkSettings,
    ElasticsearchConnection,
    IndexSettings,
    QuerySettings,
)
from hopgym.types import Passage

ES_HEADERS = {"X-Elastic-Product": "Elasticsearch", "Content-Type": "application/json"}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def ndjson(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


Reply = tuple[int, Any, dict[str, str]]
Handler = Callable[[Request], Awaitable[Reply]]


@dataclass
class ScriptedServer:
    url: str
    requests: list[Request] = field(default_factory=list)


async def _serve(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handler: Handler,
    log: list[Request],
    tasks: set[asyncio.Task[None]],
) -> None:
    task = asyncio.current_task()
    assert task is not None
    tasks.add(task)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, path, headers, body)
            log.append(request)
            status, payload, extra = await handler(request)
            data = b"" if payload is None else json.dumps(payload).encode()
            reply_headers = {**extra, "Content-Length": str(len(data))}
            head_out = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in reply_headers.items())
            writer.write(head_out.encode() + b"\r\n" + (b"" if method == "HEAD" else data))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        # Cancelled at teardown while the client still holds the connection open (or a handler sleeps).
        pass
    finally:
        writer.close()
        tasks.discard(task)


@contextlib.asynccontextmanager
async def scripted_server(handler: Handler) -> AsyncIterator[ScriptedServer]:
    log: list[Request] = []
    tasks: set[asyncio.Task[None]] = set()
    server = await asyncio.start_server(lambda r, w: _serve(r, w, handler, log, tasks), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield ScriptedServer(url=f"http://127.0.0.1:{port}", requests=log)
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def fixed(status: int, payload: Any, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: Request) -> Reply:
        return status, payload, ES_HEADERS if headers is None else headers

    return handler


def error_body(status: int, error_type: str, reason: str) -> dict[str, Any]:
    return {
        "error": {
            "root_cause": [{"type": error_type, "reason": reason}],
            "type": error_type,
            "reason": reason,
        },
        "status": status,
    }


def retriever(url: str, **conn: Any) -> ElasticsearchRetriever:
    query = conn.pop("query", None)
    return ElasticsearchRetriever(ElasticsearchConnection(hosts=(url,), **conn), "idx", query=query)


async def test_wrong_api_key_is_a_config_error_naming_the_fix() -> None:
    async with scripted_server(
        fixed(401, error_body(401, "security_exception", "unable to authenticate"))
    ) as srv:
        r = retriever(srv.url, api_key="wrong-key", max_retries=0)
        with pytest.raises(ConfigError, match=r"authentication failed.*api_key=.*HOPGYM_ES_API_KEY"):
            await r.search(["q"], 3)
        await r.aclose()
    assert srv.requests[0].headers["authorization"] == "ApiKey wrong-key"


async def test_forbidden_and_basic_auth() -> None:
    async with scripted_server(
        fixed(403, error_body(403, "security_exception", "action unauthorized"))
    ) as srv:
        r = retriever(srv.url, basic_auth=("reader", "pw"), max_retries=0)
        with pytest.raises(ConfigError, match=r"lack a privilege.*action unauthorized"):
            await r.search(["q"], 3)
        await r.aclose()
    expected = base64.b64encode(b"reader:pw").decode()
    assert srv.requests[0].headers["authorization"] == f"Basic {expected}"


async def test_client_server_major_version_mismatch() -> None:
    reason = "Accept version must be either version 8 or 7, but found 9"
    async with scripted_server(fixed(400, error_body(400, "media_type_header_exception", reason))) as srv:
        r = retriever(srv.url, max_retries=0)
        with pytest.raises(ConfigError, match=r"major version.*elasticsearch>=8,<9"):
            await r.search(["q"], 3)
        await r.aclose()


async def test_a_server_that_is_not_elasticsearch() -> None:
    async with scripted_server(fixed(200, {"result": []}, {"Content-Type": "application/json"})) as srv:
        r = retriever(srv.url, max_retries=0)
        with pytest.raises(ConfigError, match=r"not Elasticsearch.*fix url"):
            await r.search(["q"], 3)
        await r.aclose()


async def test_unhealthy_server_is_retried_then_unavailable() -> None:
    async with scripted_server(fixed(503, error_body(503, "cluster_block_exception", "no master"))) as srv:
        r = retriever(srv.url, max_retries=2)
        with pytest.raises(RetrieverUnavailable, match=r"after the client's retries.*503"):
            await r.search(["q"], 3)
        await r.aclose()
    assert len(srv.requests) == 3


async def test_one_failed_query_in_msearch_is_an_error_with_the_server_reason() -> None:
    ok = {
        "hits": {"hits": [{"_id": "a", "_score": 1.0, "_source": {"title": "A", "text": "x"}}]},
        "status": 200,
    }
    bad = error_body(400, "query_shard_exception", "failed to create query")
    async with scripted_server(fixed(200, {"responses": [ok, bad]})) as srv:
        r = retriever(srv.url)
        with pytest.raises(RetrieverError, match=r"400 query_shard_exception: failed to create query"):
            await r.search(["good", "bad"], 3)
        await r.aclose()
    (request,) = srv.requests
    assert request.method == "POST" and request.path == "/idx/_msearch"
    lines = request.ndjson()
    assert lines[1]["query"] == {"match": {"contents": {"query": "good"}}}
    assert lines[3]["query"] == {"match": {"contents": {"query": "bad"}}}


async def test_closed_port_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    r = retriever(f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(RetrieverUnavailable, match=r"cannot reach the server.*fix url"):
        await r.search(["q"], 3)
    await r.aclose()


async def test_slow_server_times_out() -> None:
    async def slow(request: Request) -> Reply:
        await asyncio.sleep(3)
        return 200, {"responses": [{"hits": {"hits": []}}]}, ES_HEADERS

    async with scripted_server(slow) as srv:
        r = retriever(srv.url, max_retries=0, query=QuerySettings(timeout_s=0.2))
        with pytest.raises(RetrieverTimeout, match=r"timed out.*raise request_timeout/timeout_s"):
            await r.search(["q"], 3)
        await r.aclose()


def _index_handler(bulk_reply: Callable[[Request, int], dict[str, Any]]) -> Handler:
    """Plays index creation, bulk (with ``bulk_reply(request, attempt)``), refresh and count."""
    attempts = 0
    indexed: set[str] = set()

    async def handler(request: Request) -> Reply:
        nonlocal attempts
        if request.method == "HEAD":
            return 404, None, ES_HEADERS
        if request.path.endswith("/_bulk"):
            attempts += 1
            reply = bulk_reply(request, attempts)
            for item in reply["items"]:
                if item["index"]["status"] < 300:
                    indexed.add(item["index"]["_id"])
            return 200, reply, ES_HEADERS
        if request.path.endswith("/_count"):
            return 200, {"count": len(indexed)}, ES_HEADERS
        return 200, {"acknowledged": True}, ES_HEADERS

    return handler


def _bulk_items(request: Request, status_of: Callable[[str], int]) -> dict[str, Any]:
    items = []
    for action in request.ndjson()[::2]:
        doc_id = action["index"]["_id"]
        status = status_of(doc_id)
        item: dict[str, Any] = {"_id": doc_id, "status": status}
        if status >= 300:
            kind = "es_rejected_execution_exception" if status == 429 else "document_parsing_exception"
            item["error"] = {"type": kind, "reason": f"refused {doc_id}"}
        items.append({"index": item})
    return {"took": 1, "errors": any(i["index"]["status"] >= 300 for i in items), "items": items}


PASSAGES = [Passage(id=f"p{i}", title=f"T{i}", text=f"text {i}") for i in range(6)]


async def test_bulk_retries_throttled_documents() -> None:
    # The first attempt throttles p1 and p4; the retry must resend exactly those two.
    def reply(request: Request, attempt: int) -> dict[str, Any]:
        return _bulk_items(request, lambda i: 429 if attempt == 1 and i in ("p1", "p4") else 201)

    async with scripted_server(_index_handler(reply)) as srv:
        bulk = BulkSettings(max_retries=2, initial_backoff=0.01)
        conn = ElasticsearchConnection(hosts=(srv.url,))
        count = await index_into_elasticsearch(PASSAGES, conn, IndexSettings(index_name="idx"), bulk)
    assert count == 6
    bulks = [r for r in srv.requests if r.path.endswith("/_bulk")]
    assert [a["index"]["_id"] for a in bulks[1].ndjson()[::2]] == ["p1", "p4"]
    create = next(r for r in srv.requests if r.method == "PUT" and r.path == "/idx")
    assert json.loads(create.body)["settings"]["similarity"]["default"]["k1"] == 0.9


async def test_bulk_gives_up_on_persistent_throttling() -> None:
    def reply(request: Request, attempt: int) -> dict[str, Any]:
        return _bulk_items(request, lambda i: 429 if i == "p2" else 201)

    async with scripted_server(_index_handler(reply)) as srv:
        bulk = BulkSettings(max_retries=1, initial_backoff=0.01)
        conn = ElasticsearchConnection(hosts=(srv.url,))
        with pytest.raises(
            RetrieverUnavailable,
            match=r"kept refusing 1 passages with 429 \(too many requests\) after 1 retries",
        ):
            await index_into_elasticsearch(PASSAGES, conn, IndexSettings(index_name="idx"), bulk)


async def test_bulk_rejected_documents_are_a_data_error_naming_them() -> None:
    def reply(request: Request, attempt: int) -> dict[str, Any]:
        return _bulk_items(request, lambda i: 400 if i in ("p0", "p5") else 201)

    async with scripted_server(_index_handler(reply)) as srv:
        conn = ElasticsearchConnection(hosts=(srv.url,))
        with pytest.raises(DataError, match=r"rejected 2 of 6 passages.*'p0'.*document_parsing_exception"):
            await index_into_elasticsearch(PASSAGES, conn, IndexSettings(index_name="idx"))
        # No refresh or count after a failed load.
        assert not any(r.path.endswith("/_count") for r in srv.requests)
