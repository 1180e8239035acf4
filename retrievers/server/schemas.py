"""Request parsing and response shapes of the retriever server, one per seed project's API (pure functions).

- ``POST /retrieve`` (Search-R1, verl's search tool; SkyRL-gym sends one ``query`` instead of ``queries``):
  ``{"queries": [...], "topk": 3, "return_scores": false}``; topk defaults to 3, return_scores to false.
  Answer ``{"result": [[hit, ...], ...]}``, a hit being ``{"document": doc, "score": s}`` with scores and
  ``doc`` without; a doc is ``{"id", "contents"}`` with contents ``"Title"\\ntext``.
- ``POST /search`` / ``POST /batch_search`` (ReSearch's FlashRAG serving): ``{"query": ..., "top_n": 10,
  "return_score": false}``; answer ``[doc, ...]`` / ``[[doc, ...], ...]``, or with scores the pair
  ``[docs, scores]``. A blank ``/search`` query is rejected with 400, as FlashRAG does.
- ``POST /queries`` (R1-Searcher): ``{"queries": [...], "k": 3}``; answer ``{"queries": [...], "answers":
  [[line, ...], ...]}`` where a line is a corpus row as R1-Searcher's server returns it,
  ``"<row>\\t<title>   <text>"``; its client strips the leading row number with ``^\\d+\\s+``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hopgym.types import Passage

__all__ = [
    "DEFAULT_R1_K",
    "DEFAULT_RETRIEVE_TOPK",
    "DEFAULT_TOP_N",
    "Limits",
    "RequestError",
    "SearchRequest",
    "batch_search_response",
    "document",
    "parse_batch_search",
    "parse_queries",
    "parse_retrieve",
    "parse_search",
    "queries_response",
    "r1_line",
    "retrieve_response",
    "search_response",
]

#: Search-R1's retrieval_server ``--topk`` default (used when a request has no topk).
DEFAULT_RETRIEVE_TOPK = 3
#: FlashRAG serving's ``top_n`` default.
DEFAULT_TOP_N = 10
#: R1-Searcher's ``k`` default.
DEFAULT_R1_K = 3


class RequestError(Exception):
    """A request the server refuses: HTTP ``status`` with a JSON body ``{"error", "detail"}``."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail

    def body(self) -> dict[str, str]:
        return {"error": self.error, "detail": self.detail}


@dataclass(frozen=True)
class Limits:
    """What one request may ask: ``max_results`` bounds queries x k, the passages a response may hold."""

    max_k: int
    max_queries: int
    max_results: int = 20_000


@dataclass(frozen=True)
class SearchRequest:
    queries: tuple[str, ...]
    k: int
    scores: bool


def _invalid(detail: str) -> RequestError:
    return RequestError(422, "invalid request", detail)


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise _invalid(f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def _query_list(value: Any, field: str, limits: Limits) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _invalid(f"'{field}' must be a list of strings, got {type(value).__name__}")
    if not value:
        raise _invalid(f"'{field}' is empty: send at least one query")
    if len(value) > limits.max_queries:
        raise RequestError(
            413,
            "too many queries",
            f"{len(value)} queries in one request; this server takes at most {limits.max_queries}",
        )
    for i, q in enumerate(value):
        if not isinstance(q, str):
            raise _invalid(f"'{field}[{i}]' must be a string, got {type(q).__name__}")
    return tuple(value)


def _k(body: Mapping[str, Any], field: str, default: int, limits: Limits) -> int:
    value = body.get(field)
    if value is None:
        # A client that did not ask for a k should not be refused for the server's own default.
        return min(default, limits.max_k)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"'{field}' must be an integer, got {type(value).__name__}")
    if not 1 <= value <= limits.max_k:
        raise _invalid(f"'{field}'={value} is out of range: use 1..{limits.max_k}")
    return value


def _bounded(queries: tuple[str, ...], k: int, field: str, limits: Limits, scores: bool) -> SearchRequest:
    # queries x k, not each alone: 300 queries x k=1000 is a small body but a 100 MB answer.
    if len(queries) * k > limits.max_results:
        raise RequestError(
            413,
            "too many results",
            f"{len(queries)} queries x {field}={k} = {len(queries) * k} passages; this server returns at "
            f"most {limits.max_results} per request (max_results): send fewer queries or a smaller {field}",
        )
    return SearchRequest(queries, k, scores)


