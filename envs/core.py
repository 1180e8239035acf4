"""The async environment core: one multi-hop search QA episode at a time, Gymnasium semantics.

``step(action)`` takes the text the policy generated in one turn, parses it with the action protocol, runs the
search against the retriever when the action is a search, and returns the text the environment appends
(wrapped passages or the invalid-action message). The episode terminates when the agent answers and is
truncated when ``max_turns`` actions are used up. The reward is paid once, on the last step.

Retriever failures are infrastructure failures: they propagate as exceptions (after whatever retries the
retriever does) and never turn into a silent zero reward. Malformed actions are environment outcomes; using the
env out of order raises a hopgym ``EnvError`` (``ResetNeeded``, ``EnvClosedError``, ``ActionTypeError``), each
also the matching Gymnasium error.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import numpy as np
from gymnasium.utils import seeding

from hopgym.envs.info import ResetInfo, StepInfo
from hopgym.envs.observation import ObservationCap, TokenCounter
from hopgym.envs.protocols import get_protocol
from hopgym.envs.protocols.base import ActionProtocol
from hopgym.envs.rewards import get_reward
from hopgym.envs.rewards.base import RewardFn
from hopgym.envs.tasks import load_tasks
from hopgym.errors import ActionTypeError, ConfigError, EnvClosedError, ResetNeeded
from hopgym.options import check_fields
from hopgym.retrievers.base import Retriever
from hopgym.types import ParsedAction, RewardInput, RewardResult, Task

__all__ = ["REWARD_THREAD_CHARS", "AsyncSearchQAEnv", "EnvConfig"]

#: Episodes whose text is at least this long are scored in a worker thread, so that a long (or a custom,
#: slow) reward does not freeze the event loop and every other episode on it. Shorter ones are scored inline:
#: a thread hop costs more than their scoring.
REWARD_THREAD_CHARS = 32_768


@dataclass(frozen=True)
class EnvConfig:
    """Episode limits. ``max_turns`` counts every action (search, answer or invalid).

    ``prefetch_k``: at reset, retrieve that many passages with the question and append them (as an
    observation) to the first prompt and to the last chat message; counted as one search. None: ``top_k`` when
    the protocol sets ``prefetch_question`` (the retrieval baselines), else 0. ``last_turn_answers``: read the
    last allowed turn as the answer (the protocol's ``parse_final`` when it has one, else the whole stripped
    turn unless ``parse`` finds an answer). None: the protocol's ``last_turn_answers``, else False.
    """

    max_turns: int = 4
    top_k: int = 3
    max_observation_chars: int | None = 4000
    max_observation_tokens: int | None = None
    prefetch_k: int | None = None
    last_turn_answers: bool | None = None

    def __post_init__(self) -> None:
        check_fields(self, owner="")  # types first (values may be text from --env-arg), then ranges
        if self.max_turns < 1:
            raise ConfigError(
                f"max_turns={self.max_turns}: an episode needs at least 1 turn; set max_turns >= 1"
            )
        if self.top_k < 1:
            raise ConfigError(f"top_k={self.top_k}: retrieve at least one passage; set top_k >= 1")
        if self.prefetch_k is not None and self.prefetch_k < 0:
            raise ConfigError(f"prefetch_k={self.prefetch_k}: use 0 (no prefetch), a positive count, or None")
        for name in ("max_observation_chars", "max_observation_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value}: use a positive limit, or None for no limit")


def _as_tasks(tasks: Sequence[Task] | Sequence[Mapping[str, Any]] | str | Path) -> tuple[Task, ...]:
    if isinstance(tasks, (str, Path)):
        return tuple(load_tasks(tasks))
    out = tuple(t if isinstance(t, Task) else Task.from_dict(t) for t in tasks)
    if not out:
        raise ConfigError("tasks is empty: pass at least one Task (or a path to a jsonl file of tasks)")
    return out


class AsyncSearchQAEnv:
    """Async multi-hop QA environment (observation and action are both text).

    Args:
        tasks: the task source: Tasks, task dicts, or a jsonl path. ``reset(seed=...)`` samples one;
            ``reset(options={"task_id": ...})`` (or ``{"task_index": i}``) chooses one.
        retriever: any :class:`~hopgym.retrievers.base.Retriever`.
        protocol: an ActionProtocol or a registered protocol name.
        reward: a RewardFn or a registered reward name; default: the protocol's ``default_reward`` (the
            reward its seed project trains with).
        config: episode limits; keyword overrides (``max_turns=...``) are accepted too.
        count_tokens: token counter for ``max_observation_tokens``.
        close_retriever: close the retriever in ``aclose()``; default False because retrievers are often
            shared between many environments.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        tasks: Sequence[Task] | Sequence[Mapping[str, Any]] | str | Path,
        retriever: Retriever,
        protocol: ActionProtocol | str = "search_r1",
        reward: RewardFn | str | None = None,
        *,
        config: EnvConfig | None = None,
        count_tokens: TokenCounter | None = None,
        close_retriever: bool = False,
        **config_overrides: Any,
    ) -> None:
        if not isinstance(retriever, Retriever):
            raise ConfigError(
                f"retriever must implement the Retriever protocol (async search(queries, k) and aclose()), "
                f"got {type(retriever).__name__}"
            )
        base = config or EnvConfig()
        self.config = EnvConfig(**{**base.__dict__, **config_overrides}) if config_overrides else base
        if self.config.max_observation_tokens is not None and count_tokens is None:
            raise ConfigError("max_observation_tokens needs count_tokens=<callable counting a text's tokens>")
        self.tasks = _as_tasks(tasks)
        self._task_index = {t.id: i for i, t in enumerate(self.tasks)}
        self.retriever = retriever
        self.protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
        if reward is None:
            reward = self.protocol.default_reward
        self.reward_fn = get_reward(reward) if isinstance(reward, str) else reward
        limits = (self.config.max_observation_chars, self.config.max_observation_tokens)
        self._cap = ObservationCap(*limits, count_tokens) if limits != (None, None) else None
        self._close_retriever = close_retriever
        self._prefetch_k, self._answer_turn, self._parse_final = _baseline_options(self.config, self.protocol)
        self._closed = False
        self._np_random: np.random.Generator | None = None
        self._task: Task | None = None
        self._task_id = ""
        self._done = True
        self._turn = 0
        self._num_searches = 0
        self._transcript: list[str] = []

    # -- Gymnasium-style API -------------------------------------------------------------------------

    @property
    def np_random(self) -> np.random.Generator:
        if self._np_random is None:
            self._np_random, _ = seeding.np_random()
        return self._np_random

    @property
    def task(self) -> Task | None:
        """The current episode's task (for harness code; policies should only see observations)."""
        return self._task

    async def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[str, ResetInfo]:
        if self._closed:
            raise EnvClosedError(
                "reset() on a closed env: aclose() was called; build a new env (or clone() an open one)"
            )
        if seed is not None:
            self._np_random, _ = seeding.np_random(seed)
        self._task = self._choose_task(options or {})
        self._task_id = self._task.id
        self._done = False
        self._turn = 0
        self._num_searches = 0
        self._transcript = []
        info: ResetInfo = {
            "task_id": self._task.id,
            "question": self._task.question,
            "turn": 0,
            "messages": self.protocol.messages(self._task),
            "stop": list(self.protocol.stop),
        }
        tools = self.protocol.tools()
        if tools is not None:
            info["tools"] = [dict(t) for t in tools]
        prompt = self.protocol.prompt(self._task)
        if self._prefetch_k:
            prompt = await self._prefetch(prompt, info["messages"])
        return prompt, info

    async def step(self, action: str) -> tuple[str, float, bool, bool, StepInfo]:
        if self._done:  # also True before the first reset and after aclose()
            if self._closed:
                raise EnvClosedError("step() on a closed env: aclose() was called; build a new env")
            raise ResetNeeded("the episode is over (or never started): call reset() before step()")
        if not isinstance(action, str):
            raise ActionTypeError(
                f"action must be the text the policy generated (str), got {type(action).__name__}"
            )
        # The hot path of every rollout: kept to plain attribute reads and one dict (see benchmarks/env_step.py).
        self._turn = turn = self._turn + 1
        protocol = self.protocol
        parsed = protocol.parse(action) if turn < self._answer_turn else self._parse_final(action)
        kind = parsed.kind
        passage_ids: list[str] = []
        obs_cut = False
        if kind == "search":
            assert parsed.query is not None
            (passages,) = await self.retriever.search([parsed.query], self.config.top_k)
            passage_ids = [p.id for p in passages]
            body = protocol.format_passages(passages)
            if self._cap is not None:
                body, obs_cut = self._cap.apply(body)
            observation = protocol.wrap_observation(body)
            self._num_searches += 1
        elif kind == "answer":
            observation = ""
        else:
            observation = protocol.invalid_message(parsed)
        self._transcript += (action, observation)

        terminated = kind == "answer"
        truncated = not terminated and turn >= self.config.max_turns
        reward = 0.0
        components: dict[str, float] = {}
        if terminated or truncated:
            inp = self._end_episode(parsed.answer, finished=terminated)
            if len(inp.response) >= REWARD_THREAD_CHARS:
                result = await asyncio.to_thread(self.reward_fn, inp)
            else:
                result = self.reward_fn(inp)
            reward, components = _score(result)
        info: StepInfo = {
            "task_id": self._task_id,
            "turn": turn,
            "action_kind": kind,
            "query": parsed.query,
            "passage_ids": passage_ids,
            "invalid": kind == "invalid",
            "invalid_reason": parsed.reason,
            "action_notes": list(parsed.notes),
            "tool_call_id": parsed.tool_call_id,
            "answer": parsed.answer,
            "num_searches": self._num_searches,
            "observation_truncated": obs_cut,
            "reward_components": components,
        }
        return observation, reward, terminated, truncated, info

    async def _prefetch(self, prompt: str, messages: list[dict[str, Any]]) -> str:
        """Retrieve with the question; the passages, wrapped as an observation, end the first prompt."""
        assert self._task is not None
        (passages,) = await self.retriever.search([self._task.question], self._prefetch_k)
        body = self.protocol.format_passages(passages)
        if self._cap is not None:
            body, _ = self._cap.apply(body)
        observation = self.protocol.wrap_observation(body)
        self._num_searches = 1
        if messages and isinstance(messages[-1].get("content"), str):
            messages[-1] = {**messages[-1], "content": messages[-1]["content"] + observation}
        else:
            messages.append({"role": "user", "content": observation})
        return prompt + observation

    def truncate(self) -> tuple[float, dict[str, float]]:
        """End the episode from outside (e.g. the policy's token budget ran out) and score it as cut off.

        Returns the reward and its components, as the last ``step`` would have.
        """
        if self._done:
            if self._closed:
                raise EnvClosedError("truncate() on a closed env: aclose() was called; build a new env")
            raise ResetNeeded("the episode is over (or never started): call reset() before truncate()")
        return _score(self.reward_fn(self._end_episode(None, finished=False)))

    def _end_episode(self, prediction: str | None, *, finished: bool) -> RewardInput:
        assert self._task is not None
        self._done = True
        # positional: RewardInput(response, golden_answers, prediction, finished, num_searches)
        return RewardInput(
            "".join(self._transcript), self._task.golden_answers, prediction, finished, self._num_searches
        )

    def clone(self, *, retriever: Retriever | None = None) -> AsyncSearchQAEnv:
        """A fresh env sharing this one's tasks, protocol, reward and config (all immutable), and its
        retriever unless another is given; the clone never closes the retriever. Cheap: one per episode."""
        twin = copy.copy(self)
        twin.retriever = retriever if retriever is not None else self.retriever
        twin._close_retriever = False
        twin._closed = False
        twin._np_random = None
        twin._task = None
        twin._task_id = ""
        twin._done = True
        twin._turn = 0
        twin._num_searches = 0
        twin._transcript = []
        return twin

    def render(self) -> str:
        """The episode so far as text (prompt omitted)."""
        return "".join(self._transcript)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._done = True
        if self._close_retriever:
            await self.retriever.aclose()

    async def __aenter__(self) -> AsyncSearchQAEnv:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- internals ---------------------------------------------------------------------------------

    def _choose_task(self, options: Mapping[str, Any]) -> Task:
        if not isinstance(options, Mapping):
            raise ConfigError(
                f"reset options must be a dict such as {{'task_id': ...}}, got {type(options).__name__}"
            )
        if "task_id" in options:
            task_id = str(options["task_id"])
            if task_id not in self._task_index:
                some = ", ".join(repr(t.id) for t in self.tasks[:3])
                raise ConfigError(
                    f"options['task_id']={task_id!r} is not among this env's {len(self.tasks)} tasks "
                    f"(e.g. {some}); pass the id of a loaded task"
                )
            return self.tasks[self._task_index[task_id]]
        if "task_index" in options:
            raw = options["task_index"]
            if isinstance(raw, bool) or not isinstance(raw, (int, np.integer)):
                raise ConfigError(f"options['task_index']={raw!r} must be an int in 0..{len(self.tasks) - 1}")
            index = int(raw)
            if not 0 <= index < len(self.tasks):
                raise ConfigError(f"options['task_index']={index} is outside 0..{len(self.tasks) - 1}")
            return self.tasks[index]
        unknown = set(options) - {"task_id", "task_index"}
        if unknown:
            raise ConfigError(f"unknown reset options {sorted(unknown)}; use 'task_id' or 'task_index'")
        return self.tasks[int(self.np_random.integers(len(self.tasks)))]


def _baseline_options(
    config: EnvConfig, protocol: ActionProtocol
) -> tuple[int, int, Callable[[str], ParsedAction]]:
    """(passages to prefetch, the turn from which ``_parse_final`` reads turns, that parser)."""
    prefetch = config.prefetch_k
    if prefetch is None:
        prefetch = config.top_k if getattr(protocol, "prefetch_question", False) is True else 0
    last = config.last_turn_answers
    if last is None:
        last = getattr(protocol, "last_turn_answers", False) is True
    parse_final = getattr(protocol, "parse_final", None)
    if not callable(parse_final):

        def parse_final(text: str) -> ParsedAction:
            parsed = protocol.parse(text)
            if parsed.kind == "answer" or not isinstance(text, str):
                return parsed
            return ParsedAction.final_answer(text.strip(), notes=("last turn read as the answer",))

    # max_turns + 1 is never reached: the episode ends at max_turns.
    return prefetch, config.max_turns if last else config.max_turns + 1, parse_final


def _score(result: RewardResult) -> tuple[float, dict[str, float]]:
    return float(result.score), {k: float(v) for k, v in result.reward_components.items()}
