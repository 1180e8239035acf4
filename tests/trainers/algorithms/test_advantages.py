"""Advantage estimators on hand-computed cases (citing OpenRLHF 0.11.2's lines) and their invariants.

Line numbers refer to openrlhf/trainer/ppo_utils/experience_maker.py and openrlhf/models/utils.py of
OpenRLHF 0.11.2; test_openrlhf_match.py runs OpenRLHF's code itself on random batches.
"""

from __future__ import annotations

import math

import pytest
import torch

from hopgym.errors import ConfigError
from hopgym.trainers.algorithms.advantages import compute_advantages, reward_to_go, whiten
from hopgym.trainers.algorithms.config import AlgorithmConfig

ONE_HOT = torch.tensor([1.0, 0.0, 0.0, 0.0])
FULL_MASK = torch.ones(4, 3, dtype=torch.long)


def _per_sample(estimator: str, rewards: torch.Tensor = ONE_HOT, **settings) -> torch.Tensor:
    """The advantage of each sample (gamma 1, no KL: the same on every action token of a sample)."""
    config = AlgorithmConfig(estimator=estimator, **settings)
    result = compute_advantages(rewards, torch.ones(rewards.numel(), 3), config, group_size=4)
    assert torch.equal(result.advantages, result.advantages[:, :1].expand(-1, 3))
    return result.advantages[:, 0]


def test_group_norm_divides_by_the_bessel_corrected_std_plus_1e_9():
    # experience_maker.py L274: (r - mean) / (r.std(-1) + 1e-9); torch.std divides by n - 1.
    # r = [1, 0, 0, 0]: mean 0.25, sum of squares 0.75, std sqrt(0.75 / 3) = 0.5 (biased: 0.433).
    expected = torch.tensor([1.5, -0.5, -0.5, -0.5])
    torch.testing.assert_close(_per_sample("group_norm"), expected, atol=1e-6, rtol=0)


def test_group_norm_of_a_group_with_equal_rewards_is_zero():
    # std 0: (r - mean) / (0 + 1e-9) = 0 / 1e-9 = 0, not a division by zero.
    assert torch.equal(_per_sample("group_norm", torch.ones(4)), torch.zeros(4))


def test_rloo_subtracts_the_mean_of_the_other_samples():
    # L269: baseline = (sum - r) / (n - 1): sample 0 sees 0, the others see 1/3.
    expected = torch.tensor([1.0, -1 / 3, -1 / 3, -1 / 3])
    torch.testing.assert_close(_per_sample("rloo"), expected, atol=1e-6, rtol=0)


def test_dr_grpo_subtracts_the_group_mean_and_does_not_whiten():
    # L271-272 (r - mean), and dr_grpo is not in the whitening list (L325).
    torch.testing.assert_close(_per_sample("dr_grpo"), torch.tensor([0.75, -0.25, -0.25, -0.25]))


def test_reinforce_baseline_subtracts_the_group_mean_then_whitens():
    # L271-272, then L325-338: token mean 0, biased variance 1 over all action tokens.
    # Shaped [0.75, -0.25, -0.25, -0.25] has mean 0 and biased variance 0.1875.
    expected = torch.tensor([0.75, -0.25, -0.25, -0.25]) / math.sqrt(0.1875)
    torch.testing.assert_close(_per_sample("reinforce_baseline"), expected, atol=1e-6, rtol=0)


def test_reward_clip_applies_after_the_baseline():
    # L280-289: compute_reward receives the baseline-subtracted reward and clamps it (models/utils.py
    # compute_reward: r.clamp(min=low, max=high)). Clipping first would give [0.5, -0.1, -0.1, -0.1] minus
    # their mean, i.e. something else.
    clipped = _per_sample("dr_grpo", reward_clip=(-0.1, 0.5))
    torch.testing.assert_close(clipped, torch.tensor([0.5, -0.1, -0.1, -0.1]))


def test_reinforce_discounts_over_every_position_masked_ones_included():
    # get_cumulative_returns L417-419: G_t = r_t + gamma * G_{t+1} for every t; masked rewards are 0 but
    # still take a discount step. Reward 1 on the last action token (position 4), gamma 0.5.
    mask = torch.tensor([[1, 1, 0, 0, 1, 0]])
    config = AlgorithmConfig(estimator="reinforce", gamma=0.5, reward_clip=None)
    returns = compute_advantages(torch.tensor([1.0]), mask, config, group_size=1).returns
    torch.testing.assert_close(returns, torch.tensor([[0.0625, 0.125, 0.0, 0.0, 1.0, 0.0]]))


def test_kl_in_the_reward_is_charged_on_every_action_token():
    # compute_reward: reward = last_reward + (-kl_coef * kl); returns sum it from t onwards (gamma 1).
    mask = torch.tensor([[1, 0, 1, 1, 0]])
    kl = torch.full((1, 5), 2.0)
    kl[0, 1] = 1e6  # a masked position's KL takes no part
    config = AlgorithmConfig(estimator="reinforce", kl_coef=0.1)
    returns = compute_advantages(torch.tensor([1.0]), mask, config, group_size=1, kl=kl).returns
    # Action tokens at 0, 2, 3: each costs 0.2; the reward 1 sits on position 3.
    torch.testing.assert_close(returns, torch.tensor([[0.4, 0.0, 0.6, 0.8, 0.0]]))


