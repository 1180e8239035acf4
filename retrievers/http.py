"""A retriever that calls a retrieval server over HTTP: a hopgym server, or a seed project's own.

APIs (the ``api`` argument):

- ``"hopgym"``: ``POST /retrieve`` with scores on a ``hopgym serve-retriever`` server (ids required);
- ``"search_r1"``: the same request to a Search-R1-style server (its BM25 server sends no ids: a stable id
  is derived from the contents);
- ``"flashrag"``: ``POST /batch_search`` with scores (ReSearch / FlashRAG serving).

Connection errors, HTTP 5xx and 429 are retried ``max_retries`` times with jittered exponential backoff
(``Retry-After`` is honoured), then :class:`RetrieverUnavailable` is raised (:class:`RetrieverTimeout` when
the last answer was 504). The defaults (8 retries, waits of 0.25 s doubling to 2 s, each between half and
all of that) keep retrying for at least 5.9 s and at most 11.75 s of backoff, so a search outlasts a
retriever restart of a few seconds instead of failing its episode; ``retry_span_s(config)`` in
:mod:`hopgym.http_retry` gives the span for other settings.

``timeout_s`` is a deadline for each whole HTTP request, body included (a server trickling bytes cannot
hold a request longer). A request that times out raises :class:`RetrieverTimeout` at once (a slow server
is not helped by more load). Other 4xx answers mean the request itself is wrong (k above the server's cap,
a bad token): :class:`ConfigError` with the server's message. An answer with a malformed, NaN or infinite
score is a :class:`RetrieverError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import httpx

from hopgym.errors import ConfigError, RetrieverError, RetrieverTimeout, RetrieverUnavailable
from hopgym.http_retry import ClientErrors, json_client, post_json
from hopgym.options import check_fields, split_options
from hopgym.retrievers.corpus import split_contents
from hopgym.retrievers.search_args import check_search_args
from hopgym.types import Passage

__all__ = ["HttpApi", "HttpRetriever", "HttpRetrieverConfig", "HttpStats"]

logger = logging.getLogger(__name__)

HttpApi = Literal["hopgym", "search_r1", "flashrag"]

# With backoff 0.25 s doubling to 2 s: at least 5.9 s, at most 11.75 s of waits before giving up.
DEFAULT_MAX_RETRIES = 8

_PATHS: dict[str, str] = {"hopgym": "/retrieve", "search_r1": "/retrieve", "flashrag": "/batch_search"}


@dataclass(frozen=True)
class HttpRetrieverConfig:
    """Client settings. ``timeout_s`` is the deadline of one whole HTTP request (body included);
    ``connect_timeout_s`` bounds its connection. The retry defaults ride out a server restart of up to
    ~6 s (see the module docstring)."""

    base_url: str
    api: HttpApi = "hopgym"
    timeout_s: float = 30.0
    connect_timeout_s: float = 5.0
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base_s: float = 0.25
    backoff_max_s: float = 2.0
    max_retry_after_s: float = 60.0
    token: str | None = None
    max_connections: int = 64
    max_keepalive_connections: int = 32
    max_queries_per_request: int = 512

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url={self.base_url!r} is invalid: give the server's URL, e.g. http://127.0.0.1:8000"
            )
        if self.api not in get_args(HttpApi):
            raise ConfigError(f"api={self.api!r} is unknown; choose one of {', '.join(get_args(HttpApi))}")
        check_fields(self, owner="", skip=("token",))  # a secret is taken as given, even "null"
        for name in ("timeout_s", "connect_timeout_s", "backoff_max_s", "max_retry_after_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} is invalid: use a number of seconds > 0")
        if self.backoff_base_s < 0:
            raise ConfigError(
                f"backoff_base_s={self.backoff_base_s!r} is invalid: use a number of seconds >= 0"
            )
        for name in ("max_connections", "max_keepalive_connections", "max_queries_per_request"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} is invalid: use an integer >= 1")
        if self.max_retries < 0:
            raise ConfigError(
                f"max_retries={self.max_retries!r} is invalid: use an integer >= 0 (0 disables retries)"
            )

    @property
    def endpoint(self) -> str:
        path = _PATHS[self.api]
        base = self.base_url.rstrip("/")
        return base if base.endswith(path) else base + path


@dataclass
class HttpStats:
    requests: int = 0
    attempts: int = 0
    retries: int = 0
    failures: int = 0


class HttpRetriever:
    """Search through a retrieval server; see the module docstring for the APIs and the error policy.

    Blank queries are answered ``[]`` locally (FlashRAG servers reject them); big batches are split into
    requests of ``max_queries_per_request`` sent concurrently. ``transport`` and ``sleep`` replace the
    network and the backoff clock (tests); ``rng`` makes the jitter reproducible.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api: HttpApi = "hopgym",
        timeout_s: float = 30.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        **options: Any,
    ) -> None:
        """``options`` are the other :class:`HttpRetrieverConfig` fields (backoff, pool limits, ...)."""
        split_options(options, HttpRetrieverConfig, what="HttpRetriever")
        self.config = HttpRetrieverConfig(
            base_url=base_url, api=api, timeout_s=timeout_s, max_retries=max_retries, token=token, **options
        )
        cfg = self.config
        self._client = json_client(
            bearer=cfg.token,
            timeout_s=cfg.timeout_s,
            connect_timeout_s=cfg.connect_timeout_s,
            max_connections=cfg.max_connections,
            max_keepalive_connections=cfg.max_keepalive_connections,
            transport=transport,
        )
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.stats = HttpStats()
        self._closed = False

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        queries = check_search_args(queries, k)
        if self._closed:
            raise RetrieverError("HttpRetriever is closed; create a new one to search again")
        results: list[list[Passage]] = [[] for _ in queries]
        wanted = [i for i, q in enumerate(queries) if q.strip()]
        step = self.config.max_queries_per_request
        chunks = [wanted[i : i + step] for i in range(0, len(wanted), step)]
        answers = await asyncio.gather(
            *(self._search_chunk([queries[i] for i in chunk], k) for chunk in chunks)
        )
        for chunk, answer in zip(chunks, answers, strict=True):
            for i, hits in zip(chunk, answer, strict=True):
                results[i] = hits
        return results

    async def _search_chunk(self, queries: list[str], k: int) -> list[list[Passage]]:
        api = self.config.api
        payload: dict[str, Any]
        if api == "flashrag":
            payload = {"query": queries, "top_n": k, "return_score": True}
        else:
            payload = {"queries": queries, "topk": k, "return_scores": True}
        body = await self._post(payload)
        parsed = (
            _parse_flashrag(body) if api == "flashrag" else _parse_retrieve(body, require_ids=api == "hopgym")
        )
        if len(parsed) != len(queries):
            raise RetrieverError(
                f"{self.config.endpoint} answered {len(parsed)} result lists for {len(queries)} queries"
            )
        # The server's own order is kept; the cut guards against servers that ignore the requested k.
        return [hits[:k] for hits in parsed]

    async def _post(self, payload: Mapping[str, Any]) -> Any:
        self.stats.requests += 1
        return await post_json(
            self._client,
            self.config.endpoint,
            payload,
            settings=self.config,
            errors=_ERRORS,
            sleep=self._sleep,
            rng=self._rng,
            logger=logger,
            counters=self.stats,
        )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()


