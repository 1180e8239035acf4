"""Without a browser the viewer's browser test skips, and fails under HOPGYM_REQUIRE_CHROMIUM=1 (CI).
Runs pytest on the browser test with ``HOPGYM_CHROMIUM`` pointing at a browser that does not exist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BROWSER_TEST = "tests/benchmarks/viewer/test_browser.py::test_html_in_a_trajectory_is_shown_as_text"


def _pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "HOPGYM_REQUIRE_CHROMIUM"}
    environ.update(env, HOPGYM_CHROMIUM=str(tmp_path / "no-such-chromium"))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", BROWSER_TEST],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_missing_chromium_skips(tmp_path: Path) -> None:
    proc = _pytest(tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "1 skipped" in proc.stdout and "apt-get install -y chromium" in proc.stdout


def test_missing_chromium_fails_when_required(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, HOPGYM_REQUIRE_CHROMIUM="1")
    assert proc.returncode == 1, proc.stdout[-2000:]
    # The browser fixture fails, so pytest reports the test as an error (exit status 1), never a skip.
    assert "1 error" in proc.stdout and "HOPGYM_REQUIRE_CHROMIUM=1 but no chromium" in proc.stdout
