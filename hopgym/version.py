"""The package version, in a module that imports nothing (the index manifest and ``hopgym --version`` read it)."""

from __future__ import annotations

__all__ = ["__version__"]

#: Kept equal to ``[project] version`` in pyproject.toml (tests/hopgym/test_import_light.py checks).
__version__ = "0.1.0"
