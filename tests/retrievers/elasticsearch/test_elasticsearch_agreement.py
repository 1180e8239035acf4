"""Elasticsearch and the embedded bm25 backend rank the shared HotpotQA corpus alike.

1,500 passages (the contexts of the first ~150 dev questions, so every selected question's two supporting
passages are in), the first 60 such questions as queries, k=10, same BM25 parameters on both sides.
Measured here against noida-db: top-1 agreement 0.93, top-3 overlap 0.96, recall@10 of the supporting
passages 0.89 for both (150 questions: 0.96 / 0.97). Tokenization differs (Elasticsearch's english analyzer
vs Snowball stems and Lucene's stopwords), so rankings are compared, never raw scores (noida's carry an
extra (k1+1) factor).

Both sides use k1=1.2, b=0.75 (Elasticsearch's defaults): noida-db ignores the similarity settings of an
index, so with other values the comparison would measure that rather than the backend.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("elasticsearch")
pytest.importorskip("bm25s")

from hopgym.retrievers.bm25.backend import BM25Retriever
from hopgym.retrievers.corpus import iter_passages
from hopgym.retrievers.elasticsearch.backend import ElasticsearchRetriever, index_into_elasticsearch
from hopgym.retrievers.elasticsearch.config import ElasticsearchConnection, IndexSettings
from hopgym.types import Passage

pytestmark = [pytest.mark.elasticsearch, pytest.mark.slow]

N_PASSAGES = 1500
N_QUESTIONS = 60
K1, B = 1.2, 0.75
# Floors set below the measured rates (0.93 / 0.96) to absorb analyzer differences, not regressions.
MIN_TOP1 = 0.85
MIN_TOP3 = 0.85


def _load_es_helpers() -> ModuleType:
    path = Path(__file__).parents[1] / "backends" / "elasticsearch.py"
    spec = importlib.util.spec_from_file_location("hopgym_test_es_helpers_agreement", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recall(results: list[list[Passage]], gold: list[set[str]], k: int) -> float:
    return sum(
        len({p.id for p in hits[:k]} & g) / len(g) for hits, g in zip(results, gold, strict=True)
    ) / len(gold)


async def test_top_k_agrees_with_bm25_backend(tmp_path: Path, record_property, shared_data) -> None:
    hotpot_corpus, hotpot_dev = (
        shared_data("hotpotqa", "corpus.jsonl"),
        shared_data("hotpotqa", "dev_500.jsonl"),
    )
    es = _load_es_helpers()
    passages = list(itertools.islice(iter_passages(hotpot_corpus), N_PASSAGES))
    ids = {p.id for p in passages}
    questions = []
    with hotpot_dev.open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            gold = set(record["metadata"]["supporting_passage_ids"])
            if gold <= ids:
                questions.append((record["question"], gold))
    questions = questions[:N_QUESTIONS]
    assert len(questions) == N_QUESTIONS
    queries = [q for q, _ in questions]
    gold_sets = [g for _, g in questions]

    bm25 = BM25Retriever.from_passages(passages, k1=K1, b=B)
    try:
        expected = await bm25.search(queries, 10)
    finally:
        await bm25.aclose()

    with es.es_server(tmp_path) as url:
        connection = ElasticsearchConnection(hosts=(url,), request_timeout=300)
        settings = IndexSettings(index_name=es.unique_index_name("agreement"), k1=K1, b=B)
        assert await index_into_elasticsearch(passages, connection, settings) == N_PASSAGES
        retriever = ElasticsearchRetriever(connection, settings.index_name)
        try:
            actual = await retriever.search(queries, 10)
            await retriever.delete_index()
        finally:
            await retriever.aclose()

    top1 = sum(bool(a) and bool(e) and a[0].id == e[0].id for a, e in zip(actual, expected, strict=True))
    top1_rate = top1 / len(queries)
    top3_rate = sum(
        len({p.id for p in a[:3]} & {p.id for p in e[:3]}) / 3 for a, e in zip(actual, expected, strict=True)
    ) / len(queries)
    recall_es, recall_bm25 = _recall(actual, gold_sets, 10), _recall(expected, gold_sets, 10)
    summary = (
        f"top-1 agreement {top1_rate:.3f}, top-3 overlap {top3_rate:.3f}, "
        f"recall@10 elasticsearch {recall_es:.3f} vs bm25 {recall_bm25:.3f} ({len(queries)} questions)"
    )
    record_property("elasticsearch_vs_bm25", summary)
    assert top1_rate >= MIN_TOP1, summary
    assert top3_rate >= MIN_TOP3, summary
    assert abs(recall_es - recall_bm25) <= 0.05, summary
