"""Drive an environment with the HopWorld oracle, writing its actions in the env's own protocol."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from hopgym.agents.hopworld_oracle import HopWorldOracle
from hopgym.envs.core import AsyncSearchQAEnv

__all__ = ["EpisodeSummary", "play_oracle_episode"]


@dataclass(frozen=True)
class EpisodeSummary:
    task_id: str
    reward: float
    terminated: bool
    truncated: bool
    turns: int
    num_searches: int
    answer: str | None
    reward_components: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def play_oracle_episode(env: AsyncSearchQAEnv, task_id: str) -> EpisodeSummary:
    """One full episode of ``task_id``: the oracle reads each observation and acts until the episode ends."""
    await env.reset(options={"task_id": task_id})
    assert env.task is not None
    oracle = HopWorldOracle(env.task)
    observation: str | None = None
    while True:
        kind, text = oracle.next_action(observation)
        action = env.protocol.render_search(text) if kind == "search" else env.protocol.render_answer(text)
        observation, reward, terminated, truncated, info = await env.step(action)
        if terminated or truncated:
            return EpisodeSummary(
                task_id=task_id,
                reward=reward,
                terminated=terminated,
                truncated=truncated,
                turns=info["turn"],
                num_searches=info["num_searches"],
                answer=info["answer"],
                reward_components=dict(info["reward_components"]),
            )