def _summarize_error(body: Mapping[str, Any]) -> str:
    # hopgym servers answer {"error": ..., "detail": ...}: both halves say what to fix.
    return ": ".join(str(body[key]) for key in ("error", "detail") if body.get(key))


_ERRORS = ClientErrors(
    failed=RetrieverError,
    timeout=RetrieverTimeout,
    unavailable=RetrieverUnavailable,
    rejected=lambda message, _status: ConfigError(message),
    summarize=_summarize_error,
    timeout_advice="raise timeout_s or check that the server is not overloaded",
    unavailable_advice=(
        "check that the retriever server is running (hopgym serve-retriever --index DIR) and reachable"
    ),
    auth_hint="pass the server's bearer token as token=...",
    not_found_hint="wrong URL, or wrong api= for this server",
    gateway_timeout_advice="the backend is too slow for the server's time limit",
    label="retrieval request",
)


def _passage(document: Any, score: Any, *, require_id: bool) -> Passage:
    if not isinstance(document, Mapping) or not isinstance(document.get("contents"), str):
        raise RetrieverError(
            f"malformed document in the server's answer (no 'contents' string): {document!r:.200}"
        )
    contents: str = document["contents"]
    pid = document.get("id")
    if pid is None:
        if require_id:
            raise RetrieverError(
                "the server's documents carry no 'id'; for a Search-R1 server use api='search_r1'"
            )
        pid = "sha1:" + hashlib.sha1(contents.encode("utf-8")).hexdigest()[:16]
    if not isinstance(score, (int, float)) or isinstance(score, bool):
        raise RetrieverError(f"malformed score in the server's answer: {score!r:.100}")
    if not math.isfinite(score):
        # Python's json reads NaN/Infinity; such a score would poison every ranking and mean built on it.
        raise RetrieverError(
            f"the server's answer has a non-finite score ({score!r}) for document {pid!r:.100}: "
            "check the server's index and scoring"
        )
    title, text = split_contents(contents)
    return Passage(id=str(pid), title=title, text=text, score=float(score))


def _parse_retrieve(body: Any, *, require_ids: bool) -> list[list[Passage]]:
    result = body.get("result") if isinstance(body, Mapping) else None
    if not isinstance(result, list):
        raise RetrieverError(f"expected {{'result': [...]}} from /retrieve, got {body!r:.200}")
    parsed: list[list[Passage]] = []
    for hits in result:
        if not isinstance(hits, list):
            raise RetrieverError(f"expected a list of hits per query, got {hits!r:.200}")
        row = []
        for item in hits:
            if not isinstance(item, Mapping) or "document" not in item:
                raise RetrieverError(
                    f"expected {{'document': ..., 'score': ...}} hits (return_scores), got {item!r:.200}"
                )
            row.append(_passage(item["document"], item.get("score"), require_id=require_ids))
        parsed.append(row)
    return parsed


def _parse_flashrag(body: Any) -> list[list[Passage]]:
    if not (isinstance(body, list) and len(body) == 2 and all(isinstance(part, list) for part in body)):
        raise RetrieverError(f"expected [[docs...], [scores...]] from /batch_search, got {body!r:.200}")
    docs, scores = body
    if len(docs) != len(scores):
        raise RetrieverError("/batch_search answered different numbers of document and score lists")
    parsed: list[list[Passage]] = []
    for doc_row, score_row in zip(docs, scores, strict=True):
        if not isinstance(doc_row, list) or not isinstance(score_row, list) or len(doc_row) != len(score_row):
            raise RetrieverError(
                "/batch_search answered a document list and a score list of different lengths"
            )
        parsed.append([_passage(d, s, require_id=True) for d, s in zip(doc_row, score_row, strict=True)])
    return parsed
