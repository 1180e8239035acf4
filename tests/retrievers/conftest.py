"""Shared fixtures for retriever tests, including the conformance suite's backend discovery.

Each file in ``tests/retrievers/backends/`` describes one backend for the conformance suite:
``NAME: str``, optional ``MARKS: list`` (e.g. ``[pytest.mark.slow]``), and
``open_retriever(passages, workdir)`` — an async context manager yielding a ready Retriever over exactly
those passages and cleaning up (servers stopped, files removed) on exit.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import ModuleType

import pytest
import pytest_asyncio

from hopgym.retrievers.base import Retriever
from hopgym.retrievers.corpus import iter_passages
from hopgym.testing import conformance_passages as conformance_corpus
from hopgym.types import Passage

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
HOTPOT_CORPUS = SHARED_DATA / "hotpotqa" / "corpus.jsonl"
HOTPOT_DEV = SHARED_DATA / "hotpotqa" / "dev_500.jsonl"
CONFORMANCE_CORPUS_SIZE = 300


def _load_backend_modules() -> list[ModuleType]:
    modules = []
    for path in sorted((Path(__file__).parent / "backends").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"hopgym_test_backend_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


BACKEND_MODULES = _load_backend_modules()


def hotpot_passages(n: int | None = None) -> list[Passage]:
    if not HOTPOT_CORPUS.is_file():
        pytest.skip(f"shared HotpotQA corpus not found at {HOTPOT_CORPUS}")
    it = iter_passages(HOTPOT_CORPUS)
    return list(itertools.islice(it, n) if n is not None else it)


@pytest.fixture(scope="session")
def hotpot_corpus() -> Path:
    """The shared HotpotQA corpus file (the test is skipped without it)."""
    if not HOTPOT_CORPUS.is_file():
        pytest.skip(f"shared HotpotQA corpus not found at {HOTPOT_CORPUS}")
    return HOTPOT_CORPUS


@pytest.fixture(scope="session")
def hotpot_questions() -> list[str]:
    """The 500 HotpotQA dev questions (the test is skipped without them)."""
    if not HOTPOT_DEV.is_file():
        pytest.skip(f"shared HotpotQA questions not found at {HOTPOT_DEV}")
    with HOTPOT_DEV.open(encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line in fh]


@pytest.fixture(scope="session")
def conformance_passages() -> list[Passage]:
    """A generated HopWorld corpus: the conformance checks need *a* corpus, not a real one."""
    return conformance_corpus(CONFORMANCE_CORPUS_SIZE)


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=[pytest.param(m, id=m.NAME, marks=getattr(m, "MARKS", [])) for m in BACKEND_MODULES],
)
async def conformance_retriever(
    request: pytest.FixtureRequest,
    conformance_passages: Sequence[Passage],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Retriever]:
    module = request.param
    workdir = tmp_path_factory.mktemp(f"backend-{module.NAME}")
    async with module.open_retriever(conformance_passages, workdir) as retriever:
        yield retriever


@pytest.fixture(params=[pytest.param(m, id=m.NAME, marks=getattr(m, "MARKS", [])) for m in BACKEND_MODULES])
def backend_module(request: pytest.FixtureRequest) -> ModuleType:
    """One backend description at a time, for tests that need a fresh retriever of their own."""
    module: ModuleType = request.param
    return module
