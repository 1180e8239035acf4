"""The actor loss on hand-computed cases (citing OpenRLHF 0.11.2 openrlhf/models/loss.py), masking by
autograd, and gradient accumulation with the optimizer step's normalizers."""

from __future__ import annotations

import math

import pytest
import torch

from hopgym.trainers.algorithms.config import AlgorithmConfig
from hopgym.trainers.algorithms.losses import (
    actor_loss,
    aggregate,
    entropy_from_logits,
    ppo_clip_loss,
    step_normalizers,
)

RATIO = math.exp(0.5)  # 1.6487: beyond 1 + 0.2


def _one_token(advantage: float, log_ratio: float = 0.5, **clip):
    log_probs = torch.tensor([[log_ratio]], requires_grad=True)
    loss, clipped = ppo_clip_loss(log_probs, torch.zeros(1, 1), torch.tensor([[advantage]]), **clip)
    loss.sum().backward()
    assert log_probs.grad is not None
    return float(loss.detach()), float(log_probs.grad), bool(clipped)


def test_positive_advantage_above_the_clip_is_clipped_and_gets_no_gradient():
    # PolicyLoss.forward L200-205: -min(ratio * A, clamp(ratio, 0.8, 1.2) * A) = -1.2.
    assert _one_token(1.0) == pytest.approx((-1.2, 0.0, True))


def test_negative_advantage_above_the_clip_is_not_clipped():
    # min(-1.6487, -1.2) = -1.6487: the pessimistic unclipped term, gradient -A * ratio = 1.6487.
    loss, grad, clipped = _one_token(-1.0)
    assert (loss, grad, clipped) == pytest.approx((RATIO, RATIO, False))


def test_dual_clip_bounds_a_negative_advantage():
    # L207-212: max(min(surr1, surr2), dual_clip * A) = max(-1.6487, -1.5) = -1.5 for A < 0.
    assert _one_token(-1.0, dual_clip=1.5)[:2] == pytest.approx((1.5, 0.0))
    # ... and leaves positive advantages alone: min(0.6065, 0.8) = 0.6065, the unclipped term.
    assert _one_token(1.0, log_ratio=-0.5, dual_clip=1.5)[0] == pytest.approx(-math.exp(-0.5))


def test_separate_low_and_high_clip():
    assert _one_token(1.0, eps_clip_low=0.1, eps_clip_high=0.28)[0] == pytest.approx(-1.28)
    assert _one_token(-1.0, log_ratio=-0.5, eps_clip_low=0.1, eps_clip_high=0.28)[0] == pytest.approx(0.9)


def test_the_log_ratio_is_clamped_at_20_before_exp():
    # L187: clamp(min=-20, max=20): a log-ratio of 50 gives exp(20), not exp(50), and no gradient.
    loss, grad, _ = _one_token(-1.0, log_ratio=50.0)
    assert (loss, grad) == pytest.approx((math.exp(20.0), 0.0))


def test_entropy_of_uniform_and_peaked_logits():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(entropy_from_logits(logits), torch.tensor([math.log(4), 0.0]))


