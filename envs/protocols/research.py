"""The ReSearch tag protocol: ``<search>``, ``<result>`` observations, ``<answer>`` with ``\\boxed{}``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hopgym.envs.protocols.tag_parsing import (
    THINK_CLOSE,
    THINK_OPEN,
    ActionTags,
    clean_answer,
    last_boxed_content,
)
from hopgym.envs.protocols.tag_protocol import TagProtocol
from hopgym.types import ParsedAction, Passage

__all__ = ["ReSearchProtocol"]

_TAGS = (ActionTags("search", "<search>", "</search>"), ActionTags("answer", "<answer>", "</answer>"))
_OBSERVATION_TAGS = ("<result>", "</result>")
# ReSearch's vLLM rollout stops only on </search>; an answer turn ends with the EOS token
# (Agent-RL/ReSearch@3b2fd14 src/verl/workers/rollout/vllm_rollout/vllm_rollout.py, generate_sequences).
_STOP: tuple[str, ...] = ("</search>",)


@dataclass(frozen=True)
class ReSearchProtocol(TagProtocol):
    """ReSearch (Agent-RL/ReSearch) tags.

    ``parse`` follows the Search-R1 rules (think blocks dropped, first complete action wins, invalid on no
    action / unclosed / nested / empty query). When several ``<search>`` openers precede the first
    ``</search>``, the last one starts the query, as ReSearch's ``rindex`` extraction does. The answer is the
    content of the last balanced ``\\boxed{...}`` inside ``<answer>``; without one (or with unbalanced braces)
    the whole stripped answer text is returned and a note says so, because EM/F1 rewards score
    ``ParsedAction.answer`` and ReSearch's own format reward checks ``\\boxed`` on the response separately.
    """

    name = "research"
    stop = _STOP
    default_reward = "research"
    action_tags = _TAGS
    forbidden_inside = (*_OBSERVATION_TAGS, THINK_OPEN, THINK_CLOSE)
    default_invalid_template = (
        "\n[Invalid action: {reason}. Search with <search> query </search> or finish with"
        " <answer> \\boxed{answer} </answer>.]\n"
    )

    def interpret_answer(self, content: str, notes: tuple[str, ...]) -> ParsedAction:
        boxed = last_boxed_content(content)
        if boxed is not None:
            return clean_answer(boxed, notes)
        if "\\boxed" in content:
            note = "\\boxed without balanced braces in the answer; using the whole answer text"
        else:
            note = "no \\boxed{} in the answer; using the whole answer text"
        return clean_answer(content, (*notes, note))

    def format_passages(self, passages: Sequence[Passage]) -> str:
        """Each passage's ``contents`` plus a blank line, all stripped, as ReSearch's ``batch_search``."""
        return "".join(f"{passage.contents}\n\n" for passage in passages).strip()

    def wrap_observation(self, body: str) -> str:
        """`` <result>\\n{body}\\n</result>``, as ReSearch's rollout appends after ``</search>``."""
        return f" <result>\n{body}\n</result>"

    def render_answer(self, answer: str) -> str:
        """``<answer> \\boxed{answer} </answer>``."""
        return f"<answer> \\boxed{{{answer}}} </answer>"
