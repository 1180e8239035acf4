"""Named registries (protocols, rewards, retriever backends) and the one ``"module:attr"`` resolver.

A :class:`Registry` maps names to objects or to lazy ``"package.module:attribute"`` references, which are
imported on first :meth:`~Registry.get` so heavy backends stay unimported until used. Every string reference
in hopgym (registry entries, env core factories) is resolved by :func:`resolve_ref`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from hopgym.errors import ConfigError

__all__ = ["Registry", "is_ref", "resolve_ref"]

T = TypeVar("T")


def is_ref(value: object) -> bool:
    """True for a string shaped like ``"package.module:attribute"``."""
    if not isinstance(value, str):
        return False
    module, sep, attr = value.partition(":")
    return bool(sep) and _dotted(module) and _dotted(attr)


def _dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def resolve_ref(ref: str, *, what: str = "reference") -> object:
    """Import ``"package.module:attribute"`` (the attribute may be dotted, ``"mod:Class.method"``).

    A malformed reference, a missing module or a missing attribute is a ConfigError naming ``what`` and the
    reference. An ImportError raised *inside* the module (e.g. a missing optional dependency) propagates as is,
    so its install hint reaches the user.
    """
    if not is_ref(ref):
        raise ConfigError(f"{what} {ref!r} must look like 'package.module:attribute'")
    module_name, _, attr_path = ref.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ConfigError(
                f"{what} {ref!r}: module {module_name!r} not found (is its package installed?)"
            ) from exc
        raise
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{what} {ref!r}: {module_name!r} has no attribute {attr_path!r}") from None
    return obj


class Registry(Generic[T]):
    """Names to objects of one kind, registered eagerly or as lazy ``"module:attr"`` references.

    ``check(name, obj)`` validates an entry (raising ConfigError) and returns it typed; it runs when an object
    is registered and when a reference is first resolved. ``protected`` names cannot be replaced, not even
    with ``replace=True``. ``name_rule`` (a predicate and its description) restricts the names accepted.
    """

    def __init__(
        self,
        kind: str,
        check: Callable[[str, object], T],
        *,
        protected: Iterable[str] = (),
        name_rule: tuple[Callable[[str], bool], str] | None = None,
        register_hint: str = "",
    ) -> None:
        self.kind = kind
        self._check = check
        self._entries: dict[str, T | str] = {}
        self._protected = frozenset(protected)
        self._name_rule = name_rule
        self._register_hint = register_hint

    def register(self, name: str, obj: T | str, *, replace: bool = False) -> None:
        """Make ``get(name)`` return ``obj`` (or the object a ``"module:attr"`` string names, imported then).

        Raises ConfigError for a bad name, an invalid object, or a taken name unless ``replace``.
        """
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ConfigError(
                f"{self.kind} name must be a non-empty string without spaces around it, got {name!r}"
            )
        if self._name_rule is not None and not self._name_rule[0](name):
            raise ConfigError(f"{self.kind} name {name!r} must be {self._name_rule[1]}")
        if name in self._protected and name in self._entries:
            raise ConfigError(
                f"{self.kind} {name!r} is built in and cannot be replaced; register under another name"
            )
        if name in self._entries and not replace:
            raise ConfigError(f"{self.kind} {name!r} is already registered; pass replace=True to replace it")
        if isinstance(obj, str):
            if not is_ref(obj):
                raise ConfigError(
                    f"{self.kind} {name!r}: the string {obj!r} is not a 'package.module:attribute' reference"
                )
            self._entries[name] = obj
        else:
            self._entries[name] = self._check(name, obj)

    def get(self, name: str) -> T:
        """The entry registered as ``name`` (a reference is imported and checked once, then cached)."""
        try:
            entry = self._entries[name]
        except (KeyError, TypeError):
            hint = f" (or add yours with {self._register_hint})" if self._register_hint else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}; valid names: {', '.join(self._entries)}{hint}"
            ) from None
        if isinstance(entry, str):
            resolved = self._check(name, resolve_ref(entry, what=f"{self.kind} {name!r}"))
            self._entries[name] = resolved
            return resolved
        return entry

    def unregister(self, name: str) -> None:
        """Remove a registration (plugins and tests undoing theirs); built-in protected names stay."""
        if name in self._protected:
            raise ConfigError(f"{self.kind} {name!r} is built in and cannot be removed")
        if self._entries.pop(name, None) is None:
            raise ConfigError(f"{self.kind} {name!r} is not registered")

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order (built-ins first)."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={list(self._entries)})"
