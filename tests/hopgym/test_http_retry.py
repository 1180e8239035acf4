"""hopgym.http_retry: Retry-After parsing, jittered backoff, error text, and the retry loop's outcomes."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from hopgym.errors import HopgymError
from hopgym.http_retry import (
    ClientErrors,
    backoff_s,
    error_text,
    post_json,
    retry_after_s,
    retry_span_s,
    status_hint,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
URL = "http://server.test/x"


@pytest.mark.parametrize(
    ("value", "expected"), [("2", 2.0), ("0.5", 0.5), ("0", 0.0), ("-3", 0.0), (None, None), ("", None)]
)
def test_retry_after_in_seconds(value: str | None, expected: float | None) -> None:
    assert retry_after_s(value, now=NOW) == expected


def test_retry_after_as_an_http_date() -> None:
    later = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert retry_after_s(later, now=NOW) == 30.0
    earlier = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
    assert retry_after_s(earlier, now=NOW) == 0.0
    # A "-0000" zone parses to a naive datetime; it is read as UTC instead of failing.
    assert retry_after_s("Wed, 01 May 2024 12:01:00 -0000", now=NOW) == 60.0


@pytest.mark.parametrize("value", ["soon", "Wed, 99 Foo 2024", "1e"])
def test_unreadable_retry_after_is_none(value: str) -> None:
    assert retry_after_s(value, now=NOW) is None


def test_backoff_is_full_jitter_below_a_doubling_capped_bound() -> None:
    rng = random.Random(1234)
    for attempt in range(10):
        bound = min(1.0, 0.1 * 2**attempt)
        delays = [backoff_s(attempt, base_s=0.1, max_s=1.0, rng=rng) for _ in range(200)]
        assert all(0.0 <= d <= bound for d in delays)
        assert max(delays) > 0.8 * bound  # spread over the whole range, not a fixed wait
    assert backoff_s(5, base_s=0.0, max_s=1.0, rng=rng) == 0.0


def test_backoff_never_waits_less_than_half_its_bound() -> None:
    # The floor is what lets the retries span a known time (e.g. a server restart).
    rng = random.Random(99)
    for attempt in range(6):
        bound = min(2.0, 0.25 * 2**attempt)
        assert min(backoff_s(attempt, base_s=0.25, max_s=2.0, rng=rng) for _ in range(200)) >= bound / 2


def test_retry_span_of_the_http_retriever_defaults_outlasts_a_restart() -> None:
    from hopgym.retrievers.http import HttpRetrieverConfig

    least, most = retry_span_s(HttpRetrieverConfig("http://127.0.0.1:1"))
    assert (least, most) == (5.875, 11.75)
    assert retry_span_s(Settings()) == pytest.approx((0.15, 0.3))


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    first = [backoff_s(n, base_s=0.2, max_s=10.0, rng=random.Random(7)) for n in range(5)]
    again = [backoff_s(n, base_s=0.2, max_s=10.0, rng=random.Random(7)) for n in range(5)]
    assert first == again and len(set(first)) == 5


def _pick_error(body: Mapping[str, Any]) -> object:
    return body.get("error")


def test_error_text_sources() -> None:
    assert error_text(httpx.Response(400, json={"error": "too long"}), _pick_error) == "too long"
    # Nothing picked: the whole JSON body is shown.
    assert error_text(httpx.Response(400, json={"detail": "x"}), _pick_error) == "{'detail': 'x'}"
    assert error_text(httpx.Response(400, json=["a"]), _pick_error) == "['a']"
    assert error_text(httpx.Response(502, text="<html>bad gateway</html>"), _pick_error) == (
        "<html>bad gateway</html>"
    )
    assert error_text(httpx.Response(503), _pick_error) == "Service Unavailable"
    assert error_text(httpx.Response(400, json={"error": "e" * 1000}), _pick_error) == "e" * 300
    assert len(error_text(httpx.Response(500, text="t" * 1000), _pick_error)) == 300


def test_status_hint() -> None:
    for status in (401, 403):
        assert status_hint(status, auth="use a key", not_found="check the url") == " (use a key)"
    assert status_hint(404, auth="use a key", not_found="check the url") == " (check the url)"
    assert status_hint(400, auth="use a key", not_found="check the url") == ""


# -- the retry loop, against httpx.MockTransport --------------------------------------------------


class Failed(HopgymError):
    pass


class TimedOut(HopgymError):
    pass


class Down(HopgymError):
    pass


class Rejected(HopgymError):
    def __init__(self, message: str, status: int) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Settings:
    timeout_s: float = 2.0
    max_retries: int = 2
    backoff_base_s: float = 0.1
    backoff_max_s: float = 1.0
    max_retry_after_s: float = 5.0


@dataclass
class Counters:
    attempts: int = 0
    retries: int = 0
    failures: int = 0


def errors(gateway_timeout_advice: str | None = None) -> ClientErrors:
    return ClientErrors(
        failed=Failed,
        timeout=TimedOut,
        unavailable=Down,
        rejected=Rejected,
        summarize=_pick_error,
        timeout_advice="wait longer",
        unavailable_advice="start the server",
        auth_hint="use a key",
        not_found_hint="check the url",
        gateway_timeout_advice=gateway_timeout_advice,
    )


async def call(
    answers: list[httpx.Response | Exception], client_errors: ClientErrors
) -> tuple[Any, Counters, list[float]]:
    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    counters = Counters()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await post_json(
            client,
            URL,
            {"q": 1},
            settings=Settings(),
            errors=client_errors,
            sleep=sleep,
            rng=random.Random(0),
            logger=logging.getLogger("test"),
            counters=counters,
        )
    return result, counters, delays


async def test_retries_then_returns_the_json_answer() -> None:
    answers: list[httpx.Response | Exception] = [
        httpx.ConnectError("refused"),
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(200, json={"ok": True}),
    ]
    result, counters, delays = await call(answers, errors())
    assert result == {"ok": True}
    assert (counters.attempts, counters.retries, counters.failures) == (3, 2, 0)
    assert 0.0 <= delays[0] <= 0.1 and delays[1] == 3.0


async def test_final_504_is_a_timeout_only_with_gateway_advice() -> None:
    with pytest.raises(Down, match=r"after 3 attempts \(HTTP 504: .*\); start the server"):
        await call([httpx.Response(504)], errors())
    with pytest.raises(TimedOut, match=r"timed out on all 3 attempts .*; backend slow"):
        await call([httpx.Response(504)], errors(gateway_timeout_advice="backend slow"))


async def test_client_errors_and_timeouts_are_not_retried() -> None:
    with pytest.raises(Rejected, match=r"HTTP 401: nope \(use a key\)") as info:
        await call([httpx.Response(401, json={"error": "nope"})], errors())
    assert info.value.status == 401
    with pytest.raises(TimedOut, match=r"within 2 s \(ReadTimeout\); wait longer"):
        await call([httpx.ReadTimeout("slow")], errors())
    with pytest.raises(Failed, match="invalid JSON"):
        await call([httpx.Response(200, text="<html>")], errors())


async def test_timeout_is_a_deadline_over_the_body_too() -> None:
    async def trickle() -> Any:
        for _ in range(100):  # 10 s in all, a byte every 0.1 s
            await asyncio.sleep(0.1)
            yield b" "

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=trickle())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        start = time.monotonic()
        with pytest.raises(TimedOut, match=r"within 0.5 s \(deadline\); wait longer"):
            await post_json(client, URL, {}, settings=Settings(timeout_s=0.5), errors=errors(),
                            sleep=asyncio.sleep, rng=random.Random(0), logger=logging.getLogger("test"))  # fmt: skip
    assert time.monotonic() - start < 2.0
