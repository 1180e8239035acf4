"""The actor's loss: PPO-clip policy loss, optional KL loss and entropy bonus, as OpenRLHF 0.11.2 builds it.

References: ``openrlhf/models/loss.py`` (``PolicyLoss.forward`` for ``policy_loss_type="ppo"``, its
rollout importance correction, and ``aggregate_loss``), ``openrlhf/trainer/ray/ppo_actor.py``
(``training_step``: ``loss = policy_loss + kl_coef * kl_loss - entropy_coef * entropy``) and
``openrlhf/models/utils.py`` (``compute_entropy``, ``masked_mean``).

Per action token, with ``A`` the advantage:

- ``ratio = exp(clamp(log pi - log pi_old, -20, 20))``
- ``loss = -min(ratio * A, clamp(ratio, 1 - eps_low, 1 + eps_high) * A)``
- dual clip (``c > 1``), negative advantages only: ``loss = -max(min(...), c * A)``.
- rollout importance correction (optional, :func:`rollout_correction`): ``loss *= coef``, where ``coef`` is
  the token weight ``pi_old / pi_rollout`` (the training model's recomputed log-probs over the sampler's)
  clamped into a band, or kept/zeroed by a gate on the token, the sequence, or a divergence.

Aggregation (:func:`aggregate`) over the optimizer step, so that gradient accumulation over micro-batches
gives the same gradient as one big batch: ``token-mean`` divides the masked sum by the number of action
tokens of the whole step (``num_tokens``); ``seq-mean-token-mean`` averages each sequence over its action
tokens (``/ (count + 1e-8)``) and divides the sum by the step's number of non-empty sequences. Sum the
micro-batch losses (do not divide by the accumulation steps again). OpenRLHF's extra ``* dp_size`` and
``/ gas`` only undo DeepSpeed's averaging and cancel out; this single-process version has neither. The KL
loss and the entropy are always token-means, whatever the policy loss uses (OpenRLHF calls
``aggregate_loss`` for them without ``token_level_loss``).

Masked positions enter every sum multiplied by 0, so their gradient is exactly 0 (given finite inputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from hopgym.trainers.algorithms.config import (
    AlgorithmConfig,
    ISCorrectionGating,
    ISCorrectionLevel,
    ISCorrectionMode,
    LossAggregation,
)
from hopgym.trainers.algorithms.kl import approx_kl

__all__ = [
    "LOG_RATIO_CLAMP",
    "ActorLoss",
    "RolloutCorrection",
    "actor_loss",
    "aggregate",
    "entropy_from_logits",
    "masked_mean",
    "ppo_clip_loss",
    "rollout_correction",
    "step_normalizers",
]

# The log-ratio is clamped before exp (PolicyLoss.forward: clamp(min=-20.0, max=20.0)).
LOG_RATIO_CLAMP = 20.0
# Per-sequence token mean denominator: count + SEQ_MEAN_EPS (aggregate_loss).
SEQ_MEAN_EPS = 1e-8
# Token probabilities are clamped to [eps, 1 - eps] before the binary KL's logs (PolicyLoss.forward).
PROB_CLAMP = 1e-6


class ActorLoss(NamedTuple):
    """The loss to back-propagate (``loss``) and its detached parts, for the metrics.

    ``policy_loss``; ``kl_loss``: the token-mean KL before ``kl_coef`` (0 without ``use_kl_loss``);
    ``entropy``: the token-mean entropy (0 when none was passed); ``clip_fraction``: share of action tokens
    where clipping lowered the objective; ``ppo_kl``: mean ``log pi_old - log pi`` (OpenRLHF's ``ppo_kl``);
    ``rollout_kl``: mean ``log pi_rollout - log pi_old`` and ``is_filtered_fraction``: share of units the
    correction dropped or clamped (both 0 when the correction is off). Means are over this micro-batch.
    """

    loss: torch.Tensor
    policy_loss: torch.Tensor
    kl_loss: torch.Tensor
    entropy: torch.Tensor
    clip_fraction: torch.Tensor
    ppo_kl: torch.Tensor
    rollout_kl: torch.Tensor
    is_filtered_fraction: torch.Tensor


class RolloutCorrection(NamedTuple):
    """Per-token loss weights of the rollout importance correction, and its metrics."""

    coef: torch.Tensor
    filtered_fraction: torch.Tensor
    rollout_kl: torch.Tensor


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is 1 (over ``dim``, or everything)."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum()
    return (values * mask).sum(dim=dim) / mask.sum(dim=dim)


def step_normalizers(action_masks: Sequence[torch.Tensor]) -> tuple[float, float]:
    """``(num_tokens, num_sequences)`` of one optimizer step: action tokens and non-empty sequences over all
    of its micro-batches' action masks (pass them to :func:`aggregate`)."""
    num_tokens = sum(float(mask.sum()) for mask in action_masks)
    num_sequences = sum(float((mask.sum(dim=-1) > 0).sum()) for mask in action_masks)
    return num_tokens, num_sequences


def aggregate(
    per_token: torch.Tensor,
    action_mask: torch.Tensor,
    mode: LossAggregation = "token-mean",
    *,
    num_tokens: float | None = None,
    num_sequences: float | None = None,
) -> torch.Tensor:
    """A ``(batch, tokens)`` loss reduced to a scalar over the action tokens (see the module docstring).

    Without ``num_tokens`` / ``num_sequences`` the normalizer is this batch's own count.
    """
    mask = action_mask.to(per_token.dtype)
    if mode == "token-mean":
        total = (per_token * mask).sum()
        return total / (mask.sum() if num_tokens is None else num_tokens)
    if mode == "seq-mean-token-mean":
        counts = mask.sum(dim=-1)
        per_sequence = (per_token * mask).sum(dim=-1) / (counts + SEQ_MEAN_EPS)
        non_empty = (counts > 0).to(per_token.dtype)
        total = (per_sequence * non_empty).sum()
        return total / (non_empty.sum() if num_sequences is None else num_sequences)
    raise ValueError(f"unknown loss aggregation {mode!r}: use 'token-mean' or 'seq-mean-token-mean'")


def ppo_clip_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    *,
    eps_clip_low: float = 0.2,
    eps_clip_high: float = 0.2,
    dual_clip: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO-clip loss and a bool tensor of the tokens where clipping lowered the objective."""
    log_ratio = (log_probs - old_log_probs).clamp(min=-LOG_RATIO_CLAMP, max=LOG_RATIO_CLAMP)
    ratio = log_ratio.exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - eps_clip_low, 1.0 + eps_clip_high) * advantages
    objective = torch.min(unclipped, clipped)
    if dual_clip is not None:
        # Dual-clip PPO (arXiv:1912.09729): a floor on a negative advantage's objective.
        objective = torch.where(advantages < 0, torch.max(objective, dual_clip * advantages), objective)
    return -objective, clipped < unclipped


def rollout_correction(
    old_log_probs: torch.Tensor,
    rollout_log_probs: torch.Tensor,
    action_mask: torch.Tensor,
    *,
    level: ISCorrectionLevel,
    mode: ISCorrectionMode,
    gating: ISCorrectionGating,
    threshold: tuple[float, float],
) -> RolloutCorrection:
    """Weights for the gap between the sampler (vLLM) and the training model (OpenRLHF PolicyLoss.forward,
    ``is_correction_*``; "Your Efficient RL Framework Secretly Brings You Off-Policy RL Training").

    The gate reads a statistic per token (``level="token"``) or per sequence (``"seq"``): the weight
    ``w = exp(old - rollout)`` (``gating="ratio"``; per sequence its geometric mean over action tokens), or
    the sampled token's binary KL / total variation between the two policies (per sequence their mean).
    ``mode="clip"`` uses ``clamp(w, low, high)``; ``mode="mask"`` keeps ``w`` inside the band and 0 outside.
    """
    low, high = threshold
    log_weight = (old_log_probs - rollout_log_probs).detach()
    per_sequence = level == "seq"
    if gating == "ratio":
        statistic = masked_mean(log_weight, action_mask, dim=-1)[:, None] if per_sequence else log_weight
        statistic = statistic.exp()
    else:
        p = rollout_log_probs.exp().clamp(PROB_CLAMP, 1 - PROB_CLAMP)
        q = old_log_probs.exp().clamp(PROB_CLAMP, 1 - PROB_CLAMP)
        if gating == "binary_kl":
            statistic = p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()
        else:
            statistic = (p - q).abs()
        if per_sequence:
            statistic = masked_mean(statistic, action_mask, dim=-1)[:, None]
    if mode == "clip":
        coef = statistic.clamp(min=low, max=high)
        filtered = (statistic < low) | (statistic > high)
    else:
        kept = (statistic >= low) & (statistic <= high)
        coef = torch.where(kept, log_weight.exp(), 0.0)
        filtered = ~kept
    # Per sequence, the fraction is over all sequences of the batch (as OpenRLHF counts it).
    fraction = filtered.float().mean() if per_sequence else masked_mean(filtered.float(), action_mask)
    rollout_kl = masked_mean((rollout_log_probs - old_log_probs).detach(), action_mask)
    return RolloutCorrection(coef=coef, filtered_fraction=fraction, rollout_kl=rollout_kl)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the softmax over the last axis: ``logsumexp(z) - sum(softmax(z) * z)``."""
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(dim=-1)


def actor_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    action_mask: torch.Tensor,
    config: AlgorithmConfig,
    *,
    ref_log_probs: torch.Tensor | None = None,
    rollout_log_probs: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    num_tokens: float | None = None,
    num_sequences: float | None = None,
) -> ActorLoss:
    """The actor's loss for one micro-batch: ``policy + kl_coef * KL - entropy_coef * entropy``.

    ``log_probs`` (with gradient), ``old_log_probs``, ``advantages``, ``action_mask``: ``(batch, tokens)``.
    ``ref_log_probs`` is needed when ``config.use_kl_loss``; ``rollout_log_probs`` (the sampler's) when
    ``config.is_correction_level`` is not ``off``; ``entropy`` (per token, e.g. from
    :func:`entropy_from_logits`) when ``config.entropy_coef > 0``. ``num_tokens`` / ``num_sequences``:
    the optimizer step's totals (:func:`step_normalizers`); default: this micro-batch's.
    """
    per_token, was_clipped = ppo_clip_loss(
        log_probs,
        old_log_probs,
        advantages,
        eps_clip_low=config.eps_clip_low,
        eps_clip_high=config.eps_clip_high,
        dual_clip=config.dual_clip,
    )
    zero = torch.zeros((), device=log_probs.device)
    filtered_fraction = rollout_kl = zero
    if config.is_correction_level != "off":
        if rollout_log_probs is None:
            raise ValueError(
                "config.is_correction_level is set: pass rollout_log_probs (the sampler's log-probs)"
            )
        correction = rollout_correction(
            old_log_probs,
            rollout_log_probs,
            action_mask,
            level=config.is_correction_level,
            mode=config.is_correction_mode,
            gating=config.is_correction_gating,
            threshold=config.is_correction_threshold,
        )
        per_token = correction.coef * per_token
        filtered_fraction, rollout_kl = correction.filtered_fraction, correction.rollout_kl
    policy = aggregate(
        per_token, action_mask, config.loss_aggregation, num_tokens=num_tokens, num_sequences=num_sequences
    )
    loss = policy

    kl_term = zero
    if config.use_kl_loss:
        if ref_log_probs is None:
            raise ValueError(
                "config.use_kl_loss is set: pass ref_log_probs (the reference model's log-probs)"
            )
        kl = approx_kl(
            log_probs,
            ref_log_probs,
            config.kl_estimator,
            old_log_probs=old_log_probs,
            unbiased_gradient=config.kl_unbiased_gradient,
        )
        kl_term = aggregate(kl, action_mask, "token-mean", num_tokens=num_tokens)
        loss = loss + config.kl_coef * kl_term

    entropy_term = zero
    if entropy is not None:
        entropy_term = aggregate(entropy, action_mask, "token-mean", num_tokens=num_tokens)
        if config.entropy_coef > 0:
            loss = loss - config.entropy_coef * entropy_term
    elif config.entropy_coef > 0:
        raise ValueError("config.entropy_coef > 0: pass entropy (per token, see entropy_from_logits)")

    with torch.no_grad():
        clip_fraction = masked_mean(was_clipped.float(), action_mask)
        ppo_kl = masked_mean(-(log_probs - old_log_probs).float(), action_mask)
    return ActorLoss(
        loss=loss,
        policy_loss=policy.detach(),
        kl_loss=kl_term.detach(),
        entropy=entropy_term.detach(),
        clip_fraction=clip_fraction,
        ppo_kl=ppo_kl,
        rollout_kl=rollout_kl,
        is_filtered_fraction=filtered_fraction,
    )
