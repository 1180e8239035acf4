"""`import hopgym` (and the env layer) must not pull heavy dependencies."""

from __future__ import annotations

import json
import subprocess
import sys

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
