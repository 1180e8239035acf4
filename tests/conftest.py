"""Suite-wide options and the one way tests reach the real datasets.

Slow tests are skipped unless --run-slow (CI passes it).

Real data: tests whose point is real data (a recall floor on HotpotQA, the NQ-open file format, a seed
project's corpus sample) ask the ``shared_data`` fixture for a file: ``shared_data("nq",
"NQ-open.dev.jsonl")``. The files live under ``../shared/data`` beside the checkout, or wherever
``HOPGYM_SHARED_DATA`` points. Without them such a test is skipped, and one line at the end of the run says
how to get them; with ``HOPGYM_REQUIRE_DATA=1`` (CI) a missing file is an error instead. Tests that only
need *a* corpus or task file use generated HopWorld data and always run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA_ENV = "HOPGYM_SHARED_DATA"
REQUIRE_DATA_ENV = "HOPGYM_REQUIRE_DATA"
# Every skip for missing real data carries this tag; the terminal summary counts them by it.
_MISSING_DATA_TAG = "[needs real data]"


def shared_data_root() -> Path:
    """``$HOPGYM_SHARED_DATA``, else ``../shared/data`` next to the repository."""
    configured = os.environ.get(SHARED_DATA_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


class SharedData:
    """Paths to the real datasets: calling it with a relative path returns that file, or skips the test
    (fails it with HOPGYM_REQUIRE_DATA=1) when the file is not there."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        if path.exists():
            return path
        reason = f"{_MISSING_DATA_TAG} {path} not found"
        if os.environ.get(REQUIRE_DATA_ENV) == "1":
            pytest.fail(f"{REQUIRE_DATA_ENV}=1 but {reason}; set {SHARED_DATA_ENV} to the data folder")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> SharedData:
    """The real datasets (see the module docstring)."""
    return SharedData(shared_data_root())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or config.getoption("-m"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    missing = [r for r in terminalreporter.stats.get("skipped", []) if _MISSING_DATA_TAG in _skip_reason(r)]
    if missing:
        terminalreporter.write_line(
            f"{len(missing)} test(s) skipped for lack of the real datasets (HotpotQA dev/corpus, NQ-open dev, "
            f"a Search-R1 corpus sample) under {shared_data_root()}: get them as the README's 'Tests and data' "
            f"says and set {SHARED_DATA_ENV}=DIR if they live elsewhere",
            yellow=True,
        )
