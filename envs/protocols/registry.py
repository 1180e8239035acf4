"""Protocols by name: the built-in four plus any registered by users or plugins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hopgym.envs.protocols.base import ActionProtocol
from hopgym.envs.protocols.r1_searcher import R1SearcherProtocol
from hopgym.envs.protocols.research import ReSearchProtocol
from hopgym.envs.protocols.search_r1 import SearchR1Protocol
from hopgym.envs.protocols.tool_call import ToolCallProtocol
from hopgym.errors import ConfigError

__all__ = ["PROTOCOL_NAMES", "ProtocolFactory", "available_protocols", "get_protocol", "register_protocol"]

#: A callable taking keyword overrides and returning a protocol.
ProtocolFactory = Callable[..., ActionProtocol]

#: The built-in protocols (``available_protocols()`` also lists registered ones).
PROTOCOL_NAMES: tuple[str, ...] = ("search_r1", "research", "r1_searcher", "tool_call")

# from_files takes the dataclass fields plus prompt_file / system_file / invalid_file.
_REGISTRY: dict[str, ProtocolFactory] = {
    "search_r1": SearchR1Protocol.from_files,
    "research": ReSearchProtocol.from_files,
    "r1_searcher": R1SearcherProtocol.from_files,
    "tool_call": ToolCallProtocol.from_files,
}


def available_protocols() -> tuple[str, ...]:
    """Every protocol name ``get_protocol`` accepts, built-ins first."""
    return tuple(_REGISTRY)


def register_protocol(name: str, factory: ProtocolFactory, *, replace: bool = False) -> None:
    """Make ``get_protocol(name, **overrides)`` call ``factory(**overrides)``.

    Raises ConfigError for an empty name, a non-callable factory, or a taken name unless ``replace``.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"protocol name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise ConfigError(f"factory for protocol {name!r} must be callable, got {type(factory).__name__}")
    if name in _REGISTRY and not replace:
        raise ConfigError(f"protocol {name!r} is already registered; pass replace=True to override it")
    _REGISTRY[name] = factory


def get_protocol(name: str, **overrides: Any) -> ActionProtocol:
    """Build the protocol registered as ``name`` with keyword ``overrides`` (for built-ins: template texts,
    ``prompt_file`` / ``system_file`` / ``invalid_file``, and protocol options such as ``answer_tool``).
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        valid = ", ".join(_REGISTRY)
        raise ConfigError(f"unknown protocol {name!r}; valid names: {valid}")
    protocol = factory(**overrides)
    if not isinstance(protocol, ActionProtocol):
        raise ConfigError(
            f"the factory registered as {name!r} returned {type(protocol).__name__}, not an ActionProtocol"
        )
    return protocol
