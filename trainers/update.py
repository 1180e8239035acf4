"""One policy update over a rollout batch, readable top to bottom (the math is in :mod:`.algorithms`).

1. ``old_log_probs``: the training model's log-probs of the rollout, recomputed before any update (as
   OpenRLHF does), and the reference model's when a KL term needs them.
2. Advantages from the rewards (and the in-reward KL), over the whole batch.
3. For each epoch and mini-batch: forward/backward in micro-batches (gradient accumulation, the loss
   normalized by the mini-batch's action tokens), clip the gradient norm, one optimizer and scheduler step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from hopgym.trainers.algorithms import AlgorithmConfig, actor_loss, approx_kl, compute_advantages
from hopgym.trainers.algorithms.losses import masked_mean, step_normalizers
from hopgym.trainers.batch import RolloutBatch
from hopgym.trainers.config import OptimConfig
from hopgym.trainers.logprobs import sequence_log_probs

__all__ = ["UpdateStats", "batch_log_probs", "update_policy"]


@dataclass(frozen=True)
class UpdateStats:
    """Means over the update's micro-batches (weighted by action tokens where it matters)."""

    policy_loss: float
    kl: float
    entropy: float
    clip_fraction: float
    ppo_kl: float
    rollout_kl: float
    grad_norm: float
    advantage_abs_mean: float
    optimizer_steps: int


@torch.no_grad()
def batch_log_probs(
    model: Any,
    batch: RolloutBatch,
    micro_batch_size: int,
    autocast: AbstractContextManager[Any] | None = None,
) -> torch.Tensor:
    """Log-probs of every slot of ``batch`` under ``model``, computed in micro-batches without gradient."""
    device = next(model.parameters()).device
    chunks = []
    for start in range(0, len(batch), micro_batch_size):
        rows = batch.rows(slice(start, start + micro_batch_size))
        with autocast or nullcontext():
            logp, _ = sequence_log_probs(model, rows.input_ids.to(device), rows.attention_mask.to(device))
        chunks.append(logp.float().cpu())
    return torch.cat(chunks)


def _slices(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def update_policy(
    model: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    batch: RolloutBatch,
    algorithm: AlgorithmConfig,
    optim: OptimConfig,
    *,
    old_log_probs: torch.Tensor | None,
    ref_log_probs: torch.Tensor | None = None,
    autocast: AbstractContextManager[Any] | None = None,
    generator: torch.Generator | None = None,
) -> UpdateStats:
    """Advantages, then ``optim.epochs`` x ``optim.mini_batches`` optimizer steps over ``batch``.

    ``old_log_probs=None`` is allowed when the update is a single optimizer step and the KL is not in the
    reward: the weights that score the batch are then the weights that take the step, so the old log-probs
    are exactly the detached log-probs of that forward pass (the ratio is 1) and the separate pass is skipped.
    """
    device = next(model.parameters()).device
    mask = batch.action_mask
    if old_log_probs is None and (optim.epochs * optim.mini_batches > 1 or algorithm.kl_in_reward):
        raise ValueError(
            "old_log_probs are needed for several optimizer steps per batch or a KL in the reward: compute "
            "them with batch_log_probs before the update"
        )

    # 2. Advantages over the whole batch (whitening, when the estimator whitens, uses every action token).
    kl_in_reward = None
    if algorithm.kl_in_reward:
        assert ref_log_probs is not None, "kl_coef > 0 needs the reference model's log-probs"
        assert old_log_probs is not None
        kl_in_reward = approx_kl(old_log_probs, ref_log_probs, algorithm.kl_estimator) * mask
    advantages = compute_advantages(
        batch.rewards, mask, algorithm, group_size=batch.group_size, kl=kl_in_reward
    ).advantages

    # 3. Optimizer steps: mini-batches of whole rows (shuffled after the first epoch), micro-batches inside.
    n = len(batch)
    mini = n // optim.mini_batches
    totals = {
        "policy": 0.0,
        "kl": 0.0,
        "entropy": 0.0,
        "clip": 0.0,
        "ppo_kl": 0.0,
        "rollout_kl": 0.0,
        "grad_norm": 0.0,
    }
    tokens_seen, steps = 0.0, 0
    model.train()
    for epoch in range(optim.epochs):
        order = torch.arange(n) if epoch == 0 else torch.randperm(n, generator=generator)
        for mini_rows in _slices(n, mini):
            index = order[mini_rows]
            micro_indices = [index[s] for s in _slices(len(index), optim.micro_batch_size)]
            num_tokens, num_sequences = step_normalizers([mask[i] for i in micro_indices])
            if num_tokens == 0:
                continue
            optimizer.zero_grad(set_to_none=True)
            for rows in micro_indices:
                part = batch.rows(rows)
                part_mask = part.action_mask.to(device)
                with autocast or nullcontext():
                    log_probs, entropy = sequence_log_probs(
                        model,
                        part.input_ids.to(device),
                        part.attention_mask.to(device),
                        with_entropy=True,
                    )
                old = log_probs.detach().float() if old_log_probs is None else old_log_probs[rows].to(device)
                result = actor_loss(
                    log_probs.float(),
                    old,
                    advantages[rows].to(device),
                    part_mask,
                    algorithm,
                    ref_log_probs=None if ref_log_probs is None else ref_log_probs[rows].to(device),
                    rollout_log_probs=part.rollout_log_probs.to(device),
                    entropy=entropy if algorithm.entropy_coef > 0 or entropy is None else entropy.detach(),
                    num_tokens=num_tokens,
                    num_sequences=num_sequences,
                )
                result.loss.backward()  # type: ignore[no-untyped-call]
                weight = float(part_mask.sum())
                tokens_seen += weight
                # policy_loss and entropy are normalized by the whole mini-batch: their sum over its
                # micro-batches is the mini-batch's mean. clip_fraction/ppo_kl/kl are micro-batch means.
                totals["policy"] += float(result.policy_loss)
                totals["entropy"] += float(result.entropy)
                totals["clip"] += float(result.clip_fraction) * weight
                totals["ppo_kl"] += float(result.ppo_kl) * weight
                totals["rollout_kl"] += float(result.rollout_kl) * weight
                if ref_log_probs is not None:
                    kl = approx_kl(log_probs.detach(), ref_log_probs[rows].to(device), algorithm.kl_estimator)
                    totals["kl"] += float(masked_mean(kl, part_mask)) * weight
            limit = optim.grad_clip if optim.grad_clip > 0 else math.inf
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), limit)
            totals["grad_norm"] += float(norm)
            optimizer.step()
            scheduler.step()
            steps += 1
    tokens_seen = max(tokens_seen, 1.0)
    return UpdateStats(
        policy_loss=totals["policy"] / max(steps, 1),
        kl=totals["kl"] / tokens_seen,
        entropy=totals["entropy"] / max(steps, 1),
        clip_fraction=totals["clip"] / tokens_seen,
        ppo_kl=totals["ppo_kl"] / tokens_seen,
        rollout_kl=totals["rollout_kl"] / tokens_seen,
        grad_norm=totals["grad_norm"] / max(steps, 1),
        advantage_abs_mean=float(masked_mean(advantages.abs(), mask)) if mask.sum() > 0 else 0.0,
        optimizer_steps=steps,
    )
