"""KL estimates on hand-computed values (OpenRLHF 0.11.2 openrlhf/models/utils.py, compute_approx_kl)."""

from __future__ import annotations

import math

import pytest
import torch

from hopgym.trainers.algorithms.kl import approx_kl


def _kl(d: float, estimator: str) -> float:
    return float(approx_kl(torch.tensor([d]), torch.tensor([0.0]), estimator))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [("k1", 0.5), ("k2", 0.125), ("k3", math.exp(-0.5) - 1 + 0.5)],
)
def test_estimators_at_a_small_log_ratio(estimator, expected):
    assert _kl(0.5, estimator) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("d", "estimator", "expected"),
    [
        (20.0, "k1", 10.0),  # the estimate, not d, is clamped to [-10, 10]
        (-20.0, "k1", -10.0),
        (5.0, "k2", 10.0),  # 12.5 -> 10
        (20.0, "k3", 10.0),  # exp(-20) - 1 + 20 = 19 -> 10
        (-3.0, "k3", math.exp(3.0) - 1 - 3.0),  # 16.09 -> 10
        (-2.0, "k3", math.exp(2.0) - 1 - 2.0),  # 4.39, inside the clamp
    ],
)
def test_the_estimate_is_clamped_to_plus_minus_10(d, estimator, expected):
    assert _kl(d, estimator) == pytest.approx(min(expected, 10.0), rel=1e-6)


def test_k3_stays_finite_with_a_zero_gradient_far_below_minus_10():
    # d is clamped at -10 inside k3 before exp(-d): exp(100) would overflow float32 and give 0 * inf = nan.
    log_probs = torch.tensor([-100.0, -3.0], requires_grad=True)
    kl = approx_kl(log_probs, torch.zeros(2), "k3")
    kl.sum().backward()
    assert kl.tolist() == [10.0, 10.0]
    assert log_probs.grad is not None and log_probs.grad.tolist() == [0.0, 0.0]


def test_unbiased_gradient_keeps_the_value_and_uses_the_weighted_reverse_kl_gradient():
    # compute_approx_kl(unbiased_gradient=True): value of the estimator; gradient of w * d**2 / 2, i.e.
    # w * d with w = min(exp(log pi - log pi_old), 10), detached.
    log_probs = torch.tensor([0.3, -0.4], requires_grad=True)
    old = torch.tensor([0.1, -0.4])
    kl = approx_kl(log_probs, torch.zeros(2), "k3", old_log_probs=old, unbiased_gradient=True)
    kl.sum().backward()
    torch.testing.assert_close(kl.detach(), approx_kl(log_probs.detach(), torch.zeros(2), "k3"))
    expected = torch.tensor([math.exp(0.2) * 0.3, 1.0 * -0.4])
    assert log_probs.grad is not None
    torch.testing.assert_close(log_probs.grad, expected)


def test_unknown_estimator_is_refused():
    with pytest.raises(ValueError, match="'k1', 'k2' or 'k3'"):
        _kl(0.1, "k4")
