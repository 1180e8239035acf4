"""Pure parts of the retriever server: request parsing, R1-Searcher lines, and config validation."""

from __future__ import annotations

import re

import pytest

from hopgym.errors import ConfigError
from hopgym.retrievers.server.app import ServerConfig
from hopgym.retrievers.server.schemas import (
    Limits,
    RequestError,
    parse_batch_search,
    parse_queries,
    parse_retrieve,
    parse_search,
    r1_line,
)
from hopgym.types import Passage

LIMITS = Limits(max_k=10, max_queries=5)


def test_r1_line_keeps_numeric_ids_and_protects_numeric_titles() -> None:
    assert r1_line(Passage("12345", "Alabama", "A state."), 0) == "12345\tAlabama   A state."
    line = r1_line(Passage("hp-1", "1984 Summer Olympics", "Games in LA."), 2)
    assert line == "2\t1984 Summer Olympics   Games in LA."
    assert re.sub(r"^\d+\s+", "", line) == "1984 Summer Olympics   Games in LA."
    assert r1_line(Passage("9", "", "untitled text"), 0) == "9\tuntitled text"


def test_parse_retrieve_is_pure_and_typed() -> None:
    request = parse_retrieve({"queries": ["a", "b"], "topk": 4, "return_scores": True, "extra": 1}, LIMITS)
    assert (request.queries, request.k, request.scores) == (("a", "b"), 4, True)
    with pytest.raises(RequestError) as info:
        parse_retrieve({"queries": ["a"], "topk": 11}, LIMITS)
    assert info.value.status == 422 and info.value.body()["error"] == "invalid request"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_k": 0},
        {"max_queries": -1},
        {"max_body_bytes": 1.5},
        {"max_wait_ms": -1.0},
        {"timeout_s": 0.0},
        {"token": "  "},
    ],
)
def test_bad_server_config(kwargs) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        ServerConfig(**kwargs)


def test_defaults_match_the_seed_servers() -> None:
    retrieve = parse_retrieve({"queries": ["a"]}, LIMITS)
    assert (retrieve.k, retrieve.scores) == (3, False)  # Search-R1: --topk 3, return_scores False
    skyrl = parse_retrieve({"query": "a", "topk": 2, "return_scores": True}, LIMITS)
    assert (skyrl.queries, skyrl.k, skyrl.scores) == (("a",), 2, True)
    flashrag = parse_search({"query": "a"}, LIMITS)
    assert (flashrag.k, flashrag.scores) == (10, False)  # FlashRAG serving: top_n 10, return_score False
    batch = parse_batch_search({"query": ["a", "b"], "return_score": True}, LIMITS)
    assert (batch.queries, batch.k, batch.scores) == (("a", "b"), 10, True)
    r1 = parse_queries({"queries": ["a"]}, LIMITS)
    assert (r1.k, r1.scores) == (3, False)  # R1-Searcher: data.get("k", 3)


def test_too_many_queries_is_413() -> None:
    with pytest.raises(RequestError) as info:
        parse_queries({"queries": ["q"] * 6}, LIMITS)
    assert info.value.status == 413 and "at most 5" in info.value.detail


def test_implicit_k_is_clamped_to_the_server_cap() -> None:
    assert parse_search({"query": "a"}, Limits(max_k=4, max_queries=5)).k == 4
    with pytest.raises(RequestError):
        parse_search({"query": "a", "top_n": 5}, Limits(max_k=4, max_queries=5))
