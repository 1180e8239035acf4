"""The dense retrieval backend: a text encoder plus a FAISS index, built from a corpus file or in memory.

An index directory holds:

- ``hopgym-index.json``: the manifest (its ``encoder`` field records model, family, pooling, prefixes,
  normalization, max length and dimension; opening with a different encoder is an error);
- ``index.faiss``: the FAISS index, one row per passage in corpus order;
- ``passages.jsonl`` + ``passages.offsets.npy``: the passages, readable by row without loading the corpus;
- ``embeddings/shard-NNNNN.npy``: passage vectors in shards of ``shard_size`` rows, written atomically so
  an interrupted build resumes where it stopped (``build-state.json`` names their corpus and encoder).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hopgym.errors import ConfigError, DataError, RetrieverError
from hopgym.options import check_fields, config_from_options, split_options
from hopgym.retrievers.corpus import CorpusFormat, corpus_fingerprint, iter_passages
from hopgym.retrievers.dense.encoders import EncoderConfig, TextEncoder, canonical_model_name, resolve_encoder
from hopgym.retrievers.dense.faiss_index import (
    DenseIndexConfig,
    GpuPlacement,
    build_faiss_index,
    check_gpu_request,
    factory_string,
    place_on_gpus,
    read_faiss_index,
    set_search_params,
    write_faiss_index,
)
from hopgym.retrievers.manifest import MANIFEST_NAME, IndexManifest, ProgressFn, new_manifest, read_manifest
from hopgym.retrievers.passage_store import (
    CRC_FILE,
    OFFSETS_FILE,
    PASSAGES_FILE,
    DiskPassageStore,
    MemoryPassageStore,
    PassageStore,
    is_complete,
    write_passages,
)
from hopgym.retrievers.search_args import check_search_args
from hopgym.types import Passage

__all__ = [
    "BACKEND",
    "DenseBackend",
    "DenseRetriever",
    "passage_text",
]

logger = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
EMBEDDINGS_DIR = "embeddings"
BUILD_STATE_FILE = "build-state.json"
DEFAULT_SHARD_SIZE = 10_000

_ENCODER_FIELDS = {f.name for f in fields(EncoderConfig)}
_INDEX_FIELDS = {f.name for f in fields(DenseIndexConfig)}
# Encoder settings that decide the vector space: an index must be searched with the ones it was built with.
_ENCODER_IDENTITY = ("model", "family", "pooling", "query_prefix", "passage_prefix", "normalize")


def passage_text(passage: Passage) -> str:
    """What is encoded for a passage: the FlashRAG ``contents`` form (``"Title"\\ntext``)."""
    return passage.contents


# ----------------------------------------------------------------------------------------------------------
# options


def _apply(base: Any, options: Mapping[str, Any], names: set[str]) -> Any:
    """``base`` with the options that name its fields applied (text converted to the fields' types)."""
    changes = {k: v for k, v in options.items() if k in names}
    return config_from_options(type(base), changes, what="dense", base=base) if changes else base


@dataclass(frozen=True)
class _OpenOptions:
    """Open-time options besides the encoder and index fields."""

    mmap: bool = False
    encoder: Any = None
    index: Any = None

    def __post_init__(self) -> None:
        check_fields(self, owner="")


def _base_encoder(value: Any) -> EncoderConfig:
    if value is None:
        return EncoderConfig()
    if isinstance(value, EncoderConfig):
        return value
    if isinstance(value, str):
        return EncoderConfig(model=value)
    raise ConfigError(f"option encoder must be an EncoderConfig or a model name, got {type(value).__name__}")


def _base_index(value: Any) -> DenseIndexConfig:
    if value is None:
        return DenseIndexConfig()
    if isinstance(value, DenseIndexConfig):
        return value
    if isinstance(value, str):
        return DenseIndexConfig(index_type=value)  # type: ignore[arg-type]  # validated in __post_init__
    raise ConfigError(f"option index must be a DenseIndexConfig or an index type, got {type(value).__name__}")


@dataclass(frozen=True)
class DenseBuildOptions:
    """Everything ``hopgym index build --backend dense`` accepts (flat option names override the objects)."""

    encoder: EncoderConfig
    index: DenseIndexConfig
    shard_size: int = DEFAULT_SHARD_SIZE
    corpus_format: CorpusFormat = "auto"
    keep_embeddings: bool = True

    def __post_init__(self) -> None:
        check_fields(self, owner="")
        if self.shard_size < 1:
            raise ConfigError(f"shard_size must be a positive integer, got {self.shard_size!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> DenseBuildOptions:
        own, _, _ = split_options(options, cls, EncoderConfig, DenseIndexConfig, what="dense build")
        encoder = _apply(_base_encoder(own.pop("encoder", None)), options, _ENCODER_FIELDS)
        index = _apply(_base_index(own.pop("index", None)), options, _INDEX_FIELDS)
        return cls(encoder=encoder, index=index, **own)


# ----------------------------------------------------------------------------------------------------------
# retriever


class DenseRetriever:
    """Dense retrieval over a FAISS index: queries are encoded and searched on the encoder's thread.

    Build one with :meth:`open` (an index directory), :meth:`from_passages` or :meth:`from_embeddings`.
    Scores are inner products of normalized vectors (cosines) unless the encoder does not normalize.
    """

    def __init__(
        self,
        encoder: TextEncoder,
        index: Any,
        passages: PassageStore,
        *,
        index_config: DenseIndexConfig | None = None,
        owns_encoder: bool = True,
    ) -> None:
        self.encoder = encoder
        self.index_config = index_config or DenseIndexConfig()
        if int(index.d) != encoder.dim:
            raise DataError(
                f"the FAISS index holds {index.d}-dimensional vectors but encoder {encoder.resolved.model!r} "
                f"makes {encoder.dim}-dimensional ones; open the index with the encoder it was built with"
            )
        if int(index.ntotal) != len(passages):
            raise DataError(f"the FAISS index has {index.ntotal} rows but there are {len(passages)} passages")
        self._gpu: GpuPlacement | None = None
        if self.index_config.use_gpu:
            self._gpu = place_on_gpus(index, self.index_config)
        self._index = self._gpu.index if self._gpu is not None else index
        set_search_params(self._index, self.index_config, on_gpu=self._gpu is not None)
        self._passages = passages
        self._owns_encoder = owns_encoder
        # FAISS GPU indexes must not be searched from two threads at once; CPU indexes may.
        self._search_lock: threading.Lock | None = threading.Lock() if self._gpu is not None else None
        self._closed = False

    # -- construction ----------------------------------------------------------------------------------

    @classmethod
    def from_embeddings(
        cls,
        passages: Sequence[Passage],
        embeddings: npt.ArrayLike,
        *,
        encoder: EncoderConfig | TextEncoder | None = None,
        index: DenseIndexConfig | None = None,
    ) -> DenseRetriever:
        """An in-memory retriever over passages whose vectors were already computed by ``encoder``."""
        if not passages:
            raise ConfigError("a dense retriever needs at least one passage")
        vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(passages):
            raise ConfigError(
                f"embeddings must have shape ({len(passages)}, dim), one row per passage; got {vectors.shape}"
            )
        owns = not isinstance(encoder, TextEncoder)
        text_encoder = encoder if isinstance(encoder, TextEncoder) else TextEncoder(encoder)
        config = index or DenseIndexConfig()
        try:
            needs_training = config.index_type.startswith("ivf")
            training = vectors[_training_rows(len(vectors), config)] if needs_training else None
            faiss_index = build_faiss_index(config, vectors.shape[1], len(vectors), training, [vectors])
            return cls(
                text_encoder,
                faiss_index,
                MemoryPassageStore(passages),
                index_config=config,
                owns_encoder=owns,
            )
        except BaseException:
            if owns:
                text_encoder.close()
            raise

    @classmethod
    def from_passages(
        cls,
        passages: Sequence[Passage],
        *,
        encoder: EncoderConfig | TextEncoder | None = None,
        index: DenseIndexConfig | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> DenseRetriever:
        """Encode ``passages`` (blocking; seconds per hundred on CPU) and index them in memory."""
        if not passages:
            raise ConfigError("a dense retriever needs at least one passage")
        if index is not None:
            check_gpu_request(index)
        owns = not isinstance(encoder, TextEncoder)
        text_encoder = encoder if isinstance(encoder, TextEncoder) else TextEncoder(encoder)
        try:
            vectors = text_encoder.encode_passages([passage_text(p) for p in passages], progress=progress)
            retriever = cls.from_embeddings(passages, vectors, encoder=text_encoder, index=index)
        except BaseException:
            if owns:
                text_encoder.close()
            raise
        retriever._owns_encoder = owns
        return retriever

    @classmethod
    def open(
        cls, directory: str | Path, *, manifest: IndexManifest | None = None, **options: Any
    ) -> DenseRetriever:
        """Open an index directory built by the dense backend.

        ``options`` may change search-time settings (``ef_search``, ``nprobe``, ``use_gpu``/``gpu_*``,
        ``batch_size``, ``dtype``, ``device``, ``max_length``, ``threads``, ``mmap``); encoder or index settings that
        differ from the manifest's are a ConfigError, since vectors from another encoder are meaningless here.
        """
        directory = Path(directory)
        manifest = manifest or read_manifest(directory)
        (own, _, _) = split_options(options, _OpenOptions, EncoderConfig, DenseIndexConfig, what="dense open")
        open_options = _OpenOptions(**own)
        recorded = _recorded_encoder(manifest, directory)
        encoder_config = _encoder_for_open(recorded, options)
        index_config = _index_for_open(manifest, options)
        check_gpu_request(index_config)
        store = DiskPassageStore(directory, expected_count=manifest.passage_count)
        try:
            faiss_index = read_faiss_index(directory / INDEX_FILE, mmap=open_options.mmap)
            if (
                int(faiss_index.d) != int(recorded["dim"])
                or int(faiss_index.ntotal) != manifest.passage_count
            ):
                raise DataError(
                    f"{INDEX_FILE} holds {faiss_index.ntotal} vectors of dimension {faiss_index.d}, but "
                    f"the manifest says {manifest.passage_count} of dimension {recorded['dim']}; "
                    "rebuild the index",
                    path=str(directory),
                )
            encoder = TextEncoder(encoder_config)
        except BaseException:
            store.close()
            raise
        try:
            return cls(encoder, faiss_index, store, index_config=index_config)
        except BaseException:
            encoder.close()
            store.close()
            raise

    # -- search ------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._passages)

    def search_sync(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        """Blocking search (what :meth:`search` runs on the encoder's thread)."""
        queries = check_search_args(queries, k)
        if self._closed:
            raise RetrieverError("this DenseRetriever is closed; open a new one")
        results: list[list[Passage]] = [[] for _ in queries]
        live = [i for i, q in enumerate(queries) if q.strip()]
        if not live:
            return results
        index, passages = self._index, self._passages
        try:
            vectors = self.encoder.encode_queries([queries[i] for i in live])
            top = min(k, int(index.ntotal))
            if self._search_lock is not None:
                with self._search_lock:
                    scores, rows = index.search(vectors, top)
            else:
                scores, rows = index.search(vectors, top)
            for slot, row_ids, row_scores in zip(live, rows, scores, strict=True):
                keep = [(int(r), float(s)) for r, s in zip(row_ids, row_scores, strict=True) if r >= 0]
                results[slot] = [passages.get(r, s) for r, s in keep]
        except (ValueError, ConfigError) as exc:
            if self._closed:
                raise RetrieverError("the DenseRetriever was closed during the search") from exc
            raise
        return results

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        queries = check_search_args(queries, k)
        if not queries:
            return []
        if self._closed:
            raise RetrieverError("this DenseRetriever is closed; open a new one")
        # On the encoder's own thread: one torch thread team, warm caches, and no hand-off between the
        # encode and the index search.
        return await asyncio.wrap_future(self.encoder.submit(self.search_sync, queries, k))

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._passages.close()
        if self._owns_encoder:
            self.encoder.close()


# ----------------------------------------------------------------------------------------------------------
# opening helpers


def _recorded_encoder(manifest: IndexManifest, directory: Path) -> Mapping[str, Any]:
    recorded = manifest.encoder
    needed = {*_ENCODER_IDENTITY, "max_length", "dim"}
    if recorded is None or not needed <= set(recorded):
        raise DataError(
            f"the manifest's encoder record lacks {sorted(needed - set(recorded or {}))}; rebuild the index",
            path=str(directory / MANIFEST_NAME),
        )
    return recorded


def _model_key(model: str) -> str:
    """A model's name without its directory or organisation, so a local copy matches its hub name."""
    return re.split(r"[/\\]", canonical_model_name(model).rstrip("/\\"))[-1].lower()


def _encoder_for_open(recorded: Mapping[str, Any], options: Mapping[str, Any]) -> EncoderConfig:
    built = EncoderConfig(
        model=str(recorded["model"]),
        family=recorded["family"],
        pooling=recorded["pooling"],
        query_prefix=str(recorded["query_prefix"]),
        passage_prefix=str(recorded["passage_prefix"]),
        normalize=bool(recorded["normalize"]),
        max_length=int(recorded["max_length"]),
    )
    base = options.get("encoder")
    requested: EncoderConfig = _apply(
        _base_encoder(base) if base is not None else built, options, _ENCODER_FIELDS
    )
    if base is not None or any(name in options for name in _ENCODER_IDENTITY):
        wanted = resolve_encoder(requested).identity()
        have = {name: recorded[name] for name in _ENCODER_IDENTITY}
        diff = {
            name: (have[name], wanted[name])
            for name in _ENCODER_IDENTITY
            if (
                _model_key(have[name]) != _model_key(wanted[name])
                if name == "model"
                else have[name] != wanted[name]
            )
        }
        if diff:
            details = "; ".join(f"{name}: index has {a!r}, requested {b!r}" for name, (a, b) in diff.items())
            raise ConfigError(
                f"this index was built with a different encoder ({details}). Its vectors only make sense "
                "with the encoder recorded in its manifest: drop the encoder options, or rebuild the index "
                "with the new encoder"
            )
    return requested


def _index_for_open(manifest: IndexManifest, options: Mapping[str, Any]) -> DenseIndexConfig:
    recorded = dict(manifest.params.get("index", {}))
    search = {k: manifest.params[k] for k in ("ef_search", "nprobe") if k in manifest.params}
    try:
        built = DenseIndexConfig(**recorded, **search)
    except TypeError as exc:
        raise DataError(
            f"the manifest's index parameters are not understood ({exc}); rebuild the index"
        ) from exc
    base = options.get("index")
    requested: DenseIndexConfig = _apply(
        _base_index(base) if base is not None else built, options, _INDEX_FIELDS
    )
    changed = {k for k, v in requested.structure().items() if built.structure()[k] != v}
    if changed:
        raise ConfigError(
            f"index settings {sorted(changed)} differ from the ones this index was built with; they cannot "
            "change at open time: drop them, or rebuild the index"
        )
    return requested


# ----------------------------------------------------------------------------------------------------------
# building


def _training_rows(n: int, config: DenseIndexConfig) -> npt.NDArray[np.int64]:
    rng = np.random.default_rng(config.seed)
    size = min(n, config.train_size)
    return np.sort(rng.choice(n, size=size, replace=False)).astype(np.int64)


def _save_npy_atomic(path: Path, array_: npt.NDArray[np.float32]) -> None:
    tmp = path.with_name(path.stem + ".tmp.npy")
    with tmp.open("wb") as fh:
        np.save(fh, array_)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _shard_is_valid(path: Path, rows: int, dim: int) -> bool:
    if not path.is_file():
        return False
    try:
        shard = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        logger.warning("re-encoding unreadable embedding shard %s (%s)", path, exc)
        return False
    return bool(shard.shape == (rows, dim) and shard.dtype == np.float32)


def _shard_path(embeddings: Path, number: int) -> Path:
    return embeddings / f"shard-{number:05d}.npy"


def _prepare_directory(out: Path, state: Mapping[str, Any], corpus: Path, fmt: CorpusFormat) -> None:
    """Reuse the passage store and embedding shards of an interrupted build of the same corpus and encoder."""
    # Until this build finishes, the directory is not a usable index.
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    state_path = out / BUILD_STATE_FILE
    previous: Any = None
    if state_path.is_file():
        try:
            previous = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            previous = None
    if previous != dict(state):
        if previous is not None:
            logger.warning(
                "corpus or encoder changed since the last build in %s: re-encoding everything", out
            )
        shutil.rmtree(out / EMBEDDINGS_DIR, ignore_errors=True)
        (out / OFFSETS_FILE).unlink(missing_ok=True)
        state_path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if not is_complete(out):
        count = write_passages(iter_passages(corpus, format=fmt), out)
        if count == 0:
            raise DataError("the corpus has no passages", path=str(corpus))


def _encode_shards(
    encoder: TextEncoder, store: PassageStore, embeddings: Path, shard_size: int, progress: ProgressFn | None
) -> None:
    n = len(store)
    embeddings.mkdir(exist_ok=True)
    done = 0
    for number in range(math.ceil(n / shard_size)):
        lo, hi = number * shard_size, min(n, (number + 1) * shard_size)
        path = _shard_path(embeddings, number)
        if _shard_is_valid(path, hi - lo, encoder.dim):
            logger.info("embedding shard %s already done, skipping", path.name)
        else:
            texts = [passage_text(store.get(row)) for row in range(lo, hi)]
            base = done

            def report(batch_done: int, batch_total: int, base: int = base) -> None:
                # The shard's last batch is reported once the shard is safely on disk.
                if progress is not None and batch_done < batch_total:
                    progress(base + batch_done, n)

            _save_npy_atomic(path, encoder.encode_passages(texts, progress=report))
        done = hi
        if progress is not None:
            progress(done, n)


def _iter_shards(embeddings: Path, n: int, shard_size: int) -> Iterator[npt.NDArray[np.float32]]:
    for number in range(math.ceil(n / shard_size)):
        yield np.load(_shard_path(embeddings, number), mmap_mode="r")


def _training_sample(
    embeddings: Path, n: int, shard_size: int, config: DenseIndexConfig
) -> npt.NDArray[np.float32] | None:
    if config.index_type in ("flat", "hnsw"):
        return None
    rows = _training_rows(n, config)
    parts = []
    for number in np.unique(rows // shard_size):
        shard = np.load(_shard_path(embeddings, int(number)), mmap_mode="r")
        local = rows[(rows // shard_size) == number] - number * shard_size
        parts.append(np.asarray(shard[local], dtype=np.float32))
    return np.concatenate(parts)


class DenseBackend:
    """The registry entry: ``hopgym index build --backend dense`` and opening its index directories."""

    name = "dense"
    # What build_index keeps in OUT.building/ after an interruption, and what a rebuild starts from in the
    # index it replaces: the passage store and the embedding shards (all written by atomic replacement).
    resume_files = (EMBEDDINGS_DIR, BUILD_STATE_FILE, PASSAGES_FILE, OFFSETS_FILE, CRC_FILE)

    def build(
        self, corpus: Path, out: Path, options: Mapping[str, Any], progress: ProgressFn | None
    ) -> IndexManifest:
        started = time.perf_counter()
        plan = DenseBuildOptions.from_options(options)
        check_gpu_request(plan.index)
        if not corpus.is_file():
            raise DataError("corpus file not found (check the path)", path=str(corpus))
        corpus_sha = corpus_fingerprint(corpus)
        encoder = TextEncoder(plan.encoder)
        try:
            state = {
                "corpus_sha256": corpus_sha,
                "encoder": encoder.describe(),
                "shard_size": plan.shard_size,
                "passage_text": "contents",
            }
            _prepare_directory(out, state, corpus, plan.corpus_format)
            store = DiskPassageStore(out)
            try:
                n = len(store)
                _encode_shards(encoder, store, out / EMBEDDINGS_DIR, plan.shard_size, progress)
            finally:
                store.close()
            description = factory_string(plan.index, encoder.dim, n)
            embeddings = out / EMBEDDINGS_DIR
            index = build_faiss_index(
                plan.index,
                encoder.dim,
                n,
                _training_sample(embeddings, n, plan.shard_size, plan.index),
                _iter_shards(embeddings, n, plan.shard_size),
            )
            write_faiss_index(index, out / INDEX_FILE)
        finally:
            encoder.close()
        if not plan.keep_embeddings:
            shutil.rmtree(out / EMBEDDINGS_DIR, ignore_errors=True)
        params = {
            "index": plan.index.structure(),
            "faiss_factory": description,
            "ef_search": plan.index.ef_search,
            "nprobe": plan.index.nprobe,
            "shard_size": plan.shard_size,
            "passage_text": "contents",
        }
        return new_manifest(
            self.name,
            corpus=corpus,
            corpus_sha256=corpus_sha,
            passage_count=n,
            params=params,
            started=started,
            encoder=encoder.describe(),
        )

    def open(self, directory: Path, manifest: IndexManifest, options: Mapping[str, Any]) -> DenseRetriever:
        return DenseRetriever.open(directory, manifest=manifest, **options)


BACKEND = DenseBackend()
