"""TRL interop: hopgym episodes as the rollouts of TRL's ``GRPOTrainer`` (TRL >= 0.25).

``HopgymRollout(env)`` is the ``rollout_func``, :func:`hopgym_reward` the reward function and
:func:`tasks_dataset` the training dataset (one row per task). The names load on first use, and none of
them imports trl or torch before it is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hopgym.lazy import lazy_exports

if TYPE_CHECKING:
    from hopgym.trainers.trl.config import TRLRolloutConfig
    from hopgym.trainers.trl.dataset import TASK_ID_COLUMN, PromptIndex, tasks_dataset
    from hopgym.trainers.trl.reward import REWARD_FIELD, hopgym_reward
    from hopgym.trainers.trl.rollout import EpisodesFailed, HopgymRollout, RolloutTiming, trajectory_fields

_LAZY = {
    "TRLRolloutConfig": ".config",
    "TASK_ID_COLUMN": ".dataset",
    "PromptIndex": ".dataset",
    "tasks_dataset": ".dataset",
    "REWARD_FIELD": ".reward",
    "hopgym_reward": ".reward",
    "HopgymRollout": ".rollout",
    "RolloutTiming": ".rollout",
    "EpisodesFailed": ".rollout",
    "trajectory_fields": ".rollout",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "REWARD_FIELD",
    "TASK_ID_COLUMN",
    "EpisodesFailed",
    "HopgymRollout",
    "PromptIndex",
    "RolloutTiming",
    "TRLRolloutConfig",
    "hopgym_reward",
    "tasks_dataset",
    "trajectory_fields",
]
