"""Bounded retries for the JSON-over-HTTP clients (the HTTP retriever, the OpenAI-compatible policy).

One error policy, each client's own exceptions and advice (:class:`ClientErrors`): connection errors, HTTP
5xx and 429 are retried with jittered exponential backoff (``Retry-After`` honoured, capped), then the
client's "unavailable" error is raised (its "timeout" error when a final 504 says the backend is too slow,
if the client gives advice for that). A request that times out is not retried: a slow server is not helped
by more load. Other 4xx answers mean the request itself is wrong and are not retried either.

``timeout_s`` is a deadline for the whole request (connect, send, status, headers and body): httpx's own
timeouts bound each network read, so a server trickling a byte a second would otherwise hold a request
for as long as it likes.

The backoff before retry ``n`` is "equal jitter": half of ``min(backoff_max_s, backoff_base_s * 2**n)``
fixed plus a random share of the other half. The fixed half gives the retries a guaranteed minimum span
(what lets a client outlast a server restart), the random half spreads many clients that failed together.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from hopgym.errors import HopgymError

__all__ = [
    "RETRY_STATUSES",
    "ClientErrors",
    "RetryCounters",
    "RetrySettings",
    "backoff_s",
    "error_text",
    "post_json",
    "retry_after_s",
    "retry_span_s",
    "status_hint",
]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# The server is down, restarting, or dropped the connection: worth another try.
_RETRYABLE_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError)


class RetrySettings(Protocol):
    """The client settings the retry loop reads (both clients' frozen config dataclasses have them)."""

    @property
    def timeout_s(self) -> float: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def backoff_base_s(self) -> float: ...
    @property
    def backoff_max_s(self) -> float: ...
    @property
    def max_retry_after_s(self) -> float: ...


class RetryCounters(Protocol):
    """Counters a client exposes: HTTP attempts, retries slept for, and requests that ended in an error."""

    attempts: int
    retries: int
    failures: int


@dataclass(frozen=True)
class ClientErrors:
    """How one client reports each failure: its exception types and the advice its messages end with.

    ``rejected`` gets the message and the HTTP status of a 4xx other than 429. ``summarize`` picks the
    server's message out of a JSON error body (``None`` or empty: the whole body is shown).
    ``gateway_timeout_advice``: a final 504 raises ``timeout`` with it; ``None`` makes it ``unavailable``.
    """

    failed: Callable[[str], HopgymError]
    timeout: Callable[[str], HopgymError]
    unavailable: Callable[[str], HopgymError]
    rejected: Callable[[str, int], HopgymError]
    summarize: Callable[[Mapping[str, Any]], object]
    timeout_advice: str
    unavailable_advice: str
    auth_hint: str
    not_found_hint: str
    gateway_timeout_advice: str | None = None
    label: str = "request"


def json_client(
    *,
    bearer: str | None,
    timeout_s: float,
    connect_timeout_s: float,
    max_connections: int,
    max_keepalive_connections: int,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """A pooled JSON client with timeouts and optional bearer auth, as both hopgym HTTP clients use."""
    headers = {"Accept": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_keepalive_connections
        ),
        headers=headers,
        transport=transport,
    )


def retry_after_s(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP-date); ``None`` if absent or
    unreadable. Dates in the past give 0. ``now`` (aware) defaults to the current UTC time."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse naive; HTTP-dates are UTC
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def backoff_s(attempt: int, *, base_s: float, max_s: float, rng: random.Random) -> float:
    """The wait before retry ``attempt + 1``: uniform in ``[cap / 2, cap]``, ``cap = min(max_s, base_s *
    2**attempt)`` (equal jitter: a floor that makes the retries span a known time, and a spread)."""
    cap = min(max_s, base_s * 2.0**attempt)
    return cap / 2 + rng.uniform(0.0, cap / 2)


def retry_span_s(settings: RetrySettings) -> tuple[float, float]:
    """The least and the most time the backoff waits add up to when every attempt fails at once (connection
    refused), without ``Retry-After``: how long a server may be down before a request gives up."""
    caps = [
        min(settings.backoff_max_s, settings.backoff_base_s * 2.0**attempt)
        for attempt in range(settings.max_retries)
    ]
    return sum(caps) / 2, float(sum(caps))


def error_text(response: httpx.Response, summarize: Callable[[Mapping[str, Any]], object]) -> str:
    """The server's error message, at most 300 characters: ``summarize`` of a JSON object body, else the
    body itself, else the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, Mapping):
        summary = summarize(body)
        if summary:
            return str(summary)[:300]
    return str(body)[:300]


def status_hint(status: int, *, auth: str, not_found: str) -> str:
    """A parenthesised fix appended to a 401/403 (``auth``) or 404 (``not_found``) message; else ``""``."""
    if status in (401, 403):
        return f" ({auth})"
    if status == 404:
        return f" ({not_found})"
    return ""


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    payload: Mapping[str, Any],
    *,
    settings: RetrySettings,
    errors: ClientErrors,
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random,
    logger: logging.Logger,
    counters: RetryCounters | None = None,
) -> Any:
    """POST ``payload`` as JSON and return the decoded JSON answer, retrying as the module docstring says."""
    attempts = settings.max_retries + 1
    last_problem = ""
    last_status = 0

    def fail(error: HopgymError) -> HopgymError:
        if counters is not None:
            counters.failures += 1
        return error

    for attempt in range(attempts):
        if counters is not None:
            counters.attempts += 1
        retry_after: float | None = None
        try:
            # The deadline covers the body too: client.post returns after reading all of it.
            async with asyncio.timeout(settings.timeout_s):
                response = await client.post(url, json=payload)
        except _RETRYABLE_ERRORS as exc:
            last_problem = f"{type(exc).__name__}: {exc}"
        except (httpx.TimeoutException, TimeoutError) as exc:
            cause = type(exc).__name__ if isinstance(exc, httpx.TimeoutException) else "deadline"
            raise fail(
                errors.timeout(
                    f"{url} did not answer within {settings.timeout_s:g} s ({cause}); {errors.timeout_advice}"
                )
            ) from exc
        except httpx.HTTPError as exc:
            raise fail(errors.failed(f"request to {url} failed: {type(exc).__name__}: {exc}")) from exc
        else:
            status = response.status_code
            if status < 300:
                try:
                    return response.json()
                except ValueError as exc:
                    raise fail(
                        errors.failed(f"{url} answered with invalid JSON: {response.text[:200]!r}")
                    ) from exc
            text = error_text(response, errors.summarize)
            if status not in RETRY_STATUSES:
                hint = status_hint(status, auth=errors.auth_hint, not_found=errors.not_found_hint)
                raise fail(
                    errors.rejected(f"{url} rejected the request with HTTP {status}: {text}{hint}", status)
                )
            last_status = status
            last_problem = f"HTTP {status}: {text}"
            retry_after = retry_after_s(response.headers.get("Retry-After"))
        if attempt + 1 < attempts:
            delay = backoff_s(attempt, base_s=settings.backoff_base_s, max_s=settings.backoff_max_s, rng=rng)
            if retry_after is not None:
                delay = max(delay, min(retry_after, settings.max_retry_after_s))
            if counters is not None:
                counters.retries += 1
            logger.warning(
                "%s to %s failed (%s); retry %d in %.2f s",
                errors.label,
                url,
                last_problem,
                attempt + 1,
                delay,
            )
            await sleep(delay)
    if last_status == 504 and errors.gateway_timeout_advice is not None:
        # The server (or a proxy) gave up waiting for its backend: a timeout, not an outage.
        raise fail(
            errors.timeout(
                f"{url} timed out on all {attempts} attempts ({last_problem}); {errors.gateway_timeout_advice}"
            )
        )
    raise fail(
        errors.unavailable(
            f"{url} is unavailable after {attempts} attempts ({last_problem}); {errors.unavailable_advice}"
        )
    )
