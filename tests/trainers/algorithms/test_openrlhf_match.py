"""hopgym's algorithm functions against OpenRLHF 0.11.2's own code, on seeded random batches (atol 1e-6).

The ``openrlhf`` fixture (conftest.py) loads OpenRLHF's module files on CPU. Each test feeds both sides the
same tensors; OpenRLHF leaves arbitrary values at positions outside the action mask (its losses mask them),
hopgym leaves 0 there, so values are compared on action tokens and hopgym's must be 0 elsewhere.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch

from hopgym.trainers.algorithms.advantages import compute_advantages, token_rewards
from hopgym.trainers.algorithms.config import AlgorithmConfig
from hopgym.trainers.algorithms.kl import approx_kl
from hopgym.trainers.algorithms.losses import actor_loss, aggregate, entropy_from_logits

ATOL = 1e-6
ESTIMATORS = ("reinforce", "reinforce_baseline", "group_norm", "rloo", "dr_grpo")


def _action_mask(generator: torch.Generator, batch: int, tokens: int) -> torch.Tensor:
    """Agent-like masks: a masked prompt part, action spans broken by masked observation spans, padding;
    one row is all actions, one row has a single action token at position 0."""
    mask = (torch.rand(batch, tokens, generator=generator) < 0.6).long()
    lengths = torch.randint(tokens // 2, tokens + 1, (batch,), generator=generator)
    mask[torch.arange(tokens) >= lengths[:, None]] = 0  # right padding
    mask[:, 0] = 1
    mask[0] = 1
    mask[1] = 0
    mask[1, 0] = 1
    return mask


def _batch(seed: int, *, prompts: int = 4, group: int = 4, tokens: int = 12) -> SimpleNamespace:
    generator = torch.Generator().manual_seed(seed)
    batch = prompts * group
    rewards = torch.randint(0, 3, (batch,), generator=generator).float() / 2  # ties, like 0/1 rewards
    rewards[:group] = 1.0  # one group where every sample scored the same
    return SimpleNamespace(
        group=group,
        rewards=rewards,
        mask=_action_mask(generator, batch, tokens),
        log_probs=-torch.rand(batch, tokens, generator=generator) * 3,
        old_log_probs=-torch.rand(batch, tokens, generator=generator) * 3,
        ref_log_probs=-torch.rand(batch, tokens, generator=generator) * 3,
        advantages=torch.randn(batch, tokens, generator=generator),
        logits=torch.randn(batch, tokens, 7, generator=generator) * 3,
        generator=generator,
    )


def _assert_on_actions(ours: torch.Tensor, theirs: torch.Tensor, mask: torch.Tensor) -> None:
    on = mask.bool()
    torch.testing.assert_close(ours[on], theirs[on].to(ours.dtype), atol=ATOL, rtol=0)
    assert torch.all(ours[~on] == 0), "hopgym must leave exactly 0 outside the action mask"


def _openrlhf_advantages(openrlhf, batch, config: AlgorithmConfig, kl: torch.Tensor, micro_batch: int = 3):
    """OpenRLHF's RemoteExperienceMaker.compute_advantages_and_returns (experience_maker.py) on the batch,
    split into micro-batch experiences in a shuffled order, as OpenRLHF's dispatch leaves them."""
    args = SimpleNamespace(
        algo=SimpleNamespace(
            advantage=SimpleNamespace(
                estimator=config.estimator, gamma=config.gamma, no_std_norm=not config.advantage_std_norm
            )
        ),
        rollout=SimpleNamespace(n_samples_per_prompt=batch.group),
        reward=SimpleNamespace(clip_range=config.reward_clip, overlong_buffer_len=None),
    )
    maker = object.__new__(openrlhf.RemoteExperienceMaker)
    maker.strategy = SimpleNamespace(args=args)
    maker.advantage_estimator = config.estimator
    # FixedKLController.value; with use_kl_loss the experience KL is zeros (make_experience).
    maker.kl_ctl = SimpleNamespace(value=config.kl_coef)
    order = torch.randperm(batch.rewards.numel(), generator=batch.generator).tolist()
    experiences = []
    for start in range(0, len(order), micro_batch):
        rows = order[start : start + micro_batch]
        experiences.append(
            SimpleNamespace(
                index=rows,
                rewards=batch.rewards[rows].clone(),
                kl=kl[rows] if config.kl_in_reward else torch.zeros_like(kl[rows]),
                action_mask=batch.mask[rows],
                info={},
            )
        )
    experiences = maker.compute_advantages_and_returns(experiences)
    advantages = torch.empty_like(batch.log_probs)
    returns = torch.empty_like(batch.log_probs)
    for experience in experiences:
        advantages[experience.index] = experience.advantages
        returns[experience.index] = experience.returns
    return advantages, returns


