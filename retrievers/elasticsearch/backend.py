"""The Elasticsearch backend: BM25 served by an Elasticsearch cluster through the official async client.

Build with ``hopgym index build --backend elasticsearch --corpus FILE --out DIR --option url=URL --option
index_name=NAME`` (more options: analyzer, k1, b, fields, chunk_size, overwrite, ...; see
:mod:`hopgym.retrievers.elasticsearch.config`). The index directory holds only the manifest (url, index name,
analyzer, BM25 parameters); the documents live in the server. :func:`~hopgym.retrievers.manifest.open_index`
returns an :class:`ElasticsearchRetriever`, which sends each batch of queries as one ``_msearch`` request.

Client and server versions: ``elasticsearch>=8,<10`` is supported, but the client's major version must match
the server's (a 9.x client sends ``compatible-with=9`` headers, which Elasticsearch 8 rejects; that case is
reported as a :class:`~hopgym.errors.ConfigError` saying which client to install).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hopgym.errors import ConfigError, DataError, HopgymError, RetrieverError, RetrieverTimeout
from hopgym.retrievers.corpus import corpus_fingerprint, iter_passages
from hopgym.retrievers.elasticsearch.config import (
    MAX_RESULT_WINDOW,
    BulkSettings,
    ElasticsearchConnection,
    IndexSettings,
    QuerySettings,
    split_options,
)
from hopgym.retrievers.elasticsearch.errors import api_failure, client_failure
from hopgym.retrievers.elasticsearch.indexing import create_index, delete_index, index_passages, make_client
from hopgym.retrievers.manifest import IndexManifest, ProgressFn, new_manifest, read_manifest
from hopgym.retrievers.search_args import check_search_args
from hopgym.types import Passage

if TYPE_CHECKING:
    from elasticsearch import AsyncElasticsearch

__all__ = [
    "BACKEND",
    "ElasticsearchBackend",
    "ElasticsearchRetriever",
    "IndexExpectation",
    "build_query",
    "delete_elasticsearch_index",
    "index_into_elasticsearch",
    "parse_hits",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


def build_query(query: str, k: int, settings: QuerySettings) -> dict[str, Any]:
    """The ``_search`` body for one query: ``match`` on a single unboosted field, else ``multi_match``."""
    fields = settings.parsed_fields()
    if len(fields) == 1 and fields[0][1] == 1.0:
        clause: dict[str, Any] = {"match": {fields[0][0]: {"query": query}}}
    else:
        clause = {
            "multi_match": {
                "query": query,
                "fields": list(settings.fields),
                "type": settings.multi_match_type,
            }
        }
    return {
        "query": clause,
        "size": min(k, MAX_RESULT_WINDOW),
        "_source": ["title", "text"],
        "track_total_hits": False,
    }


def parse_hits(response: Mapping[str, Any]) -> list[Passage]:
    """Passages from one search response, in the server's order (best first)."""
    passages = []
    for hit in response.get("hits", {}).get("hits", []):
        source = hit.get("_source") or {}
        score = hit.get("_score")
        passages.append(
            Passage(
                id=str(hit["_id"]),
                title=str(source.get("title") or ""),
                text=str(source.get("text") or ""),
                score=float(score) if score is not None else 0.0,
            )
        )
    return passages


@dataclass(frozen=True)
class IndexExpectation:
    """What the index must look like (from its manifest); checked once, before the first search."""

    passage_count: int | None = None
    analyzer: str | None = None


