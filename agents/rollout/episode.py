"""One episode: the generate -> step turn loop of a policy on an env, recorded as a :class:`Trajectory`.

- A generation cut by ``max_tokens`` (finish reason ``length``) is still stepped: the env sees a partial
  action, usually invalid, and the episode goes on, as it would in training; the turn records the reason.
- With ``max_episode_tokens`` (token-level policies only) the episode ends with termination ``"length"`` when
  the sequence is full; the env scores it as unfinished (``env.truncate()``).
- A policy, env or retriever exception ends the episode as a trajectory with termination ``"failed"`` and
  ``error="Type: message"`` and no reward (never a silent zero); cancellation propagates.
- With ``sampling.seed`` set, each turn gets its own seed derived from (seed, task id, sample index, turn).

The token bookkeeping of token-level policies lives in :class:`~hopgym.agents.rollout.ledger.TokenLedger`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import time
from typing import Any

from hopgym.agents.policy import Context, Generation, Policy, SamplingParams, token_policy
from hopgym.agents.rollout.ledger import TokenLedger
from hopgym.agents.rollout.trajectory import Termination, Trajectory, Turn
from hopgym.envs.core import AsyncSearchQAEnv
from hopgym.errors import ConfigError

__all__ = ["failed_trajectory", "policy_label", "run_episode"]

logger = logging.getLogger(__name__)


def policy_label(policy: Policy) -> str:
    """The name trajectories record: the policy's ``name`` attribute, else its class name."""
    return str(getattr(policy, "name", None) or type(policy).__name__)


def _turn_seed(base: int, task_id: str, sample_index: int, turn: int) -> int:
    digest = hashlib.blake2b(f"{base}\0{task_id}\0{sample_index}\0{turn}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def _action_text(gen: Generation) -> str:
    """What the env parses: the text, or the assistant message as JSON when the backend returned tool calls."""
    if not gen.tool_calls:
        return gen.text
    message = {
        "role": "assistant",
        "content": gen.text or None,
        "tool_calls": [dict(c) for c in gen.tool_calls],
    }
    return json.dumps(message, ensure_ascii=False)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def failed_trajectory(task_id: str, sample_index: int, exc: BaseException, policy: Policy) -> Trajectory:
    """The record of an episode that could not even start (e.g. its env could not be made)."""
    logger.warning("episode %s/%d failed: %s", task_id, sample_index, _error_text(exc))
    now = time.time()
    return Trajectory(
        task_id=task_id,
        sample_index=sample_index,
        group_id=task_id,
        termination="failed",
        error=_error_text(exc),
        policy=policy_label(policy),
        started_at=now,
        finished_at=now,
    )


async def run_episode(
    env: AsyncSearchQAEnv,
    policy: Policy,
    task_id: str,
    *,
    sample_index: int = 0,
    sampling: SamplingParams | None = None,
    max_episode_tokens: int | None = None,
    policy_name: str | None = None,
) -> Trajectory:
    """Play one episode of ``task_id`` on ``env`` (see the module docstring)."""
    params = sampling or SamplingParams()
    tokens = token_policy(policy)
    if max_episode_tokens is not None and tokens is None:
        raise ConfigError("max_episode_tokens needs a token-level policy (it caps the token sequence)")
    name = policy_name or policy_label(policy)
    started = time.time()
    turns: list[Turn] = []
    prompt = ""
    ledger: TokenLedger | None = None

    def result(termination: Termination, **kwargs: Any) -> Trajectory:
        return Trajectory(
            task_id=task_id,
            sample_index=sample_index,
            group_id=task_id,
            termination=termination,
            turns=tuple(turns),
            prompt=prompt,
            policy=name,
            started_at=started,
            finished_at=time.time(),
            **(ledger.trajectory_fields() if ledger is not None else {}),
            **kwargs,
        )

    def searches() -> int:
        return sum(t.action_kind == "search" for t in turns)

    try:
        prompt, info = await env.reset(options={"task_id": task_id})
        context = Context(prompt=prompt, messages=list(info["messages"]), tools=info.get("tools"))
        if tokens is not None:
            ledger = TokenLedger(tokens.encode_prompt(context))
            # The context views the ledger's lists: the policy sees each turn appended, without copies.
            context.token_ids, context.loss_mask = ledger.token_ids, ledger.loss_mask
        episode_params = dataclasses.replace(params, stop=tuple(dict.fromkeys((*info["stop"], *params.stop))))
        turn_index = 0
        while True:
            turn_params = episode_params
            if params.seed is not None:
                turn_params = dataclasses.replace(
                    turn_params, seed=_turn_seed(params.seed, task_id, sample_index, turn_index)
                )
            if max_episode_tokens is not None and ledger is not None:
                room = max_episode_tokens - len(ledger)
                if room < 1:
                    reward, components = env.truncate()
                    return result(
                        "length", reward=reward, reward_components=components, num_searches=searches()
                    )
                turn_params = dataclasses.replace(turn_params, max_tokens=min(turn_params.max_tokens, room))
            t0 = time.perf_counter()
            gen = await policy.generate(context, turn_params)
            generation_s = time.perf_counter() - t0
            if ledger is not None and gen.token_ids is None:
                raise TypeError(f"{name} is token-level but returned a generation without token ids")
            t1 = time.perf_counter()
            observation, reward, terminated, truncated, step_info = await env.step(_action_text(gen))
            step_s = time.perf_counter() - t1

            context.text += gen.text + observation
            assistant: dict[str, Any] = {"role": "assistant", "content": gen.text}
            if gen.tool_calls:
                assistant["tool_calls"] = [dict(c) for c in gen.tool_calls]
            context.messages.append(assistant)
            obs_ids: tuple[int, ...] | None = None
            if ledger is not None and tokens is not None and gen.token_ids is not None:
                ledger.add_generation(gen.token_ids, gen.logprobs)
                obs_ids = tuple(tokens.encode(observation)) if observation else ()
                ledger.add_observation(obs_ids)
            if observation:
                context.messages.append(
                    env.protocol.observation_message(observation, step_info["tool_call_id"])
                )
            turns.append(
                Turn(
                    text=gen.text,
                    finish_reason=gen.finish_reason,
                    stop_reason=gen.stop_reason,
                    observation=observation,
                    action_kind=str(step_info["action_kind"]),
                    token_ids=gen.token_ids,
                    logprobs=gen.logprobs,
                    observation_token_ids=obs_ids,
                    query=step_info["query"],
                    answer=step_info["answer"],
                    passage_ids=tuple(step_info["passage_ids"]),
                    invalid_reason=step_info["invalid_reason"],
                    tool_calls=tuple(gen.tool_calls),
                    generation_s=generation_s,
                    step_s=step_s,
                )
            )
            turn_index += 1
            if terminated or truncated:
                return result(
                    "answered" if terminated else "max_turns",
                    reward=float(reward),
                    reward_components=dict(step_info["reward_components"]),
                    answer=step_info["answer"],
                    num_searches=int(step_info["num_searches"]),
                )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.warning("episode %s/%d failed: %s", task_id, sample_index, _error_text(exc))
        return result("failed", error=_error_text(exc), num_searches=searches())
