"""AlgorithmConfig: defaults, validation messages that name the field and the fix, derived flags."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from hopgym.errors import ConfigError
from hopgym.trainers.algorithms.config import AlgorithmConfig


def test_defaults_are_reinforce_pp_without_kl_and_openrlhf_clip_settings():
    config = AlgorithmConfig()
    assert (config.estimator, config.gamma, config.kl_estimator) == ("reinforce", 1.0, "k1")
    assert (config.eps_clip_low, config.eps_clip_high, config.dual_clip) == (0.2, 0.2, None)
    assert config.reward_clip == (-10.0, 10.0)  # OpenRLHF's --reward.clip_range default
    assert not config.needs_reference_model and not config.kl_in_reward and config.whitens


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(estimator="gae"), "estimator='gae' is unknown: use one of 'reinforce'"),
        (dict(kl_estimator="k4"), "kl_estimator='k4' is unknown"),
        (dict(loss_aggregation="sum"), "loss_aggregation='sum' is unknown"),
        (dict(gamma=0.0), r"gamma=0.0 is invalid: use a discount in \(0, 1\]"),
        (dict(gamma=float("nan")), "gamma=nan is invalid: use a finite number"),
        (dict(estimator="group_norm", gamma=0.9), "only 'reinforce' discounts.*set gamma=1.0"),
        (dict(kl_coef=-0.1), "kl_coef=-0.1 is invalid"),
        (dict(use_kl_loss=True), "use_kl_loss=True with kl_coef=0 adds nothing: set kl_coef > 0"),
        (dict(kl_unbiased_gradient=True, kl_coef=0.1), "set use_kl_loss=True"),
        (dict(eps_clip_low=1.0), "eps_clip_low=1.0 is invalid"),
        (dict(eps_clip_high=0), "eps_clip_high=0 is invalid"),
        (dict(dual_clip=1.0), "dual_clip=1.0 is invalid: use a bound > 1"),
        (dict(reward_clip=(1.0, -1.0)), "low must be below high"),
        (dict(reward_clip=(1.0,)), "use a pair"),
        (dict(entropy_coef=-1), "entropy_coef=-1 is invalid"),
        (dict(kl_coef=True), "kl_coef=True is invalid"),
        (dict(is_correction_level="sequence"), "is_correction_level='sequence' is unknown"),
        (dict(is_correction_threshold=(2.0, 1.0)), "use 0 <= low < high"),
        (
            dict(is_correction_level="seq", is_correction_mode="clip"),
            "needs is_correction_level='token' and is_correction_gating='ratio'",
        ),
        (
            dict(is_correction_level="token", is_correction_gating="tv"),
            r"bounds a divergence from above only: set is_correction_threshold=\(0.0, delta\)",
        ),
    ],
)
def test_bad_settings_name_the_field_and_the_fix(settings, message):
    with pytest.raises(ConfigError, match=message):
        AlgorithmConfig(**settings)


def test_kl_placement_flags():
    in_reward = AlgorithmConfig(kl_coef=0.01)
    as_loss = AlgorithmConfig(estimator="group_norm", kl_coef=0.001, use_kl_loss=True, kl_estimator="k3")
    assert in_reward.kl_in_reward and in_reward.needs_reference_model
    assert not as_loss.kl_in_reward and as_loss.needs_reference_model and not as_loss.whitens


def test_reward_clip_is_normalized_to_a_float_tuple_and_the_config_is_frozen():
    config = AlgorithmConfig(reward_clip=[-1, 2])  # type: ignore[arg-type]
    assert config.reward_clip == (-1.0, 2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.gamma = 0.5  # type: ignore[misc]


def test_group_estimators_need_two_samples_per_prompt():
    AlgorithmConfig().check_group_size(1)
    for estimator in ("reinforce_baseline", "group_norm", "rloo", "dr_grpo"):
        with pytest.raises(ConfigError, match=r"needs at least 2 samples per prompt.*estimator='reinforce'"):
            AlgorithmConfig(estimator=estimator).check_group_size(1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="use an integer >= 1"):
        AlgorithmConfig().check_group_size(0)


def test_importing_the_algorithms_package_and_config_needs_no_torch():
    code = (
        "import sys, hopgym, hopgym.trainers.algorithms as a; a.AlgorithmConfig(kl_coef=0.1); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
