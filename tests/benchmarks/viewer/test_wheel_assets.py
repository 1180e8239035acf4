"""The viewer's HTML/JS/CSS are package data: a built wheel, installed elsewhere, renders a page."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ASSETS = ("template.html", "viewer.js", "viewer.css")


@pytest.mark.slow
def test_installed_wheel_renders_the_viewer(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("hopgym-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"hopgym/benchmarks/viewer/assets/{a}" for a in ASSETS} <= names
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
    )
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r}); from hopgym.benchmarks.viewer import render_page, page;"
        "html = render_page({'episodes': [], 'passages': [], 'run': {}}, title='t');"
        "print(page.__file__); print('hopgymViewer' in html and '.row {' in html)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    where, ok = out.stdout.split()
    assert where.startswith(str(site)) and ok == "True", out.stdout
