"""`import hopgym` (and the env layer) must not pull heavy dependencies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ["torch", "vllm", "faiss", "elasticsearch", "transformers", "sentence_transformers", "bm25s", "numba",
         "fastapi", "uvicorn", "pyarrow"]  # fmt: skip


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out))


def test_import_hopgym_is_light() -> None:
    assert not _loaded_after("import hopgym") & set(HEAVY)


def test_env_layer_and_hopworld_are_light() -> None:
    statement = "import hopgym; env = hopgym.make('hopgym/HopWorld-v0'); env.reset(seed=0); env.close()"
    assert not _loaded_after(statement) & set(HEAVY)


def test_retriever_modules_import_without_heavy_deps() -> None:
    statement = "import hopgym.retrievers.corpus, hopgym.retrievers.manifest, hopgym.retrievers.base"
    assert not _loaded_after(statement) & set(HEAVY)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter (registration state must not leak in from this test process)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("env_id", ["hopgym/HopWorld-v0", "hopgym:hopgym/HopWorld-v0"])
def test_gymnasium_make_works_after_import_hopgym(env_id: str) -> None:
    # Both spellings the README promises; before the fix, import hopgym registered nothing (NamespaceNotFound).
    prelude = "import gymnasium as gym; import hopgym; " if ":" not in env_id else "import gymnasium as gym; "
    code = prelude + (
        f"env = gym.make({env_id!r}); obs, info = env.reset(seed=0); "
        "assert info['question'] in obs, obs; env.close(); print('ok')"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_import_hopgym_registers_ids_without_loading_the_env_core() -> None:
    code = (
        "import sys, gymnasium, hopgym; "
        "ids = sorted(i for i in gymnasium.registry if i.startswith('hopgym/')); "
        "loaded = sorted(m for m in sys.modules if m.startswith('hopgym.')); "
        "import json; print(json.dumps([ids, loaded]))"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    ids, loaded = json.loads(result.stdout)
    assert "hopgym/HopWorld-v0" in ids and "hopgym/SearchQA-v0" in ids
    assert not {"hopgym.envs.core", "hopgym.envs.sync_env", "hopgym.retrievers"} & set(loaded)


def test_version_matches_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")
    from hopgym import __version__

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert __version__ == tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]


def test_retrievers_face_exports_the_contract_loader_and_wrappers_lazily() -> None:
    code = (
        "import sys, json, hopgym.retrievers as r; "
        "before = sorted(m for m in sys.modules if m.startswith('hopgym.retrievers')); "
        "missing = [n for n in r.__all__ if getattr(r, n, None) is None]; "
        "print(json.dumps([before, missing]))"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    before, missing = json.loads(result.stdout)
    assert before == ["hopgym.retrievers", "hopgym.retrievers.base"]
    assert missing == []
    from hopgym import retrievers
    from hopgym.retrievers.wrappers.batching import MicroBatchingRetriever

    assert retrievers.MicroBatchingRetriever is MicroBatchingRetriever
    assert {
        "Retriever",
        "Passage",
        "load_retriever",
        "CachedRetriever",
        "TimeoutRetriever",
        "HybridRetriever",
    } <= set(retrievers.__all__)


def test_import_contracts_hold(tmp_path: Path) -> None:
    """The [tool.importlinter] contracts (also run by .ci/run) over the installed layout of the package."""
    pytest.importorskip("importlinter")
    root = Path(__file__).resolve().parents[2]
    package = tmp_path / "hopgym"
    package.mkdir()
    for entry in (root / "hopgym").iterdir():
        (package / entry.name).symlink_to(entry)
    for sub in ("envs", "agents", "trainers", "retrievers", "benchmarks"):
        (package / sub).symlink_to(root / sub)
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache", "--no-logo", str(root / "pyproject.toml")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module", ["hopgym", "hopgym.envs", "hopgym.retrievers"])
def test_every_exported_name_resolves(module: str) -> None:
    # Lazy faces list names they import on first use; a name whose module moved must fail here, not for a user.
    import importlib

    face = importlib.import_module(module)
    assert [name for name in face.__all__ if getattr(face, name, None) is None] == []
