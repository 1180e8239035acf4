"""Settings of the Elasticsearch backend: where the server is, how the index is built, how it is queried.

Four frozen dataclasses, each validated on construction (field types by :func:`hopgym.options.check_fields`,
so values may arrive as strings from a command line), plus :func:`split_options`, which routes the flat
``key=value`` options of ``hopgym index build --option`` / :func:`~hopgym.retrievers.manifest.open_index`
to them.

Credentials (API key, password) are connection settings only: they are never written to an index manifest.
When not passed as options they are read from ``HOPGYM_ES_API_KEY`` or ``HOPGYM_ES_USERNAME`` +
``HOPGYM_ES_PASSWORD``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from hopgym.errors import ConfigError
from hopgym.options import check_fields
from hopgym.options import split_options as _route
from hopgym.retrievers.corpus import CorpusFormat

__all__ = [
    "ANALYZERS",
    "ENV_API_KEY",
    "ENV_PASSWORD",
    "ENV_USERNAME",
    "MULTI_MATCH_TYPES",
    "SEARCHABLE_FIELDS",
    "Analyzer",
    "BulkSettings",
    "ElasticsearchConnection",
    "IndexSettings",
    "MultiMatchType",
    "QuerySettings",
    "split_options",
]

Analyzer = Literal["english", "standard"]
MultiMatchType = Literal["best_fields", "most_fields", "cross_fields"]
ANALYZERS: tuple[str, ...] = get_args(Analyzer)
MULTI_MATCH_TYPES: tuple[str, ...] = get_args(MultiMatchType)
#: ``contents`` is title + "\n" + text in one field, as Search-R1's pyserini index (and the bm25 backend) has.
SEARCHABLE_FIELDS = ("contents", "title", "text")

ENV_API_KEY = "HOPGYM_ES_API_KEY"
ENV_USERNAME = "HOPGYM_ES_USERNAME"
ENV_PASSWORD = "HOPGYM_ES_PASSWORD"

# Elasticsearch's index-name rules (lowercase, no path or wildcard characters, at most 255 bytes).
_BAD_INDEX_CHARS = re.compile(r'[\\/*?"<>| ,#:A-Z]')
_FIELD_RE = re.compile(r"^(?P<name>[a-z]+)(\^(?P<boost>[0-9]*\.?[0-9]+))?$")
#: Elasticsearch refuses ``from + size`` above ``index.max_result_window`` (10,000 by default).
MAX_RESULT_WINDOW = 10_000


def _hosts(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, Sequence) or not value or not all(isinstance(h, str) for h in value):
        raise ConfigError(f"url must be one URL or a list of URLs, e.g. http://127.0.0.1:9200, got {value!r}")
    hosts = tuple(h.rstrip("/") for h in value)
    for host in hosts:
        if not host.startswith(("http://", "https://")):
            raise ConfigError(f"url {host!r} must start with http:// or https://, e.g. http://127.0.0.1:9200")
    return hosts


@dataclass(frozen=True)
class ElasticsearchConnection:
    """How to reach the server (the ``elasticsearch`` client's options that matter here).

    ``node_class`` "auto" picks aiohttp when installed, else the httpx node (httpx is a core hopgym
    dependency). ``max_retries`` counts the client's retries on connection errors and 429/502/503/504.
    """

    hosts: tuple[str, ...] = ("http://127.0.0.1:9200",)
    api_key: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0
    max_retries: int = 3
    retry_on_timeout: bool = False
    node_class: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", _hosts(self.hosts))
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise ConfigError("api_key must be a non-empty string (the encoded id:key Elasticsearch gives)")
        auth = self.basic_auth
        if isinstance(auth, str):
            user, sep, password = auth.partition(":")
            if not sep:
                raise ConfigError("basic_auth must be 'user:password' or a [user, password] pair")
            auth = (user, password)
        if auth is not None:
            if not isinstance(auth, Sequence) or len(auth) != 2 or not all(isinstance(a, str) for a in auth):
                raise ConfigError("basic_auth must be 'user:password' or a [user, password] pair")
            if not auth[0]:
                raise ConfigError("basic_auth has an empty user name; use 'user:password'")
            object.__setattr__(self, "basic_auth", (auth[0], auth[1]))
        if self.api_key is not None and self.basic_auth is not None:
            raise ConfigError("pass either api_key or basic_auth, not both")
        check_fields(self, owner="", skip=("hosts", "api_key", "basic_auth"))
        if self.request_timeout <= 0:
            raise ConfigError(f"request_timeout must be > 0 seconds, got {self.request_timeout}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")
        if not self.node_class:
            raise ConfigError("node_class must be 'auto' or an elastic-transport node name such as 'aiohttp'")

    @property
    def url(self) -> str:
        """The hosts as one string, for messages."""
        return ", ".join(self.hosts)

    def manifest_params(self) -> dict[str, Any]:
        """What an index manifest may record: everything but the credentials."""
        return {"hosts": list(self.hosts), "ca_certs": self.ca_certs, "verify_certs": self.verify_certs}


@dataclass(frozen=True)
class IndexSettings:
    """How the index is created: its name, analyzer and BM25 parameters (fixed once built).

    k1=0.9, b=0.4 are pyserini's (and so Search-R1's) values; Elasticsearch's own defaults are 1.2 and 0.75.
    """

    index_name: str
    analyzer: Analyzer = "english"
    k1: float = 0.9
    b: float = 0.4
    number_of_shards: int = 1
    number_of_replicas: int = 0

    def __post_init__(self) -> None:
        name = self.index_name
        if not isinstance(name, str) or not name:
            raise ConfigError("index_name must be a non-empty string, e.g. index_name=wiki18")
        if (
            _BAD_INDEX_CHARS.search(name)
            or name.startswith(("-", "_", "+"))
            or name in (".", "..")
            or len(name.encode()) > 255
        ):
            raise ConfigError(
                f"index_name {name!r} is not a valid Elasticsearch index name: use lowercase letters, "
                "digits, '-', '_' or '.', not starting with '-', '_' or '+', at most 255 bytes"
            )
        if self.analyzer not in ANALYZERS:
            raise ConfigError(f"analyzer must be one of {', '.join(ANALYZERS)}, got {self.analyzer!r}")
        check_fields(self, owner="")
        if self.k1 < 0:
            raise ConfigError(
                f"k1 must be >= 0 (BM25 term-frequency saturation; 0.9 is usual), got {self.k1}"
            )
        if not 0.0 <= self.b <= 1.0:
            raise ConfigError(f"b must be in [0, 1] (BM25 length normalisation; 0.4 is usual), got {self.b}")
        if self.number_of_shards < 1:
            raise ConfigError(f"number_of_shards must be >= 1, got {self.number_of_shards}")
        if self.number_of_replicas < 0:
            raise ConfigError(f"number_of_replicas must be >= 0, got {self.number_of_replicas}")


def _parse_field(spec: Any) -> tuple[str, float]:
    match = _FIELD_RE.match(spec) if isinstance(spec, str) else None
    if match is None or match["name"] not in SEARCHABLE_FIELDS:
        raise ConfigError(
            f"field {spec!r} is not searchable: use {', '.join(SEARCHABLE_FIELDS)}, optionally boosted "
            "as name^weight (e.g. title^2)"
        )
    boost = float(match["boost"]) if match["boost"] is not None else 1.0
    if boost <= 0:
        raise ConfigError(f"field {spec!r}: the boost must be > 0")
    return match["name"], boost


@dataclass(frozen=True)
class QuerySettings:
    """How queries are sent (search time; may differ between opens of one index).

    ``fields`` ("contents" by default: BM25 over title and text together, as Search-R1 does) or boosted
    fields such as ``("title^2", "text")``, which run a ``multi_match`` of ``multi_match_type``.
    ``timeout_s`` caps one ``search`` call (None: the connection's ``request_timeout``). ``max_batch`` is
    the most queries sent in one ``_msearch`` request; bigger batches are split into concurrent requests.
    """

    fields: tuple[str, ...] = ("contents",)
    multi_match_type: MultiMatchType = "best_fields"
    timeout_s: float | None = None
    max_batch: int = 256

    def __post_init__(self) -> None:
        specs = (self.fields,) if isinstance(self.fields, str) else self.fields
        if not isinstance(specs, Sequence) or not specs:
            raise ConfigError("fields must name at least one of contents, title, text")
        for spec in specs:
            _parse_field(spec)
        object.__setattr__(self, "fields", tuple(specs))
        if self.multi_match_type not in MULTI_MATCH_TYPES:
            raise ConfigError(
                f"multi_match_type must be one of {', '.join(MULTI_MATCH_TYPES)}, "
                f"got {self.multi_match_type!r}"
            )
        check_fields(self, owner="")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0 seconds (or null for none), got {self.timeout_s}")
        if self.max_batch < 1:
            raise ConfigError(f"max_batch must be >= 1, got {self.max_batch}")

    def parsed_fields(self) -> list[tuple[str, float]]:
        return [_parse_field(spec) for spec in self.fields]


@dataclass(frozen=True)
class BulkSettings:
    """How a corpus is sent with ``helpers.async_streaming_bulk``.

    A chunk refused with 429 (the server is busy) is retried ``max_retries`` times, waiting
    ``initial_backoff`` seconds, doubling up to ``max_backoff``. ``overwrite`` deletes an existing index
    of the same name first; without it an existing index is an error.
    """

    chunk_size: int = 500
    max_chunk_bytes: int = 10 * 1024 * 1024
    max_retries: int = 5
    initial_backoff: float = 1.0
    max_backoff: float = 60.0
    overwrite: bool = False
    format: CorpusFormat = "auto"

    def __post_init__(self) -> None:
        check_fields(self, owner="")
        for name in ("chunk_size", "max_chunk_bytes", "max_retries"):
            minimum = 0 if name == "max_retries" else 1
            if getattr(self, name) < minimum:
                raise ConfigError(f"{name} must be >= {minimum}, got {getattr(self, name)}")
        for name in ("initial_backoff", "max_backoff"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 seconds, got {getattr(self, name)}")


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _with_credentials(options: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    if "api_key" in options or "basic_auth" in options:
        return options
    if environ.get(ENV_API_KEY):
        return {**options, "api_key": environ[ENV_API_KEY]}
    if environ.get(ENV_USERNAME):
        return {**options, "basic_auth": (environ[ENV_USERNAME], environ.get(ENV_PASSWORD, ""))}
    return options


def split_options(
    options: Mapping[str, Any],
    *,
    context: Literal["build", "open"],
    environ: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Route flat options to (connection, index, query, bulk) keyword dicts; unknown keys are a ConfigError.

    ``url`` is accepted for ``hosts``. At build, ``url`` and ``index_name`` are required. At open, the index
    settings are fixed by the build and bulk settings do not apply.
    """
    opts = dict(options)
    if "url" in opts:
        if "hosts" in opts:
            raise ConfigError("pass url or hosts, not both")
        opts["hosts"] = opts.pop("url")
    if context == "open":
        _route(
            opts,
            ElasticsearchConnection,
            QuerySettings,
            what="elasticsearch",
            fixed=_names(IndexSettings) | _names(BulkSettings),
            fixed_hint="when opening an Elasticsearch index: it was fixed when the index was built; rebuild the "
            "index (with overwrite=true) to change it",
        )
    else:
        _route(
            opts, ElasticsearchConnection, IndexSettings, QuerySettings, BulkSettings, what="elasticsearch"
        )
    if context == "build":
        missing = [name for name, key in (("url", "hosts"), ("index_name", "index_name")) if key not in opts]
        if missing:
            raise ConfigError(
                f"the elasticsearch backend needs option(s) {', '.join(missing)} to build an index, e.g. "
                "--option url=http://127.0.0.1:9200 --option index_name=wiki18"
            )
    opts = _with_credentials(opts, environ)
    classes = (ElasticsearchConnection, IndexSettings, QuerySettings, BulkSettings)
    connection, index, query, bulk = ({k: v for k, v in opts.items() if k in _names(c)} for c in classes)
    return connection, index, query, bulk
