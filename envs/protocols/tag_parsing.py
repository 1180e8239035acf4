"""Pure text helpers shared by the tag protocols: finding the first action, dropping reasoning, \\boxed{}.

Every function here is linear in the input length (no backtracking regexes), so adversarial turns cannot stall
the environment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from hopgym.envs.protocols.base import MAX_QUERY_CHARS
from hopgym.types import ParsedAction

__all__ = [
    "THINK_CLOSE",
    "THINK_OPEN",
    "ActionTags",
    "TagMatch",
    "clean_answer",
    "clean_query",
    "compile_plain_turn",
    "drop_think_blocks",
    "find_first_action",
    "last_boxed_content",
    "no_action_reason",
]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class ActionTags:
    """The opening and closing tag of one kind of action, e.g. ``<search>`` and ``</search>``."""

    kind: Literal["search", "answer"]
    open: str
    close: str


class TagMatch(NamedTuple):
    """The action that won: its kind, raw content (unstripped) and recoverable oddities."""

    kind: Literal["search", "answer"]
    content: str
    notes: tuple[str, ...] = ()


def drop_think_blocks(text: str) -> str:
    """Remove every complete ``<think>...</think>`` block; an unclosed ``<think>`` and what follows it stay.

    Keeping unclosed reasoning matters: a turn cut by a stop string (``<think> ... <search>q</search>``)
    has its action inside the still-open block.
    """
    if THINK_OPEN not in text:
        return text
    parts: list[str] = []
    pos = 0
    while True:
        start = text.find(THINK_OPEN, pos)
        if start < 0:
            break
        end = text.find(THINK_CLOSE, start + len(THINK_OPEN))
        if end < 0:
            break
        parts.append(text[pos:start])
        pos = end + len(THINK_CLOSE)
    parts.append(text[pos:])
    return "".join(parts)


def compile_plain_turn(
    tags: Sequence[ActionTags], *, drop_think: bool, forbidden_inside: Sequence[str] = ()
) -> re.Pattern[str] | None:
    """A pattern that ``fullmatch``es the common, plain turns, for which the parse result is known at once.

    A plain turn has no ``<`` outside complete ``<think>...</think>`` blocks without ``<`` inside (with
    ``drop_think``; without it, bare ``<think>``/``</think>`` tags), except at most one action: an opening
    tag, content without ``<``, and the matching closing tag. After dropping think blocks such a turn holds
    no tag but that one action, so ``find_first_action`` would return ``TagMatch(kind, content, ())`` (group
    ``i + 1`` holds the content of ``tags[i]``), or the no-action invalid when no group matched. Any other
    turn does not match and takes the general path. All quantifiers are possessive and every alternative
    starts with a different character class, so matching is linear. None when a tag does not start with its
    only ``<``, or a ``forbidden_inside`` string does not start with ``<`` (content without ``<`` could then
    hold it, and the shortcut would not be exact).
    """
    if any(tag.count("<") != 1 or not tag.startswith("<") for t in tags for tag in (t.open, t.close)):
        return None
    if any(not tag.startswith("<") for tag in forbidden_inside):
        return None
    text = "[^<]++"
    if drop_think:
        neutral = f"(?:{text}|{re.escape(THINK_OPEN)}[^<]*+{re.escape(THINK_CLOSE)})*+"
    else:
        neutral = f"(?:{text}|{re.escape(THINK_OPEN)}|{re.escape(THINK_CLOSE)})*+"
    actions = "|".join(f"{re.escape(t.open)}([^<]*+){re.escape(t.close)}" for t in tags)
    return re.compile(f"{neutral}(?:(?:{actions}){neutral})?")


def no_action_reason(tags: Sequence[ActionTags]) -> str:
    """The invalid reason of a turn without any action tag."""
    forms = " or ".join(f"{t.open}...{t.close}" for t in tags)
    return f"no action: expected {forms}"


def find_first_action(
    text: str, tags: Sequence[ActionTags], *, forbidden_inside: Sequence[str] = ()
) -> TagMatch | ParsedAction:
    """Find the first complete action, or return an invalid ParsedAction saying why there is none.

    The winner is the action whose closing tag comes first (where generation stops under the protocol's stop
    strings); its content starts after the last matching opening tag before that closing tag. Closing tags
    with no opening tag before them are skipped (noted). The action is invalid when its content holds another
    protocol tag (any tag in ``tags`` or ``forbidden_inside``) or when it sits inside another kind's unclosed
    opening tag.
    """
    first_open = {t.kind: text.find(t.open) for t in tags}
    closers: list[tuple[int, ActionTags]] = []
    for t in tags:
        pos = text.find(t.close)
        while pos >= 0:
            closers.append((pos, t))
            if first_open[t.kind] >= 0 and pos > first_open[t.kind]:
                break  # later closers of this kind can never come first
            pos = text.find(t.close, pos + len(t.close))
    closers.sort(key=lambda item: item[0])

    notes: list[str] = []
    stray = 0
    for end, tag in closers:
        opened = first_open[tag.kind]
        if opened < 0 or opened > end:
            stray += 1
            continue
        start = text.rfind(tag.open, 0, end)
        break
    else:
        opened_tags = [(first_open[t.kind], t) for t in tags if first_open[t.kind] >= 0]
        if opened_tags:
            _, tag = min(opened_tags, key=lambda item: item[0])
            return ParsedAction.invalid(f"unclosed {tag.open} tag: no {tag.close} follows it")
        if stray:
            return ParsedAction.invalid(f"{closers[0][1].close} without a matching opening tag")
        return ParsedAction.invalid(no_action_reason(tags))

    if stray:
        notes.append(f"ignored {stray} closing tag(s) that had no opening tag")
    content = text[start + len(tag.open) : end]
    inner_tags = [t.open for t in tags] + [t.close for t in tags] + list(forbidden_inside)
    for inner in inner_tags:
        if inner in content:
            return ParsedAction.invalid(f"nested tags: {inner} inside {tag.open}...{tag.close}")
    prefix = text[:start]
    for other in tags:
        if other.kind != tag.kind and prefix.rfind(other.open) > prefix.rfind(other.close):
            return ParsedAction.invalid(
                f"nested tags: {tag.open}...{tag.close} inside an unclosed {other.open}"
            )
    if prefix.rfind(tag.open) > prefix.rfind(tag.close):
        notes.append(f"ignored an earlier unclosed {tag.open}")
    rest = text[end + len(tag.close) :]
    later = sum(rest.count(t.open) for t in tags)
    if later:
        notes.append(f"ignored {later} action tag(s) after the first complete action")
    return TagMatch(kind=tag.kind, content=content, notes=tuple(notes))


def clean_query(raw: str, notes: Sequence[str] = ()) -> ParsedAction:
    """A search for ``raw`` stripped, invalid when empty; queries over MAX_QUERY_CHARS are cut (noted)."""
    query = raw.strip()
    if not query:
        return ParsedAction.invalid("empty query", notes=notes)
    if len(query) > MAX_QUERY_CHARS:
        original = len(query)
        query = query[:MAX_QUERY_CHARS].rstrip()
        notes = (
            *notes,
            f"query truncated from {original} to {len(query)} characters (limit {MAX_QUERY_CHARS})",
        )
    return ParsedAction.search(query, notes=notes)


def clean_answer(raw: str, notes: Sequence[str] = ()) -> ParsedAction:
    """An answer action for ``raw`` stripped; an empty answer is kept (the seeds end the episode on it)."""
    answer = raw.strip()
    if not answer:
        notes = (*notes, "empty answer")
    return ParsedAction.final_answer(answer, notes=notes)


_BOXED = "\\boxed{"


def last_boxed_content(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` with balanced braces, or None when absent or unbalanced.

    Mirrors ReSearch's ``last_boxed_only_string`` + ``remove_boxed`` for the brace form.
    """
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    depth = 0
    for i in range(start + len(_BOXED) - 1, len(text)):
        char = text[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start + len(_BOXED) : i]
    return None
