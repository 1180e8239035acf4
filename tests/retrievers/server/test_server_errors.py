"""The retriever server refuses bad requests with 4xx JSON errors, maps backend failures, keeps serving."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
import pytest_asyncio

from hopgym.errors import ConfigError, RetrieverError, RetrieverUnavailable
from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.retrievers.server.app import ServerConfig, create_app, running_server
from hopgym.types import Passage

CONFIG = ServerConfig(token="t0ken", max_k=50, max_queries=20, max_body_bytes=4096)
AUTH = {"Authorization": "Bearer t0ken"}


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(conformance_passages: list[Passage]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(InMemoryBM25Retriever(conformance_passages), CONFIG, close_retriever=True)
    async with running_server(app) as url, httpx.AsyncClient(base_url=url, headers=AUTH) as http:
        yield http


async def expect_error(response: httpx.Response, status: int, detail_part: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    assert detail_part in f"{body['error']}: {body['detail']}"


@pytest.mark.parametrize(
    ("path", "body", "status", "detail"),
    [
        ("/retrieve", {"queries": []}, 422, "'queries' is empty"),
        ("/retrieve", {"queries": "film"}, 422, "'queries' must be a list"),
        ("/retrieve", {"queries": ["film", 3]}, 422, "'queries[1]' must be a string"),
        ("/retrieve", {"queries": ["film"], "topk": 0}, 422, "'topk'=0 is out of range: use 1..50"),
        ("/retrieve", {"queries": ["film"], "topk": 51}, 422, "out of range"),
        ("/retrieve", {"queries": ["film"], "topk": "3"}, 422, "'topk' must be an integer"),
        ("/retrieve", {"queries": ["film"], "topk": 2.5}, 422, "'topk' must be an integer"),
        ("/retrieve", {"queries": ["film"], "topk": True}, 422, "'topk' must be an integer"),
        (
            "/retrieve",
            {"queries": ["film"], "return_scores": "yes"},
            422,
            "'return_scores' must be true or false",
        ),
        ("/retrieve", {"query": 5}, 422, "'query' must be a string"),
        ("/retrieve", {"query": "a", "queries": ["b"]}, 422, "not both"),
        ("/retrieve", {"topk": 3}, 422, "missing 'queries'"),
        ("/retrieve", ["film"], 422, "must be a JSON object"),
        ("/retrieve", {"queries": ["q"] * 21}, 413, "at most 20"),
        ("/search", {"query": "  "}, 400, "Query content cannot be empty"),
        ("/search", {"query": ["film"]}, 422, "'query' must be a string"),
        ("/batch_search", {"query": []}, 422, "'query' is empty"),
        ("/batch_search", {"query": ["film"], "top_n": -1}, 422, "'top_n'=-1"),
        ("/queries", {"queries": ["film"], "k": 100}, 422, "'k'=100"),
        ("/queries", {"k": 3}, 422, "missing 'queries'"),
    ],
)
async def test_bad_bodies_are_4xx_and_the_server_keeps_serving(client, path, body, status, detail) -> None:
    await expect_error(await client.post(path, json=body), status, detail)
    good = await client.post("/retrieve", json={"queries": ["film"], "topk": 2})
    assert good.status_code == 200 and len(good.json()["result"][0]) == 2


async def test_malformed_json_is_400(client) -> None:
    response = await client.post(
        "/retrieve", content=b'{"queries": ["film"', headers={"Content-Type": "application/json"}
    )
    await expect_error(response, 400, "malformed JSON")
    await expect_error(await client.post("/retrieve", content=b"\xff\xfe"), 400, "malformed JSON")


async def test_body_too_large_is_413_with_and_without_content_length(client) -> None:
    big = {"queries": ["x" * 5000]}
    await expect_error(await client.post("/retrieve", json=big), 413, "at most 4096")

    async def chunks() -> AsyncIterator[bytes]:  # chunked transfer: no Content-Length to trust
        yield b'{"queries": ["'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"]}'

    await expect_error(await client.post("/retrieve", content=chunks()), 413, "over 4096 bytes")
    assert (await client.post("/retrieve", json={"queries": ["film"]})).status_code == 200


async def test_token_is_required_except_for_health(client) -> None:
    url = str(client.base_url)
    async with httpx.AsyncClient(base_url=url) as anonymous:
        response = await anonymous.post("/retrieve", json={"queries": ["film"]})
        await expect_error(response, 401, "Authorization: Bearer")
        assert response.headers["www-authenticate"] == "Bearer"
        await expect_error(await anonymous.get("/metrics"), 401, "unauthorized")
        wrong = await anonymous.post(
            "/queries", json={"queries": ["film"]}, headers={"Authorization": "Bearer nope"}
        )
        await expect_error(wrong, 401, "unauthorized")
        assert (await anonymous.get("/health")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200


async def test_unknown_paths_and_methods_get_json_errors(client) -> None:
    await expect_error(await client.post("/v2/retrieve", json={}), 404, "Not Found")
    await expect_error(await client.get("/retrieve"), 405, "Method Not Allowed: GET /retrieve: the endpoints")


class Failing:
    def __init__(self, exc: Exception, delay_s: float = 0.0) -> None:
        self.exc = exc
        self.delay_s = delay_s

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        await asyncio.sleep(self.delay_s)
        raise self.exc

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize(
    ("failure", "config", "status", "detail"),
    [
        (
            Failing(RetrieverError("index file is corrupt")),
            ServerConfig(),
            500,
            "retriever failed: index file is corrupt",
        ),
        (
            Failing(RetrieverUnavailable("elasticsearch is down")),
            ServerConfig(),
            503,
            "elasticsearch is down",
        ),
        (Failing(ConfigError("k too large for HNSW")), ServerConfig(), 422, "k too large"),
        (Failing(ValueError("a backend bug")), ServerConfig(), 500, "ValueError: a backend bug"),
        (
            Failing(RetrieverError("x"), delay_s=5.0),
            ServerConfig(timeout_s=0.05),
            504,
            "Failing did not answer",
        ),
        (
            Failing(RetrieverError("x"), delay_s=5.0),
            ServerConfig(timeout_s=0.05, batching=False),
            504,
            "within 0.05 s",
        ),
    ],
)
async def test_backend_failures_map_to_5xx_json(failure, config, status, detail) -> None:
    async with running_server(create_app(failure, config)) as url, httpx.AsyncClient(base_url=url) as http:
        await expect_error(await http.post("/retrieve", json={"queries": ["film"]}), status, detail)
        assert (await http.get("/health")).status_code == 200


async def test_unbatched_server_answers_the_same(conformance_passages) -> None:
    bm25 = InMemoryBM25Retriever(conformance_passages)
    app = create_app(bm25, ServerConfig(batching=False))
    assert app.state.batcher is None
    async with running_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        body = (await http.post("/retrieve", json={"queries": ["Shirley Temple"], "topk": 2})).json()
        health = (await http.get("/health")).json()
    assert [d["id"] for d in body["result"][0]] == [p.id for p in bm25.search_sync(["Shirley Temple"], 2)[0]]
    assert health["batching"] is False


async def test_shutdown_closes_the_retriever_only_when_asked(conformance_passages) -> None:
    owned, lent = InMemoryBM25Retriever(conformance_passages), InMemoryBM25Retriever(conformance_passages)
    async with running_server(create_app(owned, close_retriever=True)):
        pass
    async with running_server(create_app(lent)):
        pass
    assert owned.closed and not lent.closed


async def test_port_in_use_is_a_config_error(conformance_passages) -> None:
    bm25 = InMemoryBM25Retriever(conformance_passages)
    async with running_server(create_app(bm25)) as url:
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(ConfigError, match=f"cannot serve on 127.0.0.1:{port}"):
            async with running_server(create_app(bm25), port=port):
                pass
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/health")).status_code == 200


# -- the work of one request is bounded (issue 10, C2) ------------------------------------------------------


async def raw_exchange(url: str, data: bytes, *, close_after: bool = False) -> tuple[int, dict[str, object]]:
    """Send ``data`` on a fresh connection; the status and JSON body of the answer."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        return int(head.split()[1]), json.loads(await reader.readexactly(length))
    finally:
        writer.close()


