"""From one scalar reward per sample to a per-token advantage, as OpenRLHF 0.11.2 computes it.

Reference: ``openrlhf/trainer/ppo_utils/experience_maker.py``, ``RemoteExperienceMaker.
compute_advantages_and_returns`` (baselines, whitening) and ``get_cumulative_returns`` (reward-to-go), and
``openrlhf/models/utils.py``, ``compute_reward`` (reward clip, KL penalty, reward on the last action token).
The steps, in the order :func:`compute_advantages` runs them:

1. Baseline per prompt group (:func:`subtract_baseline`). The batch holds ``group_size`` consecutive
   samples per prompt (sample ``i`` of prompt ``p`` at row ``p * group_size + i``):
   ``reinforce`` keeps ``r``; ``reinforce_baseline`` and ``dr_grpo`` use ``r - mean``; ``group_norm``
   (GRPO) uses ``(r - mean) / (std + 1e-9)`` with the Bessel-corrected std (``torch.std``, n - 1);
   ``rloo`` uses ``r - (sum - r) / (n - 1)``, the mean of the *other* samples.
2. Reward clip (:func:`clip_rewards`): the clamp applies to the baseline-subtracted reward, as in
   OpenRLHF (``compute_reward`` receives the shaped reward).
3. Token rewards (:func:`token_rewards`): the sample's reward on its last action token, plus
   ``-kl_coef * KL`` on every action token when the KL is in the reward (REINFORCE++).
4. Returns (:func:`reward_to_go`): ``G_t = r_t + gamma * G_{t+1}`` over the token positions. Like OpenRLHF,
   the discount steps over *every* position, masked ones included (their reward is 0). Advantages start as
   the returns.
5. Whitening (:func:`whiten`) for ``reinforce`` and ``reinforce_baseline`` only: subtract the mean and
   divide by ``sqrt(max(var, 1e-8))``, both over all action tokens of the batch, variance biased (divided by
   the token count). ``group_norm``, ``rloo`` and ``dr_grpo`` are not whitened.

Masked positions (prompt, retrieved documents, chat glue, padding) take no part: they carry no reward or
KL, are left out of every mean and variance, and their advantages and returns are exactly 0 (OpenRLHF
leaves whatever the arithmetic gives there, which its losses then mask; the action-token values agree).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from hopgym.trainers.algorithms.config import WHITENED_ESTIMATORS, AlgorithmConfig, Estimator

__all__ = [
    "GROUP_NORM_EPS",
    "WHITEN_VAR_EPS",
    "Advantages",
    "clip_rewards",
    "compute_advantages",
    "reward_to_go",
    "subtract_baseline",
    "token_rewards",
    "whiten",
]

# (r - mean) / (std + GROUP_NORM_EPS): added to the std (compute_advantages_and_returns, group_norm).
GROUP_NORM_EPS = 1e-9
# rsqrt(max(var, WHITEN_VAR_EPS)): a floor on the variance, not an addend (compute_advantages_and_returns).
WHITEN_VAR_EPS = 1e-8


class Advantages(NamedTuple):
    """Per-token advantages and returns, shape ``(batch, tokens)``, float32, zero outside the action mask."""

    advantages: torch.Tensor
    returns: torch.Tensor


def subtract_baseline(rewards: torch.Tensor, estimator: Estimator, group_size: int) -> torch.Tensor:
    """The reward minus the estimator's baseline, per sample (``rewards``: shape ``(batch,)``)."""
    if estimator == "reinforce":
        return rewards
    if rewards.numel() % group_size != 0:
        raise ValueError(
            f"{rewards.numel()} rewards do not split into groups of {group_size}: the batch must hold "
            "group_size consecutive samples per prompt"
        )
    groups = rewards.view(-1, group_size)
    mean = groups.mean(dim=-1, keepdim=True)
    if estimator in ("reinforce_baseline", "dr_grpo"):
        shaped = groups - mean
    elif estimator == "group_norm":
        std = groups.std(dim=-1, keepdim=True)  # Bessel-corrected, as torch.std defaults to
        shaped = (groups - mean) / (std + GROUP_NORM_EPS)
    elif estimator == "rloo":
        leave_one_out_mean = (groups.sum(dim=-1, keepdim=True) - groups) / (group_size - 1)
        shaped = groups - leave_one_out_mean
    else:
        raise ValueError(f"unknown advantage estimator {estimator!r}")
    return shaped.reshape(-1)


