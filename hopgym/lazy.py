"""Lazy package faces: names a package exports but imports only on first use (PEP 562).

Every face (``hopgym``, ``hopgym.envs``, ``hopgym.agents``, ``hopgym.retrievers``, ...) keeps heavy modules out
of its own import this way, so they share this one mechanism instead of each writing its ``__getattr__``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps an exported name to the module
    that defines it (absolute, or relative to ``package`` when it starts with a dot). A loaded name is stored
    in the package, so later lookups do not come back here."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        vars(importlib.import_module(package))[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(names))

    return __getattr__, __dir__
