"""Rows of a Hugging Face dataset split (``datasets.load_dataset``), for users who are online.

Offline the load must fail at once with a message saying what to do, never hang in retries: unless the hub is
set offline (``HF_HUB_OFFLINE=1`` / ``HF_DATASETS_OFFLINE=1``: the local cache only), the hub's host is probed
with a short TCP connect first.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from hopgym.benchmarks.datasets.records import Where
from hopgym.benchmarks.datasets.sources import Row
from hopgym.errors import DataError, require

__all__ = ["hf_source_name", "iter_hf_rows"]

_DEFAULT_ENDPOINT = "https://huggingface.co"
_PROBE_TIMEOUT_S = 5.0
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def hf_source_name(name: str, config: str | None, split: str) -> str:
    return f"hf:{name}" + (f"/{config}" if config else "") + f"[{split}]"


def _offline() -> bool:
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on") for var in _OFFLINE_VARS)


def _probe_hub(source: str, timeout_s: float) -> None:
    endpoint = os.environ.get("HF_ENDPOINT") or _DEFAULT_ENDPOINT
    parts = urlsplit(endpoint)
    host = parts.hostname or "huggingface.co"
    port = parts.port or (80 if parts.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise DataError(
            f"cannot reach the Hugging Face hub at {host}:{port} ({exc.strerror or exc}): this machine looks "
            "offline. Download the dataset where there is internet and pass the file to hopgym data prepare "
            "(IN), or set HF_HUB_OFFLINE=1 to use a copy already in the Hugging Face cache",
            path=source,
        ) from exc


def iter_hf_rows(
    name: str,
    config: str | None = None,
    split: str = "validation",
    *,
    probe_timeout_s: float = _PROBE_TIMEOUT_S,
) -> Iterator[Row]:
    """The rows of one split of a hub dataset, each with a :class:`Where` naming the split and row."""
    source = hf_source_name(name, config, split)
    datasets: Any = require("datasets", extra="data", purpose="loading a Hugging Face hub dataset")
    if not _offline():
        _probe_hub(source, probe_timeout_s)
    try:
        loaded: Any = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # datasets raises many types (ConnectionError, DatasetNotFoundError, ValueError)
        hint = (
            "it is not in the local Hugging Face cache (HF_HUB_OFFLINE is set): unset it on a machine with "
            "internet, or pass a downloaded file"
            if _offline()
            else "check the dataset name, --hf-config and --hf-split"
        )
        raise DataError(f"cannot load it: {type(exc).__name__}: {exc}; {hint}", path=source) from exc
    for number, row in enumerate(loaded, start=1):
        yield Where(source, record=number), row
