"""Property-based fuzzing of every protocol parser, and render/parse round trips.

The properties checked on each text are hopgym.testing's (check_action, check_parse, check_protocol), which
plugin authors run without hypothesis; here hypothesis drives them with shrinking on failure.

Turns concatenate tag fragments, random text and well-formed actions with random content, so the generator
reaches valid, nested, unclosed, repeated and stray tags far more often than random text alone would.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hopgym.envs.protocols import MAX_QUERY_CHARS, ActionProtocol, get_protocol
from hopgym.testing import COMMON_FRAGMENTS, check_action, check_parse, check_protocol
from hopgym.types import ParsedAction

COMMON = list(COMMON_FRAGMENTS)
FRAGMENTS = {
    "search_r1": [
        "<search>",
        "</search>",
        "<answer>",
        "</answer>",
        "<information>",
        "</information>",
        *COMMON,
    ],
    "research": [
        "<search>",
        "</search>",
        "<answer>",
        "</answer>",
        "<result>",
        "</result>",
        "\\boxed",
        *COMMON,
    ],
    "r1_searcher": [
        "<|begin_of_query|>",
        "<|end_of_query|>",
        "<answer>",
        "</answer>",
        "<|begin_of_documents|>",
        "<|end_of_documents|>",
        *COMMON,
    ],
    "tool_call": [
        "<tool_call>",
        "</tool_call>",
        '{"name": "search", "arguments": {"query": ',
        '{"name": "answer", "arguments": {"answer": ',
        '{"role": "assistant", "content": ',
        '"tool_calls": [',
        '{"id": "c1", "type": "function", "function": ',
        '"arguments": "{\\"query\\": \\"q\\"}"',
        '"x"',
        "}}",
        "]",
        "null",
        ",",
        ":",
        "[",
        *COMMON,
    ],
}
NAMES = tuple(FRAGMENTS)
QUICK = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
FULL = settings(
    max_examples=10_000, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
# Tag names used by any protocol: clean generated queries/answers must not contain them.
ALL_TAGS = sorted({f for frags in FRAGMENTS.values() for f in frags if f.startswith("<") and len(f) > 1})


def hermes(tool: str, argument: str, value: str) -> str:
    return f'<tool_call>{{"name": "{tool}", "arguments": {{"{argument}": {json.dumps(value)}}}}}</tool_call>'


def turns(name: str) -> st.SearchStrategy[str]:
    """Tag fragments, random text, and well-formed actions with random content, concatenated."""
    protocol = get_protocol(name)
    pieces = [
        st.sampled_from(FRAGMENTS[name]),
        st.text(max_size=12),
        st.text(max_size=20).map(protocol.render_search),
        st.text(max_size=20).map(protocol.render_answer),
    ]
    if name == "tool_call":
        pieces.append(st.text(max_size=20).map(lambda q: hermes("search", "query", q)))
        pieces.append(st.text(max_size=20).map(lambda a: hermes("answer", "answer", a)))
    return st.lists(st.one_of(pieces), max_size=30).map("".join)


# ReSearch answers are \boxed{...}: braces inside an answer are its syntax, so such answers may not survive
# re-rendering (all others must).
RESERVED_ANSWER_CHARS = {"research": "{}"}


def check_invariants(protocol: ActionProtocol, action: ParsedAction) -> None:
    check_action(protocol, action)


def fuzz_once(name: str, text: str) -> None:
    check_parse(get_protocol(name), text, reserved_answer_chars=RESERVED_ANSWER_CHARS.get(name, ""))


@pytest.mark.parametrize("name", NAMES)
def test_check_protocol_passes_every_builtin(name: str) -> None:
    # The same check plugin authors run (hopgym.testing.check_protocol), with this file's fragments.
    check_protocol(
        name,
        examples=1000,
        fragments=FRAGMENTS[name],
        reserved_answer_chars=RESERVED_ANSWER_CHARS.get(name, ""),
    )


@pytest.mark.parametrize("name", NAMES)
@QUICK
@given(data=st.data())
def test_fuzz_quick(name: str, data: st.DataObject) -> None:
    fuzz_once(name, data.draw(turns(name), label="turn"))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@FULL
@given(data=st.data())
def test_fuzz_10k(name: str, data: st.DataObject) -> None:
    fuzz_once(name, data.draw(turns(name), label="turn"))


@pytest.mark.parametrize("name", NAMES)
@QUICK
@given(text=st.text(max_size=200))
def test_random_text_never_raises(name: str, text: str) -> None:
    protocol = get_protocol(name)
    check_invariants(protocol, protocol.parse(text))


def clean(text: str, name: str) -> bool:
    if text != text.strip() or not text or len(text) > MAX_QUERY_CHARS:
        return False
    if any(tag in text for tag in ALL_TAGS):
        return False
    if name == "r1_searcher":
        return text == " ".join(text.replace('"', "").split())
    return True


@pytest.mark.parametrize("name", NAMES)
@QUICK
@given(data=st.data())
def test_clean_queries_round_trip(name: str, data: st.DataObject) -> None:
    protocol = get_protocol(name)
    query = data.draw(st.text(min_size=1, max_size=80).filter(lambda t: clean(t, name)), label="query")
    action = protocol.parse(protocol.render_search(query))
    assert action.kind == "search" and action.query == query


@pytest.mark.parametrize("name", NAMES)
@QUICK
@given(data=st.data())
def test_clean_answers_round_trip(name: str, data: st.DataObject) -> None:
    protocol = get_protocol(name)
    alphabet = st.characters(blacklist_characters="{}") if name == "research" else st.characters()
    answer = data.draw(
        st.text(alphabet=alphabet, min_size=1, max_size=80).filter(lambda t: clean(t, "any")), label="answer"
    )
    action = protocol.parse(protocol.render_answer(answer))
    assert action.kind == "answer" and action.answer == answer
