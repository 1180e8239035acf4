"""Helpers shared by CLI subcommands."""

from __future__ import annotations

from typing import Any

from hopgym.options import parse_key_values

__all__ = ["add_env_arguments", "parse_env_kwargs", "parse_key_values"]


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
