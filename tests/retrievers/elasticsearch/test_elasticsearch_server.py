"""The Elasticsearch backend against a real server (noida-db, or HOPGYM_ES_URL): build, open, search,
msearch, delete, manifest checks, timeouts and a server that goes away."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

pytest.importorskip("elasticsearch")

from hopgym.errors import ConfigError, DataError, RetrieverTimeout, RetrieverUnavailable
from hopgym.retrievers.corpus import corpus_fingerprint, iter_passages
from hopgym.retrievers.elasticsearch.backend import (
    ElasticsearchRetriever,
    delete_elasticsearch_index,
    index_into_elasticsearch,
)
from hopgym.retrievers.elasticsearch.config import (
    ElasticsearchConnection,
    IndexSettings,
    QuerySettings,
)
from hopgym.retrievers.manifest import MANIFEST_NAME, build_index, open_index, read_manifest, write_manifest
from hopgym.types import Passage

pytestmark = pytest.mark.elasticsearch

N_PASSAGES = 200


def _load_es_helpers() -> ModuleType:
    path = Path(__file__).parents[1] / "backends" / "elasticsearch.py"
    spec = importlib.util.spec_from_file_location("hopgym_test_es_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ES = _load_es_helpers()


@pytest.fixture(scope="module")
def es_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with ES.es_server(tmp_path_factory.mktemp("es-server")) as url:
        yield url


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, conformance_passages: list[Passage]) -> Path:
    # Generated passages (tests/retrievers/conftest.py): these tests need a corpus, not a real one.
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    rows = ({"id": p.id, "title": p.title, "text": p.text} for p in conformance_passages[:N_PASSAGES])
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(es_url: str, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    out = tmp_path_factory.mktemp("es-index")
    progress: list[tuple[int, int | None]] = []
    name = ES.unique_index_name()
    manifest = build_index(
        "elasticsearch",
        corpus,
        out,
        progress=lambda done, total: progress.append((done, total)),
        url=es_url,
        index_name=name,
        chunk_size=64,
        api_key="never-in-the-manifest",
    )
    yield {"dir": out, "manifest": manifest, "progress": progress, "index_name": name}
    delete_elasticsearch_index(out)


def _passages(corpus: Path) -> list[Passage]:
    return list(iter_passages(corpus))


def _build_small(url: str, out: Path, passages: list[Passage], **options: Any) -> Path:
    corpus = out / "small.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": p.id, "title": p.title, "text": p.text}) + "\n" for p in passages),
        encoding="utf-8",
    )
    # build is synchronous (the CLI calls it); called from a running event loop, as here, it runs its
    # own loop in a worker thread.
    # The index directory is a sibling of the corpus: a build refuses an --out that contains its corpus.
    build_index("elasticsearch", corpus, out / "index", url=url, index_name=ES.unique_index_name(), **options)
    return out / "index"


def test_build_writes_a_manifest_without_secrets(built: dict[str, Any], corpus: Path, es_url: str) -> None:
    manifest = built["manifest"]
    assert manifest.backend == "elasticsearch"
    assert manifest.passage_count == N_PASSAGES
    assert manifest.corpus_sha256 == corpus_fingerprint(corpus)
    params = dict(manifest.params)
    assert params["hosts"] == [es_url]
    assert (params["index_name"], params["analyzer"], params["k1"], params["b"]) == (
        built["index_name"],
        "english",
        0.9,
        0.4,
    )
    assert manifest.encoder == {"kind": "lexical", "analyzer": "english"}
    assert read_manifest(built["dir"]) == manifest
    assert "never-in-the-manifest" not in (built["dir"] / MANIFEST_NAME).read_text()
    assert built["progress"][-1] == (N_PASSAGES, N_PASSAGES)
    assert [done for done, _ in built["progress"][:-1]] == [64, 128, 192]


async def test_open_index_searches_with_passages_intact(built: dict[str, Any], corpus: Path) -> None:
    passages = _passages(corpus)
    by_id = {p.id: p for p in passages}
    retriever = open_index(built["dir"])
    assert isinstance(retriever, ElasticsearchRetriever)
    try:
        assert await retriever.count() == N_PASSAGES
        targets = passages[40:45]
        queries = [f"{p.title} {' '.join(p.text.split()[:10])}" for p in targets]
        results = await retriever.search(queries, 3)
        for target, hits in zip(targets, results, strict=True):
            assert hits[0].id == target.id
            assert all((h.title, h.text) == (by_id[h.id].title, by_id[h.id].text) for h in hits)
            assert hits[0].score > 0
    finally:
        await retriever.aclose()


async def test_one_msearch_request_per_batch(built: dict[str, Any], corpus: Path, monkeypatch) -> None:
    queries = [p.title for p in _passages(corpus)[:10]]
    answers = []
    for max_batch, expected_calls in ((256, 1), (4, 3)):
        retriever = open_index(built["dir"], max_batch=max_batch)
        assert isinstance(retriever, ElasticsearchRetriever)
        client = retriever._get_client()
        calls: list[int] = []
        real_msearch = client.msearch

        async def spy(*args: Any, _real: Any = real_msearch, _calls: list[int] = calls, **kwargs: Any) -> Any:
            _calls.append(len(kwargs["searches"]) // 2)
            return await _real(*args, **kwargs)

        monkeypatch.setattr(client, "msearch", spy)
        try:
            answers.append([[p.id for p in hits] for hits in await retriever.search(queries, 3)])
        finally:
            await retriever.aclose()
        assert len(calls) == expected_calls
        assert sum(calls) == len(queries)
    assert answers[0] == answers[1]


async def test_boosted_fields_multi_match(built: dict[str, Any], corpus: Path) -> None:
    passages = _passages(corpus)
    retriever = open_index(built["dir"], fields=["title^3", "text"], multi_match_type="most_fields")
    try:
        (hits,) = await retriever.search([passages[7].title], 5)
        assert hits[0].title == passages[7].title
    finally:
        await retriever.aclose()


@pytest.mark.parametrize(("analyzer", "expected"), [("english", ["h"]), ("standard", [])])
async def test_analyzer_option(es_url: str, tmp_path: Path, analyzer: str, expected: list[str]) -> None:
    passages = [
        Passage(id="h", title="Horses", text="The horses were running across the field."),
        Passage(id="c", title="Cats", text="Cats sleep all day."),
    ]
    out = _build_small(es_url, tmp_path, passages, analyzer=analyzer)
    retriever = open_index(out)
    try:
        (stemmed,) = await retriever.search(["run horse"], 3)
        (exact,) = await retriever.search(["cats"], 3)
        assert [p.id for p in stemmed] == expected
        assert [p.id for p in exact] == ["c"]
    finally:
        await retriever.aclose()
        delete_elasticsearch_index(out)


async def test_existing_index_needs_overwrite(es_url: str, tmp_path: Path) -> None:
    passages = [Passage(id=str(i), title=f"T{i}", text=f"word{i}") for i in range(5)]
    connection = ElasticsearchConnection(hosts=(es_url,))
    settings = IndexSettings(index_name=ES.unique_index_name())
    assert await index_into_elasticsearch(passages, connection, settings) == 5
    retriever = ElasticsearchRetriever(connection, settings.index_name)
    try:
        with pytest.raises(ConfigError, match=r"already exists.*overwrite=true"):
            await index_into_elasticsearch(passages[:2], connection, settings)
        from hopgym.retrievers.elasticsearch.config import BulkSettings

        rebuilt = await index_into_elasticsearch(
            passages[:2], connection, settings, BulkSettings(overwrite=True)
        )
        assert rebuilt == 2
        assert await retriever.count() == 2
        assert await retriever.delete_index() is True
        assert await retriever.delete_index() is False
    finally:
        await retriever.aclose()


async def test_manifest_mismatch_is_a_data_error(es_url: str, tmp_path: Path, corpus: Path) -> None:
    out = _build_small(es_url, tmp_path, _passages(corpus)[:20])
    manifest = read_manifest(out)
    name = manifest.params["index_name"]
    try:
        async with httpx.AsyncClient() as http:
            doc = f"{es_url}/{name}/_doc/{manifest_first_id(corpus)}"
            response = await http.delete(doc, params={"refresh": "true"})
        assert response.status_code == 200
        retriever = open_index(out)
        with pytest.raises(DataError, match="holds 19 documents but the manifest says 20"):
            await retriever.search(["film"], 3)
        await retriever.aclose()
        data = json.loads((out / MANIFEST_NAME).read_text())
        data["params"]["analyzer"] = "standard"
        data["passage_count"] = 19
        write_manifest(out, data)
        retriever = open_index(out)
        with pytest.raises(DataError, match="analyzer is 'english' but the manifest says 'standard'"):
            await retriever.search(["film"], 3)
        await retriever.aclose()
    finally:
        delete_elasticsearch_index(out)


def manifest_first_id(corpus: Path) -> str:
    return next(iter_passages(corpus)).id


async def test_deleted_index_is_reported_with_the_fix(es_url: str, tmp_path: Path, corpus: Path) -> None:
    out = _build_small(es_url, tmp_path, _passages(corpus)[:5])
    assert delete_elasticsearch_index(out) is True
    assert delete_elasticsearch_index(out) is False
    retriever = open_index(out)
    with pytest.raises(DataError, match="does not exist on the server; build it with `hopgym index build"):
        await retriever.search(["anything"], 3)
    await retriever.aclose()


async def test_per_call_timeout(built: dict[str, Any], es_url: str, corpus: Path) -> None:
    queries = [p.title for p in _passages(corpus)[:60]]
    connection = ElasticsearchConnection(hosts=(es_url,), max_retries=0)
    slow = ElasticsearchRetriever(connection, built["index_name"], query=QuerySettings(timeout_s=0.001))
    try:
        with pytest.raises(RetrieverTimeout, match="timed out"):
            await slow.search(queries, 3)
    finally:
        await slow.aclose()


async def test_server_stopped_mid_run(tmp_path: Path, corpus: Path) -> None:
    if ES.noida_binary() is None:
        pytest.skip("needs noida-db to start and stop a server of its own")
    server = ES.NoidaServer(tmp_path / "own")
    try:
        connection = ElasticsearchConnection(hosts=(server.url,), max_retries=1)
        settings = IndexSettings(index_name="stopped")
        await index_into_elasticsearch(_passages(corpus)[:10], connection, settings)
        retriever = ElasticsearchRetriever(connection, "stopped")
        assert (await retriever.search([_passages(corpus)[0].title], 2))[0]
        server.stop()
        with pytest.raises(RetrieverUnavailable, match="cannot reach the server"):
            await retriever.search(["film"], 2)
        await retriever.aclose()
        await retriever.aclose()
    finally:
        server.stop()
