"""Elasticsearch backend settings, option routing, query bodies and hit parsing (no server needed)."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("elasticsearch")

from hopgym.errors import ConfigError, DataError, DependencyNotInstalledError, RetrieverError
from hopgym.retrievers.elasticsearch.backend import BACKEND, ElasticsearchRetriever, build_query, parse_hits
from hopgym.retrievers.elasticsearch.config import (
    ENV_API_KEY,
    ENV_PASSWORD,
    ENV_USERNAME,
    BulkSettings,
    ElasticsearchConnection,
    IndexSettings,
    QuerySettings,
    split_options,
)
from hopgym.retrievers.elasticsearch.indexing import (
    index_body,
    make_client,
    passage_action,
    resolve_node_class,
)
from hopgym.retrievers.manifest import IndexManifest
from hopgym.types import Passage


def test_connection_defaults_and_coercion() -> None:
    conn = ElasticsearchConnection(
        hosts="http://a:9200/, https://b:9243", request_timeout="12.5", max_retries="2", verify_certs="false"
    )
    assert conn.hosts == ("http://a:9200", "https://b:9243")
    assert (conn.request_timeout, conn.max_retries, conn.verify_certs) == (12.5, 2, False)
    assert conn.url == "http://a:9200, https://b:9243"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hosts": "localhost:9200"}, "must start with http:// or https://"),
        ({"hosts": []}, "url must be one URL"),
        ({"api_key": "k", "basic_auth": ("u", "p")}, "not both"),
        ({"basic_auth": "no-colon"}, "user:password"),
        ({"basic_auth": ":pw"}, "empty user name"),
        ({"request_timeout": 0}, "request_timeout must be > 0"),
        ({"request_timeout": "soon"}, "request_timeout must be a finite number"),
        ({"max_retries": -1}, "max_retries must be >= 0"),
        ({"max_retries": 1.5}, "max_retries must be an integer"),
        ({"verify_certs": "maybe"}, "verify_certs must be true or false"),
    ],
)
def test_connection_rejects(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ElasticsearchConnection(**kwargs)  # type: ignore[arg-type]


def test_connection_hides_and_never_records_secrets() -> None:
    conn = ElasticsearchConnection(api_key="s3cret-key")
    assert "s3cret" not in repr(conn)
    assert "s3cret" not in repr(conn.manifest_params())
    basic = ElasticsearchConnection(basic_auth="elastic:pa:ss")
    assert basic.basic_auth == ("elastic", "pa:ss")
    assert "pa:ss" not in repr(basic)


@pytest.mark.parametrize("name", ["Wiki", "a/b", "_hidden", "-x", "with space", "a*", ".", "x" * 256, ""])
def test_index_name_rules(name: str) -> None:
    with pytest.raises(ConfigError, match=r"index_name"):
        IndexSettings(index_name=name)


def test_index_settings_validation() -> None:
    settings = IndexSettings(index_name="wiki-18.v2", k1="1.2", b=1, number_of_shards="2")  # type: ignore[arg-type]
    assert (settings.k1, settings.b, settings.number_of_shards) == (1.2, 1.0, 2)
    with pytest.raises(ConfigError, match=r"analyzer must be one of english, standard"):
        IndexSettings(index_name="x", analyzer="french")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"k1 must be >= 0"):
        IndexSettings(index_name="x", k1=-0.1)
    with pytest.raises(ConfigError, match=r"b must be in \[0, 1\]"):
        IndexSettings(index_name="x", b=1.5)
    with pytest.raises(ConfigError, match=r"number_of_shards must be >= 1"):
        IndexSettings(index_name="x", number_of_shards=0)


def test_query_settings_fields() -> None:
    assert QuerySettings(fields="contents").fields == ("contents",)  # type: ignore[arg-type]
    settings = QuerySettings(fields=("title^2.5", "text"))
    assert settings.parsed_fields() == [("title", 2.5), ("text", 1.0)]
    for bad in [("body",), ("title^",), ("title^0",), ("title^-1",), ()]:
        with pytest.raises(ConfigError, match=r"field|fields"):
            QuerySettings(fields=bad)
    with pytest.raises(ConfigError, match=r"multi_match_type"):
        QuerySettings(multi_match_type="phrase")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"timeout_s must be > 0"):
        QuerySettings(timeout_s=0)
    with pytest.raises(ConfigError, match=r"max_batch must be >= 1"):
        QuerySettings(max_batch=0)


def test_bulk_settings() -> None:
    bulk = BulkSettings(chunk_size="100", overwrite="true", initial_backoff=0)  # type: ignore[arg-type]
    assert (bulk.chunk_size, bulk.overwrite, bulk.initial_backoff) == (100, True, 0.0)
    with pytest.raises(ConfigError, match=r"chunk_size must be >= 1"):
        BulkSettings(chunk_size=0)
    with pytest.raises(ConfigError, match=r"format must be"):
        BulkSettings(format="csv")  # type: ignore[arg-type]


def test_split_options_build_requires_url_and_index_name() -> None:
    with pytest.raises(ConfigError, match=r"needs option\(s\) url, index_name") as info:
        split_options({"analyzer": "standard"}, context="build", environ={})
    assert "--option url=" in str(info.value)
    with pytest.raises(ConfigError, match=r"needs option\(s\) index_name"):
        split_options({"url": "http://h:9200"}, context="build", environ={})


def test_split_options_routes_every_group() -> None:
    conn, index, query, bulk = split_options(
        {"url": "http://h:9200", "index_name": "w", "k1": 1.0, "fields": ["text"], "chunk_size": 50},
        context="build",
        environ={},
    )
    assert conn == {"hosts": "http://h:9200"}
    assert index == {"index_name": "w", "k1": 1.0}
    assert query == {"fields": ["text"]}
    assert bulk == {"chunk_size": 50}


def test_split_options_rejects_unknown_and_build_only_options() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown elasticsearch option\(s\) colour; valid options: .*index_name"
    ):
        split_options({"url": "http://h", "index_name": "w", "colour": 1}, context="build", environ={})
    with pytest.raises(ConfigError, match=r"k1, overwrite cannot change when opening"):
        split_options({"k1": 1.2, "overwrite": True}, context="open", environ={})
    with pytest.raises(ConfigError, match=r"url or hosts, not both"):
        split_options({"url": "http://a", "hosts": "http://b"}, context="open", environ={})


def test_split_options_reads_credentials_from_environment_only_when_not_given() -> None:
    env = {ENV_API_KEY: "from-env"}
    conn, *_ = split_options({}, context="open", environ=env)
    assert conn == {"api_key": "from-env"}
    conn, *_ = split_options({"basic_auth": "u:p"}, context="open", environ=env)
    assert conn == {"basic_auth": "u:p"}
    conn, *_ = split_options({}, context="open", environ={ENV_USERNAME: "elastic", ENV_PASSWORD: "pw"})
    assert conn == {"basic_auth": ("elastic", "pw")}


def test_build_query_single_field_is_a_match() -> None:
    body = build_query("who wrote Dune", 3, QuerySettings())
    assert body["query"] == {"match": {"contents": {"query": "who wrote Dune"}}}
    assert body["size"] == 3
    assert body["_source"] == ["title", "text"]


def test_build_query_boosted_fields_are_a_multi_match() -> None:
    body = build_query("q", 5, QuerySettings(fields=("title^2", "text"), multi_match_type="most_fields"))
    assert body["query"] == {
        "multi_match": {"query": "q", "fields": ["title^2", "text"], "type": "most_fields"}
    }
    # Elasticsearch refuses from + size above index.max_result_window.
    assert build_query("q", 50_000, QuerySettings())["size"] == 10_000


def test_parse_hits() -> None:
    response = {
        "hits": {
            "hits": [
                {"_id": "a", "_score": 2.5, "_source": {"title": "T", "text": "body"}},
                {"_id": 7, "_score": None, "_source": {"text": "no title"}},
                {"_id": "c", "_score": 1, "_source": None},
            ]
        }
    }
    assert parse_hits(response) == [
        Passage(id="a", title="T", text="body", score=2.5),
        Passage(id="7", title="", text="no title", score=0.0),
        Passage(id="c", title="", text="", score=1.0),
    ]
    assert parse_hits({}) == []


def test_index_body_and_actions() -> None:
    body = index_body(IndexSettings(index_name="x", analyzer="standard", k1=1.1, b=0.6))
    assert body["settings"]["similarity"] == {"default": {"type": "BM25", "k1": 1.1, "b": 0.6}}
    assert body["settings"]["refresh_interval"] == "-1"
    properties = body["mappings"]["properties"]
    assert set(properties) == {"title", "text", "contents"}
    assert {p["analyzer"] for p in properties.values()} == {"standard"}
    assert body["mappings"]["dynamic"] == "strict"
    action = passage_action(Passage(id="p1", title="Dune", text="A novel."), "x")
    assert action == {
        "_op_type": "index",
        "_index": "x",
        "_id": "p1",
        "_source": {"title": "Dune", "text": "A novel.", "contents": "Dune\nA novel."},
    }


def _manifest(**params: object) -> IndexManifest:
    base: dict[str, object] = {"hosts": ["http://127.0.0.1:1"], "index_name": "w", "analyzer": "english"}
    return IndexManifest(
        backend="elasticsearch", passage_count=3, corpus_sha256="0" * 64, params={**base, **params}
    )


def test_open_uses_manifest_and_lets_options_override_connection(tmp_path) -> None:
    manifest = _manifest(fields=["title^2", "text"], multi_match_type="cross_fields")
    retriever = BACKEND.open(tmp_path, manifest, {"url": "http://other:9200", "timeout_s": 2})
    assert retriever.connection.hosts == ("http://other:9200",)
    assert retriever.index_name == "w"
    assert retriever.query.fields == ("title^2", "text")
    assert (retriever.query.multi_match_type, retriever.query.timeout_s) == ("cross_fields", 2.0)


def test_open_rejects_foreign_or_broken_manifests(tmp_path) -> None:
    foreign = IndexManifest(backend="bm25", passage_count=1, corpus_sha256="0" * 64)
    with pytest.raises(ConfigError, match=r"is a 'bm25' index"):
        BACKEND.open(tmp_path, foreign, {})
    broken = IndexManifest(
        backend="elasticsearch", passage_count=1, corpus_sha256="0" * 64, params={"hosts": []}
    )
    with pytest.raises(DataError, match=r"lacks index_name, analyzer"):
        BACKEND.open(tmp_path, broken, {})
    with pytest.raises(DataError, match=r"manifest is invalid"):
        BACKEND.open(tmp_path, _manifest(index_name="Bad/Name"), {})
    with pytest.raises(ConfigError, match=r"analyzer cannot change"):
        BACKEND.open(tmp_path, _manifest(), {"analyzer": "standard"})


def test_build_checks_options_before_touching_anything(tmp_path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "1", "contents": "\\"T\\"\\nx"}\n')
    with pytest.raises(ConfigError, match=r"needs option\(s\) url"):
        BACKEND.build(corpus, tmp_path / "out", {"index_name": "w"}, None)
    with pytest.raises(DataError, match=r"corpus file not found"):
        BACKEND.build(
            tmp_path / "missing.jsonl", tmp_path / "out", {"url": "http://h", "index_name": "w"}, None
        )


def test_missing_client_library_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "elasticsearch", None)
    with pytest.raises(DependencyNotInstalledError, match=r"hopgym\[elasticsearch\]"):
        make_client(ElasticsearchConnection())


def test_node_class_choice() -> None:
    assert resolve_node_class("requests") == "requests"
    assert resolve_node_class("auto") in ("aiohttp", "httpxasync")
    with pytest.raises(ConfigError, match="cannot configure the Elasticsearch client"):
        make_client(ElasticsearchConnection(node_class="carrier-pigeon"))


async def test_search_arguments_are_checked_before_any_request() -> None:
    # Port 9 (discard) is closed here: any request would fail with RetrieverUnavailable.
    retriever = ElasticsearchRetriever(ElasticsearchConnection(hosts=("http://127.0.0.1:9",)), "w")
    assert await retriever.search([], 3) == []
    assert await retriever.search(["", "  \n"], 3) == [[], []]
    with pytest.raises(ConfigError, match="k must be >= 1"):
        await retriever.search(["q"], 0)
    with pytest.raises(ConfigError, match="not a single string"):
        await retriever.search("q", 3)  # type: ignore[arg-type]
    await retriever.aclose()
    await retriever.aclose()
    with pytest.raises(RetrieverError, match="is closed"):
        await retriever.search(["q"], 3)
