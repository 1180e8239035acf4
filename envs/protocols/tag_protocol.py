"""The parse skeleton and renderers shared by the tag protocols (Search-R1, ReSearch, R1-Searcher)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from hopgym.envs.protocols.prompt_templates import TemplatedProtocol
from hopgym.envs.protocols.tag_parsing import (
    ActionTags,
    TagMatch,
    clean_answer,
    clean_query,
    compile_plain_turn,
    drop_think_blocks,
    find_first_action,
    no_action_reason,
)
from hopgym.types import ParsedAction

__all__ = ["TagProtocol"]


@dataclass(frozen=True)
class TagProtocol(TemplatedProtocol):
    """A protocol whose actions are tag pairs: the first complete action wins (see ``find_first_action``).

    Subclasses set ``action_tags`` (a ``search`` and an ``answer`` pair) and ``forbidden_inside`` (tags that
    make an action invalid when nested in it), and override ``interpret_search``/``interpret_answer`` where
    their seed project cleans content differently.
    """

    action_tags: ClassVar[tuple[ActionTags, ...]]
    forbidden_inside: ClassVar[tuple[str, ...]]
    #: Drop complete ``<think>...</think>`` blocks before looking for actions.
    drop_think: ClassVar[bool] = True
    # Set per subclass from the two above: the plain-turn pattern and the no-action result it implies.
    _plain_turn: ClassVar[re.Pattern[str] | None] = None
    _no_action: ClassVar[ParsedAction]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        tags = getattr(cls, "action_tags", None)
        if tags is not None:
            cls._plain_turn = compile_plain_turn(
                tags, drop_think=cls.drop_think, forbidden_inside=getattr(cls, "forbidden_inside", ())
            )
            cls._no_action = ParsedAction.invalid(no_action_reason(tags))

    def parse(self, text: str) -> ParsedAction:
        """Interpret one turn (see the class docstring); never raises."""
        if not isinstance(text, str):
            return ParsedAction.invalid(f"turn is not text but {type(text).__name__}")
        # Most turns are plain (reasoning, then one well-formed action): one linear regex match settles them
        # with the result the general path below would give (see compile_plain_turn).
        plain = self._plain_turn.fullmatch(text) if self._plain_turn is not None else None
        if plain is not None:
            index = plain.lastindex
            if index is None:
                return self._no_action
            if self.action_tags[index - 1].kind == "search":
                return self.interpret_search(plain.group(index), ())
            return self.interpret_answer(plain.group(index), ())
        return self.parse_general(text)

    def parse_general(self, text: str) -> ParsedAction:
        """``parse`` without the plain-turn shortcut (for any turn; the tests check both agree)."""
        found = find_first_action(
            drop_think_blocks(text) if self.drop_think else text,
            self.action_tags,
            forbidden_inside=self.forbidden_inside,
        )
        if not isinstance(found, TagMatch):
            return found
        if found.kind == "search":
            return self.interpret_search(found.content, found.notes)
        return self.interpret_answer(found.content, found.notes)

    def interpret_search(self, content: str, notes: tuple[str, ...]) -> ParsedAction:
        """The search for the winning action's raw ``content`` (``notes``: oddities found so far)."""
        return clean_query(content, notes)

    def interpret_answer(self, content: str, notes: tuple[str, ...]) -> ParsedAction:
        """The answer for the winning action's raw ``content`` (``notes``: oddities found so far)."""
        return clean_answer(content, notes)

    def closing_stop(self, text: str) -> str | None:
        """The stop string that closes the action tag ``text`` leaves open at its end, or None.

        For a turn that a server ended on a stop string it did not return (the OpenAI API cuts it): the last
        action opener with no closing tag after it names the cut stop string, when its closing tag is one of
        ``stop`` (``<search> q`` -> ``</search>``). None when no action is open, or its closing tag is not a
        stop string (a ReSearch ``<answer>`` ends with EOS).
        """
        last: ActionTags | None = None
        position = -1
        for tags in self.action_tags:
            opened = text.rfind(tags.open)
            if opened > position:
                last, position = tags, opened
        if last is None or text.find(last.close, position + len(last.open)) >= 0:
            return None
        stops: tuple[str, ...] = getattr(self, "stop", ())  # set by each subclass
        return last.close if last.close in stops else None

    def render_search(self, query: str) -> str:
        """``<search> query </search>``."""
        return f"<search> {query} </search>"

    def render_answer(self, answer: str) -> str:
        """``<answer> answer </answer>``."""
        return f"<answer> {answer} </answer>"

    def tools(self) -> list[Mapping[str, Any]] | None:
        """None: a tag protocol."""
        return None
