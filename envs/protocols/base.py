"""The action-protocol contract: pure, I/O-free text conventions between a policy and the environment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from hopgym.types import ParsedAction, Passage, Task

__all__ = ["MAX_QUERY_CHARS", "ActionProtocol", "ChatMessage"]

#: Queries longer than this are truncated (and the truncation is noted in ``ParsedAction.notes``).
MAX_QUERY_CHARS = 512

ChatMessage = dict[str, Any]


@runtime_checkable
class ActionProtocol(Protocol):
    """How one family of agents talks: tags or tool calls, observation wrapping, prompts.

    Every method is pure. ``parse`` never raises: malformed text becomes ``ParsedAction.invalid(reason)``.
    """

    #: Registry name, e.g. ``"search_r1"``.
    name: str
    #: Strings that end one generation turn. Policies should keep the stop string in the returned text.
    stop: tuple[str, ...]
    #: The registered reward its seed project trains with; the env uses it when given no reward.
    default_reward: str

    def parse(self, text: str) -> ParsedAction:
        """Interpret one turn of generated text."""
        ...

    def format_passages(self, passages: Sequence[Passage]) -> str:
        """The body of an observation: the passages as the protocol lists them (no wrapper tags)."""
        ...

    def wrap_observation(self, body: str) -> str:
        """Wrap an observation body in the protocol's tags (including surrounding newlines)."""
        ...

    def invalid_message(self, action: ParsedAction) -> str:
        """The observation returned for an invalid action."""
        ...

    def prompt(self, task: Task) -> str:
        """The full first prompt for completion-style (base) models."""
        ...

    def messages(self, task: Task) -> list[ChatMessage]:
        """The first prompt as chat messages for chat models."""
        ...

    def render_search(self, query: str) -> str:
        """The text a well-behaved policy generates to search for ``query`` (``parse`` maps it back)."""
        ...

    def render_answer(self, answer: str) -> str:
        """The text a well-behaved policy generates to give ``answer`` (``parse`` maps it back)."""
        ...

    def tools(self) -> list[Mapping[str, Any]] | None:
        """OpenAI tool schemas for function-calling protocols, else None."""
        ...

    def observation_message(self, body: str, call_id: str | None) -> ChatMessage:
        """The chat message that carries an observation back to a chat policy; ``call_id`` is the id of the
        tool call it answers (None when the action was not a tool call). Default: a user message; protocols
        with native tool calls return a ``tool`` message."""
        return {"role": "user", "content": body}
