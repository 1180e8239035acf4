"""FAISS index construction, persistence and GPU placement for the dense backend.

Every index is inner product (vectors are L2-normalized by the encoder, so scores are cosines). Index
types: ``flat`` (exact), ``hnsw`` (graph; no training), ``ivf_flat`` / ``ivf_sq8`` / ``ivf_pq`` (clustered,
trained on a sample; PQ and SQ8 compress the vectors). GPU placement needs a faiss build with GPU support
and is checked before any work starts.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from hopgym.errors import ConfigError, DataError, require
from hopgym.options import check_fields

__all__ = [
    "DenseIndexConfig",
    "GpuPlacement",
    "IndexType",
    "auto_nlist",
    "build_faiss_index",
    "check_gpu_request",
    "factory_string",
    "load_faiss",
    "place_on_gpus",
    "read_faiss_index",
    "set_search_params",
    "write_faiss_index",
]

logger = logging.getLogger(__name__)

IndexType = Literal["flat", "hnsw", "ivf_flat", "ivf_pq", "ivf_sq8"]
_IVF_TYPES = frozenset({"ivf_flat", "ivf_pq", "ivf_sq8"})
# FAISS's k-means wants about this many training points per centroid.
_POINTS_PER_CENTROID = 39


def _positive_int(name: str, value: int, *, minimum: int = 1) -> None:
    if value < minimum:
        raise ConfigError(f"DenseIndexConfig.{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class DenseIndexConfig:
    """Which FAISS index to build and how to search it.

    ``nlist`` None picks about 4*sqrt(n) lists (capped so each gets ~39 training points); ``pq_m`` None picks
    dim/8 sub-quantizers (a divisor of dim). ``ef_search`` and ``nprobe`` are search-time settings and can be
    changed when opening. GPU fields need faiss with GPU support: ``gpu_devices`` empty means every visible
    GPU, ``gpu_shard`` splits the vectors across GPUs instead of replicating them, ``gpu_fp16`` stores
    vectors (and IVF-PQ lookup tables) in half precision.
    """

    index_type: IndexType = "flat"
    hnsw_m: int = 32
    ef_construction: int = 100
    ef_search: int = 128
    nlist: int | None = None
    nprobe: int = 32
    pq_m: int | None = None
    pq_bits: int = 8
    train_size: int = 100_000
    seed: int = 0
    use_gpu: bool = False
    gpu_devices: tuple[int, ...] = ()
    gpu_fp16: bool = False
    gpu_shard: bool = False

    def __post_init__(self) -> None:
        if self.index_type not in get_args(IndexType):
            raise ConfigError(
                f"DenseIndexConfig.index_type {self.index_type!r} is unknown; use one of "
                f"{', '.join(get_args(IndexType))}"
            )
        check_fields(self)  # types (text from --option included); the ranges follow
        _positive_int("hnsw_m", self.hnsw_m, minimum=2)
        _positive_int("ef_construction", self.ef_construction)
        _positive_int("ef_search", self.ef_search)
        _positive_int("nprobe", self.nprobe)
        _positive_int("train_size", self.train_size)
        if self.nlist is not None:
            _positive_int("nlist", self.nlist)
        if self.pq_m is not None:
            _positive_int("pq_m", self.pq_m)
        if not 1 <= self.pq_bits <= 16:
            raise ConfigError(f"DenseIndexConfig.pq_bits must be an integer in 1..16, got {self.pq_bits!r}")
        if any(d < 0 for d in self.gpu_devices):
            raise ConfigError(
                f"DenseIndexConfig.gpu_devices must be GPU numbers >= 0, got {self.gpu_devices!r}"
            )
        if self.use_gpu and self.index_type == "hnsw":
            raise ConfigError(
                "FAISS has no GPU HNSW index: use index_type flat or ivf_* with use_gpu=True, "
                "or use_gpu=False"
            )
        if (self.gpu_devices or self.gpu_fp16 or self.gpu_shard) and not self.use_gpu:
            raise ConfigError(
                "gpu_devices/gpu_fp16/gpu_shard only apply with use_gpu=True; set it or drop them"
            )

    def structure(self) -> dict[str, Any]:
        """The build-time settings (recorded in the manifest; changing them needs a rebuild)."""
        return {
            "index_type": self.index_type,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "nlist": self.nlist,
            "pq_m": self.pq_m,
            "pq_bits": self.pq_bits,
            "train_size": self.train_size,
            "seed": self.seed,
        }


def auto_nlist(n: int) -> int:
    """About 4*sqrt(n) inverted lists, but never more than the training points can support."""
    return max(1, min(int(4 * math.sqrt(n)), n // _POINTS_PER_CENTROID))


def _auto_pq_m(dim: int) -> int:
    target = max(1, dim // 8)
    return next(m for m in range(target, 0, -1) if dim % m == 0)


def factory_string(config: DenseIndexConfig, dim: int, n: int) -> str:
    """The ``faiss.index_factory`` description for ``config`` over ``n`` vectors of ``dim`` dimensions."""
    if config.index_type == "flat":
        return "Flat"
    if config.index_type == "hnsw":
        return f"HNSW{config.hnsw_m},Flat"
    nlist = config.nlist if config.nlist is not None else auto_nlist(min(n, config.train_size))
    if nlist > n:
        raise ConfigError(
            f"DenseIndexConfig.nlist={nlist} is more than the {n} vectors to index; use nlist <= {n} "
            "(or leave it None), or index_type='flat' for a corpus this small"
        )
    if config.index_type == "ivf_flat":
        return f"IVF{nlist},Flat"
    if config.index_type == "ivf_sq8":
        return f"IVF{nlist},SQ8"
    pq_m = config.pq_m if config.pq_m is not None else _auto_pq_m(dim)
    if dim % pq_m:
        raise ConfigError(f"DenseIndexConfig.pq_m={pq_m} must divide the vector dimension {dim}")
    if min(n, config.train_size) < 2**config.pq_bits:
        raise ConfigError(
            f"ivf_pq with pq_bits={config.pq_bits} needs at least {2**config.pq_bits} training vectors, only "
            f"{min(n, config.train_size)} available; lower pq_bits or use ivf_flat/ivf_sq8/flat"
        )
    return f"IVF{nlist},PQ{pq_m}x{config.pq_bits}"


def load_faiss() -> Any:
    return require("faiss", extra="dense", purpose="dense retrieval indexes")


def check_gpu_request(config: DenseIndexConfig) -> None:
    """Fail early, with a hint, when GPUs are asked for but this faiss cannot use them."""
    if not config.use_gpu:
        return
    faiss = load_faiss()
    count = int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    if count == 0 or not hasattr(faiss, "StandardGpuResources"):
        raise ConfigError(
            "use_gpu=True but this faiss has no GPU support (faiss.get_num_gpus() == 0): install a GPU "
            "build of faiss (conda 'faiss-gpu' or pip 'faiss-gpu-cu12') on a machine with CUDA, "
            "or set use_gpu=False"
        )
    missing = [d for d in config.gpu_devices if d >= count]
    if missing:
        raise ConfigError(f"gpu_devices {missing} do not exist: faiss sees {count} GPU(s), numbered from 0")


@dataclass
class GpuPlacement:
    """A GPU index and the resources it needs alive (faiss does not keep them referenced)."""

    index: Any
    resources: list[Any] = field(default_factory=list)


def place_on_gpus(index: Any, config: DenseIndexConfig) -> GpuPlacement:
    """Copy a CPU index to the configured GPUs: replicated, or sharded when ``gpu_shard``."""
    check_gpu_request(config)
    faiss = load_faiss()
    devices = list(config.gpu_devices) or list(range(int(faiss.get_num_gpus())))
    options = faiss.GpuMultipleClonerOptions()
    options.useFloat16 = config.gpu_fp16
    options.shard = config.gpu_shard
    resources = [faiss.StandardGpuResources() for _ in devices]
    res_vector = faiss.GpuResourcesVector()
    dev_vector = faiss.Int32Vector()
    for device, res in zip(devices, resources, strict=True):
        dev_vector.push_back(device)
        res_vector.push_back(res)
    try:
        gpu_index = faiss.index_cpu_to_gpu_multiple(res_vector, dev_vector, index, options)
    except RuntimeError as exc:
        raise ConfigError(f"faiss could not place this index on GPUs {devices}: {exc}") from exc
    # Tie the resources' lifetime to the index (faiss's own wrappers do the same), so a thread still
    # searching keeps them alive after the placement is dropped.
    gpu_index.referenced_objects = resources
    return GpuPlacement(gpu_index, resources)


def set_search_params(index: Any, config: DenseIndexConfig, *, on_gpu: bool = False) -> None:
    """Apply ``ef_search`` (HNSW) or ``nprobe`` (IVF) to an index."""
    faiss = load_faiss()
    space = faiss.GpuParameterSpace() if on_gpu else faiss.ParameterSpace()
    if config.index_type == "hnsw":
        space.set_index_parameter(index, "efSearch", config.ef_search)
    elif config.index_type in _IVF_TYPES:
        space.set_index_parameter(index, "nprobe", config.nprobe)


def build_faiss_index(
    config: DenseIndexConfig,
    dim: int,
    n: int,
    training: npt.NDArray[np.float32] | None,
    chunks: Iterable[npt.NDArray[np.float32]],
) -> Any:
    """Build a CPU index: train on ``training`` when the type needs it, then add ``chunks`` in order.

    ``training`` may be None for flat and HNSW. With ``use_gpu``, IVF training and adding run on the first
    configured GPU and the result is copied back to the CPU for saving.
    """
    faiss = load_faiss()
    check_gpu_request(config)
    description = factory_string(config, dim, n)
    index = faiss.index_factory(dim, description, faiss.METRIC_INNER_PRODUCT)
    if config.index_type == "hnsw":
        index.hnsw.efConstruction = config.ef_construction
    if config.index_type == "ivf_pq":
        # The factory turns on polysemous training (annealing the code order for Hamming filtering), which
        # plain IVF-PQ search never uses and which takes minutes even on small training sets.
        faiss.downcast_index(faiss.extract_index_ivf(index)).do_polysemous_training = False
    placement: GpuPlacement | None = None
    target = index
    if config.use_gpu and config.index_type in _IVF_TYPES:
        first = DenseIndexConfig(
            index_type=config.index_type, use_gpu=True, gpu_devices=config.gpu_devices[:1] or (0,)
        )
        placement = place_on_gpus(index, first)
        target = placement.index
    if not index.is_trained:
        if training is None or len(training) == 0:
            raise ConfigError(f"index type {config.index_type} needs training vectors; none were given")
        logger.info("training %s on %d vectors", description, len(training))
        target.train(np.ascontiguousarray(training, dtype=np.float32))
    added = 0
    for chunk in chunks:
        target.add(np.ascontiguousarray(chunk, dtype=np.float32))
        added += len(chunk)
    if added != n:
        raise DataError(f"expected {n} vectors while building the index, got {added}; rebuild the embeddings")
    if placement is not None:
        index = faiss.index_gpu_to_cpu(placement.index)
    return index


def write_faiss_index(index: Any, path: Path) -> None:
    """Write atomically: a crash leaves the previous file or none, never half of one."""
    faiss = load_faiss()
    tmp = path.with_name(path.name + ".tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, path)


def read_faiss_index(path: Path, *, mmap: bool = False) -> Any:
    faiss = load_faiss()
    if not path.is_file():
        raise DataError(
            "FAISS index file is missing; rebuild the index with `hopgym index build`", path=str(path)
        )
    try:
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mmap else 0)
    except RuntimeError as exc:
        raise DataError(
            f"FAISS index file is corrupt or not a FAISS index ({str(exc).splitlines()[0][:200]}); "
            "rebuild the index",
            path=str(path),
        ) from exc
