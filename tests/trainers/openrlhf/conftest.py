"""OpenRLHF 0.11.2's own code, run on CPU: its ``train_ppo_ray`` argument parser and checks, its rollout actor.

``openrlhf/cli/train_ppo_ray.py`` builds its parser, parses ``sys.argv`` and checks the arguments inside
``if __name__ == "__main__":``, then calls ``train(args)``, which needs GPUs. :func:`parse_train_ppo_ray`
runs exactly that block (read from the installed file with ``ast``) with ``train`` replaced by a function that
returns the parsed arguments, so a command is checked by OpenRLHF's own parser and assertions.

Without OpenRLHF these tests skip, unless ``HOPGYM_REQUIRE_OPENRLHF=1`` (CI), which turns the skip into a
failure.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

OPENRLHF_VERSION = "0.11.2"
REQUIRE_ENV = "HOPGYM_REQUIRE_OPENRLHF"


def openrlhf_root() -> Path:
    """The installed OpenRLHF package directory; skips (or fails in CI) without OpenRLHF 0.11.2."""
    try:
        version = importlib.metadata.version("openrlhf")
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version != OPENRLHF_VERSION:
        reason = f"needs openrlhf=={OPENRLHF_VERSION} (pip install --no-deps), found {version}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1: {reason}")
        pytest.skip(reason)
    spec = importlib.util.find_spec("openrlhf")
    assert spec is not None and spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations)))


def _main_block(source: str) -> ast.Module:
    tree = ast.parse(source)
    for node in tree.body:
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
        ):
            return ast.Module(body=node.body, type_ignores=[])
    raise AssertionError("train_ppo_ray.py has no `if __name__ == '__main__':` block")


class _Parsed(Exception):
    def __init__(self, args: Any) -> None:
        self.args_namespace = args


def parse_train_ppo_ray(argv: list[str]) -> SimpleNamespace:
    """OpenRLHF's parsed and checked arguments for ``argv`` (argparse errors raise SystemExit)."""
    path = openrlhf_root() / "cli" / "train_ppo_ray.py"
    code = compile(_main_block(path.read_text(encoding="utf-8")), str(path), "exec")

    def train(args: Any) -> None:
        raise _Parsed(args)

    namespace: dict[str, Any] = {
        "argparse": argparse,
        "datetime": datetime.datetime,
        "os": os,
        "train": train,
    }
    saved = sys.argv
    sys.argv = ["train_ppo_ray.py", *argv]
    try:
        exec(code, namespace)
    except _Parsed as parsed:
        return parsed.args_namespace  # type: ignore[no-any-return]
    finally:
        sys.argv = saved
    raise AssertionError("train_ppo_ray's main block returned without calling train(args)")


@pytest.fixture(scope="session")
def parse_args() -> Any:
    """:func:`parse_train_ppo_ray` (skips, or fails in CI, without OpenRLHF 0.11.2)."""
    openrlhf_root()
    return parse_train_ppo_ray
