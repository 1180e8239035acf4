"""A corpus with a repeated passage id is refused by every BM25 entry point (issue 10 C9), or deduplicated
on request for a bm25 build: search never returns one passage twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopgym.errors import DataError
from hopgym.retrievers.loading import load_retriever
from hopgym.retrievers.manifest import build_index, open_index

pytest.importorskip("bm25s")
pytest.importorskip("numba")

ROWS = [
    ("river", "The Nile is a long river in Africa."),
    ("desert", "The Sahara is a desert in Africa."),
    ("river", "The Nile is a long river in Africa."),  # the same passage listed twice
    ("mountain", "Everest is a mountain in Asia."),
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"id": pid, "contents": text}) + "\n" for pid, text in ROWS))
    return path


MESSAGE = r"corpus\.jsonl:3: id 'river' duplicates line 1"


def test_a_bm25_build_refuses_it_and_writes_nothing(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=MESSAGE):
        build_index("bm25", corpus, tmp_path / "index")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl"]


@pytest.mark.parametrize("spec", ["simple-bm25", "bm25"])
def test_the_in_memory_retrievers_refuse_it(corpus: Path, spec: str) -> None:
    with pytest.raises(DataError, match=MESSAGE):
        load_retriever(f"{spec}:{corpus}")


async def test_dedupe_builds_with_the_first_passage_of_each_id(corpus: Path, tmp_path: Path) -> None:
    manifest = build_index("bm25", corpus, tmp_path / "index", dedupe=True)
    assert manifest.passage_count == 3
    retriever = open_index(tmp_path / "index")
    try:
        (hits,) = await retriever.search(["Nile river Africa"], 3)
    finally:
        await retriever.aclose()
    assert [p.id for p in hits] == ["river", "desert"]
