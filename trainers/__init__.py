"""Trainers: RL for search agents on hopgym's episode engine.

- :mod:`.algorithms`: GRPO / REINFORCE++ / REINFORCE++-baseline / RLOO / Dr. GRPO math (OpenRLHF 0.11.2's).
- :class:`Trainer` with :class:`TrainConfig` / :func:`load_config`: the built-in trainer (``hopgym train``).
- :mod:`.warmup`: the from-scratch HopWorld policy and its warm-up (``--preset hopworld-tiny``).
- :mod:`.trl`: a ``rollout_func`` for TRL's ``GRPOTrainer``; :mod:`.openrlhf`: OpenRLHF's agent file and
  launch command; :mod:`.ray_rollout`: episodes on Ray workers.

Names load on first use: ``import hopgym.trainers`` imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hopgym.lazy import lazy_exports

if TYPE_CHECKING:
    from hopgym.trainers.config import TrainConfig, load_config
    from hopgym.trainers.trainer import Trainer, TrainResult

__all__ = ["TrainConfig", "TrainResult", "Trainer", "load_config"]

_LAZY = {
    "TrainConfig": ".config",
    "load_config": ".config",
    "Trainer": ".trainer",
    "TrainResult": ".trainer",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
