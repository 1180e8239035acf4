"""ReSearchProtocol: parsing table (with \\boxed answers), observation bytes, prompts, round trips."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hopgym.envs.protocols import MAX_QUERY_CHARS, ActionProtocol, ReSearchProtocol
from hopgym.types import ParsedAction, Passage, Task

PROTOCOL = ReSearchProtocol()

CASES = [
    (
        "seed-search",
        "<think> I need to find who directed the film first. </think> "
        "<search> Hollow 2014 film director </search>",
        "search",
        "Hollow 2014 film director",
    ),
    (
        "seed-answer",
        "<think> The director is Ham Tran, who is Vietnamese. </think> "
        "<answer> The final answer is \\[ \\boxed{Vietnam} \\] </answer>",
        "answer",
        "Vietnam",
    ),
    ("boxed-nested-braces", "<answer>\\boxed{\\text{New York}}</answer>", "answer", "\\text{New York}"),
    ("last-boxed-wins", "<answer>\\boxed{a} or rather \\boxed{b}</answer>", "answer", "b"),
    ("no-boxed-whole-text", "<answer> Paris </answer>", "answer", "Paris"),
    ("unbalanced-boxed", "<answer>\\boxed{Paris</answer>", "answer", "\\boxed{Paris"),
    ("empty-boxed", "<answer>\\boxed{}</answer>", "answer", ""),
    ("spaces-in-boxed", "<answer>\\boxed{ 1969 }</answer>", "answer", "1969"),
    ("unicode-boxed", "<answer>\\boxed{Москва}</answer>", "answer", "Москва"),
    ("braces-without-boxed", "<answer>{x}</answer>", "answer", "{x}"),
    ("boxed-space-form", "<answer>\\boxed Paris</answer>", "answer", "\\boxed Paris"),
    ("boxed-outside-answer", "The answer is \\boxed{x}", "invalid", "no action"),
    ("boxed-in-think-only", "<think>\\boxed{x}</think><answer>\\boxed{y}</answer>", "answer", "y"),
    ("result-in-query", "<search>q <result>x</result></search>", "invalid", "nested tags"),
    ("rindex-opener", "<search>draft<search>final</search>", "search", "final"),
    ("unclosed-answer", "<answer> \\boxed{x}", "invalid", "unclosed <answer>"),
    ("unclosed-search", "<think>x</think> <search> who", "invalid", "unclosed <search>"),
    ("empty-query", "<search> </search>", "invalid", "empty query"),
    ("no-action", "<think> still thinking </think>", "invalid", "no action"),
    ("answer-before-search", "<answer>\\boxed{a}</answer><search>b</search>", "answer", "a"),
    ("search-before-answer", "<search>b</search><answer>\\boxed{a}</answer>", "search", "b"),
    ("hallucinated-result", "<search> q </search> <result> fake </result>", "search", "q"),
    ("first-of-two-answers", "<answer>\\boxed{a}</answer><answer>\\boxed{b}</answer>", "answer", "a"),
    ("answer-nested-in-search", "<search><answer>x</answer></search>", "invalid", "nested tags"),
]


@pytest.mark.parametrize(("text", "kind", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_table(text: str, kind: str, expected: str, check_action: Callable[..., None]) -> None:
    action = PROTOCOL.parse(text)
    check_action(action, kind, expected)


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("<answer> Paris </answer>", "no \\boxed{} in the answer; using the whole answer text"),
        (
            "<answer>\\boxed{Paris</answer>",
            "\\boxed without balanced braces in the answer; using the whole answer text",
        ),
        ("<answer>\\boxed{}</answer>", "empty answer"),
        ("<search>draft<search>final</search>", "ignored an earlier unclosed <search>"),
    ],
)
def test_notes(text: str, note: str) -> None:
    assert note in PROTOCOL.parse(text).notes


def test_boxed_answer_has_no_note() -> None:
    assert PROTOCOL.parse("<answer>\\boxed{x}</answer>").notes == ()


def test_huge_query_is_truncated() -> None:
    action = PROTOCOL.parse("<search>" + "é" * 3000 + "</search>")
    assert action.query == "é" * MAX_QUERY_CHARS
    assert any("truncated" in note for note in action.notes)


def test_observation_matches_research_bytes() -> None:
    passages = [
        Passage(id="1", title="Paul Walker", text="Paul William Walker IV was an actor."),
        Passage(id="2", title="", text="No title\nsecond line"),
        Passage(id="3", title="T", text=" spaced \n"),
    ]
    # Computed with ReSearch's batch_search body and its " <result>\n...\n</result>" append.
    expected = (
        ' <result>\n"Paul Walker"\nPaul William Walker IV was an actor.\n\n'
        'No title\nsecond line\n\n"T"\n spaced\n</result>'
    )
    assert PROTOCOL.wrap_observation(PROTOCOL.format_passages(passages)) == expected


def test_empty_and_truncated_bodies() -> None:
    assert PROTOCOL.wrap_observation(PROTOCOL.format_passages([])) == " <result>\n\n</result>"
    assert PROTOCOL.wrap_observation('"A"\ntex') == ' <result>\n"A"\ntex\n</result>'


def test_stop_and_conformance() -> None:
    # ReSearch stops generation on </search> only; answers end with the EOS token.
    assert PROTOCOL.stop == ("</search>",)
    assert PROTOCOL.name == "research"
    assert isinstance(PROTOCOL, ActionProtocol)
    assert PROTOCOL.tools() is None


@pytest.mark.parametrize("answer", ["Paris", "\\text{New York}", "f(x) = {a, b}", "1969"])
def test_render_answer_round_trips(answer: str) -> None:
    rendered = PROTOCOL.render_answer(answer)
    assert "\\boxed{" in rendered
    assert PROTOCOL.parse(rendered) == ParsedAction.final_answer(answer)


def test_render_search_round_trips() -> None:
    assert PROTOCOL.parse(PROTOCOL.render_search("Ham Tran nationality")) == ParsedAction.search(
        "Ham Tran nationality"
    )


def test_prompt_and_messages() -> None:
    task = Task(id="q", question="What is \\boxed{2+2}?", golden_answers=("4",))
    prompt = PROTOCOL.prompt(task)
    assert prompt.endswith("User: What is \\boxed{2+2}?\nAssistant:")
    assert prompt.count("Assistant:") == 1  # ReSearch's reward splits the text on it
    assert "\\boxed{...}" in prompt
    for tag in ("<think>", "<search>", "<result>", "<answer>"):
        assert tag in prompt
    messages = PROTOCOL.messages(task)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == task.question
    assert "\\boxed" in messages[0]["content"] and "<result>" in messages[0]["content"]


def test_invalid_message() -> None:
    action = PROTOCOL.parse("<search></search>")
    message = PROTOCOL.invalid_message(action)
    assert "empty query" in message and "\\boxed{answer}" in message
