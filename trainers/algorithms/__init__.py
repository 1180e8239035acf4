"""Policy-gradient math as pure torch functions, with OpenRLHF 0.11.2's semantics.

- :mod:`.config`: :class:`AlgorithmConfig`, the validated settings (imports no torch).
- :mod:`.advantages`: rewards to per-token advantages (``reinforce``, ``reinforce_baseline``,
  ``group_norm``, ``rloo``, ``dr_grpo``), returns, whitening.
- :mod:`.kl`: the k1/k2/k3 KL estimates.
- :mod:`.losses`: PPO-clip policy loss, KL loss, entropy, loss aggregation.

``import hopgym.trainers.algorithms`` loads only the config; the torch functions load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hopgym.lazy import lazy_exports
from hopgym.trainers.algorithms.config import AlgorithmConfig

if TYPE_CHECKING:
    from hopgym.trainers.algorithms.advantages import Advantages, compute_advantages
    from hopgym.trainers.algorithms.kl import approx_kl
    from hopgym.trainers.algorithms.losses import ActorLoss, actor_loss, aggregate, entropy_from_logits

__all__ = [
    "ActorLoss",
    "Advantages",
    "AlgorithmConfig",
    "actor_loss",
    "aggregate",
    "approx_kl",
    "compute_advantages",
    "entropy_from_logits",
]

_LAZY = {
    "Advantages": ".advantages",
    "compute_advantages": ".advantages",
    "approx_kl": ".kl",
    "ActorLoss": ".losses",
    "actor_loss": ".losses",
    "aggregate": ".losses",
    "entropy_from_logits": ".losses",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
