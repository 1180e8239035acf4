"""The shared tag helpers: dropping reasoning, first-action search, \\boxed extraction, adversarial sizes."""

from __future__ import annotations

import pytest

from hopgym.envs.protocols import R1SearcherProtocol, ReSearchProtocol, SearchR1Protocol, ToolCallProtocol
from hopgym.envs.protocols.tag_parsing import (
    ActionTags,
    TagMatch,
    drop_think_blocks,
    find_first_action,
    last_boxed_content,
)

TAGS = (ActionTags("search", "<search>", "</search>"), ActionTags("answer", "<answer>", "</answer>"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no reasoning", "no reasoning"),
        ("<think>a</think>b", "b"),
        ("x<think>a</think>y<think>b</think>z", "xyz"),
        ("<think>open only", "<think>open only"),
        ("<think>a</think>b<think>unclosed", "b<think>unclosed"),
        ("stray</think> text", "stray</think> text"),
        ("<think>a<think>b</think>c</think>", "c</think>"),
        ("", ""),
    ],
)
def test_drop_think_blocks(text: str, expected: str) -> None:
    assert drop_think_blocks(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{Paris}", "Paris"),
        ("The answer is \\[ \\boxed{Paris} \\]", "Paris"),
        ("\\boxed{a} \\boxed{b}", "b"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{}", ""),
        ("\\boxed{open", None),
        ("no box", None),
        ("\\boxed Paris", None),
        ("\\boxed{a}}", "a"),
    ],
)
def test_last_boxed_content(text: str, expected: str | None) -> None:
    assert last_boxed_content(text) == expected


def test_find_first_action_returns_raw_content() -> None:
    found = find_first_action("<search>  q  </search>", TAGS)
    assert found == TagMatch(kind="search", content="  q  ", notes=())


def test_forbidden_inside_tags_make_the_action_invalid() -> None:
    found = find_first_action("<search>a <b> c</search>", TAGS, forbidden_inside=("<b>",))
    assert not isinstance(found, TagMatch)
    assert found.reason == "nested tags: <b> inside <search>...</search>"


@pytest.mark.parametrize(
    "text",
    [
        "<search>" * 60_000,
        "</search>" * 60_000 + "<search>q</search>",
        "<think>" * 60_000 + "<answer>x</answer>",
        "<think></think>" * 30_000 + "</answer>" * 30_000,
        "<|begin_of_query|>" * 40_000 + "<|end_of_query|>",
        "<tool_call>" * 40_000 + "</tool_call>" * 40_000,
        "a" * 500_000,
    ],
)
def test_adversarial_sizes_do_not_raise(text: str) -> None:
    for protocol in (SearchR1Protocol(), ReSearchProtocol(), R1SearcherProtocol(), ToolCallProtocol()):
        action = protocol.parse(text)
        assert action.kind in ("search", "answer", "invalid")


def test_many_stray_closers_are_counted() -> None:
    action = SearchR1Protocol().parse("</search>" * 1000 + "<search>q</search>")
    assert action.query == "q"
    assert "ignored 1000 closing tag(s) that had no opening tag" in action.notes
