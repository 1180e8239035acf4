"""The in-memory BM25 retriever: scores, tokenizer, ties, lifecycle, and agreement with bm25s."""

from __future__ import annotations

import asyncio
import math

import pytest

from hopgym.errors import ConfigError, HopgymError, RetrieverError
from hopgym.retrievers.base import Retriever
from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever, tokenize
from hopgym.testing import conformance_passages
from hopgym.types import Passage

CORPUS = [
    Passage("p0", "Velmora", "Velmora is a city in the country of Kestan."),
    Passage("p1", "Kestan", "The capital of Kestan is Velmora. Kestan is a quiet country."),
    Passage("p2", "Quarn Group", "Quarn Group was founded by Tavor Melkin in Velmora."),
    Passage("p3", "Tavor Melkin", "Tavor Melkin was born in Dranis."),
]


def test_tokenizer_lowercases_keeps_unicode_and_drops_stopwords() -> None:
    assert tokenize("The Zürich café, in 1999!") == ["zürich", "café", "1999"]
    assert tokenize("東京 の 人口") == ["東京", "の", "人口"]
    assert tokenize("of the and") == []


def test_implements_the_retriever_protocol() -> None:
    assert isinstance(InMemoryBM25Retriever(CORPUS), Retriever)


async def test_score_follows_lucene_bm25() -> None:
    k1, b = 0.9, 0.4
    retriever = InMemoryBM25Retriever(CORPUS, k1=k1, b=b)
    (hits,) = await retriever.search(["Tavor born"], 4)
    # Hand computation for p3 ("tavor melkin tavor melkin born dranis": 6 tokens).
    lengths = [len(tokenize(f"{p.title} {p.text}")) for p in CORPUS]
    avgdl = sum(lengths) / len(lengths)
    n = len(CORPUS)

    def term(tf: int, df: int, dl: int) -> float:
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        return idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))

    expected_p3 = term(2, 2, lengths[3]) + term(1, 1, lengths[3])
    expected_p2 = term(1, 2, lengths[2])
    assert [h.id for h in hits] == ["p3", "p2"]
    assert hits[0].score == pytest.approx(expected_p3)
    assert hits[1].score == pytest.approx(expected_p2)


async def test_results_are_copies_with_scores() -> None:
    retriever = InMemoryBM25Retriever(CORPUS)
    (hits,) = await retriever.search(["Kestan capital"], 2)
    assert hits[0].id == "p1" and hits[0].score > 0
    assert (hits[0].title, hits[0].text) == (CORPUS[1].title, CORPUS[1].text)
    assert CORPUS[1].score == 0.0


async def test_ties_break_by_passage_order() -> None:
    twins = [Passage(f"t{i}", "", "same words here") for i in range(5)]
    retriever = InMemoryBM25Retriever([Passage("x", "", "other"), *twins])
    (hits,) = await retriever.search(["same words"], 3)
    assert [h.id for h in hits] == ["t0", "t1", "t2"]
    assert len({h.score for h in hits}) == 1


async def test_blank_stopword_and_unknown_queries_give_empty_lists() -> None:
    retriever = InMemoryBM25Retriever(CORPUS)
    results = await retriever.search(["", "  \n", "the of and", "zzzunknown", "Velmora"], 3)
    assert results[:4] == [[], [], [], []]
    assert results[4] and results[4][0].id == "p0"
    assert await retriever.search([], 3) == []
    with pytest.raises(ConfigError, match="not a single string"):
        await retriever.search("Velmora", 3)


async def test_repeated_query_token_counts_again() -> None:
    retriever = InMemoryBM25Retriever(CORPUS)
    (once,) = await retriever.search(["Velmora"], 1)
    (twice,) = await retriever.search(["Velmora Velmora"], 1)
    assert twice[0].score == pytest.approx(2 * once[0].score)


async def test_empty_corpus_is_allowed() -> None:
    retriever = InMemoryBM25Retriever([])
    assert len(retriever) == 0
    assert await retriever.search(["anything"], 3) == [[]]


@pytest.mark.parametrize("k", [0, -2, True, 2.0])
async def test_bad_k_is_a_config_error(k: object) -> None:
    with pytest.raises(ConfigError, match="k="):
        await InMemoryBM25Retriever(CORPUS).search(["Velmora"], k)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"k1": -1.0}, "k1"), ({"k1": math.nan}, "k1"), ({"b": 1.5}, "b")]
)
def test_bad_parameters_are_config_errors(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigError, match=f"{field}="):
        InMemoryBM25Retriever(CORPUS, **kwargs)


async def test_close_is_idempotent_and_search_after_close_fails_clearly() -> None:
    retriever = InMemoryBM25Retriever(CORPUS)
    await retriever.aclose()
    await retriever.aclose()
    assert retriever.closed
    with pytest.raises(RetrieverError, match="closed") as info:
        await retriever.search(["Velmora"], 3)
    assert isinstance(info.value, HopgymError)
    with pytest.raises(RetrieverError):
        retriever.search_sync(["Velmora"], 3)


async def test_big_batches_run_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_to_thread = asyncio.to_thread

    async def counting_to_thread(func, /, *args, **kwargs):
        calls.append(func)
        return await real_to_thread(func, *args, **kwargs)

    monkeypatch.setattr("hopgym.retrievers.bm25.simple.asyncio.to_thread", counting_to_thread)
    corpus = [Passage(f"d{i}", f"T{i}", f"word{i % 97} filler text {i}") for i in range(3000)]
    retriever = InMemoryBM25Retriever(corpus)
    queries = [f"word{i} filler" for i in range(40)]
    threaded = await retriever.search(queries, 5)
    assert len(calls) == 1
    assert threaded == retriever.search_sync(queries, 5)
    await retriever.search(["word3"], 5)  # a single query on this corpus answers inline
    assert len(calls) == 1


async def test_rankings_and_scores_match_bm25s_lucene() -> None:
    bm25s = pytest.importorskip("bm25s")
    passages = conformance_passages(400)  # generated HopWorld text: parity needs a corpus, not a real one
    retriever = InMemoryBM25Retriever(passages)
    reference = bm25s.BM25(method="lucene", k1=0.9, b=0.4)
    reference.index([tokenize(f"{p.title} {p.text}") for p in passages], show_progress=False)
    queries = ["person born in a city on the river", passages[7].title, "company founded by leader", "river"]
    results = await retriever.search(queries, 10)
    for query, hits in zip(queries, results, strict=True):
        expected = reference.get_scores(tokenize(query))
        assert hits, query
        for hit in hits:
            index = next(i for i, p in enumerate(passages) if p.id == hit.id)
            assert hit.score == pytest.approx(float(expected[index]), rel=1e-5)
        assert hits[0].score == pytest.approx(float(expected.max()), rel=1e-5)
