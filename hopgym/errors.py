"""The hopgym exception tree: catch ``HopgymError`` for everything the library raises on purpose."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "DependencyNotInstalledError",
    "HopgymError",
    "RetrieverError",
    "RetrieverTimeout",
    "RetrieverUnavailable",
]


class HopgymError(Exception):
    """Base class of every error hopgym raises deliberately."""


class ConfigError(HopgymError, ValueError):
    """A configuration value is wrong. The message states the field, the cause and the fix."""


class DataError(HopgymError, ValueError):
    """Input data is malformed. The message names the file, the line and the field when it knows them."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path is not None and line is not None else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")


class RetrieverError(HopgymError):
    """A retriever failed in a way that is not the agent's fault."""


class RetrieverTimeout(RetrieverError, TimeoutError):
    """A retriever call did not finish within its time limit (after the bounded retries)."""


class RetrieverUnavailable(RetrieverError, ConnectionError):
    """A retriever could not be reached (after the bounded retries)."""


class DependencyNotInstalledError(HopgymError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, *, purpose: str = "") -> None:
        self.package = package
        self.extra = extra
        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"{package} is needed{what} but is not installed. Install it with: pip install 'hopgym[{extra}]'"
        )


def require(module: str, *, extra: str, purpose: str = "") -> object:
    """Import an optional dependency or raise DependencyNotInstalledError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyNotInstalledError(module.split(".")[0], extra, purpose=purpose) from exc
