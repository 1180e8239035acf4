"""The suite's real-data switch: a missing dataset skips with one summary line, or fails under
HOPGYM_REQUIRE_DATA=1 (CI). Runs pytest on one real-data test with the data root pointed at an empty folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA_TEST = "tests/envs/test_tasks.py::test_mixed_keeps_data_source"


def _pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("HOPGYM_REQUIRE_DATA", "HOPGYM_SHARED_DATA")}
    environ.update(env, HOPGYM_SHARED_DATA=str(tmp_path / "empty"))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", REAL_DATA_TEST],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_missing_real_data_skips_with_one_summary_line(tmp_path: Path) -> None:
    proc = _pytest(tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "1 skipped" in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if "skipped for lack of the real datasets" in line]
    assert len(lines) == 1 and "HOPGYM_SHARED_DATA" in lines[0] and str(tmp_path / "empty") in lines[0]


def test_missing_real_data_fails_when_required(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, HOPGYM_REQUIRE_DATA="1")
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "1 failed" in proc.stdout
    assert "HOPGYM_REQUIRE_DATA=1 but [needs real data]" in proc.stdout
