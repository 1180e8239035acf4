"""check_protocol: passes the built-in protocols, and each check fails on a protocol broken in one way."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest

from hopgym.envs.protocols import get_protocol
from hopgym.errors import ConfigError
from hopgym.testing import ProtocolCheckError, check_action, check_parse, check_protocol
from hopgym.testing.protocol_check import PROTOCOL_CHECKS
from hopgym.types import ParsedAction


class Bent:
    """search_r1 with one method replaced; everything else delegates to the real protocol."""

    def __init__(self, **methods: Any) -> None:
        self._inner = get_protocol("search_r1")
        self._methods = methods

    def __getattr__(self, name: str) -> Any:
        if name in self._methods:
            return self._methods[name]
        return getattr(self._inner, name)


def _real(name: str) -> Any:
    return getattr(get_protocol("search_r1"), name)


def _raises_on_nul(text: str) -> ParsedAction:
    if "\x00" in text:
        raise ValueError("NUL")
    parsed: ParsedAction = _real("parse")(text)
    return parsed


_counter = itertools.count()


def _impure(text: str) -> ParsedAction:
    parsed: ParsedAction = _real("parse")(text)
    if parsed.kind == "invalid":
        return ParsedAction.invalid(f"{parsed.reason} #{next(_counter)}")
    return parsed


def _unstripped_query(text: str) -> ParsedAction:
    parsed: ParsedAction = _real("parse")(text)
    return replace(parsed, query=f" {parsed.query} ") if parsed.kind == "search" else parsed


def _invalid_without_reason(text: str) -> ParsedAction:
    parsed: ParsedAction = _real("parse")(text)
    return replace(parsed, reason="") if parsed.kind == "invalid" else parsed


# (broken protocol, the check that must fail on it)
BROKEN: dict[str, tuple[Any, str]] = {
    "parse raises": (Bent(parse=_raises_on_nul), "random_text"),
    "parse impure": (Bent(parse=_impure), "fuzz"),
    "query not stripped": (Bent(parse=_unstripped_query), "fuzz"),
    "invalid without reason": (Bent(parse=_invalid_without_reason), "random_text"),
    "query render lowercases": (
        Bent(render_search=lambda q: f"<search>{q.lower()}</search>"),
        "query_round_trip",
    ),
    "answer render drops tags": (Bent(render_answer=lambda a: a), "answer_round_trip"),
    "unknown default reward": (Bent(default_reward="no_such_reward"), "contract"),
    "prompt without question": (Bent(prompt=lambda task: "Answer the question."), "contract"),
    "observation drops body": (Bent(wrap_observation=lambda body: "<information></information>"), "contract"),
    "stop not a tuple": (Bent(stop=["</search>"]), "contract"),
}


def test_every_check_has_a_broken_protocol() -> None:
    assert {check for _, check in BROKEN.values()} == set(PROTOCOL_CHECKS)


@pytest.mark.parametrize("name", ["search_r1", "research", "r1_searcher", "tool_call"])
def test_builtin_protocols_pass(name: str) -> None:
    check_protocol(name, examples=300, reserved_answer_chars="{}" if name == "research" else "")


def test_research_answers_with_braces_do_not_survive_re_rendering() -> None:
    # Why the suite passes reserved_answer_chars="{}" for ReSearch: without it the fuzz check fails.
    with pytest.raises(ProtocolCheckError) as info:
        check_protocol("research", examples=3000)
    assert set(info.value.failures) == {"fuzz"}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_check_fails_on_its_broken_protocol(case: str) -> None:
    protocol, check = BROKEN[case]
    with pytest.raises(ProtocolCheckError) as info:
        check_protocol(protocol, examples=500)
    assert check in info.value.failures, info.value.failures


def test_check_parse_and_check_action_name_the_text() -> None:
    protocol = Bent(parse=_raises_on_nul)
    with pytest.raises(AssertionError, match=r"parse raised ValueError: NUL on 'a\\x00b'"):
        check_parse(protocol, "a\x00b")
    with pytest.raises(AssertionError, match="stripped"):
        check_action(protocol, ParsedAction.search(" padded "))


def test_runs_are_reproducible_and_bad_arguments_rejected() -> None:
    failures = []
    for _ in range(2):
        with pytest.raises(ProtocolCheckError) as info:
            check_protocol(Bent(parse=_raises_on_nul), examples=500, seed=3)
        failures.append(info.value.failures)
    assert failures[0] == failures[1]
    with pytest.raises(ConfigError, match="examples"):
        check_protocol("search_r1", examples=0)
    with pytest.raises(ConfigError, match="unknown checks"):
        check_protocol("search_r1", skip=["nope"])
