"""Rollout: the episode engine, one episode's turn loop, trajectories, the token ledger and the trajectory store.

The names below load on first use (``from hopgym.agents.rollout import run_episodes``); the same API is
exported by :mod:`hopgym.agents`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hopgym.lazy import lazy_exports

if TYPE_CHECKING:
    from hopgym.agents.rollout.config import RolloutConfig
    from hopgym.agents.rollout.engine import (
        EpisodeRun,
        RunResult,
        RunSummary,
        collect_episodes,
        run_episodes,
        run_episodes_sync,
    )
    from hopgym.agents.rollout.episode import run_episode
    from hopgym.agents.rollout.ledger import TokenLedger
    from hopgym.agents.rollout.store import TrajectoryStore
    from hopgym.agents.rollout.trajectory import Trajectory, Turn, verify_trajectory

_LAZY = {
    "RolloutConfig": ".config",
    "EpisodeRun": ".engine",
    "RunResult": ".engine",
    "RunSummary": ".engine",
    "collect_episodes": ".engine",
    "run_episodes": ".engine",
    "run_episodes_sync": ".engine",
    "run_episode": ".episode",
    "TokenLedger": ".ledger",
    "TrajectoryStore": ".store",
    "Trajectory": ".trajectory",
    "Turn": ".trajectory",
    "verify_trajectory": ".trajectory",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "EpisodeRun",
    "RolloutConfig",
    "RunResult",
    "RunSummary",
    "TokenLedger",
    "Trajectory",
    "TrajectoryStore",
    "Turn",
    "collect_episodes",
    "run_episode",
    "run_episodes",
    "run_episodes_sync",
    "verify_trajectory",
]
