"""Per-token log-probabilities (and entropies) of a batch under a causal LM: the trainer's forward pass."""

from __future__ import annotations

from typing import Any

import torch

from hopgym.trainers.algorithms.losses import entropy_from_logits

__all__ = ["sequence_log_probs"]


def sequence_log_probs(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(log_probs, entropy)``, each ``(batch, L - 1)``: slot ``t`` is token ``t + 1`` given tokens ``<= t``.

    Rows are right-padded, so positions ``0..L-1`` are the real positions of every row's tokens; padded slots
    hold values that the action mask removes.
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, :-1, :]
    logits = logits.float()
    log_probs = torch.log_softmax(logits, dim=-1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    entropy = entropy_from_logits(logits) if with_entropy else None
    return log_probs, entropy
