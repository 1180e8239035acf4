"""Trajectories to padded tensors: the one place where an episode's token view becomes a training batch.

Positions follow OpenRLHF: a sequence of ``L`` tokens has ``L - 1`` action slots, slot ``t`` scoring token
``t + 1`` (its log-probability comes from the logits at ``t``). ``action_mask[t]`` is 1 when token ``t + 1`` is
trained on: a generated token (``Trajectory.loss_mask``) or, with ``mask_observations=False`` (an ablation),
any token after the prompt, retrieved documents included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hopgym.agents.rollout.trajectory import Trajectory

__all__ = ["RolloutBatch", "make_batch"]


@dataclass(frozen=True)
class RolloutBatch:
    """A right-padded batch. ``rollout_log_probs`` are the sampler's (0 where it gave none);
    ``observation_mask`` marks retrieved/observation tokens (for checks and metrics); ``rewards`` are per
    sequence, groups of ``group_size`` consecutive rows per task."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    action_mask: torch.Tensor
    observation_mask: torch.Tensor
    rollout_log_probs: torch.Tensor
    rewards: torch.Tensor
    group_size: int

    def __len__(self) -> int:
        return int(self.input_ids.size(0))

    def rows(self, index: slice | torch.Tensor) -> RolloutBatch:
        """The rows ``index`` (a slice keeps groups only when it is group-aligned)."""
        return RolloutBatch(
            self.input_ids[index],
            self.attention_mask[index],
            self.action_mask[index],
            self.observation_mask[index],
            self.rollout_log_probs[index],
            self.rewards[index],
            self.group_size,
        )


def make_batch(
    trajectories: Sequence[Trajectory], *, group_size: int, pad_id: int, mask_observations: bool = True
) -> RolloutBatch:
    """Stack token-level trajectories (in group order) into a :class:`RolloutBatch`.

    Raises ValueError for a failed or text-level trajectory: failures are re-run, never trained on.
    """
    if not trajectories:
        raise ValueError("cannot build a batch from zero trajectories")
    if len(trajectories) % group_size:
        raise ValueError(f"{len(trajectories)} trajectories do not split into groups of {group_size}")
    width = 0
    for traj in trajectories:
        if traj.failed or traj.reward is None:
            raise ValueError(
                f"episode {traj.key} failed ({traj.error}); failed episodes are never trained on"
            )
        if traj.token_ids is None or traj.loss_mask is None or traj.logprobs is None:
            raise ValueError(f"episode {traj.key} has no token view: train with a token-level policy")
        width = max(width, len(traj.token_ids))
    n = len(trajectories)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    action = torch.zeros((n, width - 1), dtype=torch.float32)
    observation = torch.zeros((n, width - 1), dtype=torch.float32)
    rollout = torch.zeros((n, width - 1), dtype=torch.float32)
    for i, traj in enumerate(trajectories):
        assert traj.token_ids is not None and traj.loss_mask is not None and traj.logprobs is not None
        length = len(traj.token_ids)
        input_ids[i, :length] = torch.tensor(traj.token_ids, dtype=torch.long)
        attention[i, :length] = 1
        generated = torch.tensor(traj.loss_mask[1:], dtype=torch.float32)
        prompt = traj.prompt_token_count or 0
        after_prompt = torch.zeros(length - 1)
        after_prompt[max(prompt - 1, 0) :] = 1.0
        observation[i, : length - 1] = after_prompt * (1.0 - generated)
        action[i, : length - 1] = generated if mask_observations else after_prompt
        rollout[i, : length - 1] = torch.tensor([lp or 0.0 for lp in traj.logprobs[1:]], dtype=torch.float32)
    rewards = torch.tensor([float(t.reward or 0.0) for t in trajectories], dtype=torch.float32)
    return RolloutBatch(input_ids, attention, action, observation, rollout, rewards, group_size)
