"""OpenAI-style function calling: a ``search`` tool, an optional ``answer`` tool, or a plain-text answer."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hopgym.envs.protocols.base import ChatMessage
from hopgym.envs.protocols.prompt_templates import TemplatedProtocol
from hopgym.envs.protocols.tag_parsing import THINK_CLOSE, THINK_OPEN, clean_query, drop_think_blocks
from hopgym.errors import ConfigError
from hopgym.types import ParsedAction, Passage

__all__ = ["ANSWER_TOOL", "SEARCH_TOOL", "ToolCallProtocol"]

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
#: The call id ``render_search``/``render_answer`` give their tool calls.
RENDERED_CALL_ID = "call_0"

SEARCH_TOOL: Mapping[str, Any] = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search a Wikipedia corpus and return the most relevant passages.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "A focused search query."}},
            "required": ["query"],
        },
    },
}
ANSWER_TOOL: Mapping[str, Any] = {
    "type": "function",
    "function": {
        "name": "answer",
        "description": "Give the final answer to the question and end the episode.",
        "parameters": {
            "type": "object",
            "properties": {"answer": {"type": "string", "description": "The short final answer."}},
            "required": ["answer"],
        },
    },
}

# Completion-style use with Hermes text ends a turn at the closing tag; chat APIs end turns themselves.
_STOP: tuple[str, ...] = (TOOL_CALL_CLOSE,)
_NOT_JSON = object()
_MESSAGE_KEYS = ("tool_calls", "content", "role", "function_call")


def _load_json(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _invalid(reason: str, notes: Sequence[str] = (), call_id: str | None = None) -> ParsedAction:
    # Keep the call id even on failure: a chat API needs a tool message answering every call it saw.
    return ParsedAction(kind="invalid", reason=reason, notes=tuple(notes), tool_call_id=call_id)


def _message_text(content: object) -> str | None:
    """The text of a message ``content``: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "".join(parts) if parts else None
    return None


