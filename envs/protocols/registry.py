"""Protocols by name: the built-in four plus any registered by users or plugins (a :class:`Registry`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hopgym.envs.protocols.base import ActionProtocol
from hopgym.envs.protocols.baselines import BASELINE_PROTOCOLS
from hopgym.envs.protocols.r1_searcher import R1SearcherProtocol
from hopgym.envs.protocols.research import ReSearchProtocol
from hopgym.envs.protocols.search_r1 import SearchR1Protocol
from hopgym.envs.protocols.tool_call import ToolCallProtocol
from hopgym.errors import ConfigError
from hopgym.registry import Registry

__all__ = [
    "PROTOCOLS",
    "PROTOCOL_NAMES",
    "ProtocolFactory",
    "available_protocols",
    "get_protocol",
    "register_protocol",
]

#: A callable taking keyword overrides and returning a protocol.
ProtocolFactory = Callable[..., ActionProtocol]


def _callable_factory(name: str, factory: object) -> ProtocolFactory:
    if not callable(factory):
        raise ConfigError(f"factory for protocol {name!r} must be callable, got {type(factory).__name__}")
    return factory


#: Protocol factories by name; entries may be lazy ``"module:attr"`` references.
PROTOCOLS: Registry[ProtocolFactory] = Registry(
    "protocol", _callable_factory, register_hint="register_protocol"
)
# from_files takes the dataclass fields plus prompt_file / system_file / invalid_file.
PROTOCOLS.register("search_r1", SearchR1Protocol.from_files)
PROTOCOLS.register("research", ReSearchProtocol.from_files)
PROTOCOLS.register("r1_searcher", R1SearcherProtocol.from_files)
PROTOCOLS.register("tool_call", ToolCallProtocol.from_files)

#: The built-in protocols (``available_protocols()`` also lists registered ones).
PROTOCOL_NAMES: tuple[str, ...] = PROTOCOLS.names()
# The seed papers' baselines (hopgym eval --method): registered, but not agent protocols, so not above.
for _name, _baseline in BASELINE_PROTOCOLS.items():
    PROTOCOLS.register(_name, _baseline.from_files)


def available_protocols() -> tuple[str, ...]:
    """Every protocol name ``get_protocol`` accepts, built-ins first."""
    return PROTOCOLS.names()


def register_protocol(name: str, factory: ProtocolFactory | str, *, replace: bool = False) -> None:
    """Make ``get_protocol(name, **overrides)`` call ``factory(**overrides)`` (a ``"module:attr"`` string is
    imported on first use).

    Raises ConfigError for an empty name, a non-callable factory, or a taken name unless ``replace``.
    """
    PROTOCOLS.register(name, factory, replace=replace)


def get_protocol(name: str, **overrides: Any) -> ActionProtocol:
    """Build the protocol registered as ``name`` with keyword ``overrides`` (for built-ins: template texts,
    ``prompt_file`` / ``system_file`` / ``invalid_file``, and protocol options such as ``answer_tool``).
    """
    protocol = PROTOCOLS.get(name)(**overrides)
    if not isinstance(protocol, ActionProtocol):
        raise ConfigError(
            f"the factory registered as {name!r} returned {type(protocol).__name__}, not an ActionProtocol"
        )
    return protocol
