"""SearchR1Protocol: parsing table, observation bytes, prompts, round trips."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from hopgym.envs.protocols import MAX_QUERY_CHARS, ActionProtocol, SearchR1Protocol
from hopgym.types import ParsedAction, Passage, Task

PROTOCOL = SearchR1Protocol()

# (id, turn text, expected kind, expected query/answer, or a substring of the invalid reason)
CASES = [
    (
        "seed-search-after-think",
        "<think>I need to search for Paul Walker's cars in Fast and Furious movies.</think>\n"
        "<search> Paul Walker's cars in Fast and Furious </search>",
        "search",
        "Paul Walker's cars in Fast and Furious",
    ),
    (
        "seed-answer-after-stray-think-close",
        "\n\nFrom the information provided, the impulses start in the SA node. </think>\n\n"
        "<answer> sinoatrial (SA) node </answer>",
        "answer",
        "sinoatrial (SA) node",
    ),
    ("seed-short-answer", "<answer> Charger </answer>", "answer", "Charger"),
    ("search-no-think", "<search>capital of France</search>", "search", "capital of France"),
    ("multiline-query", "<search>\nwho wrote\nHamlet\n</search>", "search", "who wrote\nHamlet"),
    ("search-then-answer", "<search> a </search> <answer> b </answer>", "search", "a"),
    ("answer-then-search", "<answer> b </answer> <search> a </search>", "answer", "b"),
    ("two-searches", "<search>first</search><search>second</search>", "search", "first"),
    ("action-in-closed-think", "<think><search>x</search></think><answer>y</answer>", "answer", "y"),
    ("action-in-unclosed-think", "<think> I should look it up <search>x</search>", "search", "x"),
    ("answer-tag-inside-think", "<think>maybe <answer>x</answer></think> <search>y</search>", "search", "y"),
    ("only-think", "<think>hmm</think>", "invalid", "no action"),
    ("empty-turn", "", "invalid", "no action"),
    ("plain-text", "The answer is Paris.", "invalid", "no action"),
    ("unclosed-search", "<think>a</think><search> who is the", "invalid", "unclosed <search>"),
    ("unclosed-answer", "<answer> Paris", "invalid", "unclosed <answer>"),
    ("empty-query", "<search></search>", "invalid", "empty query"),
    ("blank-query", "<search>   \n\t </search>", "invalid", "empty query"),
    ("empty-answer", "<answer> </answer>", "answer", ""),
    ("answer-nested-in-search", "<search>a <answer>b</answer></search>", "invalid", "nested tags"),
    ("information-in-query", "<search>q <information>x</information></search>", "invalid", "nested tags"),
    ("think-open-in-query", "<search><think>q</search>", "invalid", "nested tags"),
    ("repeated-opener", "<search>draft <search>final query</search>", "search", "final query"),
    ("stray-closer-first", "</answer> then <search>q</search>", "search", "q"),
    ("only-stray-closer", "</search>", "invalid", "without a matching opening tag"),
    ("unicode", "<search> Zürich 東京 🚀 ﷽ </search>", "search", "Zürich 東京 🚀 ﷽"),
    ("uppercase-tags-are-not-tags", "<SEARCH>x</SEARCH>", "invalid", "no action"),
    ("tag-with-attribute", "<search type='web'>q</search>", "invalid", "without a matching opening tag"),
    ("trailing-newline-after-stop", "<search> q </search>\n", "search", "q"),
    ("nul-and-controls", "<answer>\x00a\x1b</answer>", "answer", "\x00a\x1b"),
]


@pytest.mark.parametrize(("text", "kind", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_table(text: str, kind: str, expected: str, check_action: Callable[..., None]) -> None:
    action = PROTOCOL.parse(text)
    check_action(action, kind, expected)


@pytest.mark.parametrize(
    ("text", "note"),
    [
        (
            "<search> a </search> <answer> b </answer>",
            "ignored 1 action tag(s) after the first complete action",
        ),
        ("<search>draft <search>final query</search>", "ignored an earlier unclosed <search>"),
        ("</answer> then <search>q</search>", "ignored 1 closing tag(s) that had no opening tag"),
        ("<answer> </answer>", "empty answer"),
    ],
)
def test_recoverable_oddities_are_noted(text: str, note: str) -> None:
    assert note in PROTOCOL.parse(text).notes


def test_huge_query_is_truncated_with_a_note() -> None:
    action = PROTOCOL.parse("<search>" + "a" * 5000 + "</search>")
    assert action.kind == "search"
    assert action.query == "a" * MAX_QUERY_CHARS
    assert any("truncated from 5000" in note for note in action.notes)


def test_truncation_never_leaves_trailing_space() -> None:
    action = PROTOCOL.parse("<search>" + "word " * 400 + "</search>")
    assert action.query is not None
    assert len(action.query) <= MAX_QUERY_CHARS
    assert action.query == action.query.strip()


def test_non_text_is_invalid_not_an_exception() -> None:
    assert PROTOCOL.parse(None).kind == "invalid"  # type: ignore[arg-type]


def test_observation_matches_search_r1_bytes() -> None:
    passages = [
        Passage(id="1", title="Paul Walker", text="Paul William Walker IV was an actor."),
        Passage(id="2", title="", text="No title\nsecond line"),
        Passage(id="3", title="T", text=" spaced \n"),
    ]
    # Computed with Search-R1's _passages2string and execute_predictions on the same contents.
    expected = (
        '\n\n<information>Doc 1(Title: "Paul Walker") Paul William Walker IV was an actor.\n'
        "Doc 2(Title: No title) second line\n"
        'Doc 3(Title: "T")  spaced</information>\n\n'
    )
    assert PROTOCOL.wrap_observation(PROTOCOL.format_passages(passages)) == expected


def test_empty_observation() -> None:
    assert PROTOCOL.wrap_observation(PROTOCOL.format_passages([])) == "\n\n<information></information>\n\n"


def test_wrap_accepts_a_truncated_body() -> None:
    assert (
        PROTOCOL.wrap_observation("Doc 1(Title: x) abc")
        == "\n\n<information>Doc 1(Title: x) abc</information>\n\n"
    )


def test_observation_on_the_real_search_r1_corpus_sample(shared_data) -> None:
    path = shared_data("corpus_samples", "search_r1_corpus_sample.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:3]]
    passages = []
    for row in rows:
        title, _, text = row["contents"].partition("\n")
        passages.append(Passage(id=row["id"], title=title.strip('"'), text=text))
        assert passages[-1].contents == row["contents"]
    body = PROTOCOL.format_passages(passages)
    lines = body.splitlines()
    assert len(lines) == 3
    for i, (line, row) in enumerate(zip(lines, rows, strict=True), start=1):
        title, _, text = row["contents"].partition("\n")
        assert line == f"Doc {i}(Title: {title}) {text}"
    observation = PROTOCOL.wrap_observation(body)
    assert observation.startswith('\n\n<information>Doc 1(Title: "Evan Morris") Evan Morris Evan L. Morris')
    assert observation.endswith("</information>\n\n")


def test_stop_strings_and_protocol_conformance() -> None:
    assert PROTOCOL.stop == ("</search>", "</answer>")
    assert PROTOCOL.name == "search_r1"
    assert isinstance(PROTOCOL, ActionProtocol)
    assert PROTOCOL.tools() is None


@pytest.mark.parametrize("query", ["capital of France", "Zürich 東京", "a" * MAX_QUERY_CHARS, 'say "hi"'])
def test_render_search_round_trips(query: str) -> None:
    assert PROTOCOL.parse(PROTOCOL.render_search(query)) == ParsedAction.search(query)


@pytest.mark.parametrize("answer", ["Paris", "sinoatrial (SA) node", "1969", "Ελλάδα"])
def test_render_answer_round_trips(answer: str) -> None:
    assert PROTOCOL.parse(PROTOCOL.render_answer(answer)) == ParsedAction.final_answer(answer)


def test_invalid_message_names_the_reason() -> None:
    action = PROTOCOL.parse("no tags at all")
    message = PROTOCOL.invalid_message(action)
    assert action.reason is not None and action.reason in message
    assert "<search>" in message and "<answer>" in message
    assert message.startswith("\n") and message.endswith("\n")


def test_prompt_and_chat_messages() -> None:
    task = Task(id="q1", question="Who founded {the} company?", golden_answers=("x",))
    prompt = PROTOCOL.prompt(task)
    assert prompt.endswith("Question: Who founded {the} company?\n")
    for tag in ("<think>", "</think>", "<search>", "</search>", "<information>", "<answer>", "</answer>"):
        assert tag in prompt
    # Search-R1 trains instruct models with the whole prompt as the only user message.
    assert PROTOCOL.messages(task) == [{"role": "user", "content": prompt}]
    with_system = SearchR1Protocol(system_prompt="Use <search>.")
    assert with_system.messages(task) == [
        {"role": "system", "content": "Use <search>."},
        {"role": "user", "content": task.question},
    ]
