"""Self-describing index directories and the backend registry.

Every index directory holds ``hopgym-index.json`` (backend, corpus hash, encoder, parameters, passage count,
build time) so ``hopgym search``, the retriever server and :func:`open_index` can open it without the options
it was built with. Since format version 2 the manifest carries the sha256 of its own other fields
(``checksum``), so a damaged manifest is refused; version 1 manifests (no checksum) still open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
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

logger = logging.getLogger(__name__)

MANIFEST_NAME = "hopgym-index.json"
FORMAT_VERSION = 2
#: Versions that still open: 1 is version 2 without the manifest's own checksum.
_READABLE_VERSIONS = (1, 2)
_CHECKSUM_KEY = "checksum"

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


def _checksum(data: Mapping[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def write_manifest(directory: str | Path, manifest: IndexManifest | Mapping[str, Any]) -> Path:
    """Write ``manifest`` (or its JSON form, e.g. one edited on purpose) with a fresh checksum."""
    path = Path(directory) / MANIFEST_NAME
    data = manifest.to_json() if isinstance(manifest, IndexManifest) else dict(manifest)
    data.pop(_CHECKSUM_KEY, None)
    data[_CHECKSUM_KEY] = _checksum(data)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
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
    version = data.get("format_version")
    if version not in _READABLE_VERSIONS or isinstance(version, bool):
        raise DataError(
            f"index manifest format_version {version!r} is not one this hopgym reads "
            f"({', '.join(map(str, _READABLE_VERSIONS))}); rebuild the index with this hopgym version",
            path=str(path),
        )
    recorded = data.pop(_CHECKSUM_KEY, None)
    if version >= 2 and recorded != _checksum(data):
        raise DataError(
            "index manifest does not match its checksum: it is damaged or was edited; rebuild the index",
            path=str(path),
        )
    if version == 1:
        logger.info("%s predates manifest checksums (format 1); rebuild the index to add one", path)
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
    overwrite: bool = True,
    **options: Any,
) -> IndexManifest:
    """Build an index of ``corpus`` into directory ``out`` and write its manifest.

    The backend writes into the sibling ``OUT.building/``, which replaces ``out`` only once the build is
    complete, so a failed build leaves ``out`` as it was. ``out`` must be new, empty, or an index
    (replaced only with ``overwrite``, the CLI's ``--force``); a directory with other files, or one that
    contains the corpus, is refused. A backend with ``resume_files`` (the dense one) keeps ``OUT.building/``
    after an interruption and resumes from it, and starts a rebuild from those files of the old index.
    """
    spec = _resolve(backend)
    corpus_path, out_path = Path(corpus), Path(out)
    if out_path.is_symlink():
        # Replace the directory the link points to, not the link.
        out_path = out_path.resolve()
    replaces = _check_destination(corpus_path, out_path, overwrite=overwrite)
    building = out_path.with_name(out_path.name + BUILDING_SUFFIX)
    resume_files: tuple[str, ...] = tuple(getattr(spec, "resume_files", ()))
    with _BuildDirectory(building, spec.name, resumable=bool(resume_files)) as work:
        if work.fresh and replaces and resume_files and read_manifest(out_path).backend == spec.name:
            _seed(out_path, building, resume_files)
        try:
            manifest = spec.build(corpus_path, building, options, progress)
            write_manifest(building, manifest)
        except BaseException as exc:
            # Bad input or settings leave nothing worth resuming; an interruption keeps a resumable build.
            if not resume_files or isinstance(exc, (DataError, ConfigError)):
                work.discard()
            raise
        work.finish(out_path)
    return manifest


BUILDING_SUFFIX = ".building"
_BUILD_MARKER = ".hopgym-build.json"


def _check_destination(corpus: Path, out: Path, *, overwrite: bool) -> bool:
    """Refuse an ``out`` the build must not replace; True when it replaces an existing index."""
    resolved_out = out.resolve()
    resolved_corpus = corpus.resolve()
    if resolved_out == resolved_corpus or resolved_out in resolved_corpus.parents:
        raise ConfigError(
            f"the index directory {out} contains the corpus {corpus}: building would replace it; "
            "choose an --out outside the corpus's folder (e.g. a sibling indexes/NAME)"
        )
    if not out.exists():
        return False
    if not out.is_dir():
        raise ConfigError(f"{out} is a file, not a directory; choose a new or empty --out directory")
    if (out / MANIFEST_NAME).is_file():
        if not overwrite:
            raise ConfigError(
                f"{out} already holds an index; pass --force (overwrite=True) to replace it once the new "
                "one is built, or choose another --out"
            )
        return True
    if any(out.iterdir()):
        raise ConfigError(
            f"{out} is not empty and is not a hopgym index (no {MANIFEST_NAME}): its files would be "
            "replaced; choose a new or empty --out directory (or remove what is there)"
        )
    return False


def _seed(old: Path, building: Path, names: tuple[str, ...]) -> None:
    """Start a rebuild from the old index's reusable files: big ones hard-linked (the backend replaces,
    never rewrites, them), small ones copied."""
    for name in names:
        source = old / name
        paths = sorted(source.rglob("*")) if source.is_dir() else [source]
        for path in paths:
            if not path.is_file():
                continue
            target = building / path.relative_to(old)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.stat().st_size < 1 << 20:
                shutil.copy2(path, target)
                continue
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)


class _BuildDirectory:
    """``OUT.building/``, held with an exclusive lock so two builds of one ``out`` cannot mix their files."""

    def __init__(self, path: Path, backend: str, *, resumable: bool) -> None:
        self.path = path
        self._backend = backend
        self._resumable = resumable
        self._lock: Any = None
        self.fresh = True

    def __enter__(self) -> _BuildDirectory:
        self.path.mkdir(parents=True, exist_ok=True)
        marker = self.path / _BUILD_MARKER
        self._lock = marker.open("a+", encoding="utf-8")
        try:
            import fcntl

            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - no advisory locks on this platform
            pass
        except OSError as exc:
            self._lock.close()
            raise ConfigError(
                f"another `hopgym index build` is writing {self.path}; wait for it to finish"
            ) from exc
        self._lock.seek(0)
        try:
            previous = json.loads(self._lock.read() or "null")
        except json.JSONDecodeError:
            previous = None
        keep = self._resumable and isinstance(previous, dict) and previous.get("backend") == self._backend
        if keep:
            self.fresh = not any(p.name != _BUILD_MARKER for p in self.path.iterdir())
        else:
            for path in self.path.iterdir():
                if path.name != _BUILD_MARKER:
                    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(json.dumps({"backend": self._backend, "pid": os.getpid()}) + "\n")
        self._lock.flush()
        return self

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def finish(self, out: Path) -> None:
        """Put the finished build in place of ``out``; the old index is removed only once it is replaced."""
        (self.path / _BUILD_MARKER).unlink()
        if not out.exists():
            os.replace(self.path, out)
            return
        old = out.with_name(f"{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        try:
            os.replace(self.path, out)
        except BaseException:
            os.replace(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)

    def __exit__(self, *exc_info: object) -> None:
        if self._lock is not None:
            self._lock.close()


def open_index(directory: str | Path, **options: Any) -> Retriever:
    """Open an index directory as a Retriever, using the backend its manifest names."""
    manifest = read_manifest(directory)
    return _resolve(manifest.backend).open(Path(directory), manifest, options)
