"""``build_index``'s directory handling, backend-independent: build in ``OUT.building/``, swap in when
complete, resume a resumable backend, one build of a directory at a time.

A small file-writing backend stands in for the real ones (the bm25 and dense tests build real indexes).
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from hopgym.errors import ConfigError, DataError
from hopgym.retrievers.base import Retriever
from hopgym.retrievers.corpus import iter_passages
from hopgym.retrievers.manifest import (
    BACKENDS,
    MANIFEST_NAME,
    IndexManifest,
    ProgressFn,
    build_index,
    new_manifest,
    read_manifest,
)


class Stop(Exception):
    """An interruption (not bad input)."""


class ChunkBackend:
    """Writes one file per passage into ``chunks/``, skipping those already there (like dense's shards)."""

    name = "chunks-test"
    resume_files = ("chunks",)

    def __init__(self) -> None:
        self.written: list[str] = []
        self.stop_after: int | None = None

    def build(
        self, corpus: Path, out: Path, options: Mapping[str, Any], progress: ProgressFn | None
    ) -> IndexManifest:
        started = time.perf_counter()
        chunks = out / "chunks"
        chunks.mkdir(exist_ok=True)
        passages = list(iter_passages(corpus))
        if not passages:
            raise DataError("corpus has no passages", path=str(corpus))
        for passage in passages:
            path = chunks / f"{passage.id}.txt"
            if not path.exists():
                if self.stop_after is not None and len(self.written) >= self.stop_after:
                    raise Stop
                tmp = path.with_suffix(".tmp")
                tmp.write_text(passage.text)
                tmp.replace(path)
                self.written.append(passage.id)
        (out / "summary.txt").write_text(str(options.get("tag", "")))
        return new_manifest(
            self.name,
            corpus=corpus,
            corpus_sha256="0" * 64,
            passage_count=len(passages),
            params={},
            started=started,
        )

    def open(self, directory: Path, manifest: IndexManifest, options: Mapping[str, Any]) -> Retriever:
        raise NotImplementedError


@pytest.fixture
def backend() -> Iterator[ChunkBackend]:
    spec = ChunkBackend()
    BACKENDS.register(spec.name, spec, replace=True)
    yield spec
    BACKENDS.unregister(spec.name)


def _corpus(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"p{i}", "contents": f"text {i}"}) + "\n" for i in range(n)))
    return path


def test_an_interrupted_build_resumes_from_out_building(backend: ChunkBackend, tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus.jsonl", 5)
    out = tmp_path / "index"
    backend.stop_after = 2
    with pytest.raises(Stop):
        build_index(backend.name, corpus, out)
    assert not out.exists()
    assert sorted(p.name for p in (tmp_path / "index.building" / "chunks").iterdir()) == ["p0.txt", "p1.txt"]
    backend.stop_after = None
    manifest = build_index(backend.name, corpus, out)
    assert backend.written == ["p0", "p1", "p2", "p3", "p4"]  # the rerun wrote only what was missing
    assert manifest.passage_count == 5 and read_manifest(out) == manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "index"]
    assert sorted(p.name for p in out.iterdir()) == ["chunks", MANIFEST_NAME, "summary.txt"]


def test_bad_input_discards_even_a_resumable_build(backend: ChunkBackend, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="no passages"):
        build_index(backend.name, empty, tmp_path / "index")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.jsonl"]


def test_a_rebuild_starts_from_the_old_index_and_keeps_it_until_done(
    backend: ChunkBackend, tmp_path: Path
) -> None:
    corpus = _corpus(tmp_path / "corpus.jsonl", 3)
    out = tmp_path / "index"
    build_index(backend.name, corpus, out, tag="first")
    old_chunk = out / "chunks" / "p0.txt"
    backend.written.clear()
    corpus = _corpus(corpus, 5)
    backend.stop_after = 1
    with pytest.raises(Stop):
        build_index(backend.name, corpus, out, tag="second")
    assert (out / "summary.txt").read_text() == "first" and old_chunk.read_text() == "text 0"
    backend.stop_after = None
    build_index(backend.name, corpus, out, tag="second")
    assert backend.written == ["p3", "p4"]  # p0-p2 came from the old index
    assert (out / "summary.txt").read_text() == "second" and read_manifest(out).passage_count == 5
    with pytest.raises(ConfigError, match="already holds an index; pass --force"):
        build_index(backend.name, corpus, out, overwrite=False)


def test_a_stale_build_of_another_backend_is_cleared(backend: ChunkBackend, tmp_path: Path) -> None:
    building = tmp_path / "index.building"
    (building / "chunks").mkdir(parents=True)
    (building / "chunks" / "p0.txt").write_text("from another backend")
    (building / ".hopgym-build.json").write_text(json.dumps({"backend": "bm25"}))
    build_index(backend.name, _corpus(tmp_path / "corpus.jsonl", 2), tmp_path / "index")
    assert (tmp_path / "index" / "chunks" / "p0.txt").read_text() == "text 0"


def test_a_second_build_of_the_same_directory_is_refused(backend: ChunkBackend, tmp_path: Path) -> None:
    building = tmp_path / "index.building"
    building.mkdir()
    with (building / ".hopgym-build.json").open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(ConfigError, match="another `hopgym index build` is writing"):
            build_index(backend.name, _corpus(tmp_path / "corpus.jsonl", 2), tmp_path / "index")
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("where", ["itself", "parent"])
def test_an_out_holding_the_corpus_is_refused(backend: ChunkBackend, tmp_path: Path, where: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    corpus = _corpus(data / "corpus.jsonl", 2)
    out = data if where == "itself" else tmp_path
    with pytest.raises(ConfigError, match="contains the corpus"):
        build_index(backend.name, corpus, out)
    assert sorted(p.name for p in data.iterdir()) == ["corpus.jsonl"]


def test_an_out_that_is_a_symlink_replaces_the_directory_it_points_to(
    backend: ChunkBackend, tmp_path: Path
) -> None:
    corpus = _corpus(tmp_path / "corpus.jsonl", 2)
    real = tmp_path / "real"
    build_index(backend.name, corpus, real, tag="first")
    link = tmp_path / "current"
    link.symlink_to(real)
    build_index(backend.name, corpus, link, tag="second")
    assert link.is_symlink() and (link / "summary.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "current", "real"]