ADVANTAGE_CASES = [
    *(dict(estimator=e) for e in ESTIMATORS),
    *(dict(estimator=e, kl_coef=0.05) for e in ESTIMATORS),  # -kl_coef * KL in every action token's reward
    *(dict(estimator=e, reward_clip=(-0.3, 0.4)) for e in ESTIMATORS),  # a clip that bites
    dict(estimator="reinforce", gamma=0.9, kl_coef=0.1),
    dict(estimator="reinforce", reward_clip=None, kl_coef=0.02, kl_estimator="k3"),
    dict(estimator="reinforce", advantage_std_norm=False, kl_coef=0.05),
    dict(estimator="reinforce_baseline", advantage_std_norm=False),
    dict(estimator="group_norm", kl_coef=0.1, use_kl_loss=True, kl_estimator="k3"),
]


@pytest.mark.parametrize(
    "settings", ADVANTAGE_CASES, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items())
)
@pytest.mark.parametrize("seed", [0, 1])
def test_advantages_and_returns_match_openrlhf(openrlhf, settings, seed):
    batch = _batch(seed)
    config = AlgorithmConfig(**settings)
    kl = approx_kl(batch.old_log_probs, batch.ref_log_probs, config.kl_estimator)
    theirs_adv, theirs_ret = _openrlhf_advantages(openrlhf, batch, config, kl)
    ours = compute_advantages(
        batch.rewards, batch.mask, config, group_size=batch.group, kl=kl if config.kl_in_reward else None
    )
    _assert_on_actions(ours.returns, theirs_ret, batch.mask)
    _assert_on_actions(ours.advantages, theirs_adv, batch.mask)


@pytest.mark.parametrize("seed", range(3))
def test_token_rewards_match_compute_reward(openrlhf, seed):
    batch = _batch(seed)
    kl = approx_kl(batch.old_log_probs, batch.ref_log_probs, "k1")
    shaped = torch.randn(batch.rewards.shape, generator=batch.generator)
    theirs = openrlhf.compute_reward(shaped, 0.07, kl, action_mask=batch.mask, reward_clip_range=None)
    _assert_on_actions(token_rewards(shaped, batch.mask, kl, 0.07), theirs, batch.mask)


@pytest.mark.parametrize(("estimator", "unbiased", "with_old"),
                         [(e, False, False) for e in ("k1", "k2", "k3")]
                         + [(e, True, w) for e in ("k1", "k2", "k3") for w in (False, True)])  # fmt: skip
def test_kl_values_and_gradients_match_compute_approx_kl(openrlhf, estimator, unbiased, with_old):
    batch = _batch(3)
    # Wide log-ratios, so both clamps (d >= -10 inside k3, estimate in [-10, 10]) are exercised.
    base = torch.randn(batch.log_probs.shape, generator=batch.generator) * 8
    # d = -100: exp(-d) overflows float32 unless d is clamped at -10 first (k3's inner clamp).
    base[0, 0] = batch.ref_log_probs[0, 0] - 100.0
    old = base + torch.randn(base.shape, generator=batch.generator) * 0.3 if with_old else None
    results = []
    for fn in ("ours", "theirs"):
        log_probs = base.clone().requires_grad_(True)
        if fn == "ours":
            kl = approx_kl(
                log_probs, batch.ref_log_probs, estimator, old_log_probs=old, unbiased_gradient=unbiased
            )
        else:
            kl = openrlhf.compute_approx_kl(
                log_probs,
                batch.ref_log_probs,
                log_probs_old=old,
                kl_estimator=estimator,
                unbiased_gradient=unbiased,
            )
        (kl * batch.advantages).sum().backward()
        results.append((kl.detach(), log_probs.grad))
    (ours_value, ours_grad), (theirs_value, theirs_grad) = results
    assert ours_value.abs().max() == 10.0, "the batch must reach the clamp"
    torch.testing.assert_close(ours_grad, theirs_grad, atol=ATOL, rtol=0)
    if not unbiased:
        torch.testing.assert_close(ours_value, theirs_value, atol=ATOL, rtol=0)
        return
    # The straight-through value is meant to be the plain estimate. OpenRLHF computes it as
    # (value + s) - s with s = w * d**2 / 2 (up to ~450 here), which adds float32 rounding of s;
    # hopgym computes value + (s - s), the estimate exactly. Compare with the plain estimate at 1e-6, and
    # with OpenRLHF's straight-through value within the rounding of s.
    plain = openrlhf.compute_approx_kl(base, batch.ref_log_probs, kl_estimator=estimator)
    torch.testing.assert_close(ours_value, plain, atol=ATOL, rtol=0)
    surrogate_ulp = (base - batch.ref_log_probs).square().max() / 2 * 10 * torch.finfo(torch.float32).eps
    assert (ours_value - theirs_value).abs().max() <= surrogate_ulp


