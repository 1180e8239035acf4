"""The Search-R1 tag protocol: ``<search>query</search>``, ``<information>`` observations, ``<answer>``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hopgym.envs.protocols.base import ChatMessage
from hopgym.envs.protocols.tag_parsing import THINK_CLOSE, THINK_OPEN, ActionTags
from hopgym.envs.protocols.tag_protocol import TagProtocol
from hopgym.types import Passage, Task

__all__ = ["SearchR1Protocol"]

_TAGS = (ActionTags("search", "<search>", "</search>"), ActionTags("answer", "<answer>", "</answer>"))
_OBSERVATION_TAGS = ("<information>", "</information>")
# Search-R1's rollout cuts each response at the first </search>, else at the first </answer>
# (search_r1/llm_agent/generation.py, _postprocess_responses).
_STOP: tuple[str, ...] = ("</search>", "</answer>")


def _doc_line(i: int, passage: Passage) -> str:
    title, _, text = passage.contents.partition("\n")
    return f"Doc {i}(Title: {title}) {text}\n"


@dataclass(frozen=True)
class SearchR1Protocol(TagProtocol):
    """Search-R1 (PeterGriffinJin/Search-R1) tags.

    ``parse``: complete ``<think>...</think>`` blocks are dropped first; then the first complete action wins
    (the one whose closing tag comes first, as Search-R1's ``<(search|answer)>(.*?)</\\1>`` regex picks),
    later actions are ignored with a note. Content is stripped. Invalid: no action, an unclosed tag, an empty
    query, or tags nested inside the action. Queries over MAX_QUERY_CHARS are truncated with a note. An empty
    ``<answer></answer>`` is an (empty) answer, as in Search-R1.

    Chat variant: without ``system_prompt`` the whole prompt is the single user message, as Search-R1 trains
    instruct models; with one, the system prompt is followed by the bare question.
    """

    name = "search_r1"
    stop = _STOP
    default_reward = "search_r1"
    action_tags = _TAGS
    forbidden_inside = (*_OBSERVATION_TAGS, THINK_OPEN, THINK_CLOSE)
    default_invalid_template = (
        "\n[Invalid action: {reason}. Search with <search> query </search> or answer with <answer> answer"
        " </answer>.]\n"
    )

    def format_passages(self, passages: Sequence[Passage]) -> str:
        """``Doc {i}(Title: {first line of contents}) {rest}`` lines, as Search-R1's ``_passages2string``."""
        # With a one-line title, contents' first line is the quoted title and the rest is the text.
        return "".join(
            [
                f'Doc {i}(Title: "{p.title}") {p.text}\n'
                if p.title and "\n" not in p.title
                else _doc_line(i, p)
                for i, p in enumerate(passages, start=1)
            ]
        )

    def wrap_observation(self, body: str) -> str:
        """``\\n\\n<information>{body stripped}</information>\\n\\n`` (``execute_predictions``)."""
        return f"\n\n<information>{body.strip()}</information>\n\n"

    def messages(self, task: Task) -> list[ChatMessage]:
        """The whole prompt as one user message, or system prompt + question when ``system_prompt`` is set."""
        if self.system_prompt is None:
            return [{"role": "user", "content": self.prompt(task)}]
        return super().messages(task)
