"""``check_protocol``: the action-protocol fuzz check, for plugin authors as Gymnasium's ``check_env``.

A protocol's ``parse`` meets text no one planned for: a model stuck repeating a tag, half a tool call, stray
control bytes. The check feeds it a seeded stream of adversarial turns (the protocol's own tags, text
around them, well-formed actions with random content, all concatenated) and random text, and checks:

- ``parse`` never raises, is pure, and returns a well-formed :class:`~hopgym.types.ParsedAction` (exactly
  one of query/answer/reason, stripped, queries within ``MAX_QUERY_CHARS``);
- what was understood survives re-rendering (``parse(render_search(q)).query == q``, same for answers);
- plain queries and answers round-trip exactly through ``render_*`` and ``parse``;
- the rest of the contract returns the right types (prompt, messages, observations, tools, stop strings).

It needs no third-party package (the project's own suite adds hypothesis on top)::

    from hopgym.testing import check_protocol

    check_protocol(MyProtocol())          # or a registered name: check_protocol("search_r1")
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from hopgym.errors import ConfigError
from hopgym.types import ParsedAction, Passage, Task

__all__ = [
    "COMMON_FRAGMENTS",
    "PROTOCOL_CHECKS",
    "ProtocolCheckError",
    "adversarial_turns",
    "check_action",
    "check_parse",
    "check_protocol",
    "plain_texts",
    "protocol_fragments",
    "random_texts",
]

#: Pieces every protocol is fed besides its own tags: tag-like punctuation, whitespace, JSON and LaTeX
#: openers, other scripts, a NUL byte, and a query longer than MAX_QUERY_CHARS.
COMMON_FRAGMENTS = (
    "<think>",
    "</think>",
    " ",
    "\n",
    "\t",
    "<",
    ">",
    "/",
    "{",
    "}",
    '"',
    "\\boxed{",
    "é🚀東",
    "\x00",
    "q" * 600,
)

_TAG = re.compile(r"<\|?/?[A-Za-z_][\w\-]*\|?>")
_PLACEHOLDER = "QZXQ"
_ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#$%&'()*+,-./:;=?@[]^_`|~<>\"{}\\"
_ODD = " \n\t\r\x00\x0b\u00a0\u2028éñ東京🙂🚀"
# Plain text: what any protocol must carry through render and parse unchanged (no tag, quote or brace
# characters, single spaces, nothing to strip).
_PLAIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'-éñ東京"


class ProtocolCheckError(AssertionError):
    """A protocol broke the contract. ``failures`` maps each failed check's name to what went wrong (with the
    text that broke it)."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        self.failures = dict(failures)
        lines = "\n".join(f"- {name}: {why}" for name, why in self.failures.items())
        super().__init__(f"{len(self.failures)} protocol check(s) failed:\n{lines}")


def _expect(condition: bool, message: str) -> None:
    # Not `assert`: these checks must also run under `python -O`.
    if not condition:
        raise AssertionError(message)


def _max_query_chars() -> int:
    from hopgym.envs.protocols.base import MAX_QUERY_CHARS

    return MAX_QUERY_CHARS


# -- properties of one action / one text --------------------------------------------------------------


def check_action(protocol: Any, action: object) -> None:
    """``action`` is a well-formed ParsedAction (what ``parse`` must always return)."""
    _expect(isinstance(action, ParsedAction), f"parse returned {type(action).__name__}, not ParsedAction")
    assert isinstance(action, ParsedAction)  # for the type checker; _expect has raised otherwise
    if action.kind == "search":
        _expect(
            action.query is not None and action.query == action.query.strip() != "",
            f"a search's query must be stripped and non-empty, got {action.query!r}",
        )
        _expect(len(action.query or "") <= _max_query_chars(), "a query longer than MAX_QUERY_CHARS")
        _expect(action.answer is None and action.reason is None, "a search carries only a query")
    elif action.kind == "answer":
        _expect(
            action.answer is not None and action.answer == action.answer.strip(),
            f"an answer must be stripped, got {action.answer!r}",
        )
        _expect(action.query is None and action.reason is None, "an answer carries only an answer")
    else:
        _expect(action.kind == "invalid", f"unknown action kind {action.kind!r}")
        _expect(
            bool(action.reason) and action.query is None and action.answer is None,
            "an invalid action carries only a non-empty reason",
        )
    _expect(all(isinstance(note, str) and note for note in action.notes), "notes must be non-empty strings")
    if protocol.tools() is None:
        _expect(action.tool_call_id is None, "tool_call_id set by a protocol without tools")