POLICY_CASES = [
    dict(),
    dict(eps_clip_low=0.1, eps_clip_high=0.28),
    dict(dual_clip=3.0),
    dict(eps_clip_low=0.2, eps_clip_high=0.3, dual_clip=2.0, loss_aggregation="seq-mean-token-mean"),
    dict(loss_aggregation="seq-mean-token-mean"),
]


@pytest.mark.parametrize(
    "settings", POLICY_CASES, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()) or "default"
)
@pytest.mark.parametrize("step_totals", [False, True], ids=["micro-batch", "step-totals"])
def test_policy_loss_matches_policy_loss_module(openrlhf, settings, step_totals):
    batch = _batch(4)
    config = AlgorithmConfig(**settings)
    # Large log-ratios on some tokens, so the ±20 log-ratio clamp and both clip sides are hit.
    log_probs = batch.old_log_probs + torch.randn(batch.log_probs.shape, generator=batch.generator) * 0.4
    # Row 0 is all action tokens: log-ratios beyond the ±20 clamp, with both advantage signs.
    log_probs[0, :4] = batch.old_log_probs[0, :4] + torch.tensor([25.0, 25.0, -25.0, 1.0])
    advantages = batch.advantages.clone()
    advantages[0, :4] = torch.tensor([-1.0, 1.0, -1.0, 0.5])
    totals = dict(num_tokens=float(batch.mask.sum()) * 2.5, num_sequences=float(batch.mask.size(0)) * 2.5)
    openrlhf_totals = (
        dict(batch_num_tokens=totals["num_tokens"], global_batch_size=totals["num_sequences"])
        if step_totals
        else {}
    )
    reference = openrlhf.PolicyLoss(
        clip_eps_low=config.eps_clip_low,
        clip_eps_high=config.eps_clip_high,
        dual_clip=config.dual_clip,
        token_level_loss=config.loss_aggregation == "token-mean",
    )

    theirs_lp = log_probs.clone().requires_grad_(True)
    theirs_loss, theirs_clip, theirs_kl, _, _ = reference(
        theirs_lp, batch.old_log_probs, advantages, action_mask=batch.mask, **openrlhf_totals
    )
    theirs_loss.backward()
    ours_lp = log_probs.clone().requires_grad_(True)
    ours = actor_loss(
        ours_lp, batch.old_log_probs, advantages, batch.mask, config, **(totals if step_totals else {})
    )
    ours.loss.backward()

    torch.testing.assert_close(ours.loss.detach(), theirs_loss.detach(), atol=ATOL, rtol=0)
    torch.testing.assert_close(ours_lp.grad, theirs_lp.grad, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.clip_fraction, theirs_clip, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.ppo_kl, theirs_kl, atol=ATOL, rtol=0)
    assert 0 < float(ours.clip_fraction) < 1


CORRECTION_CASES = [
    dict(is_correction_level="token", is_correction_mode="clip", is_correction_threshold=(0.7, 1.5)),
    dict(is_correction_level="token", is_correction_mode="mask", is_correction_threshold=(0.7, 1.5)),
    dict(is_correction_level="seq", is_correction_mode="mask", is_correction_threshold=(0.95, 1.05)),
    dict(is_correction_level="token", is_correction_gating="binary_kl", is_correction_threshold=(0.0, 0.01)),
    dict(is_correction_level="seq", is_correction_gating="tv", is_correction_threshold=(0.0, 0.05)),
    dict(is_correction_level="token", is_correction_gating="tv", is_correction_threshold=(0.0, 0.05),
         loss_aggregation="seq-mean-token-mean", dual_clip=3.0),
]  # fmt: skip


@pytest.mark.parametrize("settings", CORRECTION_CASES, ids=lambda s: "-".join(str(v) for v in s.values()))
def test_rollout_importance_correction_matches_policy_loss_module(openrlhf, settings):
    batch = _batch(8)
    config = AlgorithmConfig(**settings)
    log_probs = batch.old_log_probs + torch.randn(batch.log_probs.shape, generator=batch.generator) * 0.2
    # The sampler's log-probs drift from the trainer's, some tokens far enough to leave the band.
    rollout = batch.old_log_probs + torch.randn(batch.log_probs.shape, generator=batch.generator) * 0.3
    reference = openrlhf.PolicyLoss(
        clip_eps_low=config.eps_clip_low,
        clip_eps_high=config.eps_clip_high,
        dual_clip=config.dual_clip,
        token_level_loss=config.loss_aggregation == "token-mean",
        is_correction_level=config.is_correction_level,
        is_correction_mode=config.is_correction_mode,
        is_correction_gating=config.is_correction_gating,
        is_correction_threshold=config.is_correction_threshold,
    )
    theirs_lp = log_probs.clone().requires_grad_(True)
    theirs_loss, theirs_clip, _, theirs_rollout_kl, theirs_filtered = reference(
        theirs_lp, batch.old_log_probs, batch.advantages, action_mask=batch.mask, rollout_log_probs=rollout
    )
    theirs_loss.backward()
    ours_lp = log_probs.clone().requires_grad_(True)
    ours = actor_loss(
        ours_lp, batch.old_log_probs, batch.advantages, batch.mask, config, rollout_log_probs=rollout
    )
    ours.loss.backward()

    torch.testing.assert_close(ours.loss.detach(), theirs_loss.detach(), atol=ATOL, rtol=0)
    torch.testing.assert_close(ours_lp.grad, theirs_lp.grad, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.clip_fraction, theirs_clip, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.rollout_kl, theirs_rollout_kl, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.is_filtered_fraction, theirs_filtered, atol=ATOL, rtol=0)
    assert 0 < float(ours.is_filtered_fraction) < 1, "the band must filter some units and keep others"


