"""The package-dir mapping: every subpackage is listed, and a built wheel imports from anywhere."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_folder_with_init_is_a_listed_package() -> None:
    setuptools_cfg = _pyproject()["tool"]["setuptools"]
    listed = set(setuptools_cfg["packages"])
    mapping: dict[str, str] = setuptools_cfg["package-dir"]
    found = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            if any(part.startswith((".", "__")) for part in rel.parts):
                continue
            nested = [p for p, f in mapping.items() if p != package and (ROOT / f) == init.parent]
            found.add(nested[0] if nested else ".".join([package, *rel.parts]))
    assert found == listed, f"pyproject packages differ: missing {found - listed}, stale {listed - found}"


@pytest.mark.slow
def test_built_wheel_imports_from_another_directory(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("hopgym-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "hopgym/py.typed" in names
    assert "hopgym/envs/core.py" in names and "hopgym/retrievers/base.py" in names
    assert any(n.startswith("hopgym/envs/protocols/templates/") for n in names)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True)  # fmt: skip
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r}); import hopgym, hopgym.envs, hopgym.retrievers.base;"
        "import hopgym.agents, hopgym.trainers, hopgym.benchmarks;"
        "print(hopgym.envs.__file__); env = hopgym.make('hopgym/HopWorld-v0'); env.reset(seed=1); env.close()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    assert out.stdout.strip().startswith(str(site)), out.stdout