def post_head(length: int) -> bytes:
    return (
        f"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def test_queries_times_k_is_bounded_by_default(conformance_passages) -> None:
    # The 6 KB request: 300 queries x topk 1000 asked for 300,000 passages (116 MB on HotpotQA).
    bm25 = InMemoryBM25Retriever(conformance_passages)
    async with running_server(create_app(bm25)) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/retrieve", json={"queries": ["film"] * 300, "topk": 1000})
        await expect_error(response, 413, "300 queries x topk=1000 = 300000 passages")
        assert "at most 20000 per request (max_results)" in response.json()["detail"]
        within = await http.post("/retrieve", json={"queries": ["film"] * 20, "topk": 1000})
        assert within.status_code == 200


async def test_queries_times_k_limit_names_each_endpoints_field(conformance_passages) -> None:
    bm25 = InMemoryBM25Retriever(conformance_passages)
    config = ServerConfig(max_results=30)
    async with running_server(create_app(bm25, config)) as url, httpx.AsyncClient(base_url=url) as http:
        await expect_error(await http.post("/search", json={"query": "a", "top_n": 31}), 413, "top_n=31")
        await expect_error(
            await http.post("/batch_search", json={"query": ["a"] * 4, "top_n": 8}), 413, "= 32 passages"
        )
        await expect_error(await http.post("/queries", json={"queries": ["a"] * 11}), 413, "x k=3")
        assert (await http.post("/queries", json={"queries": ["a"] * 10})).status_code == 200


async def test_response_bytes_are_bounded(conformance_passages) -> None:
    bm25 = InMemoryBM25Retriever(conformance_passages)
    config = ServerConfig(max_response_bytes=2000)
    async with running_server(create_app(bm25, config)) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/retrieve", json={"queries": ["film"] * 5, "topk": 10})
        await expect_error(response, 413, "this server sends at most 2000 (max_response_bytes)")
        assert (await http.post("/retrieve", json={"queries": ["film"], "topk": 1})).status_code == 200


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "malformed JSON"),
        (b'{"queries": ["film"], "topk": 1' + b"0" * 5000 + b"}", "malformed JSON"),
        (b'{"queries": ["film"], "topk": ' + b"9" * 4400 + b"}", "malformed JSON"),
        (b'{"queries": ["\xed\xa0\x80"]}', "malformed JSON"),
    ],
    ids=["nested", "huge-int", "huge-int-2", "surrogate"],
)
async def test_hostile_json_is_a_json_400(body: bytes, detail: str) -> None:
    bm25 = InMemoryBM25Retriever([Passage("1", "Film", "A film.")])
    config = ServerConfig(max_body_bytes=1024 * 1024)
    async with running_server(create_app(bm25, config)) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/retrieve", content=body, headers={"Content-Type": "application/json"})
        await expect_error(response, 400, detail)
        assert (await http.post("/retrieve", json={"queries": ["film"]})).status_code == 200


