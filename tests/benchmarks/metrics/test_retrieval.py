"""Retrieval metrics: recall@k of supporting passages, answer-in-passage, and ``hopgym index eval`` on the
shared HotpotQA corpus."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hopgym.benchmarks.metrics.retrieval import (
    answer_in_passages,
    episode_retrieval_summary,
    recall_at_k,
    retrieval_summary,
    supporting_ids,
    supporting_recall,
)
from hopgym.benchmarks.retrieval import recall_at
from hopgym.cli import main


def test_recall_at_k_counts_the_share_of_supporting_ids_in_the_top_k() -> None:
    ranking = ["p3", "s1", "p4", "s2"]
    assert recall_at_k(ranking, {"s1", "s2"}, 1) == 0.0
    assert recall_at_k(ranking, {"s1", "s2"}, 2) == 0.5
    assert recall_at_k(ranking, {"s1", "s2"}, 4) == 1.0
    assert recall_at_k(ranking, {"s1", "s2"}, 10) == 1.0  # fewer hits than k: the list is all there is
    assert recall_at_k(["s1", "s1"], {"s1", "s2"}, 2) == 0.5  # a repeated id counts once
    assert recall_at_k(ranking, set(), 3) is None
    with pytest.raises(ValueError, match="k=0"):
        recall_at_k(ranking, {"s1"}, 0)


def test_supporting_recall_over_an_episode() -> None:
    assert supporting_recall(["a", "s2", "b", "s2"], ["s1", "s2"]) == 0.5
    assert supporting_recall([], ["s1"]) == 0.0
    assert supporting_recall(["a"], []) is None


def test_supporting_ids_from_metadata() -> None:
    assert supporting_ids({"supporting_passage_ids": ["a", "b"]}) == {"a", "b"}
    assert supporting_ids({"supporting_passage_ids": "a"}) == frozenset()
    assert supporting_ids({}) == frozenset()


def test_answer_in_passages_is_flashrags_retrieval_recall() -> None:
    # FlashRAG flashrag/evaluator/metrics.py (ddaeb3c) Retrieval_Recall l.219-247: a hit when
    # normalize_answer(golden) in normalize_answer(doc) (l.239) for any of the top-k docs (l.244).
    docs = ['"Paris"\nParis is the capital of France.', '"The U.S."\nThe U.S. capital is Washington, D.C.']
    assert answer_in_passages(docs, ["Washington DC"], 1) == 0.0
    assert answer_in_passages(docs, ["Washington DC"], 2) == 1.0  # "washington dc" after normalizing both
    assert answer_in_passages(docs, ["Berlin", "the capital"], 1) == 1.0
    assert answer_in_passages(docs, ["Berlin"]) == 0.0
    assert answer_in_passages(docs, ["--"], 1) == 1.0  # an answer normalizing to "" is in every passage
    assert answer_in_passages([], ["Paris"], 3) == 0.0


def test_summary_skips_questions_without_supporting_ids_for_recall() -> None:
    summary = retrieval_summary(
        [["s1", "x"], ["x", "y"], ["z"]],
        [{"s1", "s2"}, {"y"}, set()],
        ks=(1, 2),
        texts=[["Paris"], ["Rome"], ["Oslo"]],
        golds=[["paris"], ["milan"], ["oslo"]],
    )
    assert summary == {
        "questions": 3.0,
        "questions_with_supporting": 2.0,
        "recall@1": 0.25,
        "recall@2": 0.75,
        "answer_in_top@1": 2 / 3,
        "answer_in_top@2": 2 / 3,
    }
    with pytest.raises(ValueError, match="2 rankings but 1"):
        retrieval_summary([["a"], ["b"]], [{"a"}])


def test_episode_retrieval_over_all_searches() -> None:
    summary = episode_retrieval_summary(
        [
            ([["x", "s1"], ["s2"]], ["s1", "s2"]),  # found both, the first search only one
            ([["y"]], ["s3"]),  # found none
            ([], ["s4", "s5"]),  # never searched
            ([["z"]], []),  # no supporting ids: left out
        ]
    )
    assert summary == {
        "episodes_with_supporting": 3.0,
        "supporting_recall": 1 / 3,
        "first_search_recall": 0.5 / 3,
        "all_supporting_found": 1 / 3,
    }
    assert episode_retrieval_summary([([["a"]], [])]) == {}


def test_the_retrieval_benchmark_uses_the_library_function() -> None:
    rankings = [["a", "b", "c"], ["x", "y"]]
    gold = [{"b", "z"}, {"x"}]
    summary = retrieval_summary(rankings, gold)
    assert recall_at(rankings, gold) == {f"@{k}": summary[f"recall@{k}"] for k in (1, 3, 5, 10)}
    assert recall_at(rankings, gold) == {"@1": 0.5, "@3": 0.75, "@5": 0.75, "@10": 0.75}


def test_index_eval_on_the_shared_hotpotqa_corpus(
    shared_data: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("bm25s")
    corpus = shared_data("hotpotqa", "corpus.jsonl")
    tasks = shared_data("hotpotqa", "dev_500.jsonl")
    index = tmp_path / "bm25"
    assert main(["index", "build", "--corpus", str(corpus), "--out", str(index), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["index", "eval", "--data", str(tasks), str(index), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["questions"] == summary["questions_with_supporting"] == 500
    # BM25 on the question alone finds most supporting passages of these 2-hop questions in the top 10, and
    # recall grows with k.
    recalls = [summary[f"recall@{k}"] for k in (1, 3, 5, 10)]
    assert recalls == sorted(recalls)
    assert 0.3 < recalls[0] < 0.5
    assert recalls[-1] > 0.85
    assert summary["answer_in_top@10"] > 0.75
    assert main(["index", "eval", "--data", str(tasks), str(index), "--k", "2,1", "--limit", "50"]) == 0
    printed = capsys.readouterr().out
    assert "50 questions, 50 with supporting passage ids" in printed
    assert printed.splitlines()[1].startswith("recall@1 ")
    assert printed.splitlines()[2].startswith("recall@2 ")


def test_index_eval_bad_k(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tasks = tmp_path / "t.jsonl"
    tasks.write_text(json.dumps({"id": "a", "question": "q", "golden_answers": ["x"]}) + "\n")
    assert main(["index", "eval", "--data", str(tasks), str(tmp_path), "--k", "one"]) == 2
    assert "--k 'one': give whole numbers" in capsys.readouterr().err
