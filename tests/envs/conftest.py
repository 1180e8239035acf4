"""Shared checks for the protocol tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hopgym.types import ParsedAction


def _check_action(action: ParsedAction, kind: str, expected: str) -> None:
    """``expected`` is the query of a search, the answer of an answer, or a fragment of an invalid's reason."""
    assert action.kind == kind, action
    if kind == "search":
        assert action.query == expected
    elif kind == "answer":
        assert action.answer == expected
    else:
        assert action.reason is not None and expected in action.reason


@pytest.fixture
def check_action() -> Callable[[ParsedAction, str, str], None]:
    return _check_action
