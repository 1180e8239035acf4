"""Argument checks shared by retrievers' ``search``, so backends reject the same inputs the same way."""

from __future__ import annotations

from collections.abc import Sequence

from hopgym.errors import ConfigError

__all__ = ["check_search_args"]


def check_search_args(queries: Sequence[str], k: int) -> list[str]:
    """Validate ``search(queries, k)`` arguments and return the queries as a list."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(
            f"k={k!r} is invalid: k must be >= 1, an integer (the number of passages per query)"
        )
    if isinstance(queries, (str, bytes)):
        raise ConfigError("queries must be a list of strings, not a single string: wrap it as [query]")
    result = list(queries)
    for i, query in enumerate(result):
        if not isinstance(query, str):
            raise ConfigError(f"queries[{i}] must be a string, got {type(query).__name__}")
    return result
