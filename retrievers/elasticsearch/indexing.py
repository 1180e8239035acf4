"""Creating, filling and deleting the Elasticsearch index behind the ``elasticsearch`` backend.

Each passage becomes one document whose ``_id`` is the passage id, with ``title``, ``text`` and
``contents`` (title + "\\n" + text, the field Search-R1's Lucene index searches) analysed by the chosen
analyzer. ``contents`` is written explicitly rather than with ``copy_to`` so that servers speaking the
Elasticsearch API without ``copy_to`` (noida-db) index it too; it is left out of ``_source`` on servers that
honour ``excludes``, and searches fetch only title and text anyway.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from hopgym.errors import ConfigError, DataError, HopgymError, RetrieverUnavailable, require
from hopgym.retrievers.elasticsearch.config import BulkSettings, ElasticsearchConnection, IndexSettings
from hopgym.retrievers.elasticsearch.errors import client_failure, error_type_and_reason
from hopgym.retrievers.manifest import ProgressFn
from hopgym.types import Passage

if TYPE_CHECKING:
    from elasticsearch import AsyncElasticsearch

__all__ = [
    "create_index",
    "delete_index",
    "index_body",
    "index_passages",
    "make_client",
    "passage_action",
    "resolve_node_class",
]

logger = logging.getLogger(__name__)

_SHOWN_FAILURES = 5


def resolve_node_class(requested: str) -> str:
    """The elastic-transport node class to use: aiohttp if installed, else httpx (a hopgym dependency)."""
    if requested != "auto":
        return requested
    import importlib.util

    if importlib.util.find_spec("aiohttp") is not None:
        return "aiohttp"
    from elastic_transport._transport import NODE_CLASS_NAMES

    if "httpxasync" in NODE_CLASS_NAMES:
        return "httpxasync"
    # elastic-transport < 8.13 has no httpx node: only aiohttp can drive the async client.
    require("aiohttp", extra="elasticsearch", purpose="the async Elasticsearch client")
    return "aiohttp"


def make_client(connection: ElasticsearchConnection) -> AsyncElasticsearch:
    """An ``AsyncElasticsearch`` for ``connection`` (no I/O happens until the first request)."""
    module: Any = require("elasticsearch", extra="elasticsearch", purpose="the Elasticsearch retriever")
    kwargs: dict[str, Any] = {
        "hosts": list(connection.hosts),
        "request_timeout": connection.request_timeout,
        "max_retries": connection.max_retries,
        "retry_on_timeout": connection.retry_on_timeout,
        "verify_certs": connection.verify_certs,
        "node_class": resolve_node_class(connection.node_class),
    }
    if connection.api_key is not None:
        kwargs["api_key"] = connection.api_key
    if connection.basic_auth is not None:
        kwargs["basic_auth"] = connection.basic_auth
    if connection.ca_certs is not None:
        kwargs["ca_certs"] = connection.ca_certs
    try:
        client: AsyncElasticsearch = module.AsyncElasticsearch(**kwargs)
    except ValueError as exc:  # the client validates node_class, TLS files and URLs eagerly
        raise ConfigError(f"cannot configure the Elasticsearch client for {connection.url}: {exc}") from exc
    return client


def index_body(settings: IndexSettings, *, refresh_interval: str = "-1") -> dict[str, Any]:
    """Settings and mappings for ``indices.create``; refresh is off while bulk loading (turned on after)."""
    text_field = {"type": "text", "analyzer": settings.analyzer}
    return {
        "settings": {
            "number_of_shards": settings.number_of_shards,
            "number_of_replicas": settings.number_of_replicas,
            "refresh_interval": refresh_interval,
            # Redefining the "default" similarity applies k1/b to every text field.
            "similarity": {"default": {"type": "BM25", "k1": settings.k1, "b": settings.b}},
        },
        "mappings": {
            "dynamic": "strict",
            "_source": {"excludes": ["contents"]},
            "properties": {"title": text_field, "text": text_field, "contents": text_field},
        },
    }


def passage_action(passage: Passage, index_name: str) -> dict[str, Any]:
    """One bulk ``index`` action for ``passage``."""
    return {
        "_op_type": "index",
        "_index": index_name,
        "_id": passage.id,
        "_source": {
            "title": passage.title,
            "text": passage.text,
            "contents": f"{passage.title}\n{passage.text}",
        },
    }


async def create_index(
    client: AsyncElasticsearch,
    connection: ElasticsearchConnection,
    settings: IndexSettings,
    *,
    overwrite: bool,
) -> None:
    """Create the index (deleting an existing one only when ``overwrite``)."""
    name = settings.index_name
    try:
        exists = bool(await client.indices.exists(index=name))
        if exists and not overwrite:
            raise ConfigError(
                f"index {name!r} already exists on {connection.url}; pass overwrite=true to replace it or "
                "choose another index_name"
            )
        if exists:
            logger.info("elasticsearch: deleting the existing index %r before rebuilding it", name)
            await client.indices.delete(index=name)
        await client.indices.create(index=name, **index_body(settings))
    except HopgymError:
        raise
    except Exception as exc:
        raise client_failure(exc, action="creating the index", url=connection.url, index=name) from exc


async def _chunks(passages: Iterator[Passage], size: int) -> AsyncIterator[list[Passage]]:
    # Reading and parsing the corpus is blocking file work: do it in a worker thread, a chunk at a time.
    while chunk := await asyncio.to_thread(lambda: list(itertools.islice(passages, size))):
        yield chunk


async def index_passages(
    client: AsyncElasticsearch,
    connection: ElasticsearchConnection,
    index_name: str,
    passages: Iterable[Passage],
    bulk: BulkSettings,
    *,
    progress: ProgressFn | None = None,
) -> int:
    """Stream passages into an existing index with ``async_streaming_bulk``, then refresh it.

    Returns the number of documents the index holds afterwards. Passages the server rejects are a
    :class:`DataError` naming the first few ids and reasons; passages still refused with 429 after
    ``bulk.max_retries`` retries are a :class:`RetrieverUnavailable`.
    """
    helpers: Any = require("elasticsearch.helpers", extra="elasticsearch", purpose="bulk indexing")
    source = iter(passages)
    done = 0
    failures: list[str] = []
    n_failed = n_throttled = count = 0

    async def actions() -> AsyncIterator[dict[str, Any]]:
        async for chunk in _chunks(source, bulk.chunk_size):
            for passage in chunk:
                yield passage_action(passage, index_name)

    try:
        async for ok, item in helpers.async_streaming_bulk(
            client,
            actions(),
            chunk_size=bulk.chunk_size,
            max_chunk_bytes=bulk.max_chunk_bytes,
            max_retries=bulk.max_retries,
            initial_backoff=bulk.initial_backoff,
            max_backoff=bulk.max_backoff,
            raise_on_error=False,
        ):
            done += 1
            if progress is not None and done % bulk.chunk_size == 0:
                progress(done, None)
            if ok:
                continue
            n_failed += 1
            result: dict[str, Any] = next(iter(item.values()), {}) if isinstance(item, dict) else {}
            n_throttled += result.get("status") == 429
            if len(failures) < _SHOWN_FAILURES:
                error_type, reason = error_type_and_reason({"error": result.get("error")})
                failures.append(f"id {result.get('_id')!r}: {error_type} {reason}".strip())
        if n_failed == 0:
            await client.indices.put_settings(index=index_name, settings={"refresh_interval": None})
            await client.indices.refresh(index=index_name)
            count = int((await client.count(index=index_name))["count"])
    except HopgymError:
        raise
    except Exception as exc:
        raise client_failure(exc, action="bulk indexing", url=connection.url, index=index_name) from exc
    if n_throttled:
        raise RetrieverUnavailable(
            f"Elasticsearch at {connection.url} kept refusing {n_throttled} passages with 429 (too many "
            f"requests) after {bulk.max_retries} retries; raise max_retries/max_backoff, lower chunk_size, "
            "or index when the cluster is less busy"
        )
    if n_failed:
        raise DataError(
            f"the server rejected {n_failed} of {done} passages ({'; '.join(failures)}); fix those records "
            "and rebuild with overwrite=true",
            path=connection.url,
        )
    if progress is not None:
        progress(done, done)
    if count != done:
        logger.warning(
            "elasticsearch: sent %d passages but index %r holds %d documents (repeated passage ids overwrite "
            "each other)",
            done,
            index_name,
            count,
        )
    return count


async def delete_index(
    client: AsyncElasticsearch, connection: ElasticsearchConnection, index_name: str
) -> bool:
    """Delete the index; False when it did not exist."""
    try:
        if not await client.indices.exists(index=index_name):
            return False
        await client.indices.delete(index=index_name)
    except Exception as exc:
        raise client_failure(exc, action="deleting the index", url=connection.url, index=index_name) from exc
    return True
