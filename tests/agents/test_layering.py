"""agents sits above envs: retriever sharing is the env pool's job, so no agents module imports retrievers."""

from __future__ import annotations

import ast
from pathlib import Path

import hopgym.agents

AGENTS = Path(hopgym.agents.__file__).parent


def test_no_agents_module_imports_retrievers() -> None:
    offenders = []
    for path in sorted(AGENTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            )  # fmt: skip
            offenders += [
                f"{path.relative_to(AGENTS)}: {n}" for n in names if n.startswith("hopgym.retrievers")
            ]
    assert len(list(AGENTS.rglob("*.py"))) > 10 and offenders == []
