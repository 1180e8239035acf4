"""The dense backend end to end with the real MiniLM encoder on a small corpus: build, manifest, open, search,
resumable shards, encoder/index mismatches and damaged index directories."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hopgym.errors import ConfigError, DataError, RetrieverError
from hopgym.retrievers.corpus import corpus_fingerprint
from hopgym.retrievers.dense.backend import DenseRetriever
from hopgym.retrievers.dense.encoders import EncoderConfig, TextEncoder
from hopgym.retrievers.dense.faiss_index import DenseIndexConfig
from hopgym.retrievers.manifest import MANIFEST_NAME, build_index, open_index, read_manifest, write_manifest
from hopgym.types import Passage

pytest.importorskip("faiss")
pytest.importorskip("transformers")

N = 40
SHARD = 16
# Short passages keep encoding fast on a 2-core machine; the retrieval quality test uses the full length.
FAST = {"max_length": 64, "shard_size": SHARD}


class Interrupted(Exception):
    pass


def _write_corpus(path: Path, passages: Sequence[Passage]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for p in passages:
            fh.write(json.dumps({"id": p.id, "title": p.title, "text": p.text}) + "\n")
    return path


@pytest.fixture(scope="module")
def passages(conformance_passages: list[Passage]) -> list[Passage]:
    return conformance_passages[:N]  # generated (tests/retrievers/conftest.py): any corpus will do


@pytest.fixture(scope="module")
def corpus(passages: list[Passage], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_corpus(tmp_path_factory.mktemp("dense-corpus") / "corpus.jsonl", passages)


@pytest.fixture(scope="module")
def built(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dense-index")
    build_index("dense", corpus, out, **FAST)
    return out


@pytest.fixture
def encode_counter(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the passages the encoder really encodes (a spy around the real method)."""
    counts: list[int] = []
    original = TextEncoder.encode_passages

    def counting(self: TextEncoder, texts: Sequence[str], **kwargs: Any) -> Any:
        counts.append(len(texts))
        return original(self, texts, **kwargs)

    monkeypatch.setattr(TextEncoder, "encode_passages", counting)
    return counts


def _damaged_copy(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "index"
    shutil.copytree(built, copy)
    return copy


# -- build and manifest -------------------------------------------------------------------------------------


def test_manifest_describes_encoder_index_and_corpus(built: Path, corpus: Path) -> None:
    manifest = read_manifest(built)
    assert manifest.backend == "dense"
    assert manifest.passage_count == N
    assert manifest.corpus_sha256 == corpus_fingerprint(corpus)
    assert manifest.encoder == {
        "model": "all-MiniLM-L6-v2",
        "family": "sentence-transformers",
        "pooling": "mean",
        "query_prefix": "",
        "passage_prefix": "",
        "normalize": True,
        "max_length": 64,
        "dim": 384,
    }
    assert manifest.params["index"]["index_type"] == "flat"
    assert manifest.params["faiss_factory"] == "Flat"
    assert manifest.params["shard_size"] == SHARD
    shards = sorted((built / "embeddings").glob("shard-*.npy"))
    assert [s.name for s in shards] == ["shard-00000.npy", "shard-00001.npy", "shard-00002.npy"]
    assert [np.load(s).shape for s in shards] == [(16, 384), (16, 384), (8, 384)]
    assert not list(built.rglob("*.tmp*"))


# -- open and search ----------------------------------------------------------------------------------------


async def test_open_index_searches_the_corpus(built: Path, passages: list[Passage]) -> None:
    retriever = open_index(built)
    assert isinstance(retriever, DenseRetriever)
    try:
        queries = [f"{p.title}: {' '.join(p.text.split()[:20])}" for p in passages[:6]]
        results = await retriever.search(queries, 3)
        for target, hits in zip(passages[:6], results, strict=True):
            assert hits[0].id == target.id, (target.title, [h.title for h in hits])
            assert (hits[0].title, hits[0].text) == (target.title, target.text)
            scores = [h.score for h in hits]
            assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 + 1e-5 for s in scores)
        blank, everything = await retriever.search(["  ", "film"], N + 10)
        assert blank == [] and len(everything) == N and len({h.id for h in everything}) == N
    finally:
        await retriever.aclose()
    await retriever.aclose()
    with pytest.raises(RetrieverError, match="closed"):
        await retriever.search(["film"], 1)


async def test_search_does_not_block_the_event_loop(built: Path) -> None:
    retriever = DenseRetriever.open(built)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        await retriever.search([f"query number {i} about a film" for i in range(64)], 5)
    finally:
        task.cancel()
        await retriever.aclose()
    assert ticks >= 3, f"the event loop only ticked {ticks} times while the search ran"


