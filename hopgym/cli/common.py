"""Helpers shared by CLI subcommands."""

from __future__ import annotations

import json
from typing import Any

from hopgym.errors import ConfigError


def parse_env_kwargs(pairs: list[str] | None) -> dict[str, Any]:
    """``["max_turns=4", "protocol=research"]`` -> kwargs; values are JSON when they parse, else strings."""
    kwargs: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env-arg {pair!r}: expected KEY=VALUE, e.g. --env-arg max_turns=4")
        try:
            kwargs[key] = json.loads(raw)
        except json.JSONDecodeError:
            kwargs[key] = raw
    return kwargs


def add_env_arguments(parser: Any, *, default_env: str = "hopgym/HopWorld-v0") -> None:
    parser.add_argument("--env", default=default_env, help=f"environment id (default: {default_env})")
    parser.add_argument(
        "--env-arg",
        action="append",
        metavar="KEY=VALUE",
        help="extra env kwarg (repeatable), e.g. protocol=research",
    )
