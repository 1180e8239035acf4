"""Reciprocal-rank fusion: the math on hand-made rankings, depth, ties, failures and closing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from hopgym.errors import ConfigError, RetrieverError
from hopgym.retrievers.wrappers.hybrid import HybridRetriever, RRFConfig, reciprocal_rank_fusion
from hopgym.types import Passage


def P(pid: str, score: float = 0.0) -> Passage:
    return Passage(id=pid, title=f"title {pid}", text=f"text {pid}", score=score)


class Ranked:
    """A retriever answering every query with a fixed ranking (the seam HybridRetriever talks to)."""

    def __init__(self, ids: Sequence[str], *, fail: Exception | None = None, delay: float = 0.0) -> None:
        self.ids = list(ids)
        self.fail = fail
        self.delay = delay
        self.ks: list[int] = []
        self.closed = 0
        self.finished = False

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        self.ks.append(k)
        await asyncio.sleep(self.delay)
        self.finished = True
        if self.fail is not None:
            raise self.fail
        return [
            [] if not q.strip() else [P(i, 100.0 - r) for r, i in enumerate(self.ids[:k])] for q in queries
        ]

    async def aclose(self) -> None:
        self.closed += 1
        if self.fail is not None:
            raise self.fail


def test_fused_scores_by_hand():
    fused = reciprocal_rank_fusion([[P("a"), P("b"), P("c")], [P("c"), P("a")]], [1.0, 1.0], rrf_k=60, k=10)
    expected = {"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61}
    assert [p.id for p in fused] == ["a", "c", "b"]
    for p in fused:
        assert p.score == pytest.approx(expected[p.id])


def test_weights_change_the_winner():
    rankings = [[P("a"), P("b")], [P("b"), P("a")]]
    assert [p.id for p in reciprocal_rank_fusion(rankings, [1.0, 3.0], rrf_k=60, k=2)] == ["b", "a"]
    assert [p.id for p in reciprocal_rank_fusion(rankings, [3.0, 1.0], rrf_k=60, k=2)] == ["a", "b"]
    top = reciprocal_rank_fusion(rankings, [2.0, 0.5], rrf_k=0, k=1)[0]
    assert top.score == pytest.approx(2.0 / 1 + 0.5 / 2)


def test_ties_break_by_best_rank_then_list_then_id():
    # x is 1st in list 0, y is 1st in list 1: equal fused scores, list 0 wins.
    fused = reciprocal_rank_fusion([[P("x")], [P("y")]], [1.0, 1.0], rrf_k=60, k=2)
    assert [p.id for p in fused] == ["x", "y"]
    # m and n swap places between the lists: equal sums, m has the best rank in the earlier list.
    fused = reciprocal_rank_fusion([[P("m"), P("n")], [P("n"), P("m")]], [1.0, 1.0], rrf_k=60, k=2)
    assert fused[0].score == fused[1].score and [p.id for p in fused] == ["m", "n"]
    fused = reciprocal_rank_fusion([[P("z"), P("w")], [P("w"), P("z")]], [1.0, 1.0], rrf_k=60, k=2)
    assert [p.id for p in fused] == ["z", "w"]


def test_passage_fields_come_from_the_first_list_and_duplicates_count_once():
    first = Passage("a", "from first", "t1", 5.0)
    second = Passage("a", "from second", "t2", 0.3)
    (fused,) = reciprocal_rank_fusion([[first, first], [second]], [1.0, 1.0], rrf_k=60, k=5)
    assert (fused.title, fused.text) == ("from first", "t1")
    assert fused.score == pytest.approx(2 / 61)


def test_k_truncates_and_empty_lists_fuse_to_nothing():
    assert reciprocal_rank_fusion([[], []], [1.0, 1.0], rrf_k=60, k=3) == []
    fused = reciprocal_rank_fusion([[P("a"), P("b"), P("c")], []], [1.0, 1.0], rrf_k=60, k=2)
    assert [p.id for p in fused] == ["a", "b"]


async def test_searches_both_at_depth_and_fuses():
    first, second = Ranked(["a", "b", "c", "d"]), Ranked(["d", "c", "x"])
    hybrid = HybridRetriever(first, second, depth=4)
    results = await hybrid.search(["q1", "   ", "q2"], 2)
    assert first.ks == second.ks == [4]
    assert results[1] == []
    assert [p.id for p in results[0]] == [p.id for p in results[2]] == ["d", "c"]
    assert [p.score for p in results[0]] == sorted((p.score for p in results[0]), reverse=True)


async def test_depth_defaults_and_never_goes_below_k():
    first, second = Ranked(["a"]), Ranked(["b"])
    hybrid = HybridRetriever(first, second)
    await hybrid.search(["q"], 3)
    await hybrid.search(["q"], 25)
    assert first.ks == [10, 25]
    shallow = HybridRetriever(Ranked(["a"]), Ranked(["b"]), depth=2)
    await shallow.search(["q"], 5)
    assert shallow.first.ks == [5]  # type: ignore[attr-defined]


async def test_runs_both_concurrently():
    second_started = asyncio.Event()

    class WaitsForSecond(Ranked):
        async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
            # Deadlocks (and times out) if the second search only starts after this one returns.
            await asyncio.wait_for(second_started.wait(), timeout=5)
            return await super().search(queries, k)

    class SignalsStart(Ranked):
        async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
            second_started.set()
            return await super().search(queries, k)

    hybrid = HybridRetriever(WaitsForSecond(["a"]), SignalsStart(["b"]))
    (hits,) = await hybrid.search(["q"], 2)
    assert [p.id for p in hits] == ["a", "b"]


async def test_a_failing_side_raises_after_the_other_finishes():
    failing, slow = Ranked([], fail=RetrieverError("down")), Ranked(["a"], delay=0.05)
    hybrid = HybridRetriever(failing, slow)
    with pytest.raises(RetrieverError, match="down"):
        await hybrid.search(["q"], 1)
    assert slow.finished


async def test_argument_checks():
    hybrid = HybridRetriever(Ranked(["a"]), Ranked(["b"]))
    assert await hybrid.search([], 3) == []
    with pytest.raises(ConfigError):
        await hybrid.search(["q"], 0)
    with pytest.raises(ConfigError):
        await hybrid.search("q", 1)


async def test_aclose_closes_both_once_even_if_the_first_fails():
    first, second = Ranked([], fail=RetrieverError("boom")), Ranked(["a"])
    hybrid = HybridRetriever(first, second)
    with pytest.raises(RetrieverError):
        await hybrid.aclose()
    await hybrid.aclose()
    assert (first.closed, second.closed) == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights": (1.0,)}, "two numbers"),
        ({"weights": (1.0, 0.0)}, "> 0"),
        ({"weights": (1.0, float("nan"))}, "> 0"),
        ({"rrf_k": -1}, "rrf_k"),
        ({"depth": 0}, "depth"),
        ({"depth": 2.5}, "depth"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RRFConfig(**kwargs)