def check_parse(protocol: Any, text: str, *, reserved_answer_chars: str = "") -> ParsedAction:
    """``parse(text)``: never raises, well-formed, pure, and what it understood survives re-rendering.

    Answers containing a character of ``reserved_answer_chars`` (syntax inside the protocol's answer, e.g.
    ``"{}\\\\"`` for ReSearch's ``\\boxed{...}``) are exempt from the re-rendering round trip.
    """
    try:
        action: ParsedAction = protocol.parse(text)
    except Exception as exc:
        raise AssertionError(f"parse raised {type(exc).__name__}: {exc} on {text!r:.300}") from exc
    check_action(protocol, action)
    _expect(protocol.parse(text) == action, f"parse is not pure on {text!r:.300}")
    if action.kind == "search":
        again = protocol.parse(protocol.render_search(action.query)).query
        _expect(again == action.query, f"query {action.query!r:.200} re-rendered parses as {again!r:.200}")
    elif action.kind == "answer" and not any(c in reserved_answer_chars for c in action.answer or ""):
        again = protocol.parse(protocol.render_answer(action.answer)).answer
        _expect(again == action.answer, f"answer {action.answer!r:.200} re-rendered parses as {again!r:.200}")
    return action


# -- generators (seeded, no third-party package) ------------------------------------------------------


def protocol_fragments(protocol: Any, extra: Iterable[str] = ()) -> list[str]:
    """The protocol's own syntax (tags and the text around a rendered query/answer/observation), the
    common fragments and ``extra``, without duplicates."""
    pieces: list[str] = []
    for rendered in (
        protocol.render_search(_PLACEHOLDER),
        protocol.render_answer(_PLACEHOLDER),
        protocol.wrap_observation(_PLACEHOLDER),
    ):
        before, _, after = rendered.partition(_PLACEHOLDER)
        pieces += [before, after, *_TAG.findall(rendered)]
    pieces += [*protocol.stop, *COMMON_FRAGMENTS, *extra]
    return list(dict.fromkeys(p for p in pieces if p))


def random_texts(rng: random.Random, *, max_size: int) -> str:
    """Random text mixing ASCII, control and odd whitespace, other scripts and arbitrary code points."""
    chars = []
    for _ in range(rng.randint(0, max_size)):
        pool = rng.random()
        if pool < 0.6:
            chars.append(rng.choice(_ASCII))
        elif pool < 0.85:
            chars.append(rng.choice(_ODD))
        else:
            code = rng.randint(0x80, 0x10FFFF)
            chars.append(chr(code) if not 0xD800 <= code <= 0xDFFF else "\ufffd")
    return "".join(chars)


def plain_texts(rng: random.Random, *, max_words: int = 8) -> str:
    """Non-empty text of words separated by single spaces, with no protocol syntax in it."""
    words = [
        "".join(rng.choice(_PLAIN) for _ in range(rng.randint(1, 9)))
        for _ in range(rng.randint(1, max_words))
    ]
    return " ".join(words)


def adversarial_turns(
    protocol: Any, rng: random.Random, *, fragments: Sequence[str] | None = None, max_pieces: int = 30
) -> str:
    """One turn: up to ``max_pieces`` of tag fragments, random text and well-formed actions with random
    content, concatenated (reaching nested, unclosed, repeated and stray tags far more often than random
    text alone would)."""
    frags = list(fragments) if fragments is not None else protocol_fragments(protocol)
    pieces: list[str] = []
    for _ in range(rng.randint(0, max_pieces)):
        kind = rng.randrange(4)
        if kind == 0:
            pieces.append(rng.choice(frags))
        elif kind == 1:
            pieces.append(random_texts(rng, max_size=12))
        elif kind == 2:
            pieces.append(protocol.render_search(random_texts(rng, max_size=20)))
        else:
            pieces.append(protocol.render_answer(random_texts(rng, max_size=20)))
    return "".join(pieces)


# -- the checks ---------------------------------------------------------------------------------------


def _check_contract(protocol: Any, rng: random.Random, options: Mapping[str, Any]) -> None:
    _expect(isinstance(protocol.name, str) and bool(protocol.name), "name must be a non-empty string")
    _expect(
        isinstance(protocol.stop, tuple) and all(isinstance(s, str) and s for s in protocol.stop),
        f"stop must be a tuple of non-empty strings, got {protocol.stop!r}",
    )
    reward = getattr(protocol, "default_reward", None)
    _expect(isinstance(reward, str) and bool(reward), "default_reward must name a registered reward")
    from hopgym.envs.rewards import get_reward

    try:
        get_reward(str(reward))
    except Exception as exc:
        raise AssertionError(f"default_reward={reward!r} is not a registered reward: {exc}") from exc
    tools = protocol.tools()
    _expect(
        tools is None or (isinstance(tools, list) and all(isinstance(t, Mapping) for t in tools)),
        "tools() must return None or a list of tool schemas (mappings)",
    )
    task = Task(id="check-1", question="Who founded Vaiman Works?", golden_answers=("Sethres Tremsim",))
    prompt = protocol.prompt(task)
    _expect(
        isinstance(prompt, str) and task.question in prompt, "prompt(task) must be text holding the question"
    )
    messages = protocol.messages(task)
    _expect(
        isinstance(messages, list)
        and bool(messages)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in messages),
        "messages(task) must be a non-empty list of {'role', 'content'} dicts",
    )
    _expect(
        any(task.question in str(m["content"]) for m in messages), "messages(task) must hold the question"
    )
    passages = [Passage(id="p1", title="Vaiman Works", text="Vaiman Works was founded by Sethres Tremsim.")]
    body = protocol.format_passages(passages)
    _expect(
        isinstance(body, str) and "Sethres Tremsim" in body, "format_passages must list the passages' text"
    )
    wrapped = protocol.wrap_observation(body)
    _expect(
        isinstance(wrapped, str) and body.strip() in wrapped, "wrap_observation(body) must contain the body"
    )
    invalid = protocol.invalid_message(ParsedAction.invalid("no action found"))
    _expect(isinstance(invalid, str) and bool(invalid), "invalid_message must be non-empty text")
    for call_id in (None, "call-1"):
        message = protocol.observation_message(wrapped, call_id)
        _expect(
            isinstance(message, dict) and "role" in message and "content" in message,
            "observation_message must return a {'role', 'content'} dict",
        )