async def test_a_slow_body_gets_a_408_within_the_body_timeout() -> None:
    bm25 = InMemoryBM25Retriever([Passage("1", "Film", "A film.")])
    async with running_server(create_app(bm25, ServerConfig(body_timeout_s=0.3))) as url:
        # Ten of the promised hundred bytes, then nothing: the server answers instead of waiting forever.
        status, body = await asyncio.wait_for(raw_exchange(url, post_head(100) + b'{"queries"'), timeout=10)
    assert status == 408 and "did not arrive within 0.3 s (body_timeout_s)" in str(body["detail"])


async def test_slow_headers_get_the_connection_closed() -> None:
    bm25 = InMemoryBM25Retriever([Passage("1", "Film", "A film.")])
    async with running_server(create_app(bm25, ServerConfig(header_timeout_s=0.3))) as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /retrieve HTTP/1.1\r\nHost: x\r\n")  # the headers never end
        await writer.drain()
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""
        assert asyncio.get_running_loop().time() - started < 5
        writer.close()
        # A connection idle before its first byte is closed too.
        reader, writer = await asyncio.open_connection(host, int(port))
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""
        writer.close()
        # Requests that send their headers in time are unaffected, also after the deadline passed.
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(2):
                assert (await http.post("/retrieve", json={"queries": ["film"]})).status_code == 200
                await asyncio.sleep(0.4)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_client_leaving_mid_body_is_not_an_application_error() -> None:
    handler = Records()
    watched = [logging.getLogger(name) for name in ("asyncio", "hopgym")]
    bm25 = InMemoryBM25Retriever([Passage("1", "Film", "A film.")])
    async with running_server(create_app(bm25)) as url:
        for logger in watched:
            logger.addHandler(handler)
        try:
            host, port = url.removeprefix("http://").rsplit(":", 1)
            _, writer = await asyncio.open_connection(host, int(port))
            writer.write(post_head(1000) + b'{"queries": ["fi')
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.close()
            await asyncio.sleep(0.3)
            async with httpx.AsyncClient(base_url=url) as http:
                assert (await http.post("/retrieve", json={"queries": ["film"]})).status_code == 200
        finally:
            for logger in watched:
                logger.removeHandler(handler)
    errors = [r for r in handler.records if r.levelno >= logging.WARNING]
    assert errors == [], [r.getMessage() for r in errors]


async def test_an_unexpected_failure_is_still_a_json_500() -> None:
    class NaNScores:
        async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
            return [[Passage("1", "Film", "A film.", score=float("nan"))] for _ in queries]

        async def aclose(self) -> None:
            return None

    async with running_server(create_app(NaNScores())) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/retrieve", json={"queries": ["film"], "return_scores": True})
        await expect_error(response, 500, "cannot be written as JSON")


async def test_request_deadlines_are_forgotten_when_requests_end() -> None:
    # One periodic check cancels requests past timeout_s; finished, timed-out and abandoned requests must
    # all leave its registry, or it would grow with every request and keep its timer running.
    app = create_app(Failing(RetrieverError("x"), delay_s=5.0), ServerConfig(timeout_s=0.2))
    async with running_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        await expect_error(await http.post("/retrieve", json={"queries": ["film"]}), 504, "within 0.2 s")
        host, port = url.removeprefix("http://").rsplit(":", 1)
        _, writer = await asyncio.open_connection(host, int(port))
        body = b'{"queries": ["film"]}'
        writer.write(
            b"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await asyncio.sleep(0.05)
        writer.close()  # the client leaves while its search runs
        await asyncio.sleep(0.4)
        deadlines = app._deadlines
        assert deadlines is not None and not deadlines._running and not deadlines._expired
        assert (await http.get("/health")).status_code == 200
