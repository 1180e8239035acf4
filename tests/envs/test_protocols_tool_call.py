"""ToolCallProtocol: assistant-message JSON, Hermes <tool_call> text, plain answers; schemas and rendering."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from hopgym.envs.protocols import MAX_QUERY_CHARS, ActionProtocol, ToolCallProtocol
from hopgym.errors import ConfigError
from hopgym.types import ParsedAction, Passage, Task

PROTOCOL = ToolCallProtocol()


def message(*calls: dict[str, Any], content: Any = None) -> str:
    return json.dumps({"role": "assistant", "content": content, "tool_calls": list(calls)})


def call(name: str, arguments: Any, call_id: str | None = "call_1") -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    out: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": args}}
    if call_id is not None:
        out["id"] = call_id
    return out


def hermes(payload: str) -> str:
    return f"<tool_call>\n{payload}\n</tool_call>"


SEARCH_X = '{"name": "search", "arguments": {"query": "x"}}'

# (id, text, kind, value: query / answer / reason substring, expected tool_call_id)
CASES: list[tuple[str, str, str, str, str | None]] = [
    (
        "message-search",
        message(call("search", {"query": "Ham Tran birthplace"})),
        "search",
        "Ham Tran birthplace",
        "call_1",
    ),
    (
        "message-dict-arguments",
        json.dumps(
            {"tool_calls": [{"id": "c9", "function": {"name": "search", "arguments": {"query": "q"}}}]}
        ),
        "search",
        "q",
        "c9",
    ),
    (
        "message-answer-tool",
        message(call("answer", {"answer": " Vietnam "}, "a1")),
        "answer",
        "Vietnam",
        "a1",
    ),
    ("message-content-only", json.dumps({"role": "assistant", "content": "Paris"}), "answer", "Paris", None),
    (
        "message-content-parts",
        json.dumps(
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "Par"}, {"type": "text", "text": "is"}],
            }
        ),
        "answer",
        "Paris",
        None,
    ),
    ("message-content-hermes", json.dumps({"content": hermes(SEARCH_X)}), "search", "x", None),
    ("message-empty-calls", json.dumps({"content": "Paris", "tool_calls": []}), "answer", "Paris", None),
    (
        "message-content-think",
        json.dumps({"content": "<think>hmm</think>\n\nParis"}),
        "answer",
        "Paris",
        None,
    ),
    (
        "message-nothing",
        json.dumps({"role": "assistant", "content": None}),
        "invalid",
        "neither tool calls nor text",
        None,
    ),
    (
        "message-two-calls",
        message(call("search", {"query": "a"}, "c1"), call("search", {"query": "b"}, "c2")),
        "search",
        "a",
        "c1",
    ),
    (
        "legacy-function-call",
        json.dumps({"function_call": {"name": "search", "arguments": '{"query": "q"}'}}),
        "search",
        "q",
        None,
    ),
    ("hermes-search", hermes(SEARCH_X), "search", "x", None),
    ("hermes-after-think", "<think>I should search.</think>\n\n" + hermes(SEARCH_X), "search", "x", None),
    ("hermes-unclosed-complete-json", "<tool_call>\n" + SEARCH_X, "search", "x", None),
    (
        "hermes-unclosed-truncated-json",
        '<tool_call>\n{"name": "search", "argu',
        "invalid",
        "unclosed <tool_call>",
        None,
    ),
    ("hermes-bad-json", hermes("{name: search}"), "invalid", "not valid JSON", None),
    ("hermes-array", hermes("[1, 2]"), "invalid", "must be a JSON object", None),
    (
        "hermes-two-calls",
        hermes(SEARCH_X) + hermes('{"name": "search", "arguments": {"query": "y"}}'),
        "search",
        "x",
        None,
    ),
    (
        "hermes-string-arguments",
        hermes('{"name": "search", "arguments": "{\\"query\\": \\"s\\"}"}'),
        "search",
        "s",
        None,
    ),
    ("llama-parameters", '{"name": "search", "parameters": {"query": "p"}}', "search", "p", None),
    ("bare-call-json", SEARCH_X, "search", "x", None),
    ("unknown-tool", message(call("browse", {"url": "x"}, "u1")), "invalid", "unknown tool 'browse'", "u1"),
    ("missing-query", message(call("search", {"q": "x"}, "m1")), "invalid", "string argument 'query'", "m1"),
    (
        "non-string-query",
        message(call("search", {"query": ["a", "b"]}, "n1")),
        "invalid",
        "string argument 'query'",
        "n1",
    ),
    ("empty-query", message(call("search", {"query": "  "}, "e1")), "invalid", "empty query", "e1"),
    ("bad-arguments-json", message(call("search", "{query: x}", "b1")), "invalid", "not valid JSON", "b1"),
    ("empty-arguments", message(call("search", "", "b2")), "invalid", "string argument 'query'", "b2"),
    ("arguments-not-object", message(call("search", "[1]", "b3")), "invalid", "must be a JSON object", "b3"),
    (
        "function-not-object",
        json.dumps({"tool_calls": [{"id": "f1", "function": "search"}]}),
        "invalid",
        "no function object",
        "f1",
    ),
    ("numeric-answer", message(call("answer", {"answer": 1969}, "n2")), "answer", "1969", "n2"),
    ("plain-answer", "Paris", "answer", "Paris", None),
    ("plain-answer-after-think", "<think>It is the capital.</think>\nParis", "answer", "Paris", None),
    ("lone-think-close", "The capital is Paris.</think>\n\nParis", "answer", "Paris", None),
    ("unclosed-think-only", "<think>still thinking", "invalid", "no tool call and no answer", None),
    ("empty-turn", "   ", "invalid", "no tool call and no answer", None),
    (
        "unknown-json-object",
        '{"query": "x"}',
        "invalid",
        "neither an assistant message nor a tool call",
        None,
    ),
    ("truncated-message-json", '{"role": "assistant", "tool_calls": [', "invalid", "not valid JSON", None),
    ("stray-close-tag", "Paris</tool_call>", "invalid", "</tool_call> without <tool_call>", None),
    ("deeply-nested-json", "{" * 5000 + '"tool_calls"', "invalid", "not valid JSON", None),
    (
        "unicode-query",
        hermes('{"name": "search", "arguments": {"query": "Zürich 東京"}}'),
        "search",
        "Zürich 東京",
        None,
    ),
]


@pytest.mark.parametrize(
    ("text", "kind", "expected", "call_id"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_parse_table(
    text: str, kind: str, expected: str, call_id: str | None, check_action: Callable[..., None]
) -> None:
    action = PROTOCOL.parse(text)
    check_action(action, kind, expected)
    assert action.tool_call_id == call_id


def test_later_tool_calls_are_noted() -> None:
    action = PROTOCOL.parse(
        message(call("search", {"query": "a"}, "c1"), call("answer", {"answer": "b"}, "c2"))
    )
    assert action.query == "a"
    assert "ignored 1 later tool call(s)" in action.notes


def test_huge_query_is_truncated_and_keeps_the_id() -> None:
    action = PROTOCOL.parse(message(call("search", {"query": "q" * 2000}, "big")))
    assert action.query == "q" * MAX_QUERY_CHARS
    assert action.tool_call_id == "big"
    assert any("truncated" in note for note in action.notes)


def test_without_answer_tool() -> None:
    protocol = ToolCallProtocol(answer_tool=False)
    action = protocol.parse(message(call("answer", {"answer": "x"}, "a1")))
    assert action.kind == "invalid" and "available tools: search" in (action.reason or "")
    assert protocol.parse("Paris") == ParsedAction.final_answer("Paris")
    tools = protocol.tools()
    assert tools is not None and [t["function"]["name"] for t in tools] == ["search"]


def test_answer_tool_must_be_bool() -> None:
    with pytest.raises(ConfigError, match="answer_tool"):
        ToolCallProtocol(answer_tool="yes")  # type: ignore[arg-type]


def test_tool_schemas_are_openai_shaped_and_fresh() -> None:
    tools = PROTOCOL.tools()
    assert tools is not None
    assert [t["function"]["name"] for t in tools] == ["search", "answer"]
    search = tools[0]
    assert search["type"] == "function"
    assert search["function"]["parameters"] == {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "A focused search query."}},
        "required": ["query"],
    }
    assert tools[1]["function"]["parameters"]["required"] == ["answer"]
    search["function"]["name"] = "mutated"
    again = PROTOCOL.tools()
    assert again is not None and again[0]["function"]["name"] == "search"
    json.dumps(again)  # serialisable as a request body


@pytest.mark.parametrize("query", ["Ham Tran birthplace", 'a "quoted" <tag> {x}', "東京"])
def test_render_search_round_trips(query: str) -> None:
    rendered = PROTOCOL.render_search(query)
    assert json.loads(rendered)["tool_calls"][0]["function"]["name"] == "search"
    assert PROTOCOL.parse(rendered) == ParsedAction.search(query, tool_call_id="call_0")


@pytest.mark.parametrize("answer_tool", [True, False])
def test_render_answer_round_trips(answer_tool: bool) -> None:
    protocol = ToolCallProtocol(answer_tool=answer_tool)
    action = protocol.parse(protocol.render_answer("Vietnam"))
    assert action.kind == "answer" and action.answer == "Vietnam"
    assert action.tool_call_id == ("call_0" if answer_tool else None)


def test_observation_and_tool_message() -> None:
    passages = [
        Passage(id="1", title="Ham Tran", text="Ham Tran is a director."),
        Passage(id="2", title="", text="t"),
    ]
    body = PROTOCOL.format_passages(passages)
    assert body == "Doc 1 (Title: Ham Tran)\nHam Tran is a director.\n\nDoc 2\nt"
    assert PROTOCOL.wrap_observation(body) == body
    assert PROTOCOL.format_passages([]) == "No results."
    assert PROTOCOL.observation_message(body, "call_1") == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": body,
    }
    assert PROTOCOL.observation_message(body, None) == {"role": "user", "content": body}


def test_prompts_and_conformance() -> None:
    task = Task(id="q", question="Where was Ham Tran born?", golden_answers=("Vietnam",))
    prompt = PROTOCOL.prompt(task)
    # The Hermes example keeps its literal JSON braces: only {question} is substituted.
    assert '{"name": "search", "arguments": {"query": "your query"}}' in prompt
    assert prompt.endswith("Question: Where was Ham Tran born?\n")
    messages = PROTOCOL.messages(task)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "search" in messages[0]["content"]
    assert PROTOCOL.stop == ("</tool_call>",)
    assert isinstance(PROTOCOL, ActionProtocol)


def test_invalid_message() -> None:
    action = PROTOCOL.parse(message(call("browse", {}, "u1")))
    assert "unknown tool 'browse'" in PROTOCOL.invalid_message(action)


@pytest.mark.parametrize(
    "text",
    [
        '{"tool_calls": ' + "[" * 100_000,
        "<tool_call>" + "[" * 100_000,
        '{"tool_calls": ' + "[" * 100_000 + "]" * 100_000,
    ],
)
def test_json_nested_too_deep_is_invalid_not_recursion_error(text: str) -> None:
    assert PROTOCOL.parse(text).kind == "invalid"
