"""Translate Elasticsearch client failures into hopgym errors that name the cause and the fix.

Connection problems become :class:`RetrieverUnavailable`, timeouts :class:`RetrieverTimeout`, wrong
credentials or a client/server version mismatch :class:`ConfigError`, a missing index :class:`DataError`;
anything else is a :class:`RetrieverError` carrying the server's own reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hopgym.errors import (
    ConfigError,
    DataError,
    HopgymError,
    RetrieverError,
    RetrieverTimeout,
    RetrieverUnavailable,
)

__all__ = ["api_failure", "client_failure", "error_type_and_reason"]


def error_type_and_reason(body: Any) -> tuple[str, str]:
    """The ``error.type`` and ``error.reason`` of an Elasticsearch error body ("" when absent)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        root = error.get("root_cause")
        reason = str(error.get("reason") or "")
        if not reason and isinstance(root, list) and root and isinstance(root[0], Mapping):
            reason = str(root[0].get("reason") or "")
        return str(error.get("type") or ""), reason
    if isinstance(error, str):
        return error, ""
    return "", str(body) if body else ""


def api_failure(status: int, body: Any, *, action: str, url: str, index: str) -> HopgymError:
    """The hopgym error for an HTTP error answer (also used for a failed item of ``_msearch``)."""
    error_type, reason = error_type_and_reason(body)
    where = f"Elasticsearch at {url}: {action} on index {index!r}"
    detail = f"{status} {error_type}: {reason}".strip().rstrip(":")
    if status == 401:
        return ConfigError(
            f"{where} was refused: authentication failed ({detail}); pass api_key=... or "
            "basic_auth=user:password (or set HOPGYM_ES_API_KEY / HOPGYM_ES_USERNAME + HOPGYM_ES_PASSWORD)"
        )
    if status == 403:
        return ConfigError(
            f"{where} was refused: the credentials lack a privilege ({detail}); grant the user read "
            "(searching) or create_index/write (building) on the index"
        )
    if error_type == "index_not_found_exception":
        return DataError(
            f"index {index!r} does not exist on the server; build it with `hopgym index build --backend "
            "elasticsearch`, or fix index_name/url",
            path=url,
        )
    if error_type == "resource_already_exists_exception":
        return ConfigError(
            f"{where}: the index already exists; pass overwrite=true to replace it or choose another "
            "index_name"
        )
    if error_type == "media_type_header_exception":
        # A 9.x client sends "compatible-with=9" headers, which an Elasticsearch 8 server rejects.
        return ConfigError(
            f"{where} was rejected ({detail}): the elasticsearch client's major version does not match "
            "the server's; install the client of the server's major version, e.g. "
            "pip install 'elasticsearch>=8,<9' for Elasticsearch 8"
        )
    if status == 429 or status >= 500:
        return RetrieverUnavailable(
            f"{where} failed after the client's retries ({detail}); the server is overloaded or unhealthy: "
            "lower the request rate, raise max_retries, or check the cluster"
        )
    return RetrieverError(f"{where} failed ({detail})")


def client_failure(exc: BaseException, *, action: str, url: str, index: str) -> HopgymError:
    """The hopgym error for any exception the ``elasticsearch`` client raised."""
    import elasticsearch

    where = f"Elasticsearch at {url}: {action} on index {index!r}"
    if isinstance(exc, elasticsearch.ConnectionTimeout):
        return RetrieverTimeout(
            f"{where} timed out ({exc}); raise request_timeout/timeout_s or reduce the server's load"
        )
    if isinstance(exc, elasticsearch.SSLError):
        return RetrieverUnavailable(
            f"{where}: TLS failed ({exc}); pass ca_certs=PATH to the server's CA certificate, or "
            "verify_certs=false for a test server"
        )
    if isinstance(exc, elasticsearch.ConnectionError):
        return RetrieverUnavailable(
            f"{where}: cannot reach the server after the client's retries ({exc}); start Elasticsearch or "
            "fix url"
        )
    if isinstance(exc, elasticsearch.UnsupportedProductError):
        return ConfigError(f"{where}: the server at url is not Elasticsearch ({exc}); fix url")
    if isinstance(exc, elasticsearch.ApiError):
        return api_failure(exc.meta.status, exc.body, action=action, url=url, index=index)
    return RetrieverError(f"{where} failed ({type(exc).__name__}: {exc})")
