"""The retriever server answers each seed project's exact request body with its exact response shape.

Every test sends the literal JSON a seed client sends (Search-R1 / verl, SkyRL-gym, ReSearch's FlashRAG
serving, R1-Searcher) to the real server on a loopback port and compares with the in-memory BM25 answer.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.retrievers.server.app import ServerConfig, create_app, running_server
from hopgym.types import Passage

Q1 = "Who portrayed Corliss Archer in the film Kiss and Tell?"
Q2 = "What government position was held by Shirley Temple?"


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def bm25(conformance_passages: list[Passage]) -> InMemoryBM25Retriever:
    return InMemoryBM25Retriever(conformance_passages)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(bm25: InMemoryBM25Retriever) -> AsyncIterator[httpx.AsyncClient]:
    async with running_server(create_app(bm25)) as url, httpx.AsyncClient(base_url=url) as http:
        yield http


def doc(p: Passage) -> dict[str, str]:
    return {"id": p.id, "contents": f'"{p.title}"\n{p.text}'}


async def post(client: httpx.AsyncClient, path: str, raw_json: str) -> object:
    # Raw bytes, so the body is exactly what the seed client puts on the wire.
    response = await client.post(
        path, content=raw_json.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def test_search_r1_retrieve_with_scores(client, bm25) -> None:
    body = await post(
        client, "/retrieve", f'{{"queries": ["{Q1}", "{Q2}"], "topk": 3, "return_scores": true}}'
    )
    expected = bm25.search_sync([Q1, Q2], 3)
    assert body == {"result": [[{"document": doc(p), "score": p.score} for p in hits] for hits in expected]}
    assert all(len(hits) == 3 for hits in body["result"])  # type: ignore[index]


async def test_search_r1_retrieve_bytes_are_what_fastapi_writes(client, bm25) -> None:
    # Search-R1's server returns a dict through FastAPI's JSONResponse: compact separators, raw UTF-8.
    raw = f'{{"queries": ["{Q1}", "Ünïcode café"], "topk": 3, "return_scores": true}}'.encode()
    response = await client.post("/retrieve", content=raw, headers={"Content-Type": "application/json"})
    expected = bm25.search_sync([Q1, "Ünïcode café"], 3)
    body = {"result": [[{"document": doc(p), "score": p.score} for p in hits] for hits in expected]}
    fastapi_bytes = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    assert response.content == fastapi_bytes
    assert response.headers["content-length"] == str(len(fastapi_bytes))


async def test_search_r1_retrieve_without_scores(client, bm25) -> None:
    body = await post(
        client, "/retrieve", f'{{"queries": ["{Q1}", "{Q2}"], "topk": 3, "return_scores": false}}'
    )
    assert body == {"result": [[doc(p) for p in hits] for hits in bm25.search_sync([Q1, Q2], 3)]}


async def test_search_r1_defaults_are_topk_3_without_scores(client, bm25) -> None:
    body = await post(client, "/retrieve", f'{{"queries": ["{Q1}"]}}')
    assert body == {"result": [[doc(p) for p in bm25.search_sync([Q1], 3)[0]]]}
    body = await post(client, "/retrieve", f'{{"queries": ["{Q1}"], "topk": null}}')
    assert body == {"result": [[doc(p) for p in bm25.search_sync([Q1], 3)[0]]]}


async def test_skyrl_gym_single_query(client, bm25) -> None:
    body = await post(client, "/retrieve", f'{{"query": "{Q1}", "topk": 3, "return_scores": true}}')
    (hits,) = bm25.search_sync([Q1], 3)
    assert body == {"result": [[{"document": doc(p), "score": p.score} for p in hits]]}
    # SkyRL-gym formats each hit from result[i][j]["document"]["contents"].
    assert body["result"][0][0]["document"]["contents"].strip().startswith(f'"{hits[0].title}"')  # type: ignore[index]


async def test_flashrag_search(client, bm25) -> None:
    (hits,) = bm25.search_sync([Q1], 10)
    body = await post(client, "/search", f'{{"query": "{Q1}", "top_n": 10, "return_score": false}}')
    assert body == [doc(p) for p in hits] and len(hits) == 10
    body = await post(client, "/search", f'{{"query": "{Q1}", "top_n": 10, "return_score": true}}')
    assert body == [[doc(p) for p in hits], [p.score for p in hits]]
    body = await post(client, "/search", f'{{"query": "{Q1}"}}')  # FlashRAG defaults: top_n 10, no scores
    assert body == [doc(p) for p in hits]


async def test_flashrag_batch_search(client, bm25) -> None:
    expected = bm25.search_sync([Q1, Q2], 5)
    body = await post(
        client, "/batch_search", f'{{"query": ["{Q1}", "{Q2}"], "top_n": 5, "return_score": false}}'
    )
    assert body == [[doc(p) for p in hits] for hits in expected]
    body = await post(
        client, "/batch_search", f'{{"query": ["{Q1}", "{Q2}"], "top_n": 5, "return_score": true}}'
    )
    assert body == [
        [[doc(p) for p in hits] for hits in expected],
        [[p.score for p in hits] for hits in expected],
    ]


async def test_r1_searcher_queries(client, bm25) -> None:
    expected = bm25.search_sync([Q1, Q2], 3)
    body = await post(client, "/queries", f'{{"queries": ["{Q1}", "{Q2}"], "k": 3}}')
    assert body == {
        "queries": [Q1, Q2],
        "answers": [[f"{rank}\t{p.title}   {p.text}" for rank, p in enumerate(hits)] for hits in expected],
    }
    # What R1-Searcher's client does with each line: strip the leading row number.
    first = re.sub(r"^\d+\s+", "", body["answers"][0][0])  # type: ignore[index]
    assert first == f"{expected[0][0].title}   {expected[0][0].text}"
    body = await post(client, "/queries", f'{{"queries": ["{Q1}"]}}')  # R1-Searcher's default k is 3
    assert len(body["answers"][0]) == 3  # type: ignore[index]


async def test_blank_query_in_a_batch_gets_an_empty_list(client) -> None:
    body = await post(client, "/retrieve", f'{{"queries": ["   ", "{Q1}"], "topk": 2}}')
    assert body["result"][0] == [] and len(body["result"][1]) == 2  # type: ignore[index]


async def test_health(client) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "retriever": "InMemoryBM25Retriever", "batching": True}


async def test_metrics_count_requests_batches_and_latency(bm25) -> None:
    async with running_server(create_app(bm25)) as url, httpx.AsyncClient(base_url=url) as client:
        await check_metrics(client)


async def check_metrics(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await post(client, "/retrieve", f'{{"queries": ["{Q1}", "{Q2}"], "topk": 2}}')
    await post(client, "/queries", f'{{"queries": ["{Q1}"], "k": 1}}')
    await client.post("/retrieve", json={"queries": []})
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("hopgym_retriever_requests_total", (("endpoint", "/retrieve"), ("status", "200")))] == 3
    assert samples[("hopgym_retriever_requests_total", (("endpoint", "/retrieve"), ("status", "422")))] == 1
    assert samples[("hopgym_retriever_requests_total", (("endpoint", "/queries"), ("status", "200")))] == 1
    assert samples[("hopgym_retriever_queries_total", ())] == 7
    assert samples[("hopgym_retriever_batch_size_sum", ())] == 7
    assert 1 <= samples[("hopgym_retriever_batch_size_count", ())] <= 4
    assert samples[("hopgym_retriever_request_duration_seconds_count", (("endpoint", "/retrieve"),))] == 4
    assert ("hopgym_retriever_pending_queries", ()) in samples


class Held:
    """Holds the first search until released, so that the requests behind it meet a busy backend."""

    def __init__(self, inner: InMemoryBM25Retriever) -> None:
        self.inner = inner
        self.release = asyncio.Event()

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        await self.release.wait()
        return await self.inner.search(queries, k)

    async def aclose(self) -> None:
        return None


async def test_concurrent_clients_share_backend_calls(bm25, conformance_passages) -> None:
    app = create_app(Held(bm25), ServerConfig(max_concurrency=1))
    queries = [p.title for p in conformance_passages[:40]]
    async with running_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        sent = [
            asyncio.create_task(
                http.post("/retrieve", json={"queries": [q], "topk": 2, "return_scores": True})
            )
            for q in queries
        ]
        async with asyncio.timeout(30):
            # One call held (the first request, or the first few if they arrived together), the rest queued.
            while app.state.batcher.stats.requests < 40:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        app.state.retriever.release.set()
        responses = await asyncio.gather(*sent)
    expected = bm25.search_sync(queries, 2)
    got = [[h["document"]["id"] for h in r.json()["result"][0]] for r in responses]
    assert got == [[p.id for p in hits] for hits in expected]
    stats = app.state.batcher.stats
    assert stats.queries == 40 and stats.batches <= 2 and stats.max_batch_seen >= 20


async def test_requests_arriving_together_are_batched_by_a_backend_that_never_yields(bm25) -> None:
    # The in-memory BM25 answers without yielding (as the bm25 backend does for small searches), so its
    # backend slot is never busy: requests that arrive in the same loop turn must still find each other.
    app = create_app(bm25)
    async with running_server(app) as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        streams = [await asyncio.open_connection(host, int(port)) for _ in range(8)]
        body = json.dumps({"queries": [Q1], "topk": 2}).encode()
        request = (
            b"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        for _, writer in streams:  # all written before the server's loop runs again
            writer.write(request)
        for reader, writer in streams:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(re.search(rb"content-length: (\d+)", head).group(1))
            answer = json.loads(await reader.readexactly(length))
            assert [h["id"] for h in answer["result"][0]] == [p.id for p in bm25.search_sync([Q1], 2)[0]]
            writer.close()
    stats = app.state.batcher.stats
    assert stats.queries == 8 and stats.batches < 8 and stats.max_batch_seen >= 2
