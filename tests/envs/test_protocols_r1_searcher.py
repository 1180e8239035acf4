"""R1SearcherProtocol: parsing table, observation bytes, prompts, round trips."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hopgym.envs.protocols import MAX_QUERY_CHARS, ActionProtocol, R1SearcherProtocol, SearchR1Protocol
from hopgym.types import ParsedAction, Passage, Task

PROTOCOL = R1SearcherProtocol()
BQ, EQ = "<|begin_of_query|>", "<|end_of_query|>"

CASES = [
    (
        "seed-search",
        "To solve this question, I need to find out who the stepfather of Lorenzo Strozzi is.\n\n"
        "I'll use a search query to find out about Lorenzo Strozzi's parents:\n\n"
        f"{BQ} Lorenzo Strozzi parents{EQ}",
        "search",
        "Lorenzo Strozzi parents",
    ),
    (
        "seed-answer",
        "From the search results, I can see that he was a Vietnamese American director.</think>\n\n"
        " <answer> Vietnam </answer>",
        "answer",
        "Vietnam",
    ),
    ("quotes-removed", f'{BQ} "Hollow" (2014 Film) director{EQ}', "search", "Hollow (2014 Film) director"),
    ("whitespace-collapsed", f"{BQ} a\n\tb   c {EQ}", "search", "a b c"),
    ("single-quotes-kept", f"{BQ} Ham Tran's country{EQ}", "search", "Ham Tran's country"),
    ("ellipsis-kept", f"{BQ} a...b{EQ}", "search", "a...b"),
    ("query-in-closed-think", f"<think> plan {BQ} x{EQ} </think>", "search", "x"),
    ("only-quotes", f'{BQ} "" {EQ}', "invalid", "empty query"),
    ("empty-query", f"{BQ}{EQ}", "invalid", "empty query"),
    ("unclosed-query", f"{BQ} Lorenzo Strozzi", "invalid", f"unclosed {BQ}"),
    ("unclosed-answer", "</think> <answer> Vietnam", "invalid", "unclosed <answer>"),
    ("repeated-begin", f"I will use {BQ} like this. {BQ} real query{EQ}", "search", "real query"),
    ("documents-in-query", f"{BQ} q <|begin_of_documents|>{EQ}", "invalid", "nested tags"),
    ("answer-in-query", f"{BQ} q <answer>x</answer>{EQ}", "invalid", "nested tags"),
    ("query-then-answer", f"{BQ} q{EQ} <answer>x</answer>", "search", "q"),
    ("answer-then-query", f"<answer>x</answer> {BQ} q{EQ}", "answer", "x"),
    ("empty-answer", "<answer></answer>", "answer", ""),
    ("unicode", f"{BQ} Choe Myeong-gil 최명길{EQ}", "search", "Choe Myeong-gil 최명길"),
    ("no-action", "Step 1: identify the parents.", "invalid", "no action"),
    ("wrong-protocol-tags", "<search>x</search>", "invalid", "no action"),
    ("stray-end-marker", f"{EQ}", "invalid", "without a matching opening tag"),
    ("think-close-in-answer", "<answer> x </think></answer>", "invalid", "nested tags"),
    ("answer-spaces-stripped", "<answer> Choe Myeong-Gil </answer>", "answer", "Choe Myeong-Gil"),
]


@pytest.mark.parametrize(("text", "kind", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_table(text: str, kind: str, expected: str, check_action: Callable[..., None]) -> None:
    action = PROTOCOL.parse(text)
    check_action(action, kind, expected)


def test_reasoning_is_kept_unlike_search_r1() -> None:
    # R1-Searcher queries live inside the reasoning; Search-R1 ignores closed think blocks.
    text = "<think> plan <answer>x</answer> </think>"
    assert PROTOCOL.parse(text).answer == "x"
    assert SearchR1Protocol().parse(text).kind == "invalid"


def test_huge_query_is_truncated() -> None:
    action = PROTOCOL.parse(f"{BQ}{'word ' * 1000}{EQ}")
    assert action.kind == "search" and action.query is not None
    # Cut at MAX_QUERY_CHARS characters (mid-word is fine), then stripped.
    assert action.query == ("word " * 1000)[:MAX_QUERY_CHARS].strip()
    assert any("truncated" in note for note in action.notes)


def test_observation_matches_r1_searcher_bytes() -> None:
    passages = [
        Passage(
            id="1", title="Filippo Strozzi the Elder", text="- Lorenzo (1482–1549), who founded the line."
        ),
        Passage(id="2", title="Ham Tran", text='Saigon" - 2007 - "The Rebel"'),
        Passage(id="3", title="", text="untitled text"),
    ]
    expected = (
        "\n\n<|begin_of_documents|>\n"
        "(1)Filippo Strozzi the Elder   - Lorenzo (1482–1549), who founded the line.\n"
        '(2)Ham Tran   Saigon" - 2007 - "The Rebel"\n'
        "(3)untitled text\n"
        "<|end_of_documents|>\n\n"
    )
    assert PROTOCOL.wrap_observation(PROTOCOL.format_passages(passages)) == expected


def test_empty_result_is_none_as_in_r1_searcher() -> None:
    assert PROTOCOL.wrap_observation(PROTOCOL.format_passages([])) == (
        "\n\n<|begin_of_documents|>\nNone<|end_of_documents|>\n\n"
    )


def test_turn_plus_observation_reproduces_the_seed_transcript() -> None:
    turn = PROTOCOL.render_search("Lorenzo Strozzi parents")
    body = PROTOCOL.format_passages(
        [Passage(id="1", title="Strozzi family", text="(1428–1491), son of Matteo")]
    )
    assert turn + PROTOCOL.wrap_observation(body) == (
        f"{BQ} Lorenzo Strozzi parents{EQ}\n\n<|begin_of_documents|>\n"
        "(1)Strozzi family   (1428–1491), son of Matteo\n<|end_of_documents|>\n\n"
    )


def test_stop_and_conformance() -> None:
    assert PROTOCOL.stop == (EQ, "</answer>")
    assert PROTOCOL.name == "r1_searcher"
    assert isinstance(PROTOCOL, ActionProtocol)
    assert PROTOCOL.tools() is None


@pytest.mark.parametrize("query", ["Lorenzo Strozzi parents", "Hollow (2014 Film) director", "최명길"])
def test_render_search_round_trips(query: str) -> None:
    assert PROTOCOL.parse(PROTOCOL.render_search(query)) == ParsedAction.search(query)


def test_render_answer_round_trips() -> None:
    assert PROTOCOL.parse(PROTOCOL.render_answer("Filippo Strozzi the Younger")) == ParsedAction.final_answer(
        "Filippo Strozzi the Younger"
    )


def test_prompt_ends_with_open_think_and_messages() -> None:
    task = Task(id="q", question="Who is the stepfather of Lorenzo Strozzi?", golden_answers=("x",))
    prompt = PROTOCOL.prompt(task)
    assert prompt.endswith("User: Who is the stepfather of Lorenzo Strozzi?\nAssistant: <think>")
    for marker in (BQ, EQ, "<|begin_of_documents|>", "<|end_of_documents|>", "<answer>"):
        assert marker in prompt
    messages = PROTOCOL.messages(task)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert BQ in messages[0]["content"]


def test_invalid_message() -> None:
    message = PROTOCOL.invalid_message(PROTOCOL.parse(f"{BQ} x"))
    assert "unclosed" in message and BQ in message and EQ in message
