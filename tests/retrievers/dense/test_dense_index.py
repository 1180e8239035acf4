"""FAISS index configs: factory strings, validation, GPU guards, persistence, and every index type searching.

Vectors here are synthetic but clustered (normalized cluster centres plus noise) and queries are noisy copies
of indexed vectors, so "top-1 is the source row" is a meaningful check for every index type. Agreement on real
embeddings is in test_dense_retrieval.py.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from hopgym.errors import ConfigError, DataError
from hopgym.retrievers.dense import faiss_index
from hopgym.retrievers.dense.faiss_index import (
    DenseIndexConfig,
    auto_nlist,
    build_faiss_index,
    check_gpu_request,
    factory_string,
    place_on_gpus,
    read_faiss_index,
    set_search_params,
    write_faiss_index,
)

faiss = pytest.importorskip("faiss")

DIM = 32


def _clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, DIM))
    x = centres[rng.integers(0, 40, size=n)] + 0.35 * rng.normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return _clustered(3000)


def _queries(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(1)
    q = vectors[rows] + 0.02 * rng.normal(size=(len(rows), DIM))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


# -- pure config logic --------------------------------------------------------------------------------------


def test_auto_nlist_grows_with_sqrt_n_and_respects_training_points() -> None:
    assert auto_nlist(1_000_000) == 4000
    assert auto_nlist(3000) == 76  # 4*sqrt(3000)=219 is capped at 3000 // 39
    assert auto_nlist(10) == 1


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (DenseIndexConfig(), "Flat"),
        (DenseIndexConfig(index_type="hnsw", hnsw_m=16), "HNSW16,Flat"),
        (DenseIndexConfig(index_type="ivf_flat"), "IVF76,Flat"),
        (DenseIndexConfig(index_type="ivf_sq8", nlist=50), "IVF50,SQ8"),
        (DenseIndexConfig(index_type="ivf_pq"), "IVF76,PQ4x8"),
        (DenseIndexConfig(index_type="ivf_pq", nlist=20, pq_m=8, pq_bits=6), "IVF20,PQ8x6"),
        (DenseIndexConfig(index_type="ivf_flat", train_size=390), "IVF10,Flat"),
    ],
)
def test_factory_string(config: DenseIndexConfig, expected: str) -> None:
    assert factory_string(config, DIM, 3000) == expected


def test_factory_string_rejects_impossible_settings() -> None:
    with pytest.raises(ConfigError, match="nlist=500 is more than the 100 vectors"):
        factory_string(DenseIndexConfig(index_type="ivf_flat", nlist=500), DIM, 100)
    with pytest.raises(ConfigError, match="must divide the vector dimension 32"):
        factory_string(DenseIndexConfig(index_type="ivf_pq", pq_m=5), DIM, 3000)
    with pytest.raises(ConfigError, match="at least 256 training vectors"):
        factory_string(DenseIndexConfig(index_type="ivf_pq"), DIM, 200)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"index_type": "lsh"}, "index_type"),
        ({"hnsw_m": 1}, "hnsw_m"),
        ({"nprobe": 0}, "nprobe"),
        ({"ef_search": -3}, "ef_search"),
        ({"nlist": 0}, "nlist"),
        ({"pq_bits": 17}, "pq_bits"),
        ({"gpu_devices": (-1,), "use_gpu": True}, "gpu_devices"),
        ({"index_type": "hnsw", "use_gpu": True}, "no GPU HNSW"),
        ({"gpu_fp16": True}, "only apply with use_gpu"),
    ],
)
def test_index_config_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DenseIndexConfig(**kwargs)


def test_gpu_devices_are_normalized_to_a_tuple() -> None:
    assert DenseIndexConfig(use_gpu=True, gpu_devices=[1, 0]).gpu_devices == (1, 0)  # type: ignore[arg-type]


# -- GPU guard ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(faiss.get_num_gpus() > 0, reason="checks the error raised without GPU support")
def test_gpu_request_without_gpu_faiss_is_a_config_error_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="faiss-gpu"):
        check_gpu_request(DenseIndexConfig(use_gpu=True))
    check_gpu_request(DenseIndexConfig())  # no GPU asked for: nothing to check


class _FakeGpuFaiss:
    """Stands in for a faiss build with GPUs, recording how the index was cloned onto them."""

    def __init__(self, gpus: int) -> None:
        self.gpus = gpus
        self.cloned: dict[str, Any] = {}

    def get_num_gpus(self) -> int:
        return self.gpus

    class StandardGpuResources:
        pass

    class GpuMultipleClonerOptions:
        useFloat16 = False
        shard = False

    class _Vector(list[Any]):
        def push_back(self, item: Any) -> None:
            self.append(item)

    GpuResourcesVector = _Vector
    Int32Vector = _Vector

    def index_cpu_to_gpu_multiple(self, resources: Any, devices: Any, index: Any, options: Any) -> Any:
        self.cloned = {"resources": list(resources), "devices": list(devices), "options": options}
        return SimpleNamespace(on_gpus=list(devices), source=index)


def test_gpu_placement_passes_devices_and_cloner_options(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeGpuFaiss(gpus=4)
    monkeypatch.setattr(faiss_index, "load_faiss", lambda: fake)
    placement = place_on_gpus(
        "cpu-index", DenseIndexConfig(use_gpu=True, gpu_devices=(1, 3), gpu_fp16=True, gpu_shard=True)
    )
    assert placement.index.on_gpus == [1, 3] and placement.index.source == "cpu-index"
    assert fake.cloned["options"].useFloat16 is True and fake.cloned["options"].shard is True
    # faiss does not keep the GPU resources alive; the placement must.
    assert placement.resources == fake.cloned["resources"] and len(placement.resources) == 2
    assert placement.index.referenced_objects is placement.resources

    everywhere = place_on_gpus("cpu-index", DenseIndexConfig(use_gpu=True))
    assert everywhere.index.on_gpus == [0, 1, 2, 3]
    assert fake.cloned["options"].useFloat16 is False and fake.cloned["options"].shard is False

    with pytest.raises(ConfigError, match=r"gpu_devices \[7\] do not exist"):
        place_on_gpus("cpu-index", DenseIndexConfig(use_gpu=True, gpu_devices=(0, 7)))


# -- building and searching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        DenseIndexConfig(),
        DenseIndexConfig(index_type="hnsw", hnsw_m=16, ef_search=64),
        DenseIndexConfig(index_type="ivf_flat", nprobe=8),
        DenseIndexConfig(index_type="ivf_sq8", nprobe=8),
        DenseIndexConfig(index_type="ivf_pq", pq_m=16, pq_bits=6, nprobe=8),
    ],
    ids=lambda c: c.index_type,
)
def test_every_index_type_finds_near_duplicates(vectors: np.ndarray, config: DenseIndexConfig) -> None:
    training = vectors[:1000] if config.index_type.startswith("ivf") else None
    index = build_faiss_index(config, DIM, len(vectors), training, [vectors[:1000], vectors[1000:]])
    set_search_params(index, config)
    assert index.ntotal == len(vectors) and index.d == DIM
    rows = np.arange(0, len(vectors), 30)
    scores, ids = index.search(_queries(vectors, rows), 5)
    top1 = (ids[:, 0] == rows).mean()
    # PQ compresses vectors to 12 bytes, so near-identical neighbours can swap places.
    assert top1 >= (0.9 if config.index_type == "ivf_pq" else 0.97), top1
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "results must be sorted best first"


def test_search_params_are_applied(vectors: np.ndarray) -> None:
    ivf_config = DenseIndexConfig(index_type="ivf_flat", nprobe=7)
    ivf = build_faiss_index(ivf_config, DIM, 500, vectors[:500], [vectors[:500]])
    set_search_params(ivf, ivf_config)
    assert faiss.extract_index_ivf(ivf).nprobe == 7
    hnsw_config = DenseIndexConfig(index_type="hnsw", ef_search=33, ef_construction=50)
    hnsw = build_faiss_index(hnsw_config, DIM, 500, None, [vectors[:500]])
    set_search_params(hnsw, hnsw_config)
    assert (hnsw.hnsw.efSearch, hnsw.hnsw.efConstruction) == (33, 50)


def test_wrong_vector_count_is_a_data_error(vectors: np.ndarray) -> None:
    with pytest.raises(DataError, match="expected 600 vectors"):
        build_faiss_index(DenseIndexConfig(), DIM, 600, None, [vectors[:500]])


def test_ivf_without_training_vectors_is_a_config_error(vectors: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="needs training vectors"):
        build_faiss_index(DenseIndexConfig(index_type="ivf_flat"), DIM, 500, None, [vectors[:500]])


# -- persistence --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mmap", [False, True])
def test_write_then_read_round_trips(vectors: np.ndarray, tmp_path: Path, mmap: bool) -> None:
    config = DenseIndexConfig(index_type="ivf_flat", nlist=16)
    index = build_faiss_index(config, DIM, 800, vectors[:800], [vectors[:800]])
    path = tmp_path / "index.faiss"
    write_faiss_index(index, path)
    assert not list(tmp_path.glob("*.tmp"))
    loaded = read_faiss_index(path, mmap=mmap)
    set_search_params(index, config)
    set_search_params(loaded, config)
    q = _queries(vectors, np.arange(0, 800, 40))
    np.testing.assert_array_equal(index.search(q, 3)[1], loaded.search(q, 3)[1])


def test_reading_a_missing_or_corrupt_index_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing"):
        read_faiss_index(tmp_path / "index.faiss")
    (tmp_path / "index.faiss").write_bytes(b"definitely not a faiss index")
    with pytest.raises(DataError, match="corrupt"):
        read_faiss_index(tmp_path / "index.faiss")