def test_open_accepts_search_time_options_and_model_aliases(built: Path) -> None:
    default = DenseRetriever.open(built)
    tuned = DenseRetriever.open(
        built, model="sentence-transformers/all-MiniLM-L6-v2", batch_size="8", dtype="fp32", mmap="true"
    )
    try:
        assert tuned.encoder.config.batch_size == 8
        queries = ["american film director", "rock band album"]
        ids = [[p.id for p in hits] for hits in default.search_sync(queries, 4)]
        assert ids == [[p.id for p in hits] for hits in tuned.search_sync(queries, 4)]
    finally:
        asyncio.run(default.aclose())
        asyncio.run(tuned.aclose())


# -- mismatches and damage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"model": "intfloat/e5-base-v2"},
        {"pooling": "cls"},
        {"query_prefix": "query: "},
        {"normalize": False},
        {"family": "e5"},
        {"encoder": EncoderConfig(model="BAAI/bge-base-en-v1.5")},
    ],
    ids=["model", "pooling", "prefix", "normalize", "family", "encoder-object"],
)
def test_opening_with_another_encoder_is_a_config_error(built: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="built with a different encoder"):
        open_index(built, **options)


def test_a_local_copy_of_the_same_model_passes_the_encoder_check(built: Path, tmp_path: Path) -> None:
    # Same model name in another directory: accepted by the manifest check, so loading is what fails here.
    with pytest.raises(ConfigError, match="cannot load encoder model"):
        open_index(built, model=str(tmp_path / "all-MiniLM-L6-v2"))


@pytest.mark.parametrize(
    "options", [{"index_type": "hnsw"}, {"index": DenseIndexConfig(index_type="ivf_flat")}]
)
def test_opening_with_other_index_structure_is_a_config_error(built: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="cannot change at open time"):
        open_index(built, **options)


def test_unknown_options_name_the_valid_ones(built: Path, corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown dense open option\(s\) colour; valid options: .*batch_size"
    ):
        open_index(built, colour="red")
    with pytest.raises(ConfigError, match=r"unknown dense build option\(s\) colour"):
        build_index("dense", corpus, tmp_path / "out", colour="red")
    with pytest.raises(ConfigError, match=r"shard_size must be an integer, got 'many'; e\.g\. shard_size=4"):
        build_index("dense", corpus, tmp_path / "out", shard_size="many")


def test_corrupt_faiss_file_is_a_data_error(built: Path, tmp_path: Path) -> None:
    damaged = _damaged_copy(built, tmp_path)
    (damaged / "index.faiss").write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match="corrupt"):
        open_index(damaged)


def test_missing_passage_store_is_a_data_error(built: Path, tmp_path: Path) -> None:
    damaged = _damaged_copy(built, tmp_path)
    (damaged / "passages.jsonl").unlink()
    with pytest.raises(DataError, match="passage store file is missing"):
        open_index(damaged)


def test_truncated_passage_store_is_a_data_error(built: Path, tmp_path: Path) -> None:
    damaged = _damaged_copy(built, tmp_path)
    data = (damaged / "passages.jsonl").read_bytes()
    (damaged / "passages.jsonl").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="offsets do not match"):
        open_index(damaged)


def _edit_manifest(directory: Path, edit: Any) -> None:
    path = directory / MANIFEST_NAME
    data = json.loads(path.read_text())
    edit(data)
    write_manifest(directory, data)


def test_manifest_dimension_that_does_not_match_the_index_is_a_data_error(
    built: Path, tmp_path: Path
) -> None:
    damaged = _damaged_copy(built, tmp_path)
    _edit_manifest(damaged, lambda m: m["encoder"].update(dim=768))
    with pytest.raises(DataError, match="dimension 384, but the manifest says 40 of dimension 768"):
        open_index(damaged)


def test_manifest_without_encoder_record_is_a_data_error(built: Path, tmp_path: Path) -> None:
    damaged = _damaged_copy(built, tmp_path)
    _edit_manifest(damaged, lambda m: m.update(encoder=None))
    with pytest.raises(DataError, match="encoder record lacks"):
        open_index(damaged)


# -- resumable builds ---------------------------------------------------------------------------------------


