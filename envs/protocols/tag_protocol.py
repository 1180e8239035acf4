"""The parse skeleton and renderers shared by the tag protocols (Search-R1, ReSearch, R1-Searcher)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from hopgym.envs.protocols.prompt_templates import TemplatedProtocol
from hopgym.envs.protocols.tag_parsing import (
    ActionTags,
    TagMatch,
    clean_answer,
    clean_query,
    drop_think_blocks,
    find_first_action,
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

    def parse(self, text: str) -> ParsedAction:
        """Interpret one turn (see the class docstring); never raises."""
        if not isinstance(text, str):
            return ParsedAction.invalid(f"turn is not text but {type(text).__name__}")
        found = find_first_action(
            drop_think_blocks(text) if self.drop_think else text,
            self.action_tags,
            forbidden_inside=self.forbidden_inside,
        )
        if not isinstance(found, TagMatch):
            return found
        if found.kind == "search":
            return self.interpret_search(found)
        return self.interpret_answer(found)

    def interpret_search(self, found: TagMatch) -> ParsedAction:
        return clean_query(found.content, found.notes)

    def interpret_answer(self, found: TagMatch) -> ParsedAction:
        return clean_answer(found.content, found.notes)

    def render_search(self, query: str) -> str:
        """``<search> query </search>``."""
        return f"<search> {query} </search>"

    def render_answer(self, answer: str) -> str:
        """``<answer> answer </answer>``."""
        return f"<answer> {answer} </answer>"

    def tools(self) -> list[Mapping[str, Any]] | None:
        """None: a tag protocol."""
        return None
