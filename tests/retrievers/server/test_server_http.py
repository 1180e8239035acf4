"""The server's own HTTP/1.1 transport, driven over raw sockets: keep-alive, pipelining, 100-continue, HEAD,
HTTP/1.0, chunked bodies, malformed requests, idle connections and a graceful stop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

import pytest
import pytest_asyncio

from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.retrievers.server.app import ServerConfig, create_app, running_server
from hopgym.types import Passage

pytestmark = pytest.mark.asyncio(loop_scope="module")

PASSAGES = [Passage("1", "Film", "A film about a film."), Passage("2", "Song", "A song.")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def url() -> AsyncIterator[str]:
    app = create_app(InMemoryBM25Retriever(PASSAGES), ServerConfig(header_timeout_s=1.0))
    async with running_server(app) as base:
        yield base


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    headers = {k.lower(): v for k, v in headers.items()}
    body = await reader.readexactly(int(headers["content-length"])) if "content-length" in headers else b""
    return int(lines[0].split()[1]), headers, body


def post(body: bytes, *, extra: str = "") -> bytes:
    head = f"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


async def test_keep_alive_and_pipelined_requests_are_answered_in_order(url: str) -> None:
    reader, writer = await connect(url)
    bodies = [json.dumps({"queries": [q], "topk": 1}).encode() for q in ("film", "song", "film")]
    writer.write(b"".join(post(b) for b in bodies))  # three requests in one write
    answers = [await read_response(reader) for _ in bodies]
    assert [a[0] for a in answers] == [200, 200, 200]
    assert [json.loads(a[2])["result"][0][0]["id"] for a in answers] == ["1", "2", "1"]
    assert all(a[1]["content-type"] == "application/json" for a in answers)
    writer.write(post(bodies[1]))  # the connection stays open
    assert json.loads((await read_response(reader))[2])["result"][0][0]["id"] == "2"
    writer.close()


async def test_expect_100_continue_and_chunked_bodies(url: str) -> None:
    reader, writer = await connect(url)
    body = json.dumps({"queries": ["song"], "topk": 1}).encode()
    writer.write(
        post(b"", extra="Expect: 100-continue\r\n").replace(
            b"Content-Length: 0", b"Content-Length: %d" % len(body)
        )
    )
    assert (
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10) == b"HTTP/1.1 100 Continue\r\n\r\n"
    )
    writer.write(body)
    status, _, answer = await read_response(reader)
    assert status == 200 and json.loads(answer)["result"][0][0]["id"] == "2"
    half = len(body) // 2
    chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half, body[half:])
    writer.write(b"POST /retrieve HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    status, _, answer = await read_response(reader)
    assert status == 200 and json.loads(answer)["result"][0][0]["id"] == "2"
    writer.close()


async def test_head_and_http_1_0(url: str) -> None:
    reader, writer = await connect(url)
    writer.write(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    status, headers, body = await read_response(reader)  # the HEAD answer carried no body
    assert status == 200 and json.loads(body)["status"] == "healthy"
    writer.close()
    reader, writer = await connect(url)
    writer.write(b"GET /health HTTP/1.0\r\n\r\n")
    status, headers, body = await read_response(reader)
    assert status == 200 and headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""
    writer.close()


@pytest.mark.parametrize(
    "raw",
    [b"NOT HTTP AT ALL\r\n\r\n", b"POST /retrieve HTTP/1.1\r\nContent-Length: x\r\n\r\n"],
    ids=["garbage", "bad-length"],
)
async def test_malformed_http_is_a_json_400_then_close(url: str, raw: bytes) -> None:
    reader, writer = await connect(url)
    writer.write(raw)
    status, headers, body = await read_response(reader)
    assert status == 400 and json.loads(body)["error"] == "malformed HTTP"
    assert headers["connection"] == "close"
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed_after_the_header_timeout(url: str) -> None:
    reader, writer = await connect(url)
    writer.write(post(b'{"queries": ["film"]}'))
    assert (await read_response(reader))[0] == 200
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""
    assert 0.5 < asyncio.get_running_loop().time() - started < 5
    writer.close()


class Slow:
    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        self.started.set()
        await asyncio.sleep(0.3)
        return [PASSAGES[:1] for _ in queries]

    async def aclose(self) -> None:
        return None


async def test_stopping_lets_a_request_in_flight_finish() -> None:
    slow = Slow()
    async with running_server(create_app(slow)) as base:
        reader, writer = await connect(base)
        writer.write(post(b'{"queries": ["film"]}'))
        await slow.started.wait()
    # The server stopped while the search ran; the answer still came, then the connection closed.
    status, headers, body = await read_response(reader)
    assert status == 200 and json.loads(body)["result"][0][0]["id"] == "1"
    assert headers["connection"] == "close"
    writer.close()
