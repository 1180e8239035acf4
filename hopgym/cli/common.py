"""Helpers shared by CLI subcommands."""

from __future__ import annotations

import json
from typing import Any

from hopgym.errors import ConfigError


def parse_key_values(pairs: list[str] | None, *, flag: str, example: str) -> dict[str, Any]:
    """``["k1=1.2", "stemmer=null"]`` -> ``{"k1": 1.2, "stemmer": None}``; non-JSON values stay strings."""
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} {pair!r}: expected KEY=VALUE, e.g. {flag} {example}")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return values


def parse_env_kwargs(pairs: list[str] | None) -> dict[str, Any]:
    """``--env-arg`` values as env kwargs."""
    return parse_key_values(pairs, flag="--env-arg", example="max_turns=4")


def add_env_arguments(parser: Any, *, default_env: str = "hopgym/HopWorld-v0") -> None:
    parser.add_argument("--env", default=default_env, help=f"environment id (default: {default_env})")
    parser.add_argument(
        "--env-arg",
        action="append",
        metavar="KEY=VALUE",
        help="extra env kwarg (repeatable), e.g. protocol=research",
    )
