"""The token ledger of one episode: the sequence a trainer consumes, built as the episode runs.

The prompt's ids come first, then each generation's sampled ids (loss mask 1, their logprobs, one action span
each) and each observation's ids (mask 0, no logprob), in order. The episode's :class:`~hopgym.agents.policy.
Context` views :attr:`TokenLedger.token_ids` and :attr:`TokenLedger.loss_mask` (the very lists, not copies),
so a policy sees the sequence grow without it being copied every turn. The finished ledger gives the
token-level fields of a :class:`~hopgym.agents.rollout.trajectory.Trajectory`, which
:func:`~hopgym.agents.rollout.trajectory.verify_trajectory` accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["TokenLedger"]


class TokenLedger:
    """Token ids, loss mask, aligned logprobs and action spans of one episode (append-only)."""

    def __init__(self, prompt_ids: Sequence[int]) -> None:
        self.token_ids: list[int] = list(prompt_ids)
        self.loss_mask: list[int] = [0] * len(self.token_ids)
        self.logprobs: list[float | None] = [None] * len(self.token_ids)
        self.action_spans: list[tuple[int, int]] = []
        self.prompt_token_count = len(self.token_ids)

    def __len__(self) -> int:
        return len(self.token_ids)

    def add_generation(self, token_ids: Sequence[int], logprobs: Sequence[float] | None) -> tuple[int, int]:
        """Append one turn's sampled ids (and their logprobs, when the backend gave them); returns its span.

        Raises ValueError when ``logprobs`` and ``token_ids`` differ in length.
        """
        if logprobs is not None and len(logprobs) != len(token_ids):
            raise ValueError(f"{len(token_ids)} token ids but {len(logprobs)} logprobs")
        start = len(self.token_ids)
        self.token_ids += token_ids
        self.loss_mask += [1] * len(token_ids)
        self.logprobs += list(logprobs) if logprobs is not None else [None] * len(token_ids)
        span = (start, len(self.token_ids))
        self.action_spans.append(span)
        return span

    def add_observation(self, token_ids: Sequence[int]) -> None:
        """Append an observation's ids (masked out: the policy did not generate them)."""
        self.token_ids += token_ids
        self.loss_mask += [0] * len(token_ids)
        self.logprobs += [None] * len(token_ids)

    def trajectory_fields(self) -> dict[str, Any]:
        """The token-level fields of a ``Trajectory`` (immutable copies): ``Trajectory(..., **fields)``."""
        return {
            "prompt_token_count": self.prompt_token_count,
            "token_ids": tuple(self.token_ids),
            "loss_mask": tuple(self.loss_mask),
            "logprobs": tuple(self.logprobs),
            "action_spans": tuple(self.action_spans),
        }