def _check_fuzz(protocol: Any, rng: random.Random, options: Mapping[str, Any]) -> None:
    fragments = protocol_fragments(protocol, options["fragments"])
    for _ in range(options["examples"]):
        check_parse(
            protocol,
            adversarial_turns(protocol, rng, fragments=fragments),
            reserved_answer_chars=options["reserved_answer_chars"],
        )


def _check_random_text(protocol: Any, rng: random.Random, options: Mapping[str, Any]) -> None:
    for _ in range(options["examples"]):
        text = random_texts(rng, max_size=200)
        try:
            action = protocol.parse(text)
        except Exception as exc:
            raise AssertionError(f"parse raised {type(exc).__name__}: {exc} on {text!r:.300}") from exc
        check_action(protocol, action)


def _check_query_round_trip(protocol: Any, rng: random.Random, options: Mapping[str, Any]) -> None:
    for _ in range(options["examples"]):
        query = plain_texts(rng)
        action = protocol.parse(protocol.render_search(query))
        _expect(
            action.kind == "search" and action.query == query,
            f"render_search({query!r}) parses as {action.kind} {action.query!r}",
        )


def _check_answer_round_trip(protocol: Any, rng: random.Random, options: Mapping[str, Any]) -> None:
    for _ in range(options["examples"]):
        answer = plain_texts(rng)
        action = protocol.parse(protocol.render_answer(answer))
        _expect(
            action.kind == "answer" and action.answer == answer,
            f"render_answer({answer!r}) parses as {action.kind} {action.answer!r}",
        )


#: The checks by name; each gets the protocol, its own seeded generator and the options.
PROTOCOL_CHECKS: dict[str, Callable[[Any, random.Random, Mapping[str, Any]], None]] = {
    "contract": _check_contract,
    "fuzz": _check_fuzz,
    "random_text": _check_random_text,
    "query_round_trip": _check_query_round_trip,
    "answer_round_trip": _check_answer_round_trip,
}


def check_protocol(
    protocol: Any,
    *,
    examples: int = 500,
    seed: int = 0,
    fragments: Iterable[str] = (),
    reserved_answer_chars: str = "",
    skip: Iterable[str] = (),
) -> None:
    """Run the checks on ``protocol`` (an ActionProtocol, or a name for ``get_protocol``); raise
    :class:`ProtocolCheckError` naming each check that failed and the text that broke it.

    ``examples`` texts per generated check, from ``random.Random`` seeded by ``seed`` and the check's name
    (reproducible). ``fragments`` are extra syntax to mix in (the protocol's tags are found by rendering).
    ``reserved_answer_chars``: see :func:`check_parse`. ``skip`` names checks of :data:`PROTOCOL_CHECKS`.
    """
    if isinstance(protocol, str):
        from hopgym.envs.protocols import get_protocol

        protocol = get_protocol(protocol)
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
        raise ConfigError(f"examples={examples!r} is invalid: use an integer >= 1")
    skipped = set(skip)
    unknown = skipped - set(PROTOCOL_CHECKS)
    if unknown:
        raise ConfigError(f"skip names unknown checks {sorted(unknown)}; valid: {sorted(PROTOCOL_CHECKS)}")
    options = {
        "examples": examples,
        "fragments": tuple(fragments),
        "reserved_answer_chars": reserved_answer_chars,
    }
    failures: dict[str, str] = {}
    for name, check in PROTOCOL_CHECKS.items():
        if name in skipped:
            continue
        try:
            check(protocol, random.Random(f"{seed}/{name}"), options)
        except Exception as exc:  # a check failing by raising anything is a failure of that check
            failures[name] = str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"
    if failures:
        raise ProtocolCheckError(failures)
