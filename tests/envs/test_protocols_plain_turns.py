"""The tag protocols' plain-turn shortcut gives exactly what the general parse gives, on any text."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hopgym.envs.protocols import R1SearcherProtocol, ReSearchProtocol, SearchR1Protocol
from hopgym.envs.protocols.tag_parsing import ActionTags
from hopgym.envs.protocols.tag_protocol import TagProtocol

PROTOCOLS = [SearchR1Protocol(), ReSearchProtocol(), R1SearcherProtocol()]
COMMON = ["<think>", "</think>", "<", ">", " ", "\n", "q", "Paris", "\\boxed{", "}", "東"]


def fragments(protocol: TagProtocol) -> list[str]:
    tags = [tag for t in protocol.action_tags for tag in (t.open, t.close)]
    return [
        *COMMON,
        *tags,
        *protocol.forbidden_inside,
        protocol.render_search("q"),
        protocol.render_answer("a"),
    ]


def turns(protocol: TagProtocol) -> st.SearchStrategy[str]:
    tags = st.sampled_from(fragments(protocol))
    piece = st.one_of(tags, tags, tags, st.text(max_size=4))  # mostly tags: plain turns are the edge here
    return st.lists(piece, max_size=10).map("".join)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.name)
@settings(max_examples=1500, deadline=None)
@given(data=st.data())
def test_plain_turn_shortcut_agrees_with_the_general_parse(
    protocol: TagProtocol, data: st.DataObject
) -> None:
    text = data.draw(turns(protocol))
    assert protocol.parse(text) == protocol.parse_general(text)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.name)
@pytest.mark.parametrize(
    "text",
    [
        "<think>reasoning, no tags</think>\n{search}",
        "{answer}",
        "<think>a</think> <think>b</think> {answer} trailing words",
        "<think>only reasoning, no action</think> and more text",
        "",
        "   ",
    ],
)
def test_plain_turns_take_the_shortcut(protocol: TagProtocol, text: str) -> None:
    # Exactly the turns a trained model writes; if the shortcut stopped matching them, the agreement test
    # above would pass without testing anything.
    turn = text.format(search=protocol.render_search("who founded X"), answer=protocol.render_answer("Ilsa"))
    assert protocol._plain_turn is not None and protocol._plain_turn.fullmatch(turn) is not None
    assert protocol.parse(turn) == protocol.parse_general(turn)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.name)
@pytest.mark.parametrize(
    "text",
    [
        "<search>a</search><answer>b</answer>",  # two actions: the later one is noted
        "a < b <search>q</search>",  # a '<' outside any tag
        "<think>x</think><answer>a</answer><|end_of_query|>",  # a stray closing tag
        "<answer>a<b>c</answer>",  # a '<' inside the action
    ],
)
def test_other_turns_take_the_general_path(protocol: TagProtocol, text: str) -> None:
    assert protocol._plain_turn is not None and protocol._plain_turn.fullmatch(text) is None
    assert protocol.parse(text) == protocol.parse_general(text)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.name)
def test_an_action_inside_reasoning(protocol: TagProtocol) -> None:
    # Dropped with the think block by the protocols that drop reasoning; R1-Searcher searches inside it.
    turn = f"<think>{protocol.render_search('q')}</think>"
    parsed = protocol.parse(turn)
    assert parsed == protocol.parse_general(turn)
    assert parsed.kind == ("invalid" if protocol.drop_think else "search")


@dataclass(frozen=True)
class BracketTags(SearchR1Protocol):
    """Tags the shortcut cannot handle exactly: it must stand aside, not change the result."""

    action_tags = (
        ActionTags("search", "[search]", "[/search]"),
        ActionTags("answer", "<answer>", "</answer>"),
    )


@dataclass(frozen=True)
class BracketForbidden(SearchR1Protocol):
    forbidden_inside = ("[doc]",)


def test_the_shortcut_stands_aside_for_tags_without_a_leading_angle_bracket() -> None:
    assert BracketTags._plain_turn is None and BracketForbidden._plain_turn is None
    assert BracketTags().parse("[search] q [/search]").query == "q"
    parsed = BracketForbidden().parse("<search> a [doc] b </search>")
    assert parsed.kind == "invalid" and parsed.reason is not None and "[doc]" in parsed.reason