def test_clip_fraction_and_ppo_kl_are_over_action_tokens():
    log_probs = torch.tensor([[0.5, 0.0, 0.5, 9.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    result = actor_loss(log_probs, torch.zeros(1, 4), torch.ones(1, 4), mask, AlgorithmConfig())
    # L257-258: tokens 0 and 2 are clipped out of 3 action tokens; ppo_kl = mean(-(log pi - log pi_old)).
    assert float(result.clip_fraction) == pytest.approx(2 / 3)
    assert float(result.ppo_kl) == pytest.approx(-1 / 3)


def _micro_batch(seed: int, rows: int = 6, tokens: int = 7, vocab: int = 5):
    generator = torch.Generator().manual_seed(seed)
    mask = (torch.rand(rows, tokens, generator=generator) < 0.5).long()
    mask[0] = 0  # a sequence with no action tokens at all
    logits = torch.randn(rows, tokens, vocab, generator=generator)
    actions = torch.randint(0, vocab, (rows, tokens), generator=generator)
    current = torch.log_softmax(logits, dim=-1).gather(-1, actions[..., None]).squeeze(-1)
    return dict(
        logits=logits,
        actions=actions,
        # Slightly off-policy, inside the clip range: every action token keeps a gradient.
        old=current + torch.randn(rows, tokens, generator=generator) * 0.05,
        ref=-torch.rand(rows, tokens, generator=generator) * 2,
        advantages=torch.randn(rows, tokens, generator=generator),
        mask=mask,
    )


FULL_CONFIGS = [
    AlgorithmConfig(),
    AlgorithmConfig(loss_aggregation="seq-mean-token-mean", dual_clip=3.0),
    AlgorithmConfig(kl_coef=0.1, use_kl_loss=True, kl_estimator="k3", entropy_coef=0.01),
    AlgorithmConfig(kl_coef=0.1, use_kl_loss=True, kl_estimator="k2", kl_unbiased_gradient=True, entropy_coef=0.01,
                    loss_aggregation="seq-mean-token-mean"),
]  # fmt: skip


def _loss_from_logits(logits: torch.Tensor, batch: dict, config: AlgorithmConfig, **totals) -> torch.Tensor:
    log_probs = torch.log_softmax(logits, dim=-1).gather(-1, batch["actions"][..., None]).squeeze(-1)
    return actor_loss(
        log_probs,
        batch["old"],
        batch["advantages"],
        batch["mask"],
        config,
        ref_log_probs=batch["ref"],
        entropy=entropy_from_logits(logits),
        **totals,
    ).loss


@pytest.mark.parametrize("config", FULL_CONFIGS, ids=range(len(FULL_CONFIGS)))
def test_masked_positions_get_exactly_zero_gradient(config):
    batch = _micro_batch(1)
    logits = batch["logits"].clone().requires_grad_(True)
    _loss_from_logits(logits, batch, config).backward()
    assert logits.grad is not None
    masked = ~batch["mask"].bool()
    assert torch.all(logits.grad[masked] == 0), "prompt/retrieved/padding tokens must get no gradient"
    assert torch.all(logits.grad[~masked].abs().sum(-1) > 0), "every action token must get a gradient"


@pytest.mark.parametrize("config", FULL_CONFIGS, ids=range(len(FULL_CONFIGS)))
def test_micro_batches_with_step_normalizers_equal_one_batch(config):
    """Summing the micro-batch losses normalized by the step's totals gives the one-batch loss and gradient
    (OpenRLHF's loss_utils.get_loss_batch_info: batch_num_tokens / global_batch_size of the step)."""
    batch = _micro_batch(2)
    whole = batch["logits"].clone().requires_grad_(True)
    _loss_from_logits(whole, batch, config).backward()

    parts = [slice(0, 2), slice(2, 6)]
    num_tokens, num_sequences = step_normalizers([batch["mask"][p] for p in parts])
    assert num_tokens == float(batch["mask"].sum()) and num_sequences == float(
        (batch["mask"].sum(-1) > 0).sum()
    )
    split = batch["logits"].clone().requires_grad_(True)
    total = torch.zeros(())
    for part in parts:
        micro = {k: v[part] for k, v in batch.items()}
        loss = _loss_from_logits(
            split[part], micro, config, num_tokens=num_tokens, num_sequences=num_sequences
        )
        loss.backward()
        total = total + loss.detach()
    whole_loss = _loss_from_logits(batch["logits"], batch, config)
    torch.testing.assert_close(total, whole_loss, atol=1e-6, rtol=0)
    torch.testing.assert_close(split.grad, whole.grad, atol=1e-7, rtol=1e-5)


def test_sequence_mean_weighs_sequences_equally():
    per_token = torch.tensor([[1.0, 1.0, 1.0, 1.0], [5.0, 0.0, 0.0, 0.0], [7.0, 7.0, 7.0, 7.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]])
    # token-mean: (4 + 5) / 5 tokens; seq-mean-token-mean: (1 + 5) / 2 non-empty sequences.
    assert float(aggregate(per_token, mask, "token-mean")) == pytest.approx(9 / 5)
    assert float(aggregate(per_token, mask, "seq-mean-token-mean")) == pytest.approx(3.0, rel=1e-6)


def test_missing_inputs_are_named():
    args = (torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="ref_log_probs"):
        actor_loss(*args, AlgorithmConfig(kl_coef=0.1, use_kl_loss=True))
    with pytest.raises(ValueError, match="entropy"):
        actor_loss(*args, AlgorithmConfig(entropy_coef=0.01))
    with pytest.raises(ValueError, match="rollout_log_probs"):
        actor_loss(*args, AlgorithmConfig(is_correction_level="token"))
    with pytest.raises(ValueError, match="seq-mean-token-mean"):
        aggregate(torch.ones(1, 2), torch.ones(1, 2), "sum")  # type: ignore[arg-type]
