"""The conformance suite every Retriever backend must pass (backends are discovered in ./backends/).

The checks are hopgym.testing's (what ``check_retriever`` runs for plugin authors); here each runs as its
own test against each backend, on a generated HopWorld corpus (no shared data needed).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest

from hopgym.retrievers.base import Retriever
from hopgym.testing import retriever_check as checks
from hopgym.types import Passage

pytestmark = pytest.mark.asyncio(loop_scope="module")

ODD_QUERIES = list(checks.ODD_QUERIES)


async def test_result_types_and_shape(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    await checks.check_result_types_and_shape(conformance_retriever, conformance_passages)


async def test_finds_passage_by_its_own_text(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    await checks.check_finds_passage_by_its_own_text(conformance_retriever, conformance_passages)


async def test_passage_fields_round_trip(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    await checks.check_passage_fields_round_trip(conformance_retriever, conformance_passages)


@pytest.mark.parametrize("k", [1, 2, 5, 10])
async def test_k_is_respected(
    conformance_retriever: Retriever, conformance_passages: list[Passage], k: int
) -> None:
    await checks.check_k_is_respected(conformance_retriever, conformance_passages, ks=(k,))


async def test_k_larger_than_corpus(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    await checks.check_k_larger_than_corpus(conformance_retriever, conformance_passages)


@pytest.mark.parametrize("k", [0, -1])
async def test_k_below_one_is_a_config_error(
    conformance_retriever: Retriever, conformance_passages: list[Passage], k: int
) -> None:
    await checks.check_k_below_one_is_a_config_error(conformance_retriever, conformance_passages, ks=(k,))


async def test_empty_batch(conformance_retriever: Retriever, conformance_passages: list[Passage]) -> None:
    await checks.check_empty_batch(conformance_retriever, conformance_passages)


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
async def test_blank_query_gives_empty_list(
    conformance_retriever: Retriever, conformance_passages: list[Passage], query: str
) -> None:
    await checks.check_blank_query_gives_empty_list(
        conformance_retriever, conformance_passages, blanks=(query,)
    )


async def test_odd_queries_never_raise(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    await checks.check_odd_queries_never_raise(conformance_retriever, conformance_passages)


async def test_batch_order_preserved(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    await checks.check_batch_order_preserved(conformance_retriever, conformance_passages)


async def test_concurrent_calls_match_sequential(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    await checks.check_concurrent_calls_match_sequential(conformance_retriever, conformance_passages)


async def test_duplicate_queries_in_one_batch(
    conformance_retriever: Retriever, conformance_passages: list[Passage]
) -> None:
    await checks.check_duplicate_queries_in_one_batch(conformance_retriever, conformance_passages)


@pytest.mark.asyncio(loop_scope="function")
async def test_aclose_is_idempotent(backend_module, conformance_passages: list[Passage], tmp_path) -> None:
    async with backend_module.open_retriever(conformance_passages[:50], tmp_path) as retriever:
        await checks.check_aclose_is_idempotent(retriever, conformance_passages)


@pytest.mark.asyncio(loop_scope="function")
async def test_check_retriever_passes_with_the_backend_as_factory(backend_module, tmp_path) -> None:
    # The whole suite as plugin authors run it: a factory, the default generated corpus.
    dirs = itertools.count()

    def factory(passages: Sequence[Passage]) -> Any:
        workdir = tmp_path / f"run-{next(dirs)}"
        workdir.mkdir()
        return backend_module.open_retriever(passages, workdir)

    await checks.acheck_retriever(factory)