def _random_batch(seed: int, prompts: int = 5, group: int = 4, tokens: int = 9):
    generator = torch.Generator().manual_seed(seed)
    rewards = torch.randint(0, 2, (prompts * group,), generator=generator).float()
    mask = (torch.rand(prompts * group, tokens, generator=generator) < 0.5).long()
    mask[:, 0] = 1
    kl = torch.randn(prompts * group, tokens, generator=generator) * 0.1
    return rewards, mask, kl, group


@pytest.mark.parametrize("estimator", ["reinforce_baseline", "group_norm", "rloo", "dr_grpo"])
@pytest.mark.parametrize("seed", range(5))
def test_group_baselines_have_zero_mean_per_group(estimator, seed):
    rewards, mask, _, group = _random_batch(seed)
    # Unwhitened per-sample advantage: the value on the first (always action) token, gamma 1 and no KL.
    config = AlgorithmConfig(estimator=estimator, advantage_std_norm=False)
    per_sample = compute_advantages(rewards, mask, config, group_size=group).returns[:, 0]
    torch.testing.assert_close(per_sample.view(-1, group).mean(-1), torch.zeros(rewards.numel() // group))
    if estimator == "group_norm":
        stds = per_sample.view(-1, group).std(-1)
        varied = rewards.view(-1, group).std(-1) > 0
        torch.testing.assert_close(stds[varied], torch.ones(int(varied.sum())), atol=1e-6, rtol=0)


@pytest.mark.parametrize("estimator", ["reinforce", "reinforce_baseline"])
@pytest.mark.parametrize("seed", range(5))
def test_whitened_advantages_have_zero_mean_and_unit_variance_over_action_tokens(estimator, seed):
    rewards, mask, kl, group = _random_batch(seed)
    config = AlgorithmConfig(estimator=estimator, kl_coef=0.05)
    advantages = compute_advantages(rewards, mask, config, group_size=group, kl=kl).advantages
    on = advantages[mask.bool()]
    assert abs(float(on.mean())) < 1e-6
    assert abs(float(on.var(correction=0)) - 1.0) < 1e-5
    assert torch.all(advantages[~mask.bool()] == 0)


@pytest.mark.parametrize("estimator", ["reinforce", "reinforce_baseline", "group_norm", "rloo", "dr_grpo"])
def test_masked_positions_take_no_part(estimator):
    """Whatever sits at masked positions (KL of retrieved tokens, say) changes nothing, and their
    advantages and returns are exactly 0."""
    rewards, mask, kl, group = _random_batch(11)
    config = AlgorithmConfig(estimator=estimator, kl_coef=0.05)
    noisy_kl = torch.where(mask.bool(), kl, torch.full_like(kl, 1e4))
    clean = compute_advantages(rewards, mask, config, group_size=group, kl=kl)
    noisy = compute_advantages(rewards, mask, config, group_size=group, kl=noisy_kl)
    assert torch.equal(clean.advantages, noisy.advantages) and torch.equal(clean.returns, noisy.returns)
    assert torch.all(clean.advantages[~mask.bool()] == 0) and torch.all(clean.returns[~mask.bool()] == 0)


def test_a_sample_without_action_tokens_contributes_nothing():
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    config = AlgorithmConfig(estimator="reinforce")
    result = compute_advantages(torch.tensor([1.0, 5.0]), mask, config, group_size=1)
    assert torch.all(result.returns[1] == 0) and torch.all(result.advantages[1] == 0)
    # One sample's tokens remain, all with return 1: whitening leaves (1 - 1) * rsqrt(1e-8) = 0.
    assert torch.all(result.advantages == 0)


def test_reward_to_go_without_discount_is_a_reverse_cumulative_sum():
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    torch.testing.assert_close(reward_to_go(rewards, 1.0), torch.tensor([[6.0, 5.0, 3.0]]))


def test_whiten_without_std_norm_only_centres():
    values = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(whiten(values, mask, std_norm=False), torch.tensor([[-1.0, 1.0, 0.0]]))
    torch.testing.assert_close(whiten(values, mask), torch.tensor([[-1.0, 1.0, 0.0]]))


def test_whiten_refuses_a_batch_without_action_tokens():
    with pytest.raises(ValueError, match="no action tokens"):
        whiten(torch.ones(2, 3), torch.zeros(2, 3))


def test_bad_inputs_are_refused_with_the_cause():
    config = AlgorithmConfig(estimator="group_norm")
    with pytest.raises(ValueError, match="groups of 4"):
        compute_advantages(torch.ones(6), torch.ones(6, 2), config, group_size=4)
    with pytest.raises(ConfigError, match="at least 2 samples per prompt"):
        compute_advantages(torch.ones(4), torch.ones(4, 2), config, group_size=1)
    with pytest.raises(ValueError, match="do not match"):
        compute_advantages(torch.ones(4), torch.ones(3, 2), config, group_size=2)
    with pytest.raises(ValueError, match="pass kl"):
        compute_advantages(torch.ones(2), torch.ones(2, 2), AlgorithmConfig(kl_coef=0.1), group_size=1)
    with pytest.raises(ValueError, match="drop kl"):
        compute_advantages(
            torch.ones(2), torch.ones(2, 2), AlgorithmConfig(), group_size=1, kl=torch.ones(2, 2)
        )
