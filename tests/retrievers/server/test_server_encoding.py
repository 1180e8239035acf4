"""The server's answers are byte for byte what FastAPI's JSONResponse (Search-R1's server) writes, whichever
JSON encoder wrote them (orjson where it agrees with the stdlib, the stdlib otherwise)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import httpx
import pytest

from hopgym.retrievers.server.app import ServerConfig, create_app, running_server
from hopgym.types import Passage

pytestmark = pytest.mark.asyncio

# Scores orjson spells differently from Python's repr (below 1e-4), edge values, and strings that need
# escaping or are outside the BMP.
SCORES = [1e-05, 8.108186739264056e-05, 0.0001, 0.0, -0.0, 12.345678901234567, -3.5, 1e16, 2.5e-300]
TEXT = 'quote " backslash \\ tab \t newline \n nul \x00 unit \x1f del \x7f é 中 \u2028 \U0001f600'


class Fixed:
    def __init__(self, scores: Sequence[float]) -> None:
        self.passages = [
            Passage(id=f"p{i}", title=f"T{i} {TEXT}", text=TEXT, score=s) for i, s in enumerate(scores)
        ]

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        return [self.passages[:k] for _ in queries]

    async def aclose(self) -> None:
        return None


def fastapi_bytes(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


@pytest.mark.parametrize("scores", [SCORES[:1], SCORES[1:2], SCORES[2:], [1.5, 2.25, 7.0]])
async def test_retrieve_bytes_match_fastapi_for_every_score(scores: list[float]) -> None:
    backend = Fixed(scores)
    async with running_server(create_app(backend)) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.post(
            "/retrieve", json={"queries": ["q", "r"], "topk": 9, "return_scores": True}
        )
        plain = await http.post("/batch_search", json={"query": ["q"], "top_n": 9})
    hits = [{"document": {"id": p.id, "contents": p.contents}, "score": p.score} for p in backend.passages]
    assert response.status_code == 200
    assert response.content == fastapi_bytes({"result": [hits, hits]})
    assert plain.content == fastapi_bytes([[{"id": p.id, "contents": p.contents} for p in backend.passages]])


async def test_a_nan_score_is_still_a_json_500() -> None:
    app = create_app(Fixed([1.0, math.nan]), ServerConfig())
    async with running_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/retrieve", json={"queries": ["q"], "return_scores": True})
    assert response.status_code == 500 and "cannot be written as JSON" in response.json()["detail"]
