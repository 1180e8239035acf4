"""The error tree drawn in hopgym.errors' docstring is the real one, and every hopgym error is in it."""

from __future__ import annotations

import re

import pytest

import hopgym.errors as errors_module
from hopgym.errors import HopgymError, PolicyError, VLLMServerError

_ROW = re.compile(r"^(?P<indent>[\s│├└─]*?)(?P<name>[A-Z]\w+)(?: \[(?P<builtin>[^\]]+)\])?(?:\s|$)")


def _drawn_tree() -> dict[str, tuple[str | None, str | None]]:
    """name -> (drawn parent, drawn built-in base), read from the box drawing in the docstring."""
    doc = errors_module.__doc__ or ""
    drawing = doc.split("::", 1)[1].split("\n\n")[1]
    stack: list[tuple[int, str]] = []
    tree: dict[str, tuple[str | None, str | None]] = {}
    for line in drawing.splitlines():
        match = _ROW.match(line.strip("\n")[4:])
        assert match, f"unreadable tree row {line!r}"
        depth = len(match["indent"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        tree[match["name"]] = (stack[-1][1] if stack else None, match["builtin"])
        stack.append((depth, match["name"]))
    return tree


def _error_classes() -> dict[str, type[BaseException]]:
    return {
        name: obj
        for name in errors_module.__all__
        if isinstance(obj := getattr(errors_module, name), type) and issubclass(obj, BaseException)
    }


def test_every_error_class_is_drawn_with_its_real_bases() -> None:
    tree = _drawn_tree()
    classes = _error_classes()
    assert set(tree) == set(classes)
    for name, cls in classes.items():
        parent, builtin = tree[name]
        bases = [b.__name__ for b in cls.__bases__]
        if parent is None:
            assert cls is HopgymError
            continue
        # "[gymnasium InvalidAction, TypeError]": the other bases, a package name allowed before each.
        others = [b.strip().split()[-1].rsplit(".", 1)[-1] for b in builtin.split(",")] if builtin else []
        drawn = [parent, *others]
        assert sorted(bases) == sorted(drawn), f"{name}: drawn as {drawn}, derives from {bases}"


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("hopgym.agents.errors", "PolicyError"),
        ("hopgym.agents.errors", "PolicyTimeout"),
        ("hopgym.agents.errors", "PolicyUnavailable"),
        ("hopgym.agents.errors", "PolicyRequestError"),
        ("hopgym.testing.vllm_server", "VLLMServerError"),
    ],
)
def test_old_import_paths_give_the_classes_of_the_tree(module: str, name: str) -> None:
    import importlib

    assert getattr(importlib.import_module(module), name) is getattr(errors_module, name)


def test_vllm_server_error_is_a_policy_error() -> None:
    assert issubclass(VLLMServerError, PolicyError) and issubclass(VLLMServerError, HopgymError)
