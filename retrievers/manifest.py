"""Self-describing index directories and the backend registry.

Every index directory holds ``hopgym-index.json`` (backend, corpus hash, encoder, parameters, passage count,
build time) so ``hopgym search``, the retriever server and :func:`open_index` can open it without the options
it was built with.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from hopgym.errors import ConfigError, DataError
from hopgym.registry import Registry
from hopgym.retrievers.base import Retriever

__all__ = [
    "BACKENDS",
    "MANIFEST_NAME",
    "BackendSpec",
    "IndexManifest",
    "ProgressFn",
    "backend_names",
    "build_index",
    "open_index",
    "read_manifest",
    "register_backend",
    "write_manifest",
]

MANIFEST_NAME = "hopgym-index.json"
FORMAT_VERSION = 1

#: Called with (passages done, total or None) while building.
ProgressFn = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class IndexManifest:
    backend: str
    passage_count: int
    corpus_sha256: str
    corpus_path: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    encoder: Mapping[str, Any] | None = None
    build_seconds: float = 0.0
    created_at: str = ""
    hopgym_version: str = ""
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["params"] = dict(self.params)
        data["encoder"] = dict(self.encoder) if self.encoder is not None else None
        return data


class BackendSpec(Protocol):
    """What an index backend provides to the registry."""

    name: str

    def build(
        self, corpus: Path, out: Path, options: Mapping[str, Any], progress: ProgressFn | None
    ) -> IndexManifest: ...

    def open(self, directory: Path, manifest: IndexManifest, options: Mapping[str, Any]) -> Retriever: ...


def _check_backend(name: str, backend: object) -> BackendSpec:
    if not (callable(getattr(backend, "build", None)) and callable(getattr(backend, "open", None))):
        raise ConfigError(f"index backend {name!r} must have build() and open() methods, got {backend!r}")
    return backend  # type: ignore[return-value]


#: Index backends by name; lazy "module:attribute" references keep heavy backends unimported until used.
BACKENDS: Registry[BackendSpec] = Registry("index backend", _check_backend, register_hint="register_backend")
BACKENDS.register("bm25", "hopgym.retrievers.bm25.backend:BACKEND")
BACKENDS.register("dense", "hopgym.retrievers.dense.backend:BACKEND")
BACKENDS.register("elasticsearch", "hopgym.retrievers.elasticsearch.backend:BACKEND")


def register_backend(backend: BackendSpec | str, name: str | None = None, *, replace: bool = False) -> None:
    """Register an index backend (an object, or a lazy ``"module:attr"`` reference with ``name``)."""
    if isinstance(backend, str) and name is None:
        raise ConfigError("register_backend: pass name= with a lazy 'module:attr' reference")
    BACKENDS.register(name or backend.name, backend, replace=replace)  # type: ignore[union-attr]


def backend_names() -> tuple[str, ...]:
    return tuple(sorted(BACKENDS.names()))


def _resolve(name: str) -> BackendSpec:
    return BACKENDS.get(name)


def write_manifest(directory: str | Path, manifest: IndexManifest) -> Path:
    path = Path(directory) / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_manifest(directory: str | Path) -> IndexManifest:
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(
            f"not a hopgym index directory (no {MANIFEST_NAME}); build one with `hopgym index build`",
            path=str(directory),
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"unreadable index manifest ({exc}); rebuild the index", path=str(path)) from exc
    if not isinstance(data, dict):
        raise DataError("index manifest must be a JSON object; rebuild the index", path=str(path))
    if data.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"index manifest format_version {data.get('format_version')!r} is not {FORMAT_VERSION}; "
            "rebuild the index with this hopgym version",
            path=str(path),
        )
    try:
        return IndexManifest(**data)
    except TypeError as exc:
        raise DataError(
            f"index manifest has unexpected fields ({exc}); rebuild the index", path=str(path)
        ) from exc


def new_manifest(
    backend: str,
    *,
    corpus: Path,
    corpus_sha256: str,
    passage_count: int,
    params: Mapping[str, Any],
    started: float,
    encoder: Mapping[str, Any] | None = None,
) -> IndexManifest:
    """A manifest stamped with the build time and versions (for backends' ``build``)."""
    from hopgym.version import __version__

    return IndexManifest(
        backend=backend,
        passage_count=passage_count,
        corpus_sha256=corpus_sha256,
        corpus_path=str(corpus),
        params=dict(params),
        encoder=dict(encoder) if encoder is not None else None,
        build_seconds=round(time.perf_counter() - started, 3),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        hopgym_version=__version__,
    )


def build_index(
    backend: str,
    corpus: str | Path,
    out: str | Path,
    *,
    progress: ProgressFn | None = None,
    **options: Any,
) -> IndexManifest:
    """Build an index of ``corpus`` into directory ``out`` and write its manifest."""
    spec = _resolve(backend)
    out_path = Path(out)
    out_path.mkdir(parents=True, exist_ok=True)
    manifest = spec.build(Path(corpus), out_path, options, progress)
    write_manifest(out_path, manifest)
    return manifest


def open_index(directory: str | Path, **options: Any) -> Retriever:
    """Open an index directory as a Retriever, using the backend its manifest names."""
    manifest = read_manifest(directory)
    return _resolve(manifest.backend).open(Path(directory), manifest, options)