def clip_rewards(rewards: torch.Tensor, clip_range: tuple[float, float] | None) -> torch.Tensor:
    """``rewards`` clamped to ``clip_range`` (unchanged for None)."""
    if clip_range is None:
        return rewards
    return rewards.clamp(min=clip_range[0], max=clip_range[1])


def token_rewards(
    rewards: torch.Tensor,
    action_mask: torch.Tensor,
    kl: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> torch.Tensor:
    """Per-token rewards ``(batch, tokens)``: each sample's reward on its last action token, plus
    ``-kl_coef * kl`` on every action token; 0 outside the action mask (a sample without any action token
    gets nothing)."""
    mask = action_mask.float()
    positions = torch.arange(mask.size(1), device=mask.device)
    last_action = (positions * mask).argmax(dim=1)  # the highest position whose mask is 1
    per_token = torch.zeros_like(mask)
    per_token[torch.arange(mask.size(0), device=mask.device), last_action] = rewards.float()
    if kl is not None and kl_coef > 0:
        per_token = per_token - kl_coef * kl.float()
    return per_token * mask


def reward_to_go(per_token_rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """``G_t = r_t + gamma * G_{t+1}`` along the token axis (gamma applies at every position)."""
    returns = torch.zeros_like(per_token_rewards)
    running = torch.zeros_like(per_token_rewards[:, 0])
    for t in reversed(range(per_token_rewards.size(1))):
        running = per_token_rewards[:, t] + gamma * running
        returns[:, t] = running
    return returns


def whiten(
    values: torch.Tensor, action_mask: torch.Tensor, *, std_norm: bool = True, var_eps: float = WHITEN_VAR_EPS
) -> torch.Tensor:
    """``values`` minus their mean over the action tokens, divided by ``sqrt(max(var, var_eps))`` with the
    biased variance over the action tokens (``std_norm=False``: mean only); 0 outside the mask."""
    mask = action_mask.float()
    num_actions = mask.sum()
    if num_actions == 0:
        raise ValueError("cannot whiten: the batch has no action tokens (every action_mask entry is 0)")
    values = values.float()
    mean = (values * mask).sum() / num_actions
    centered = values - mean
    if std_norm:
        var = (centered.square() * mask).sum() / num_actions
        centered = centered * var.clamp(min=var_eps).rsqrt()
    return torch.where(mask > 0, centered, 0.0)


@torch.no_grad()
def compute_advantages(
    rewards: torch.Tensor,
    action_mask: torch.Tensor,
    config: AlgorithmConfig,
    *,
    group_size: int,
    kl: torch.Tensor | None = None,
) -> Advantages:
    """Advantages and returns of a whole rollout batch (whitening uses every action token of it).

    ``rewards``: one scalar per sample, shape ``(batch,)``, groups of ``group_size`` consecutive samples per
    prompt. ``action_mask``: ``(batch, tokens)``, 1 on generated tokens. ``kl``: required exactly when
    ``config.kl_in_reward``: ``approx_kl(old_log_probs, ref_log_probs, config.kl_estimator)``, with the
    log-probs the training model recomputed for the rollout before the update (as OpenRLHF's
    ``make_experience`` does).
    """
    config.check_group_size(group_size)
    if rewards.dim() != 1 or action_mask.dim() != 2 or rewards.size(0) != action_mask.size(0):
        raise ValueError(
            f"rewards {tuple(rewards.shape)} and action_mask {tuple(action_mask.shape)} do not match: "
            "expected rewards (batch,) and action_mask (batch, tokens)"
        )
    if config.kl_in_reward and kl is None:
        raise ValueError("config puts the KL in the reward (kl_coef > 0, use_kl_loss=False): pass kl")
    if not config.kl_in_reward and kl is not None:
        raise ValueError(
            "kl was passed but config does not put the KL in the reward: drop kl, or set kl_coef"
        )

    # Group statistics in at least float32 (OpenRLHF promotes the rewards the same way).
    rewards = rewards.to(torch.promote_types(rewards.dtype, torch.float32))
    shaped = subtract_baseline(rewards, config.estimator, group_size)
    shaped = clip_rewards(shaped, config.reward_clip)

    per_token = token_rewards(shaped, action_mask, kl, config.kl_coef)
    returns = torch.where(action_mask > 0, reward_to_go(per_token, config.gamma), 0.0)

    if config.estimator in WHITENED_ESTIMATORS:
        advantages = whiten(returns, action_mask, std_norm=config.advantage_std_norm)
    else:
        advantages = returns.clone()
    return Advantages(advantages=advantages, returns=returns)
