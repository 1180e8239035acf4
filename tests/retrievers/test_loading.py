"""load_retriever: one argument picks the backend (index directory, URL, in-memory shortcuts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopgym.errors import ConfigError
from hopgym.retrievers.loading import aload_retriever, load_retriever
from hopgym.retrievers.manifest import build_index
from hopgym.types import Passage

pytest.importorskip("bm25s")

PASSAGES = [
    Passage("p1", "Eiffel Tower", "The Eiffel Tower is a wrought-iron tower in Paris."),
    Passage("p2", "Big Ben", "Big Ben is the nickname for the Great Bell in London."),
    Passage("p3", "Colosseum", "The Colosseum is an ancient amphitheatre in Rome."),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("loading") / "corpus.jsonl"
    path.write_text("".join(json.dumps({"id": p.id, "contents": p.contents}) + "\n" for p in PASSAGES))
    return path


@pytest.fixture(scope="module")
def index_dir(corpus: Path) -> Path:
    out = corpus.parent / "index"
    build_index("bm25", corpus, out)
    return out


async def _top_id(retriever, query: str) -> str:
    try:
        (hits,) = await retriever.search([query], 1)
    finally:
        await retriever.aclose()
    return hits[0].id


async def test_index_directory_as_path_or_string(index_dir: Path) -> None:
    from hopgym.retrievers.bm25.backend import BM25Retriever

    for spec in (index_dir, str(index_dir)):
        retriever = load_retriever(spec)
        assert isinstance(retriever, BM25Retriever)
        assert await _top_id(retriever, "tower in Paris") == "p1"


async def test_options_reach_the_backend(index_dir: Path) -> None:
    with pytest.raises(ConfigError, match="unknown bm25 option"):
        load_retriever(index_dir, nonsense=1)
    retriever = load_retriever(index_dir, warmup=False, n_threads=1)
    await retriever.aclose()


async def test_bm25_shortcut_indexes_in_memory(corpus: Path) -> None:
    from hopgym.retrievers.bm25.backend import BM25Retriever

    retriever = load_retriever(f"bm25:{corpus}", stemmer=None)
    assert isinstance(retriever, BM25Retriever) and retriever.num_passages == 3
    assert await _top_id(retriever, "London bell") == "p2"


async def test_simple_bm25_shortcut(corpus: Path) -> None:
    from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever

    retriever = load_retriever(f"simple-bm25:{corpus}")
    assert isinstance(retriever, InMemoryBM25Retriever)
    assert await _top_id(retriever, "ancient amphitheatre Rome") == "p3"


async def test_old_memory_spelling_still_works_with_a_deprecation_warning(corpus: Path) -> None:
    from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever

    with pytest.warns(DeprecationWarning, match="'memory:' is now spelled 'simple-bm25:'"):
        retriever = load_retriever(f"memory:{corpus}")
    assert isinstance(retriever, InMemoryBM25Retriever)
    assert await _top_id(retriever, "ancient amphitheatre Rome") == "p3"


async def test_url_gives_an_http_retriever() -> None:
    from hopgym.retrievers.http import HttpRetriever

    retriever = load_retriever("http://127.0.0.1:9/", timeout_s=1.0)
    try:
        assert isinstance(retriever, HttpRetriever)
        assert retriever.config.timeout_s == 1.0
    finally:
        await retriever.aclose()


async def test_async_form(corpus: Path) -> None:
    retriever = await aload_retriever(f"simple-bm25:{corpus}")
    assert await _top_id(retriever, "Eiffel") == "p1"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "retriever spec must be"),
        (42, "retriever spec must be"),
        ("simple-bm25:", "names no corpus file"),
        ("bm25:  ", "names no corpus file"),
        ("ftp://example.org/index", "unsupported URL scheme"),
        ("/definitely/not/here", "does not exist"),
    ],
)
def test_bad_specs_are_config_errors(spec, match) -> None:
    with pytest.raises(ConfigError, match=match):
        load_retriever(spec)


def test_file_and_plain_directory_are_explained(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bm25:"):
        load_retriever(corpus)
    with pytest.raises(ConfigError, match="not a hopgym index directory"):
        load_retriever(tmp_path)
