"""Protocol-formatted traces of the noisy agent, played on the real env, and their token encoding.

A trace is what the engine would record for a model that wrote the agent's actions: the env's first prompt,
then per turn the action text (``protocol.render_search``/``render_answer``) and the env's observation.
:func:`encode_trace` lays it out as the engine's :class:`~hopgym.agents.rollout.ledger.TokenLedger` does:
prompt ids encoded with special tokens (mask 0), each action's ids (mask 1), each observation's ids encoded on
its own (mask 0), so SFT trains only on the agent's own tokens.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hopgym.envs.core import AsyncSearchQAEnv
from hopgym.envs.hopworld import HopWorld, HopWorldConfig, generate_world
from hopgym.trainers.warmup.config import NoiseConfig
from hopgym.trainers.warmup.noisy_agent import Label, NoisyHopWorldAgent

__all__ = ["EncodedTrace", "Trace", "encode_trace", "hopworld_env", "play_trace", "world_traces"]


@dataclass(frozen=True)
class Trace:
    """One episode of the noisy agent: prompt, actions with their labels, observations, outcome."""

    task_id: str
    hops: int
    prompt: str
    actions: tuple[str, ...]
    labels: tuple[Label, ...]
    observations: tuple[str, ...]
    reward: float
    #: The agent's noise draws: (mistake kind, whether it was made).
    draws: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class EncodedTrace:
    token_ids: tuple[int, ...]
    loss_mask: tuple[int, ...]
    prompt_len: int = 0


def hopworld_env(world: HopWorld, **env_kwargs: Any) -> AsyncSearchQAEnv:
    """The env ``make_hopworld_core`` builds, over an already generated world (the agent needs the world)."""
    from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever

    env_kwargs.setdefault("max_turns", 6)
    return AsyncSearchQAEnv(
        world.tasks, InMemoryBM25Retriever(world.passages), close_retriever=True, **env_kwargs
    )


async def play_trace(
    env: AsyncSearchQAEnv, world: HopWorld, task_id: str, noise: NoiseConfig, rng: random.Random
) -> Trace:
    """Drive ``env`` through one episode of ``task_id`` with the noisy agent."""
    prompt, _ = await env.reset(options={"task_id": task_id})
    assert env.task is not None
    task = env.task
    agent = NoisyHopWorldAgent(task, world, noise, rng)
    actions: list[str] = []
    labels: list[Label] = []
    observations: list[str] = []
    observation: str | None = None
    while True:
        kind, text, label = agent.next_action(observation)
        action = env.protocol.render_search(text) if kind == "search" else env.protocol.render_answer(text)
        observation, reward, terminated, truncated, _ = await env.step(action)
        actions.append(action)
        labels.append(label)
        observations.append(observation)
        if terminated or truncated:
            return Trace(
                task_id=task_id,
                hops=int(task.metadata["hopworld"]["hops"]),
                prompt=prompt,
                actions=tuple(actions),
                labels=tuple(labels),
                observations=tuple(observations),
                reward=float(reward),
                draws=tuple(agent.draws),
            )


def world_traces(
    world_seed: int,
    *,
    num_questions: int,
    hops: Sequence[int],
    noise: NoiseConfig,
    seed: int,
    name_pool: int = 0,
    top_k: int = 3,
) -> list[Trace]:
    """One trace per question of the world ``world_seed`` (a fresh world, fresh names)."""
    num_entities = max(300, -(-num_questions // 4))
    world = generate_world(
        HopWorldConfig(
            seed=world_seed,
            hops=tuple(hops),
            num_questions=num_questions,
            num_entities=num_entities,
            name_pool=name_pool,
        )
    )
    rng = random.Random(f"warmup/{seed}/{world_seed}")

    async def play_all() -> list[Trace]:
        env = hopworld_env(world, top_k=top_k)
        try:
            return [await play_trace(env, world, t.id, noise, rng) for t in world.tasks]
        finally:
            await env.aclose()

    return asyncio.run(play_all())


def encode_trace(tokenizer: Any, trace: Trace) -> EncodedTrace:
    """Token ids and loss mask of ``trace`` laid out as the engine's ledger lays out an episode."""
    ids: list[int] = list(tokenizer.encode(trace.prompt, add_special_tokens=True))
    mask = [0] * len(ids)
    prompt_len = len(ids)
    for action, observation in zip(trace.actions, trace.observations, strict=True):
        action_ids = tokenizer.encode(action, add_special_tokens=False)
        ids += action_ids
        mask += [1] * len(action_ids)
        if observation:
            obs_ids = tokenizer.encode(observation, add_special_tokens=False)
            ids += obs_ids
            mask += [0] * len(obs_ids)
    return EncodedTrace(tuple(int(i) for i in ids), tuple(mask), prompt_len)


def corpus_texts(traces: Iterable[Trace]) -> list[str]:
    """Tokenizer training text: every prompt, action and observation of the traces."""
    texts: list[str] = []
    for trace in traces:
        texts.append(trace.prompt)
        texts.extend(trace.actions)
        texts.extend(o for o in trace.observations if o)
    return texts
