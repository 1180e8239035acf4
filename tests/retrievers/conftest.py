"""Shared fixtures for retriever tests, including the conformance suite's backend discovery.

Each file in ``tests/retrievers/backends/`` describes one backend for the conformance suite:
``NAME: str``, optional ``MARKS: list`` (e.g. ``[pytest.mark.slow]``), and
``open_retriever(passages, workdir)`` — an async context manager yielding a ready Retriever over exactly
those passages and cleaning up (servers stopped, files removed) on exit.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytest_asyncio

from hopgym.retrievers.base import Retriever
from hopgym.testing import conformance_passages as conformance_corpus
from hopgym.types import Passage

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


@pytest.fixture(scope="session")
def hotpot_corpus(shared_data: Any) -> Path:
    """The real HotpotQA corpus file (for tests whose point is real text; see tests/conftest.py)."""
    path: Path = shared_data("hotpotqa", "corpus.jsonl")
    return path


@pytest.fixture(scope="session")
def hotpot_questions(shared_data: Any) -> list[str]:
    """The 500 real HotpotQA dev questions."""
    with shared_data("hotpotqa", "dev_500.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line in fh]


# A few hand-written passages for the tests that search named topics (a film star, a voice actress, a
# government position) and need several hits for them; written for these tests, not taken from a dataset.
TOPIC_PASSAGES = [
    Passage(id=f"topic-{i}", title=title, text=text)
    for i, (title, text) in enumerate(
        [
            ("Shirley Temple", "Shirley Temple was an American actress, the best-known child star of film in the 1930s."),
            ("Shirley Temple Black", "As an adult Shirley Temple Black held the government position of ambassador "
             "and served as Chief of Protocol of the United States."),
            ("Kiss and Tell (film)", "Kiss and Tell is a 1945 comedy film in which Shirley Temple portrayed the "
             "teenager Corliss Archer."),
            ("Corliss Archer", "Corliss Archer is a fictional teenage girl of radio, film and television comedies."),
            ("Meet Corliss Archer", "Meet Corliss Archer was a radio comedy in which Janet Waldo voiced Corliss "
             "Archer."),
            ("Janet Waldo", "Janet Waldo was an American radio and voice actress who voiced many cartoon characters."),
            ("Janet Waldo filmography", "Janet Waldo played small film roles before working mostly in radio."),
            ("Lord High Treasurer", "The Lord High Treasurer was a senior government position in England, head of "
             "the Exchequer."),
            ("Chief of Protocol", "The Chief of Protocol is a government position that advises on diplomatic "
             "protocol."),
            ("Film director", "A film director controls the artistic and dramatic side of a film."),
            ("Film studio", "A film studio is a company that makes films and owns sound stages."),
            ("Child actor", "A child actor is a child who acts on stage, on radio or in film and television."),
            ("Silent film", "A silent film has no synchronised recorded sound or spoken dialogue."),
            ("Film festival", "A film festival is an organised presentation of films in one or more cinemas."),
            ("Screen test", "A screen test tells whether an actor suits a film role and how they look on film."),
        ]
    )
]  # fmt: skip


@pytest.fixture(scope="session")
def conformance_passages() -> list[Passage]:
    """Generated data, so the tests that need *a* corpus run without the shared datasets: HopWorld passages
    (one per title: the batching tests tell queries apart by title) followed by TOPIC_PASSAGES."""
    first_of_title: dict[str, Passage] = {}
    for p in conformance_corpus(None):
        first_of_title.setdefault(p.title, p)
    unique = list(first_of_title.values())
    return unique[: CONFORMANCE_CORPUS_SIZE - len(TOPIC_PASSAGES)] + TOPIC_PASSAGES


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
