"""The algorithm settings of a policy-gradient run: one frozen, validated value (no torch needed).

Field names follow OpenRLHF 0.11.2's flags (``openrlhf/cli/train_ppo_ray.py``) so a config maps one to one:
``estimator`` = ``--algo.advantage.estimator``, ``gamma`` = ``--algo.advantage.gamma``, ``kl_coef`` =
``--algo.kl.init_coef`` (a fixed controller), ``kl_estimator`` = ``--algo.kl.estimator``, ``use_kl_loss`` =
``--algo.kl.use_loss``, ``kl_unbiased_gradient`` = ``--algo.kl.unbiased_gradient``, ``eps_clip_low`` /
``eps_clip_high`` = ``--actor.eps_clip_low_high``, ``dual_clip`` = ``--actor.dual_clip``, ``reward_clip`` =
``--reward.clip_range``, ``advantage_std_norm`` = not ``--algo.advantage.no_std_norm``, ``loss_aggregation`` =
``--actor.loss_agg_mode``, ``entropy_coef`` = ``--actor.entropy_coef``, ``is_correction_*`` =
``--algo.advantage.is_correction_*`` (``threshold`` always as the pair ``(low, high)``).

Where OpenRLHF only warns and silently changes a setting (``gamma`` forced to 1.0 for every estimator but
``reinforce``), this config refuses the setting instead and says what to change.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal, get_args

from hopgym.errors import ConfigError

__all__ = [
    "GROUP_ESTIMATORS",
    "WHITENED_ESTIMATORS",
    "AlgorithmConfig",
    "Estimator",
    "ISCorrectionGating",
    "ISCorrectionLevel",
    "ISCorrectionMode",
    "KLEstimator",
    "LossAggregation",
]

logger = logging.getLogger(__name__)

Estimator = Literal["reinforce", "reinforce_baseline", "group_norm", "rloo", "dr_grpo"]
KLEstimator = Literal["k1", "k2", "k3"]
LossAggregation = Literal["token-mean", "seq-mean-token-mean"]
ISCorrectionLevel = Literal["off", "token", "seq"]
ISCorrectionMode = Literal["mask", "clip"]
ISCorrectionGating = Literal["ratio", "binary_kl", "tv"]

# Estimators whose baseline is computed over the samples of one prompt (OpenRLHF asserts
# n_samples_per_prompt > 1 for exactly these: train_ppo_ray.py, "requires n_samples_per_prompt > 1").
GROUP_ESTIMATORS: frozenset[str] = frozenset({"reinforce_baseline", "group_norm", "rloo", "dr_grpo"})
# Estimators whose advantages are whitened over all action tokens of the batch (experience_maker.py,
# compute_advantages_and_returns: `estimator in ["gae", "reinforce", "reinforce_baseline"]`).
WHITENED_ESTIMATORS: frozenset[str] = frozenset({"reinforce", "reinforce_baseline"})


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} is invalid: use a finite number")
    return float(value)


@dataclass(frozen=True)
class AlgorithmConfig:
    """How rewards become advantages and how the policy loss is built.

    - ``estimator``: ``reinforce`` (REINFORCE++), ``reinforce_baseline`` (REINFORCE++-baseline),
      ``group_norm`` (GRPO), ``rloo`` or ``dr_grpo`` (Dr. GRPO). All but ``reinforce`` need several samples
      per prompt (see :meth:`check_group_size`).
    - ``gamma``: discount of the reward-to-go, per token position; only ``reinforce`` discounts.
    - ``kl_coef``: weight of the KL to the frozen reference policy; 0 means no reference model at all.
    - ``kl_estimator``: ``k1`` (log-ratio), ``k2`` (half its square) or ``k3`` (``exp(-d) - 1 + d``).
    - ``use_kl_loss``: False puts ``-kl_coef * KL`` into every action token's reward (REINFORCE++);
      True adds ``kl_coef * KL`` to the loss instead (GRPO), where ``k2``/``k3`` are the usual choices.
    - ``kl_unbiased_gradient``: with ``use_kl_loss``, keep the estimator's value but back-propagate the
      importance-weighted reverse-KL gradient (OpenRLHF's ``--algo.kl.unbiased_gradient``).
    - ``eps_clip_low`` / ``eps_clip_high``: the PPO ratio is clipped to ``[1 - low, 1 + high]``.
    - ``dual_clip``: optional lower bound ``dual_clip * A`` on the objective of negative-advantage tokens
      (must be > 1).
    - ``reward_clip``: ``(low, high)`` clamp of each sample's reward *after* the baseline is subtracted (that
      is where OpenRLHF applies ``--reward.clip_range``), or None for no clamp.
    - ``advantage_std_norm``: whitening divides by the standard deviation (False: only subtracts the mean).
    - ``loss_aggregation``: ``token-mean`` (every action token of the optimizer step weighs the same) or
      ``seq-mean-token-mean`` (every sequence weighs the same).
    - ``entropy_coef``: weight of an entropy bonus (0: entropy is only logged).
    - ``is_correction_level``: the rollout-vs-trainer importance correction (rollouts sampled by vLLM, whose
      log-probs differ from the training model's): ``off``, per ``token``, or per sequence (``seq``).
    - ``is_correction_mode``: ``mask`` drops out-of-band units (survivors keep their per-token weight
      ``pi_train / pi_rollout``); ``clip`` clamps the token weight into the band (truncated IS).
    - ``is_correction_gating``: the statistic the band applies to: the weight itself (``ratio``), or the
      sampled token's ``binary_kl`` / ``tv`` divergence between the two policies (upper bound only).
    - ``is_correction_threshold``: the band ``(low, high)``; divergences need ``low = 0``.
    """

    estimator: Estimator = "reinforce"
    gamma: float = 1.0
    kl_coef: float = 0.0
    kl_estimator: KLEstimator = "k1"
    use_kl_loss: bool = False
    kl_unbiased_gradient: bool = False
    eps_clip_low: float = 0.2
    eps_clip_high: float = 0.2
    dual_clip: float | None = None
    reward_clip: tuple[float, float] | None = (-10.0, 10.0)
    advantage_std_norm: bool = True
    loss_aggregation: LossAggregation = "token-mean"
    entropy_coef: float = 0.0
    is_correction_level: ISCorrectionLevel = "off"
    is_correction_mode: ISCorrectionMode = "mask"
    is_correction_gating: ISCorrectionGating = "ratio"
    is_correction_threshold: tuple[float, float] = (0.5, 5.0)

    def __post_init__(self) -> None:
        self._check_choice("estimator", self.estimator, Estimator)
        self._check_choice("kl_estimator", self.kl_estimator, KLEstimator)
        self._check_choice("loss_aggregation", self.loss_aggregation, LossAggregation)

        gamma = _finite("gamma", self.gamma)
        if not 0.0 < gamma <= 1.0:
            raise ConfigError(f"gamma={self.gamma!r} is invalid: use a discount in (0, 1] (1.0: no discount)")
        if gamma != 1.0 and self.estimator != "reinforce":
            # OpenRLHF logs "gamma is set to 1.0" and overrides it; refusing says so before the run.
            raise ConfigError(
                f"gamma={self.gamma!r} with estimator={self.estimator!r}: only 'reinforce' discounts "
                "(OpenRLHF forces gamma to 1.0 for the others); set gamma=1.0 or estimator='reinforce'"
            )

        if _finite("kl_coef", self.kl_coef) < 0:
            raise ConfigError(f"kl_coef={self.kl_coef!r} is invalid: use 0 (no KL) or a positive weight")
        if self.use_kl_loss and self.kl_coef == 0:
            raise ConfigError(
                "use_kl_loss=True with kl_coef=0 adds nothing: set kl_coef > 0 (e.g. 0.001), or use_kl_loss=False"
            )
        if self.kl_unbiased_gradient and not self.use_kl_loss:
            raise ConfigError(
                "kl_unbiased_gradient=True only changes the gradient of a KL loss term: set use_kl_loss=True, "
                "or kl_unbiased_gradient=False"
            )
        if self.kl_coef > 0 and not self.kl_unbiased_gradient:
            # OpenRLHF prints the same recommendations (train_ppo_ray.py) and runs anyway.
            if self.use_kl_loss and self.kl_estimator == "k1":
                logger.warning(
                    "kl_estimator='k1' as a loss has zero expected gradient; 'k2' or 'k3' is usual"
                )
            if not self.use_kl_loss and self.kl_estimator != "k1":
                logger.warning("kl_estimator=%r in the reward: 'k1' is usual there", self.kl_estimator)

        # The ratio is clipped to [1 - low, 1 + high]: low must keep the bound positive, high only positive.
        if not 0.0 < _finite("eps_clip_low", self.eps_clip_low) < 1.0:
            raise ConfigError(
                f"eps_clip_low={self.eps_clip_low!r} is invalid: use a value in (0, 1), e.g. 0.2"
            )
        if not _finite("eps_clip_high", self.eps_clip_high) > 0.0:
            raise ConfigError(
                f"eps_clip_high={self.eps_clip_high!r} is invalid: use a positive value, e.g. 0.2 (0.28: clip-higher)"
            )
        if self.dual_clip is not None and not _finite("dual_clip", self.dual_clip) > 1.0:
            raise ConfigError(f"dual_clip={self.dual_clip!r} is invalid: use a bound > 1 (e.g. 3.0), or None")

        if self.reward_clip is not None:
            clip = self.reward_clip
            if not isinstance(clip, tuple | list) or len(clip) != 2:
                raise ConfigError(f"reward_clip={clip!r} is invalid: use a pair (low, high), or None")
            low, high = _finite("reward_clip[0]", clip[0]), _finite("reward_clip[1]", clip[1])
            if not low < high:
                raise ConfigError(
                    f"reward_clip={clip!r} is invalid: low must be below high, e.g. (-10.0, 10.0)"
                )
            object.__setattr__(self, "reward_clip", (low, high))

        if _finite("entropy_coef", self.entropy_coef) < 0:
            raise ConfigError(
                f"entropy_coef={self.entropy_coef!r} is invalid: use 0 (log only) or a positive bonus weight"
            )
        self._check_importance_correction()

    def _check_importance_correction(self) -> None:
        # The same rules as OpenRLHF's PolicyLoss.__init__ (models/loss.py), with the fix spelled out.
        self._check_choice("is_correction_level", self.is_correction_level, ISCorrectionLevel)
        self._check_choice("is_correction_mode", self.is_correction_mode, ISCorrectionMode)
        self._check_choice("is_correction_gating", self.is_correction_gating, ISCorrectionGating)
        band = self.is_correction_threshold
        if not isinstance(band, tuple | list) or len(band) != 2:
            raise ConfigError(
                f"is_correction_threshold={band!r} is invalid: use a pair (low, high), e.g. (0.5, 5.0)"
            )
        low = _finite("is_correction_threshold[0]", band[0])
        high = _finite("is_correction_threshold[1]", band[1])
        if not 0.0 <= low < high:
            raise ConfigError(
                f"is_correction_threshold={band!r} is invalid: use 0 <= low < high, e.g. (0.5, 5.0)"
            )
        object.__setattr__(self, "is_correction_threshold", (low, high))
        if self.is_correction_level == "off":
            return
        if self.is_correction_mode == "clip" and (
            self.is_correction_level == "seq" or self.is_correction_gating != "ratio"
        ):
            raise ConfigError(
                "is_correction_mode='clip' clamps a per-token weight: it needs is_correction_level='token' and "
                "is_correction_gating='ratio'; use is_correction_mode='mask' for a per-sequence or divergence gate"
            )
        if self.is_correction_gating != "ratio" and low > 0:
            raise ConfigError(
                f"is_correction_gating={self.is_correction_gating!r} bounds a divergence from above only: set "
                f"is_correction_threshold=(0.0, delta), e.g. (0.0, 0.01); got {band!r}"
            )

    @staticmethod
    def _check_choice(name: str, value: object, choices_type: object) -> None:
        choices = get_args(choices_type)
        if value not in choices:
            raise ConfigError(f"{name}={value!r} is unknown: use one of {', '.join(map(repr, choices))}")

    @property
    def kl_in_reward(self) -> bool:
        """True when ``-kl_coef * KL`` goes into the token rewards (REINFORCE++'s default)."""
        return self.kl_coef > 0 and not self.use_kl_loss

    @property
    def needs_reference_model(self) -> bool:
        """True when a frozen reference policy must be kept (any KL term)."""
        return self.kl_coef > 0

    @property
    def whitens(self) -> bool:
        """True when advantages are whitened over the batch's action tokens."""
        return self.estimator in WHITENED_ESTIMATORS

    def check_group_size(self, samples_per_prompt: int) -> None:
        """Raise :class:`ConfigError` when the estimator cannot work with this many samples per prompt."""
        if (
            isinstance(samples_per_prompt, bool)
            or not isinstance(samples_per_prompt, int)
            or samples_per_prompt < 1
        ):
            raise ConfigError(f"samples per prompt={samples_per_prompt!r} is invalid: use an integer >= 1")
        if self.estimator in GROUP_ESTIMATORS and samples_per_prompt < 2:
            raise ConfigError(
                f"estimator={self.estimator!r} needs at least 2 samples per prompt (its baseline is the other "
                f"samples of the same prompt), got {samples_per_prompt}: raise samples per prompt, or use "
                "estimator='reinforce'"
            )
