"""HttpRetriever: retry/backoff policy against httpx.MockTransport, and the real server under uvicorn."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from hopgym.errors import ConfigError, RetrieverError, RetrieverTimeout, RetrieverUnavailable
from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.retrievers.http import HttpRetriever
from hopgym.retrievers.server.app import ServerConfig, create_app, running_server
from hopgym.types import Passage

BASE = "http://retriever.test:8000"

OK_BODY = {
    "result": [
        [
            {
                "document": {"id": "7", "contents": '"Shirley Temple"\nShirley Temple Black was an actress.'},
                "score": 9.5,
            },
            {
                "document": {"id": "8", "contents": '"Janet Waldo"\nJanet Waldo was a voice actress.'},
                "score": 4.25,
            },
        ]
    ]
}


class Recorder:
    """The mock server: answers from a list of canned outcomes and records every request."""

    def __init__(
        self, outcomes: Sequence[httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]]
    ):
        self.outcomes = list(outcomes)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        if callable(outcome) and not isinstance(outcome, httpx.Response):
            return outcome(request)
        return outcome

    def bodies(self) -> list[object]:
        return [json.loads(r.content) for r in self.requests]


def make(recorder: Recorder, delays: list[float] | None = None, **kwargs: object) -> HttpRetriever:
    async def sleep(seconds: float) -> None:
        if delays is not None:
            delays.append(seconds)

    options: dict[str, object] = {"backoff_base_s": 0.1, "backoff_max_s": 2.0}
    options.update(kwargs)
    return HttpRetriever(
        BASE,
        transport=httpx.MockTransport(recorder),
        sleep=sleep,
        rng=random.Random(0),
        **options,  # type: ignore[arg-type]
    )


async def test_hopgym_request_body_and_passage_mapping() -> None:
    recorder = Recorder([httpx.Response(200, json=OK_BODY)])
    retriever = make(recorder, token="s3cret")
    (hits,) = await retriever.search(["who played corliss archer"], 2)
    assert recorder.bodies() == [{"queries": ["who played corliss archer"], "topk": 2, "return_scores": True}]
    request = recorder.requests[0]
    assert str(request.url) == f"{BASE}/retrieve" and request.method == "POST"
    assert request.headers["authorization"] == "Bearer s3cret"
    assert hits == [
        Passage(id="7", title="Shirley Temple", text="Shirley Temple Black was an actress.", score=9.5),
        Passage(id="8", title="Janet Waldo", text="Janet Waldo was a voice actress.", score=4.25),
    ]
    await retriever.aclose()


async def test_flashrag_api_body_and_mapping() -> None:
    docs = [
        [{"id": "1", "contents": '"A"\nalpha'}],
        [{"id": "2", "contents": '"B"\nbeta'}, {"id": "3", "contents": "gamma"}],
    ]
    recorder = Recorder([httpx.Response(200, json=[docs, [[1.5], [2.0, 1.0]]])])
    retriever = make(recorder, api="flashrag")
    results = await retriever.search(["a", "b"], 2)
    assert str(recorder.requests[0].url) == f"{BASE}/batch_search"
    assert recorder.bodies() == [{"query": ["a", "b"], "top_n": 2, "return_score": True}]
    assert results == [
        [Passage("1", "A", "alpha", 1.5)],
        [Passage("2", "B", "beta", 2.0), Passage("3", "", "gamma", 1.0)],
    ]
    await retriever.aclose()


async def test_search_r1_api_tolerates_missing_ids_with_a_stable_id() -> None:
    body = {"result": [[{"document": {"contents": '"T"\ntext', "title": "T", "text": "text"}, "score": 1.0}]]}
    retriever = make(Recorder([httpx.Response(200, json=body)]), api="search_r1")
    first = (await retriever.search(["q"], 1))[0][0]
    second = (await retriever.search(["q"], 1))[0][0]
    assert first.id == second.id and first.id.startswith("sha1:")
    strict = make(Recorder([httpx.Response(200, json=body)]))
    with pytest.raises(RetrieverError, match="api='search_r1'"):
        await strict.search(["q"], 1)


async def test_base_url_may_already_name_the_endpoint() -> None:
    recorder = Recorder([httpx.Response(200, json=OK_BODY)])
    retriever = HttpRetriever(f"{BASE}/retrieve", transport=httpx.MockTransport(recorder))
    await retriever.search(["q"], 2)
    assert str(recorder.requests[0].url) == f"{BASE}/retrieve"


async def test_blank_queries_are_answered_locally_and_big_batches_are_split() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        queries = json.loads(request.content)["queries"]
        result = [[{"document": {"id": q, "contents": q}, "score": 1.0}] for q in queries]
        return httpx.Response(200, json={"result": result})

    recorder = Recorder([echo])
    retriever = make(recorder, max_queries_per_request=2)
    queries = ["q1", " ", "q2", "q3", "", "q4", "q5"]
    results = await retriever.search(queries, 1)
    assert [[p.id for p in hits] for hits in results] == [["q1"], [], ["q2"], ["q3"], [], ["q4"], ["q5"]]
    assert sorted(b["queries"] for b in recorder.bodies()) == [["q1", "q2"], ["q3", "q4"], ["q5"]]  # type: ignore[index]
    recorder.requests.clear()
    assert await retriever.search([], 3) == [] and await retriever.search(["", "\t"], 3) == [[], []]
    assert recorder.requests == []


async def test_5xx_is_retried_with_growing_jittered_backoff() -> None:
    recorder = Recorder(
        [httpx.Response(503), httpx.Response(502), httpx.Response(500), httpx.Response(200, json=OK_BODY)]
    )
    delays: list[float] = []
    retriever = make(recorder, delays, max_retries=3)
    (hits,) = await retriever.search(["q"], 2)
    assert [p.id for p in hits] == ["7", "8"]
    assert len(recorder.requests) == 4 and retriever.stats.retries == 3
    # Full jitter: attempt n waits a random time in [0, base * 2**n].
    assert [0 <= d <= 0.1 * 2**n for n, d in enumerate(delays)] == [True, True, True]
    assert len(set(delays)) == 3


async def test_retry_after_is_honoured_in_seconds_and_as_a_date() -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    recorder = Recorder(
        [
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(429, headers={"Retry-After": when}),
            httpx.Response(429, headers={"Retry-After": "3600"}),
            httpx.Response(200, json=OK_BODY),
        ]
    )
    delays: list[float] = []
    retriever = make(recorder, delays, max_retries=3, max_retry_after_s=60.0)
    await retriever.search(["q"], 2)
    assert delays[0] == 2.0
    assert 25.0 < delays[1] <= 30.0
    assert delays[2] == 60.0  # capped by max_retry_after_s


async def test_persistent_5xx_ends_in_retriever_unavailable() -> None:
    recorder = Recorder([httpx.Response(503, json={"error": "overloaded", "detail": "queue full"})])
    retriever = make(recorder, [], max_retries=2)
    with pytest.raises(RetrieverUnavailable, match=r"after 3 attempts \(HTTP 503: overloaded: queue full\)"):
        await retriever.search(["q"], 2)
    assert len(recorder.requests) == 3 and retriever.stats.failures == 1


async def test_persistent_504_ends_in_retriever_timeout() -> None:
    retriever = make(Recorder([httpx.Response(504)]), [], max_retries=1)
    with pytest.raises(RetrieverTimeout, match="timed out on all 2 attempts"):
        await retriever.search(["q"], 2)


async def test_connection_errors_are_retried_then_unavailable() -> None:
    recorder = Recorder([httpx.ConnectError("connection refused")])
    retriever = make(recorder, [], max_retries=3)
    with pytest.raises(RetrieverUnavailable, match=r"after 4 attempts.*ConnectError.*serve-retriever"):
        await retriever.search(["q"], 2)
    assert len(recorder.requests) == 4


async def test_connection_error_then_success() -> None:
    recorder = Recorder(
        [
            httpx.ConnectError("refused"),
            httpx.RemoteProtocolError("dropped"),
            httpx.Response(200, json=OK_BODY),
        ]
    )
    retriever = make(recorder, [], max_retries=3)
    assert len((await retriever.search(["q"], 2))[0]) == 2
    assert retriever.stats.attempts == 3


async def test_read_timeout_is_a_retriever_timeout_without_retry() -> None:
    recorder = Recorder([httpx.ReadTimeout("slow")])
    retriever = make(recorder, [], max_retries=3, timeout_s=1.5)
    with pytest.raises(RetrieverTimeout, match=r"did not answer within 1.5 s"):
        await retriever.search(["q"], 2)
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    ("status", "pattern"),
    [
        (422, "HTTP 422: invalid request: 'topk'=5000 is out of range"),
        (401, "bearer token"),
        (404, "wrong api"),
    ],
)
async def test_client_errors_are_config_errors_without_retry(status: int, pattern: str) -> None:
    body = {"error": "invalid request", "detail": "'topk'=5000 is out of range: use 1..1000"}
    recorder = Recorder([httpx.Response(status, json=body)])
    retriever = make(recorder, [])
    with pytest.raises(ConfigError, match=pattern):
        await retriever.search(["q"], 2)
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>oops</html>"),
        httpx.Response(200, json={"results": []}),
        httpx.Response(200, json={"result": [[{"id": "1", "contents": "x"}]]}),  # no scores
        httpx.Response(200, json={"result": [[{"document": {"id": "1"}, "score": 1.0}]]}),
        httpx.Response(200, json={"result": [[{"document": {"id": "1", "contents": "x"}, "score": "high"}]]}),
        httpx.Response(200, json={"result": []}),  # one query, no result list
    ],
)
async def test_malformed_answers_are_retriever_errors(answer: httpx.Response) -> None:
    with pytest.raises(RetrieverError):
        await make(Recorder([answer]), []).search(["q"], 2)


@pytest.mark.parametrize("score", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize("api", ["hopgym", "flashrag"])
async def test_non_finite_scores_are_retriever_errors(score: str, api: str) -> None:
    doc = '{"id": "1", "contents": "\\"T\\"\\nx"}'
    text = (
        f"[[[{doc}]], [[{score}]]]"
        if api == "flashrag"
        else f'{{"result": [[{{"document": {doc}, "score": {score}}}]]}}'
    )
    recorder = Recorder([httpx.Response(200, text=text, headers={"Content-Type": "application/json"})])
    with pytest.raises(RetrieverError, match="non-finite score"):
        await make(recorder, [], api=api).search(["q"], 2)


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        HttpRetriever("localhost:8000")
    with pytest.raises(ConfigError, match="api="):
        HttpRetriever(BASE, api="elastic")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_retries"):
        HttpRetriever(BASE, max_retries=-1)
    with pytest.raises(ConfigError, match="timeout_s"):
        HttpRetriever(BASE, timeout_s=0)
    with pytest.raises(ConfigError, match="unknown HttpRetriever option"):
        HttpRetriever(BASE, retries=3)


async def test_bad_k_and_close() -> None:
    retriever = make(Recorder([httpx.Response(200, json=OK_BODY)]))
    with pytest.raises(ConfigError):
        await retriever.search(["q"], 0)
    await retriever.aclose()
    await retriever.aclose()
    with pytest.raises(RetrieverError, match="closed"):
        await retriever.search(["q"], 1)


# --- against the real server ---------------------------------------------------------------------------


class SlowRetriever:
    def __init__(self, inner: InMemoryBM25Retriever, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        await asyncio.sleep(self.delay_s)
        return await self.inner.search(queries, k)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def bm25(conformance_passages: list[Passage]) -> InMemoryBM25Retriever:
    return InMemoryBM25Retriever(conformance_passages)


def ids(results: Sequence[Sequence[Passage]]) -> list[list[str]]:
    return [[p.id for p in hits] for hits in results]


@pytest.mark.parametrize("api", ["hopgym", "search_r1", "flashrag"])
async def test_every_api_against_the_real_server(
    bm25: InMemoryBM25Retriever, conformance_passages, api
) -> None:
    queries = [p.title for p in conformance_passages[40:50]] + ["   "]
    expected = bm25.search_sync(queries, 4)
    async with running_server(create_app(bm25)) as url:
        retriever = HttpRetriever(url, api=api)
        got = await retriever.search(queries, 4)
        await retriever.aclose()
    assert ids(got) == ids(expected)
    assert [[p.score for p in h] for h in got] == [[p.score for p in h] for h in expected]
    by_id = {p.id: p for p in conformance_passages}
    assert all((p.title, p.text) == (by_id[p.id].title, by_id[p.id].text) for hits in got for p in hits)


async def test_token_protected_server(bm25: InMemoryBM25Retriever) -> None:
    async with running_server(create_app(bm25, ServerConfig(token="tok"))) as url:
        anonymous = HttpRetriever(url)
        with pytest.raises(ConfigError, match=r"HTTP 401.*bearer token"):
            await anonymous.search(["film"], 2)
        await anonymous.aclose()
        allowed = HttpRetriever(url, token="tok")
        assert len((await allowed.search(["film"], 2))[0]) == 2
        await allowed.aclose()


async def test_server_cap_on_k_is_a_config_error(bm25: InMemoryBM25Retriever) -> None:
    async with running_server(create_app(bm25, ServerConfig(max_k=5))) as url:
        retriever = HttpRetriever(url)
        with pytest.raises(ConfigError, match=r"out of range: use 1..5"):
            await retriever.search(["film"], 6)
        await retriever.aclose()


async def test_server_stopped_mid_run_gives_retries_then_unavailable(bm25: InMemoryBM25Retriever) -> None:
    async with running_server(create_app(bm25)) as url:
        retriever = HttpRetriever(url, max_retries=2, backoff_base_s=0.01)
        assert len((await retriever.search(["film"], 2))[0]) == 2
    attempts_before = retriever.stats.attempts
    with pytest.raises(RetrieverUnavailable, match=f"{url}/retrieve is unavailable after 3 attempts"):
        await retriever.search(["film"], 2)
    assert retriever.stats.attempts - attempts_before == 3
    await retriever.aclose()


async def test_client_rides_out_a_server_restart(bm25: InMemoryBM25Retriever) -> None:
    async with running_server(create_app(bm25)) as url:
        port = int(url.rsplit(":", 1)[1])
        retriever = HttpRetriever(url, max_retries=8, backoff_base_s=0.05, backoff_max_s=0.2)
        before = await retriever.search(["Shirley Temple"], 3)
    restarted = asyncio.Event()

    async def restart_later() -> None:
        await asyncio.sleep(0.3)
        async with running_server(create_app(bm25), port=port):
            restarted.set()
            await asyncio.sleep(2.0)

    server_task = asyncio.create_task(restart_later())
    after = await retriever.search(["Shirley Temple"], 3)
    assert restarted.is_set() and ids(after) == ids(before)
    assert retriever.stats.retries >= 1
    await retriever.aclose()
    server_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server_task


async def test_slow_backend_gives_client_side_timeout(bm25: InMemoryBM25Retriever) -> None:
    async with running_server(create_app(SlowRetriever(bm25, 0.5), ServerConfig(timeout_s=None))) as url:
        retriever = HttpRetriever(url, timeout_s=0.2)
        with pytest.raises(RetrieverTimeout, match=r"did not answer within 0.2 s"):
            await retriever.search(["film"], 2)
        await retriever.aclose()


async def test_slow_backend_gives_server_side_timeout(bm25: InMemoryBM25Retriever) -> None:
    async with running_server(create_app(SlowRetriever(bm25, 0.5), ServerConfig(timeout_s=0.1))) as url:
        retriever = HttpRetriever(url, max_retries=1, backoff_base_s=0.01)
        with pytest.raises(
            RetrieverTimeout, match="HTTP 504: retriever timeout: SlowRetriever did not answer"
        ):
            await retriever.search(["film"], 2)
        await retriever.aclose()


class TrickleServer:
    """A stdlib TCP server that answers every request with a valid /retrieve response, sent one byte every
    ``gap_s`` seconds: each network read gets a byte well within httpx's read timeout, so only a deadline
    on the whole request stops it."""

    def __init__(self, gap_s: float, *, trickle_headers: bool) -> None:
        body = json.dumps(OK_BODY).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        self.head, self.body = head.encode(), body
        self.gap_s = gap_s
        self.trickle_headers = trickle_headers
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)  # the request (small enough to arrive in one read)
                trickled = self.head + self.body if self.trickle_headers else self.body
                if not self.trickle_headers:
                    conn.sendall(self.head)
                for i in range(len(trickled)):
                    if self.stop.wait(self.gap_s):
                        return
                    try:
                        conn.sendall(trickled[i : i + 1])
                    except OSError:  # the client gave up and closed the connection
                        break

    def __enter__(self) -> TrickleServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.mark.parametrize("trickle_headers", [False, True], ids=["body", "headers"])
async def test_timeout_is_a_deadline_for_the_whole_request(trickle_headers: bool) -> None:
    # The answer takes ~len(body) * 0.25 s (about 40 s); each read waits 0.25 s, far below the 1 s timeout.
    with TrickleServer(0.25, trickle_headers=trickle_headers) as server:
        retriever = HttpRetriever(server.url, timeout_s=1.0)
        start = time.monotonic()
        with pytest.raises(RetrieverTimeout, match=r"did not answer within 1 s"):
            await retriever.search(["q"], 2)
        elapsed = time.monotonic() - start
        await retriever.aclose()
    assert elapsed < 2.5, f"the request ran {elapsed:.1f} s past a 1 s timeout"
    assert retriever.stats.attempts == 1  # a timeout is not retried


async def test_default_retries_outlast_a_two_second_restart(bm25: InMemoryBM25Retriever) -> None:
    """The server goes away for 2 s (as a killed and restarted retriever does) mid-run: with the default
    settings the search in flight waits it out instead of failing its episode."""
    async with running_server(create_app(bm25)) as url:
        port = int(url.rsplit(":", 1)[1])
        retriever = HttpRetriever(url)
        before = await retriever.search(["Shirley Temple"], 3)
    down_at = time.monotonic()
    restarted = asyncio.Event()

    async def restart_after_two_seconds() -> None:
        await asyncio.sleep(2.0)
        async with running_server(create_app(bm25), port=port):
            restarted.set()
            await asyncio.sleep(30.0)

    server_task = asyncio.create_task(restart_after_two_seconds())
    try:
        after = await retriever.search(["Shirley Temple"], 3)
    finally:
        server_task.cancel()
    assert restarted.is_set() and ids(after) == ids(before)
    assert time.monotonic() - down_at >= 2.0 and retriever.stats.retries >= 1
    await retriever.aclose()
    with pytest.raises(asyncio.CancelledError):
        await server_task