class ElasticsearchRetriever:
    """BM25 search against one Elasticsearch index.

    Network I/O is async (the event loop is never blocked). ``client`` may be a ready ``AsyncElasticsearch``
    (then the caller closes it); otherwise one is created on first use from ``connection`` and closed by
    :meth:`aclose`.
    """

    def __init__(
        self,
        connection: ElasticsearchConnection,
        index_name: str,
        *,
        query: QuerySettings | None = None,
        expect: IndexExpectation | None = None,
        client: AsyncElasticsearch | None = None,
    ) -> None:
        if not isinstance(index_name, str) or not index_name:
            raise ConfigError("index_name must be a non-empty string")
        self.connection = connection
        self.index_name = index_name
        self.query = query or QuerySettings()
        self._expect = expect
        self._client = client
        self._owns_client = client is None
        self._checked = expect is None
        self._check_lock: asyncio.Lock | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"ElasticsearchRetriever({self.connection.url}, index={self.index_name!r})"

    def _get_client(self) -> AsyncElasticsearch:
        if self._closed:
            raise RetrieverError(f"{self!r} is closed; open the index again")
        if self._client is None:
            self._client = make_client(self.connection)
        return self._client

    async def _call(self, action: str, coro: Coroutine[Any, Any, _T]) -> _T:
        try:
            return await coro
        except HopgymError:
            raise
        except Exception as exc:
            raise client_failure(exc, action=action, url=self.connection.url, index=self.index_name) from exc

    async def _check_index(self) -> None:
        if self._checked:
            return
        if self._check_lock is None:
            self._check_lock = asyncio.Lock()
        async with self._check_lock:
            if self._checked or self._expect is None:
                return
            await self.verify(self._expect)
            self._checked = True

    async def verify(self, expect: IndexExpectation) -> None:
        """Check that the index exists and matches ``expect``; a mismatch is a :class:`DataError`."""
        client = self._get_client()
        mapping = await self._call("reading the mapping", client.indices.get_mapping(index=self.index_name))
        problems = []
        if expect.analyzer is not None:
            body: dict[str, Any] = dict(mapping.body)
            index_mapping: dict[str, Any] = next(iter(body.values()), {})
            properties: dict[str, Any] = index_mapping.get("mappings", {}).get("properties", {})
            analyzer = properties.get("contents", {}).get("analyzer", "standard")
            if "contents" not in properties:
                problems.append("it has no 'contents' field (it was not built by hopgym)")
            elif analyzer != expect.analyzer:
                problems.append(f"its analyzer is {analyzer!r} but the manifest says {expect.analyzer!r}")
        if expect.passage_count is not None:
            count = await self.count()
            if count != expect.passage_count:
                problems.append(f"it holds {count} documents but the manifest says {expect.passage_count}")
        if problems:
            raise DataError(
                f"index {self.index_name!r} does not match its manifest: {'; '.join(problems)}; rebuild it "
                "with `hopgym index build --backend elasticsearch --option overwrite=true`",
                path=self.connection.url,
            )

    async def count(self) -> int:
        """How many documents the index holds."""
        response = await self._call("counting documents", self._get_client().count(index=self.index_name))
        return int(response["count"])

    async def _msearch(self, queries: list[str], k: int, timeout: float | None) -> list[list[Passage]]:
        searches: list[Mapping[str, Any]] = []
        for q in queries:
            searches += [{}, build_query(q, k, self.query)]
        client = self._get_client()
        if timeout is not None:
            client = client.options(request_timeout=timeout)
        response = await self._call(
            f"searching {len(queries)} queries", client.msearch(index=self.index_name, searches=searches)
        )
        results = []
        for item in response["responses"]:
            if "error" in item:
                raise api_failure(
                    int(item.get("status", 500)),
                    item,
                    action="searching",
                    url=self.connection.url,
                    index=self.index_name,
                )
            results.append(parse_hits(item))
        return results

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        queries = check_search_args(queries, k)
        if self._closed:
            raise RetrieverError(f"{self!r} is closed; open the index again")
        results: list[list[Passage]] = [[] for _ in queries]
        active = [i for i, q in enumerate(queries) if q.strip()]
        if not active:
            return results
        started = time.monotonic()
        await self._check_index()
        timeout = self.query.timeout_s
        if timeout is not None:
            timeout -= time.monotonic() - started
            if timeout <= 0:
                raise RetrieverTimeout(
                    f"{self!r}: checking the index used up timeout_s={self.query.timeout_s:g} s; raise it"
                )
        size = self.query.max_batch
        groups = [active[i : i + size] for i in range(0, len(active), size)]
        answers = await asyncio.gather(*(self._msearch([queries[i] for i in g], k, timeout) for g in groups))
        for group, hits in zip(groups, answers, strict=True):
            for i, passages in zip(group, hits, strict=True):
                results[i] = passages
        return results

    async def delete_index(self) -> bool:
        """Delete this retriever's index from the server (False if it was already gone)."""
        return await delete_index(self._get_client(), self.connection, self.index_name)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.close()


async def index_into_elasticsearch(
    passages: Iterable[Passage],
    connection: ElasticsearchConnection,
    settings: IndexSettings,
    bulk: BulkSettings | None = None,
    *,
    progress: ProgressFn | None = None,
) -> int:
    """Create ``settings.index_name`` and bulk-load ``passages`` into it; returns the document count."""
    bulk = bulk or BulkSettings()
    client = make_client(connection)
    try:
        await create_index(client, connection, settings, overwrite=bulk.overwrite)
        return await index_passages(
            client, connection, settings.index_name, passages, bulk, progress=progress
        )
    finally:
        await client.close()


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine from synchronous code, also when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hopgym-es") as pool:
        return pool.submit(asyncio.run, coro).result()