def _flag(body: Mapping[str, Any], field: str) -> bool:
    value = body.get(field, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _invalid(f"'{field}' must be true or false, got {type(value).__name__}")
    return value


def parse_retrieve(body: Any, limits: Limits) -> SearchRequest:
    """``/retrieve``: ``queries`` (a list) or ``query`` (one string), ``topk``, ``return_scores``."""
    data = _object(body)
    if "queries" in data and "query" in data:
        raise _invalid("send either 'queries' (a list) or 'query' (one string), not both")
    if "queries" in data:
        queries = _query_list(data["queries"], "queries", limits)
    elif "query" in data:
        if not isinstance(data["query"], str):
            raise _invalid(f"'query' must be a string, got {type(data['query']).__name__}")
        queries = (data["query"],)
    else:
        raise _invalid("missing 'queries' (a list of strings) or 'query' (a string)")
    k = _k(data, "topk", DEFAULT_RETRIEVE_TOPK, limits)
    return _bounded(queries, k, "topk", limits, _flag(data, "return_scores"))


def parse_search(body: Any, limits: Limits) -> SearchRequest:
    """FlashRAG ``/search``: one ``query`` string, ``top_n``, ``return_score``."""
    data = _object(body)
    query = data.get("query")
    if not isinstance(query, str):
        raise _invalid(f"'query' must be a string, got {type(query).__name__}")
    if not query.strip():
        raise RequestError(400, "empty query", "Query content cannot be empty")
    k = _k(data, "top_n", DEFAULT_TOP_N, limits)
    return _bounded((query,), k, "top_n", limits, _flag(data, "return_score"))


def parse_batch_search(body: Any, limits: Limits) -> SearchRequest:
    """FlashRAG ``/batch_search``: a ``query`` list, ``top_n``, ``return_score``."""
    data = _object(body)
    if "query" not in data:
        raise _invalid("missing 'query' (a list of strings)")
    queries = _query_list(data["query"], "query", limits)
    k = _k(data, "top_n", DEFAULT_TOP_N, limits)
    return _bounded(queries, k, "top_n", limits, _flag(data, "return_score"))


def parse_queries(body: Any, limits: Limits) -> SearchRequest:
    """R1-Searcher ``/queries``: a ``queries`` list and ``k``."""
    data = _object(body)
    if "queries" not in data:
        raise _invalid("missing 'queries' (a list of strings)")
    queries = _query_list(data["queries"], "queries", limits)
    return _bounded(queries, _k(data, "k", DEFAULT_R1_K, limits), "k", limits, False)


def document(passage: Passage) -> dict[str, str]:
    return {"id": passage.id, "contents": passage.contents}


def retrieve_response(request: SearchRequest, results: Sequence[Sequence[Passage]]) -> dict[str, Any]:
    if request.scores:
        return {"result": [[{"document": document(p), "score": p.score} for p in hits] for hits in results]}
    return {"result": [[document(p) for p in hits] for hits in results]}


def search_response(request: SearchRequest, results: Sequence[Sequence[Passage]]) -> Any:
    (hits,) = results
    docs = [document(p) for p in hits]
    return [docs, [p.score for p in hits]] if request.scores else docs


def batch_search_response(request: SearchRequest, results: Sequence[Sequence[Passage]]) -> Any:
    docs = [[document(p) for p in hits] for hits in results]
    return [docs, [[p.score for p in hits] for hits in results]] if request.scores else docs


def r1_line(passage: Passage, rank: int) -> str:
    """One R1-Searcher answer line.

    The row column is the passage id when it is a number (wiki-18 and KILT ids are row numbers), else the
    rank; either way R1-Searcher's client strips it, and a title that starts with a number survives.
    """
    row = passage.id if passage.id.isdigit() else str(rank)
    body = f"{passage.title}   {passage.text}" if passage.title else passage.text
    return f"{row}\t{body}"


def queries_response(request: SearchRequest, results: Sequence[Sequence[Passage]]) -> dict[str, Any]:
    return {
        "queries": list(request.queries),
        "answers": [[r1_line(p, rank) for rank, p in enumerate(hits)] for hits in results],
    }