@dataclass(frozen=True)
class ToolCallProtocol(TemplatedProtocol):
    """Function calling for chat models behind OpenAI-compatible APIs.

    ``parse`` accepts: (a) the assistant message as JSON (``{"content": ..., "tool_calls": [{"id", "type":
    "function", "function": {"name", "arguments"}}]}``, ``arguments`` a JSON string or an object; the legacy
    ``function_call`` field too), (b) Hermes/Qwen text ``<tool_call>{"name": ..., "arguments": {...}}
    </tool_call>``, also inside a message's ``content`` (an unclosed last ``<tool_call>`` is accepted when its
    JSON is complete), (c) a bare ``{"name", "arguments"}`` object (any other JSON object is invalid), else
    (d) plain text, which is the final answer. The first tool call wins (later ones are noted);
    ``tool_call_id`` carries the call's id, also on invalid calls. Reasoning is dropped: complete ``<think>``
    blocks, and anything before a lone ``</think>`` (chat templates that open the block themselves).
    Invalid: an empty turn, malformed JSON, an unknown tool, a missing or non-string ``query``, an empty
    query. With ``answer_tool=False`` only ``search`` is offered and answers are plain text.

    Observations are the plain passage list: the agent sends it as the ``tool`` message (``observation_message``).
    """

    answer_tool: bool = True

    name = "tool_call"
    stop = _STOP
    default_reward = "em"
    default_invalid_template = (
        "[Invalid action: {reason}. Call the search tool with a query, or give the final answer.]"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.answer_tool, bool):
            raise ConfigError(f"ToolCallProtocol.answer_tool must be true or false, got {self.answer_tool!r}")

    def parse(self, text: str) -> ParsedAction:
        """Interpret one assistant turn (see the class docstring); never raises."""
        if not isinstance(text, str):
            return _invalid(f"turn is not text but {type(text).__name__}")
        stripped = text.strip()
        if stripped.startswith("{"):
            obj = _load_json(stripped)
            if isinstance(obj, dict):
                if any(key in obj for key in _MESSAGE_KEYS):
                    return self._parse_message(obj)
                if "name" in obj:
                    return self._parse_call(obj, obj.get("id"))
                return _invalid("the turn is a JSON object but neither an assistant message nor a tool call")
            if obj is _NOT_JSON and any(f'"{key}"' in stripped for key in (*_MESSAGE_KEYS, "name")):
                return _invalid("the turn looks like a JSON message or tool call but is not valid JSON")
        return self._parse_text(text)

    def _parse_message(self, message: dict[str, Any]) -> ParsedAction:
        calls = message.get("tool_calls")
        if calls is None and isinstance(message.get("function_call"), dict):
            calls = [{"function": message["function_call"]}]  # the legacy single-call field
        if calls:
            if not isinstance(calls, list):
                return _invalid("tool_calls must be a list")
            notes = [f"ignored {len(calls) - 1} later tool call(s)"] if len(calls) > 1 else []
            first = calls[0]
            if not isinstance(first, dict):
                return _invalid("a tool call must be a JSON object", notes)
            call_id = first.get("id")
            function = first.get("function")
            if not isinstance(function, dict):
                return _invalid("tool call has no function object", notes, _as_id(call_id))
            return self._parse_call(function, call_id, notes)
        content = _message_text(message.get("content"))
        if content is None:
            return _invalid("assistant message has neither tool calls nor text content")
        return self._parse_text(content)

    def _parse_text(self, text: str) -> ParsedAction:
        body = drop_think_blocks(text)
        notes: list[str] = []
        if THINK_CLOSE in body:
            body = body.rpartition(THINK_CLOSE)[2]
        if THINK_OPEN in body:
            body = body.partition(THINK_OPEN)[0]
            notes.append("ignored unclosed <think> reasoning")
        start = body.find(TOOL_CALL_OPEN)
        if start >= 0:
            begin = start + len(TOOL_CALL_OPEN)
            end = body.find(TOOL_CALL_CLOSE, begin)
            raw = body[begin:end] if end >= 0 else body[begin:]
            later = body.count(TOOL_CALL_OPEN, begin)
            if later:
                notes.append(f"ignored {later} later tool call(s)")
            obj = _load_json(raw.strip())
            if obj is _NOT_JSON:
                unclosed = f"unclosed {TOOL_CALL_OPEN} and " if end < 0 else ""
                return _invalid(f"{unclosed}the tool call is not valid JSON", notes)
            if not isinstance(obj, dict):
                return _invalid("the tool call must be a JSON object with name and arguments", notes)
            return self._parse_call(obj, obj.get("id"), notes)
        if TOOL_CALL_CLOSE in body:
            return _invalid(f"{TOOL_CALL_CLOSE} without {TOOL_CALL_OPEN}", notes)
        answer = body.strip()
        if not answer:
            return _invalid("no tool call and no answer text", notes)
        return ParsedAction.final_answer(answer, notes=notes)

    def _parse_call(
        self, call: Mapping[str, Any], call_id: object, notes: Sequence[str] = ()
    ) -> ParsedAction:
        cid = _as_id(call_id)
        name = call.get("name")
        if not isinstance(name, str) or not name:
            return _invalid("tool call has no function name", notes, cid)
        arguments = call.get("arguments", call.get("parameters"))
        if isinstance(arguments, str):
            arguments = _load_json(arguments) if arguments.strip() else {}
            if arguments is _NOT_JSON:
                return _invalid(f"arguments of {name!r} are not valid JSON", notes, cid)
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            return _invalid(f"arguments of {name!r} must be a JSON object", notes, cid)
        if name == "search":
            query = arguments.get("query")
            if not isinstance(query, str):
                return _invalid("search needs a string argument 'query'", notes, cid)
            action = clean_query(query, notes)
            if action.kind == "invalid":
                return _invalid(action.reason or "empty query", action.notes, cid)
            return ParsedAction.search(action.query or "", notes=action.notes, tool_call_id=cid)
        if name == "answer" and self.answer_tool:
            answer = arguments.get("answer")
            if isinstance(answer, (int, float)) and not isinstance(answer, bool):
                answer = str(answer)
            if not isinstance(answer, str):
                return _invalid("answer needs a string argument 'answer'", notes, cid)
            extra = () if answer.strip() else ("empty answer",)
            return ParsedAction.final_answer(answer.strip(), notes=(*notes, *extra), tool_call_id=cid)
        available = "search, answer" if self.answer_tool else "search"
        return _invalid(f"unknown tool {name!r}; available tools: {available}", notes, cid)

    def format_passages(self, passages: Sequence[Passage]) -> str:
        """``Doc {i} (Title: {title})`` then the text, passages separated by a blank line."""
        if not passages:
            return "No results."
        blocks = []
        for i, passage in enumerate(passages, start=1):
            head = f"Doc {i} (Title: {passage.title})" if passage.title else f"Doc {i}"
            blocks.append(f"{head}\n{passage.text}")
        return "\n\n".join(blocks)

    def wrap_observation(self, body: str) -> str:
        """The body unchanged: the chat API's ``tool`` role delimits it."""
        return body

    def observation_message(self, body: str, call_id: str | None) -> ChatMessage:
        """The ``tool`` message returning ``body`` for the call ``call_id`` (a user message without id)."""
        if call_id is None:
            return {"role": "user", "content": body}
        return {"role": "tool", "tool_call_id": call_id, "content": body}

    def render_search(self, query: str) -> str:
        """The assistant message, as JSON, calling ``search`` with ``query``."""
        return self._render_call("search", {"query": query})

    def render_answer(self, answer: str) -> str:
        """The assistant message, as JSON: an ``answer`` call, or plain content with ``answer_tool=False``."""
        if self.answer_tool:
            return self._render_call("answer", {"answer": answer})
        return json.dumps({"role": "assistant", "content": answer}, ensure_ascii=False)

    @staticmethod
    def _render_call(name: str, arguments: Mapping[str, str]) -> str:
        call = {
            "id": RENDERED_CALL_ID,
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
        }
        return json.dumps({"role": "assistant", "content": None, "tool_calls": [call]}, ensure_ascii=False)

    def tools(self) -> list[Mapping[str, Any]] | None:
        """OpenAI tool schemas (fresh copies): ``search``, plus ``answer`` unless ``answer_tool`` is False."""
        schemas = [SEARCH_TOOL, ANSWER_TOOL] if self.answer_tool else [SEARCH_TOOL]
        return [copy.deepcopy(dict(schema)) for schema in schemas]


def _as_id(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
