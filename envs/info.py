"""The shape of the ``info`` dicts returned by ``reset`` and ``step``.

They are ``TypedDict``s: type checkers know every key, while at run time each info is a plain ``dict`` (what
Gymnasium and its wrappers expect).
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from hopgym.types import ActionKind

__all__ = ["ResetInfo", "StepInfo"]


class ResetInfo(TypedDict):
    """``info`` from ``reset()``: the episode's task and how to prompt a policy for it."""

    task_id: str
    question: str
    #: Always 0 after reset (the number of actions taken so far).
    turn: int
    #: The first prompt as chat messages (for chat policies).
    messages: list[dict[str, Any]]
    #: Strings that end one generation turn.
    stop: list[str]
    #: OpenAI tool schemas; present only for function-calling protocols.
    tools: NotRequired[list[dict[str, Any]]]


class StepInfo(TypedDict):
    """``info`` from ``step()``: what the action meant and, on the last step, the reward's parts."""

    task_id: str
    #: Actions taken so far, this one included.
    turn: int
    action_kind: ActionKind
    #: The search query (search actions), else None.
    query: str | None
    #: Ids of the passages returned to this search action (empty otherwise).
    passage_ids: list[str]
    invalid: bool
    #: Why the action was invalid (invalid actions), else None.
    invalid_reason: str | None
    #: Recoverable oddities of the action (a truncated query, ignored extra tags).
    action_notes: list[str]
    #: The id of the tool call this action was (function-calling protocols), else None.
    tool_call_id: str | None
    #: The answer the protocol extracted (answer actions), else None.
    answer: str | None
    num_searches: int
    #: True when the observation was cut to the env's observation limit.
    observation_truncated: bool
    #: The reward's named parts (``RewardResult.reward_components``); empty before the last step.
    reward_components: dict[str, float]
