"""The conformance suite every Retriever backend must pass (backends are discovered in ./backends/)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from hopgym.errors import ConfigError
from hopgym.retrievers.base import Retriever
from hopgym.types import Passage

pytestmark = pytest.mark.asyncio(loop_scope="module")

ODD_QUERIES = [
    "?!",
    "Zürich Ångström naïve café",
    "東京 の 人口",
    "emoji 🙂 test",
    'title:(foo) AND "bar OR baz~ ^2 {x} [y] \\ /',
    "a " * 400,
    "\t\n tabs and\nnewlines ",
    "0123456789",
]


def _ids(results: Sequence[Passage]) -> list[str]:
    return [p.id for p in results]


async def test_result_types_and_shape(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    queries = [conformance_passages[0].title, conformance_passages[5].title, "american film director"]
    results = await conformance_retriever.search(queries, 3)
    assert isinstance(results, list) and len(results) == len(queries)
    corpus_ids = {p.id for p in conformance_passages}
    for hits in results:
        assert isinstance(hits, list)
        assert 1 <= len(hits) <= 3
        for p in hits:
            assert isinstance(p, Passage)
            assert p.id in corpus_ids
            assert isinstance(p.score, float)
        scores = [p.score for p in hits]
        assert scores == sorted(scores, reverse=True), "hits must be ranked best first"
        assert len(set(_ids(hits))) == len(hits), "no duplicate passages in one result"


async def test_finds_passage_by_its_own_text(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    targets = conformance_passages[10:15]
    queries = [f"{p.title} {' '.join(p.text.split()[:12])}" for p in targets]
    results = await conformance_retriever.search(queries, 3)
    for target, hits in zip(targets, results, strict=True):
        assert target.id in _ids(hits), f"{target.id} ({target.title}) not in top 3: {_ids(hits)}"


async def test_passage_fields_round_trip(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    by_id = {p.id: p for p in conformance_passages}
    (hits,) = await conformance_retriever.search([conformance_passages[3].title], 5)
    for p in hits:
        assert (p.title, p.text) == (by_id[p.id].title, by_id[p.id].text)


@pytest.mark.parametrize("k", [1, 2, 5, 10])
async def test_k_is_respected(conformance_retriever: Retriever, k: int) -> None:
    (hits,) = await conformance_retriever.search(["football club in England"], k)
    assert 1 <= len(hits) <= k


async def test_k_larger_than_corpus(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    (hits,) = await conformance_retriever.search(
        [conformance_passages[0].title], len(conformance_passages) + 50
    )
    assert 1 <= len(hits) <= len(conformance_passages)


@pytest.mark.parametrize("k", [0, -1])
async def test_k_below_one_is_a_config_error(conformance_retriever: Retriever, k: int) -> None:
    with pytest.raises(ConfigError):
        await conformance_retriever.search(["anything"], k)


async def test_empty_batch(conformance_retriever: Retriever) -> None:
    assert await conformance_retriever.search([], 3) == []


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
async def test_blank_query_gives_empty_list(conformance_retriever: Retriever, query: str) -> None:
    results = await conformance_retriever.search([query, "film"], 3)
    assert results[0] == []
    assert len(results[1]) >= 1


async def test_odd_queries_never_raise(conformance_retriever: Retriever) -> None:
    results = await conformance_retriever.search(ODD_QUERIES, 3)
    assert len(results) == len(ODD_QUERIES)
    assert all(len(hits) <= 3 for hits in results)


async def test_batch_order_preserved(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    queries = [p.title for p in conformance_passages[20:28]]
    batched = await conformance_retriever.search(queries, 3)
    singles = [(await conformance_retriever.search([q], 3))[0] for q in queries]
    assert [_ids(h) for h in batched] == [_ids(h) for h in singles]
    reversed_batch = await conformance_retriever.search(list(reversed(queries)), 3)
    assert [_ids(h) for h in reversed_batch] == [_ids(h) for h in reversed(singles)]


async def test_concurrent_calls_match_sequential(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    queries = [p.title for p in conformance_passages[30:46]]
    sequential = [(await conformance_retriever.search([q], 2))[0] for q in queries]
    concurrent = await asyncio.gather(*(conformance_retriever.search([q], 2) for q in queries))
    assert [_ids(r[0]) for r in concurrent] == [_ids(h) for h in sequential]


async def test_duplicate_queries_in_one_batch(conformance_retriever: Retriever) -> None:
    results = await conformance_retriever.search(["british rock band"] * 3, 3)
    assert _ids(results[0]) == _ids(results[1]) == _ids(results[2])


@pytest.mark.asyncio(loop_scope="function")
async def test_aclose_is_idempotent(backend_module, conformance_passages: list[Passage], tmp_path) -> None:
    async with backend_module.open_retriever(conformance_passages[:50], tmp_path) as retriever:
        (hits,) = await retriever.search([conformance_passages[0].title], 2)
        assert hits
        await retriever.aclose()
        await retriever.aclose()