def test_interrupted_build_resumes_without_re_encoding_finished_shards(
    corpus: Path, tmp_path: Path, encode_counter: list[int]
) -> None:
    out = tmp_path / "index"

    def stop_after_first_shard(done: int, total: int | None) -> None:
        if done >= SHARD:
            raise Interrupted

    with pytest.raises(Interrupted):
        build_index("dense", corpus, out, progress=stop_after_first_shard, **FAST)
    # The build runs in OUT.building/ (kept after an interruption) and replaces OUT only when complete.
    building = out.with_name("index.building")
    first = building / "embeddings" / "shard-00000.npy"
    assert first.is_file() and not (building / "embeddings" / "shard-00001.npy").exists()
    assert not out.exists()
    assert encode_counter == [SHARD]
    first_mtime = first.stat().st_mtime_ns

    reports: list[tuple[int, int | None]] = []
    manifest = build_index("dense", corpus, out, progress=lambda d, t: reports.append((d, t)), **FAST)
    assert encode_counter == [SHARD, SHARD, N - 2 * SHARD]  # the rerun encoded shards 1 and 2 only
    assert (out / "embeddings" / "shard-00000.npy").stat().st_mtime_ns == first_mtime
    assert not building.exists()
    assert reports[0] == (SHARD, N) and reports[-1] == (N, N)
    assert manifest.passage_count == N and (out / MANIFEST_NAME).is_file()


@pytest.mark.slow
def test_other_encoder_settings_make_old_shards_stale(
    built: Path, tmp_path: Path, encode_counter: list[int]
) -> None:
    out = _damaged_copy(built, tmp_path)
    first = out / "embeddings" / "shard-00000.npy"
    first_mtime = first.stat().st_mtime_ns
    manifest = build_index("dense", read_manifest(out).corpus_path, out, max_length=48, shard_size=SHARD)
    assert sum(encode_counter) == N
    assert manifest.encoder is not None and manifest.encoder["max_length"] == 48
    assert first.stat().st_mtime_ns != first_mtime
    # Same settings again: nothing left to encode, only the FAISS index is rebuilt.
    encode_counter.clear()
    build_index("dense", manifest.corpus_path, out, max_length=48, shard_size=SHARD, index_type="hnsw")
    assert encode_counter == []
    assert read_manifest(out).params["faiss_factory"] == "HNSW32,Flat"


def test_string_options_hnsw_and_dropping_embeddings(passages: list[Passage], tmp_path: Path) -> None:
    corpus = _write_corpus(tmp_path / "small.jsonl", passages[:10])
    out = tmp_path / "index"
    manifest = build_index(
        "dense",
        corpus,
        out,
        max_length="32",
        shard_size="4",
        index_type="hnsw",
        hnsw_m="8",
        ef_search="16",
        normalize="true",
        keep_embeddings="false",
    )
    assert manifest.params["index"]["hnsw_m"] == 8 and manifest.params["faiss_factory"] == "HNSW8,Flat"
    assert not (out / "embeddings").exists()
    retriever = DenseRetriever.open(out)
    try:
        assert retriever.index_config.ef_search == 16
        (hits,) = retriever.search_sync([passages[2].title + " " + passages[2].text[:80]], 3)
        assert hits[0].id == passages[2].id
    finally:
        asyncio.run(retriever.aclose())


def test_bad_corpora_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="corpus file not found"):
        build_index("dense", tmp_path / "nope.jsonl", tmp_path / "a", **FAST)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="no passages"):
        build_index("dense", tmp_path / "empty.jsonl", tmp_path / "b", **FAST)


def test_gpu_request_fails_before_any_work(corpus: Path, tmp_path: Path) -> None:
    faiss = pytest.importorskip("faiss")
    if faiss.get_num_gpus() > 0:
        pytest.skip("checks the error raised without GPU support")
    with pytest.raises(ConfigError, match="faiss-gpu"):
        build_index("dense", corpus, tmp_path / "gpu", use_gpu=True)
    assert not (tmp_path / "gpu" / "passages.jsonl").exists()


# -- in memory ----------------------------------------------------------------------------------------------


async def test_from_passages_and_from_embeddings_share_one_encoder(passages: list[Passage]) -> None:
    encoder = TextEncoder(EncoderConfig(max_length=64))
    small = passages[:12]
    retriever = DenseRetriever.from_passages(small, encoder=encoder)
    (hits,) = await retriever.search([small[4].title + " " + small[4].text[:100]], 2)
    assert hits[0].id == small[4].id
    await retriever.aclose()
    # The caller's encoder stays usable: the retriever did not create it, so it does not close it.
    vectors = encoder.encode_passages([p.contents for p in small])
    again = DenseRetriever.from_embeddings(
        small, vectors, encoder=encoder, index=DenseIndexConfig(index_type="hnsw")
    )
    (hits,) = await again.search([small[4].title + " " + small[4].text[:100]], 2)
    assert hits[0].id == small[4].id
    await again.aclose()
    with pytest.raises(ConfigError, match="one row per passage"):
        DenseRetriever.from_embeddings(small, vectors[:5], encoder=encoder)
    with pytest.raises(DataError, match="384-dimensional ones"):
        DenseRetriever.from_embeddings(small, np.zeros((12, 16), dtype=np.float32), encoder=encoder)
    encoder.close()
