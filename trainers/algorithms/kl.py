"""Per-token KL estimates between the policy and the frozen reference policy.

Matches OpenRLHF 0.11.2 ``openrlhf/models/utils.py``, ``compute_approx_kl``. With ``d = log pi - log pi_ref``
(computed in float32) and Schulman's estimators (http://joschu.net/blog/kl-approx.html):

- ``k1 = d``
- ``k2 = d**2 / 2``
- ``k3 = exp(-d) - 1 + d``, where ``d`` is first clamped from below at -10 (only for k3, so ``exp(-d)``
  cannot overflow before the final clamp),

and every estimate is then clamped to ``[-10, 10]``. Note the clamp is on the estimate, not on ``d``.

The KL is either put into the token rewards (``-kl_coef * KL`` on every action token; see
:func:`hopgym.trainers.algorithms.advantages.token_rewards`) or added to the loss as ``kl_coef *
aggregate(KL)`` (see :func:`hopgym.trainers.algorithms.losses.kl_loss`). Positions outside the action mask
get an estimate like any other, and every consumer masks them out.
"""

from __future__ import annotations

import torch

from hopgym.trainers.algorithms.config import KLEstimator

__all__ = ["KL_CLAMP", "KL_IS_WEIGHT_CLIP", "approx_kl"]

# Bound of every estimate, and the lower bound of d inside k3 (compute_approx_kl).
KL_CLAMP = 10.0
# Upper bound of the importance weight pi/pi_old in the unbiased-gradient KL (KL_IS_WEIGHT_CLIP in utils.py).
KL_IS_WEIGHT_CLIP = 10.0


def approx_kl(
    log_probs: torch.Tensor,
    ref_log_probs: torch.Tensor,
    estimator: KLEstimator = "k1",
    *,
    old_log_probs: torch.Tensor | None = None,
    unbiased_gradient: bool = False,
) -> torch.Tensor:
    """Per-token KL estimate of ``pi`` (``log_probs``) from ``pi_ref`` (``ref_log_probs``), float32.

    With ``unbiased_gradient`` (a KL *loss* only) the value stays the chosen estimator's, but the gradient
    is that of ``w * d**2 / 2`` with the detached weight ``w = min(exp(log_probs - old_log_probs), 10)``
    (``w = 1`` without ``old_log_probs``): the importance-weighted reverse-KL gradient, the same for k1,
    k2 and k3 (OpenRLHF ``compute_approx_kl(..., unbiased_gradient=True)``).
    """
    d = log_probs.float() - ref_log_probs.float()

    if estimator == "k1":
        value = d
    elif estimator == "k2":
        value = d.square() / 2.0
    elif estimator == "k3":
        d_k3 = d.clamp(min=-KL_CLAMP)
        value = torch.exp(-d_k3) - 1.0 + d_k3
    else:
        raise ValueError(f"unknown KL estimator {estimator!r}: use 'k1', 'k2' or 'k3'")
    value = value.clamp(min=-KL_CLAMP, max=KL_CLAMP)

    if not unbiased_gradient:
        return value

    if old_log_probs is None:
        weight: torch.Tensor | float = 1.0
    else:
        weight = torch.exp(log_probs.float() - old_log_probs.float()).clamp(max=KL_IS_WEIGHT_CLIP).detach()
    surrogate = weight * d.square() / 2.0
    # Straight-through: the forward value is the estimate, the backward pass sees only the surrogate.
    return value.detach() + (surrogate - surrogate.detach())