@pytest.mark.parametrize(
    ("kl_estimator", "unbiased"), [("k2", False), ("k3", False), ("k3", True), ("k1", False)]
)
def test_actor_loss_with_kl_and_entropy_matches_training_step_composition(openrlhf, kl_estimator, unbiased):
    """ppo_actor.py training_step: loss = actor_loss + kl_loss * kl_ctl - entropy_loss * entropy_coef, with
    kl_loss = aggregate_loss(compute_approx_kl(...), action_mask, **loss_batch_info) and the entropy
    aggregated the same way (token-level, whatever loss_agg_mode says)."""
    batch = _batch(5)
    config = AlgorithmConfig(
        kl_coef=0.05,
        use_kl_loss=True,
        kl_estimator=kl_estimator,
        kl_unbiased_gradient=unbiased,
        entropy_coef=0.01,
        loss_aggregation="seq-mean-token-mean",
    )
    num_tokens, num_sequences = float(batch.mask.sum()) * 2, float(batch.mask.size(0)) * 2
    log_probs = batch.old_log_probs + torch.randn(batch.log_probs.shape, generator=batch.generator) * 0.3

    theirs_lp = log_probs.clone().requires_grad_(True)
    theirs_logits = batch.logits.clone().requires_grad_(True)
    info = dict(batch_num_tokens=num_tokens, global_batch_size=num_sequences)
    policy, *_ = openrlhf.PolicyLoss(token_level_loss=False)(
        theirs_lp, batch.old_log_probs, batch.advantages, action_mask=batch.mask, **info
    )
    kl = openrlhf.compute_approx_kl(
        theirs_lp, batch.ref_log_probs, log_probs_old=batch.old_log_probs, kl_estimator=kl_estimator,
        unbiased_gradient=unbiased,
    )  # fmt: skip
    entropy = openrlhf.aggregate_loss(openrlhf.compute_entropy(theirs_logits), batch.mask, **info)
    theirs = policy + openrlhf.aggregate_loss(kl, batch.mask, **info) * 0.05 - entropy * 0.01
    theirs.backward()

    ours_lp = log_probs.clone().requires_grad_(True)
    ours_logits = batch.logits.clone().requires_grad_(True)
    ours = actor_loss(
        ours_lp, batch.old_log_probs, batch.advantages, batch.mask, config,
        ref_log_probs=batch.ref_log_probs, entropy=entropy_from_logits(ours_logits),
        num_tokens=num_tokens, num_sequences=num_sequences,
    )  # fmt: skip
    ours.loss.backward()

    torch.testing.assert_close(ours.loss.detach(), theirs.detach(), atol=ATOL, rtol=0)
    torch.testing.assert_close(ours_lp.grad, theirs_lp.grad, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours_logits.grad, theirs_logits.grad, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.entropy, entropy.detach(), atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    ("mode", "step_totals"), list(itertools.product(["token-mean", "seq-mean-token-mean"], [False, True]))
)
def test_aggregate_matches_aggregate_loss(openrlhf, mode, step_totals):
    batch = _batch(6)
    mask = batch.mask.clone()
    mask[3] = 0  # an empty sequence: left out of the sequence mean
    totals = (37.0, 11.0) if step_totals else (None, None)
    theirs = openrlhf.aggregate_loss(
        batch.advantages, mask, token_level_loss=mode == "token-mean",
        batch_num_tokens=totals[0], global_batch_size=totals[1],
    )  # fmt: skip
    ours = aggregate(batch.advantages, mask, mode, num_tokens=totals[0], num_sequences=totals[1])
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def test_entropy_matches_compute_entropy(openrlhf):
    logits = _batch(7).logits
    torch.testing.assert_close(
        entropy_from_logits(logits), openrlhf.compute_entropy(logits), atol=ATOL, rtol=0
    )
