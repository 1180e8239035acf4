"""``KEY=VALUE`` options into frozen config dataclasses: one parser, one type check, one router.

Backends and commands take flat options (``--option k1=1.2``, ``load_retriever(spec, n_threads=2)``) and
turn them into frozen dataclasses. This module does that once for all of them:

- :func:`parse_key_values` reads ``KEY=VALUE`` strings (values are JSON when they parse, else text);
- :func:`check_fields` checks (and normalizes) every field of a dataclass instance against its annotation,
  for ``__post_init__``: ``int`` rejects booleans and fractions, ``float`` takes ints and must be finite,
  ``Literal`` lists its choices, ``tuple[X, ...]`` takes a list or a comma-separated string, and text from a
  command line is converted (``"2"`` for an int, ``"true"`` for a bool, ``"null"`` for an optional);
- :func:`split_options` routes a flat mapping to the dataclasses whose fields it names, and
  :func:`config_from_options` builds one dataclass from it; an unknown key is an error listing the valid ones.

Errors are :class:`~hopgym.errors.ConfigError` naming the field, the value and a valid example. Range checks
(``k1 >= 0``) stay in each class's ``__post_init__``, after ``check_fields``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from hopgym.errors import ConfigError

__all__ = ["check_fields", "config_from_options", "field_names", "parse_key_values", "split_options"]

C = TypeVar("C")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NULL = {"null", "none"}


def parse_key_values(pairs: Sequence[str] | None, *, flag: str, example: str) -> dict[str, Any]:
    """``["k1=1.2", "stemmer=null"]`` -> ``{"k1": 1.2, "stemmer": None}``; non-JSON values stay strings."""
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} {pair!r}: expected KEY=VALUE, e.g. {flag} {example}")
        try:
            values[key] = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            values[key] = raw
        except ValueError:  # e.g. an integer literal over Python's digit limit
            raise ConfigError(f"{flag} {pair!r}: the value is too large; e.g. {flag} {example}") from None
    return values


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def field_names(cls: type) -> frozenset[str]:
    """The init fields of dataclass ``cls``."""
    return frozenset(f.name for f in dataclasses.fields(cls) if f.init)


class _Mismatch(Exception):
    """The value does not fit the annotation; ``expected`` says what would."""

    def __init__(self, expected: str, example: str) -> None:
        super().__init__(expected)
        self.expected = expected
        self.example = example


def _describe(hint: Any) -> tuple[str, str]:
    """(what a value of ``hint`` is, an example written as KEY=VALUE text)."""
    origin = typing.get_origin(hint)
    if hint is bool:
        return "true or false", "true"
    if hint is int:
        return "an integer", "4"
    if hint is float:
        return "a finite number", "0.5"
    if hint is str:
        return "a string", "text"
    if hint is Path:
        return "a path", "path/to/file"
    if origin is Literal:
        choices = [str(a) for a in typing.get_args(hint)]
        return "one of " + ", ".join(choices), choices[0]
    if origin is tuple:
        args = typing.get_args(hint)
        inner, example = _describe(args[0]) if args else ("a value", "a")
        return f"a list of {inner} (comma-separated)", f"{example},{example}"
    if origin in (Union, types.UnionType):
        parts = [_describe(a) for a in typing.get_args(hint) if a is not type(None)]
        nullable = type(None) in typing.get_args(hint)
        text = " or ".join(p[0] for p in parts) + (" or null" if nullable else "")
        return text, parts[0][1] if parts else "null"
    name = getattr(hint, "__name__", str(hint))
    return f"a {name}", name


def _convert(hint: Any, value: Any, *, text: bool) -> Any:
    """``value`` as a ``hint``; with ``text`` strings from a command line are parsed too."""
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return value
    if hint is type(None):
        if value is None or (text and isinstance(value, str) and value.strip().lower() in _NULL):
            return None
        raise _Mismatch("null", "null")
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        # An empty string is a real value for a text field (an empty prefix), and "unset" for the others.
        null_words = _NULL if str in args else _NULL | {""}
        if type(None) in args and (
            value is None or (text and isinstance(value, str) and value.strip().lower() in null_words)
        ):
            return None
        # Exact types first, so "2" stays a string for ``str | int``.
        for lenient in (False, True) if text else (False,):
            for arg in args:
                if arg is type(None) and not lenient:
                    continue
                try:
                    return _convert(arg, value, text=lenient)
                except _Mismatch:
                    continue
        raise _Mismatch(*_describe(hint))
    if origin is Literal:
        choices = typing.get_args(hint)
        if any(value == c and type(value) is type(c) for c in choices):
            return value
        raise _Mismatch(*_describe(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if text and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(*_describe(hint))
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, text=text) for v in value)
        if args and len(args) != len(value):
            raise _Mismatch(*_describe(hint))
        return (
            tuple(_convert(a, v, text=text) for a, v in zip(args, value, strict=True))
            if args
            else tuple(value)
        )
    if hint is bool:
        if isinstance(value, bool):
            return value
        if text and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _Mismatch(*_describe(hint))
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if text and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise _Mismatch(*_describe(hint))
    if hint is float:
        number: Any = value
        if text and isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise _Mismatch(*_describe(hint)) from None
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise _Mismatch(*_describe(hint))
        return float(number)
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise _Mismatch(*_describe(hint))
    if hint is Path:
        if isinstance(value, (str, os.PathLike)):
            return Path(value)
        raise _Mismatch(*_describe(hint))
    check_type = origin if isinstance(origin, type) else hint
    if isinstance(check_type, type) and not getattr(check_type, "_is_protocol", False):
        if isinstance(value, check_type):
            return value
        raise _Mismatch(*_describe(hint))
    return value  # annotations this module does not model (callables, protocols) are left to the class


def _error(owner: str, name: str, value: Any, mismatch: _Mismatch) -> ConfigError:
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    return ConfigError(
        f"{owner}{name} must be {mismatch.expected}, got {shown}; e.g. {name}={mismatch.example}"
    )


def check_fields(instance: Any, *, owner: str | None = None, skip: Collection[str] = ()) -> None:
    """Check every field of the dataclass ``instance`` against its annotation, normalizing in place.

    For a frozen dataclass's ``__post_init__``. Text is accepted where a number, bool or null is expected
    (options arrive as text). ``owner`` prefixes field names in messages (default: the class name and a dot);
    ``skip`` leaves fields the class checks itself.
    """
    cls = type(instance)
    prefix = f"{cls.__name__}." if owner is None else owner
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        value = getattr(instance, f.name)
        try:
            converted = _convert(hints[f.name], value, text=True)
        except _Mismatch as mismatch:
            raise _error(prefix, f.name, value, mismatch) from None
        if converted is not value:
            object.__setattr__(instance, f.name, converted)


def split_options(
    options: Mapping[str, Any],
    *classes: type,
    what: str,
    fixed: Collection[str] = (),
    fixed_hint: str = "",
) -> list[dict[str, Any]]:
    """Route flat ``options`` to the dataclasses whose fields they name: one dict per class, in order.

    An unknown key is a ConfigError listing the valid ones; a key in ``fixed`` (known elsewhere, e.g. set when
    an index was built) gets ``fixed_hint`` instead.
    """
    known = [field_names(cls) for cls in classes]
    valid = frozenset().union(*known)
    unknown = sorted(set(options) - valid)
    if unknown:
        frozen = [key for key in unknown if key in fixed]
        if frozen and fixed_hint:
            raise ConfigError(f"{', '.join(frozen)} cannot change {fixed_hint}")
        raise ConfigError(
            f"unknown {what} option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(valid))}"
        )
    return [{k: v for k, v in options.items() if k in names} for names in known]


def config_from_options(cls: type[C], options: Mapping[str, Any], *, what: str, base: C | None = None) -> C:
    """Build dataclass ``cls`` from flat options (over ``base``'s values when given); unknown keys are an error.

    Values are converted from text to the fields' types here, so a class without :func:`check_fields` in its
    ``__post_init__`` still gets typed values.
    """
    (values,) = split_options(options, cls, what=what)
    hints = _hints(cls)
    converted: dict[str, Any] = {}
    for name, value in values.items():
        try:
            converted[name] = _convert(hints[name], value, text=True)
        except _Mismatch as mismatch:
            raise _error(f"{what} option ", name, value, mismatch) from None
    if base is not None:
        return dataclasses.replace(base, **converted)  # type: ignore[type-var]
    return cls(**converted)
