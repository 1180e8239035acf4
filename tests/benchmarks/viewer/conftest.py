"""The headless Chromium the viewer's browser tests drive (Debian's ``chromium`` package, or
``$HOPGYM_CHROMIUM``). Without one those tests skip, unless ``HOPGYM_REQUIRE_CHROMIUM=1`` (CI, whose
``.ci/run`` installs it), which turns the skip into a failure."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hopgym.benchmarks.viewer.chromium import Browser, find_chromium

REQUIRE_ENV = "HOPGYM_REQUIRE_CHROMIUM"


def chromium_or_skip() -> str:
    executable = find_chromium()
    if executable is not None:
        return executable
    reason = "no chromium on the PATH: apt-get install -y chromium (or set HOPGYM_CHROMIUM=/path/to/chrome)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser(chromium_or_skip()) as running:
        yield running