def _manifest_settings(
    manifest: IndexManifest, where: Path
) -> tuple[dict[str, Any], IndexSettings, dict[str, Any]]:
    """(connection params, index settings, query params) recorded in an elasticsearch manifest."""
    params = dict(manifest.params)
    missing = [key for key in ("hosts", "index_name", "analyzer") if key not in params]
    if missing:
        raise DataError(
            f"the elasticsearch manifest lacks {', '.join(missing)}; rebuild the index", path=str(where)
        )
    try:
        settings = IndexSettings(
            index_name=params["index_name"],
            analyzer=params["analyzer"],
            k1=params.get("k1", 0.9),
            b=params.get("b", 0.4),
            number_of_shards=params.get("number_of_shards", 1),
            number_of_replicas=params.get("number_of_replicas", 0),
        )
    except ConfigError as exc:
        raise DataError(
            f"the elasticsearch manifest is invalid ({exc}); rebuild the index", path=str(where)
        ) from exc
    connection: dict[str, Any] = {k: params[k] for k in ("hosts", "ca_certs", "verify_certs") if k in params}
    query: dict[str, Any] = {k: params[k] for k in ("fields", "multi_match_type") if k in params}
    return connection, settings, query


class ElasticsearchBackend:
    """The registry entry for ``--backend elasticsearch``."""

    name = "elasticsearch"

    def build(
        self, corpus: Path, out: Path, options: Mapping[str, Any], progress: ProgressFn | None
    ) -> IndexManifest:
        conn_kw, index_kw, query_kw, bulk_kw = split_options(options, context="build", environ=os.environ)
        connection = ElasticsearchConnection(**conn_kw)
        settings = IndexSettings(**index_kw)
        query = QuerySettings(**query_kw)
        bulk = BulkSettings(**bulk_kw)
        if not corpus.is_file():
            raise DataError("corpus file not found (check the path)", path=str(corpus))
        started = time.perf_counter()
        fingerprint = corpus_fingerprint(corpus)
        count = _run(
            index_into_elasticsearch(
                iter_passages(corpus, format=bulk.format), connection, settings, bulk, progress=progress
            )
        )
        if count == 0:
            raise DataError("corpus has no passages; nothing to index", path=str(corpus))
        params = {
            **connection.manifest_params(),
            "index_name": settings.index_name,
            "analyzer": settings.analyzer,
            "k1": settings.k1,
            "b": settings.b,
            "number_of_shards": settings.number_of_shards,
            "number_of_replicas": settings.number_of_replicas,
            "fields": list(query.fields),
            "multi_match_type": query.multi_match_type,
        }
        manifest = new_manifest(
            self.name,
            corpus=corpus,
            corpus_sha256=fingerprint,
            passage_count=count,
            params=params,
            encoder={"kind": "lexical", "analyzer": settings.analyzer},
            started=started,
        )
        logger.info(
            "elasticsearch: indexed %d passages into %r at %s in %.1f s",
            count,
            settings.index_name,
            connection.url,
            manifest.build_seconds,
        )
        return manifest

    def open(
        self, directory: Path, manifest: IndexManifest, options: Mapping[str, Any]
    ) -> ElasticsearchRetriever:
        if manifest.backend != self.name:
            raise ConfigError(f"{directory} is a {manifest.backend!r} index, not an elasticsearch index")
        recorded_conn, settings, recorded_query = _manifest_settings(manifest, directory)
        conn_kw, _, query_kw, _ = split_options(options, context="open", environ=os.environ)
        connection = ElasticsearchConnection(**{**recorded_conn, **conn_kw})
        query = QuerySettings(**{**recorded_query, **query_kw})
        expect = IndexExpectation(passage_count=manifest.passage_count, analyzer=settings.analyzer)
        return ElasticsearchRetriever(connection, settings.index_name, query=query, expect=expect)


def delete_elasticsearch_index(directory: str | Path, **options: Any) -> bool:
    """Delete the server-side index an index directory describes (options: url and credentials).

    Returns False when the index did not exist. The manifest is left in place.
    """
    manifest = read_manifest(directory)
    retriever = BACKEND.open(Path(directory), manifest, options)

    async def delete() -> bool:
        try:
            return await retriever.delete_index()
        finally:
            await retriever.aclose()

    return _run(delete())


BACKEND = ElasticsearchBackend()
