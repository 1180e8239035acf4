"""TRL's prompts as hopgym tasks: the training dataset built from an env's tasks, and the way back.

TRL hands a ``rollout_func`` only the ``prompt`` column of each row, so a prompt must identify its task. The
dataset's prompts are the env protocol's own prompts (what the policy is shown, and what TRL logs), and the
rollout function maps each back to its task through :class:`PromptIndex`. A prompt may also be a task id
itself. Two tasks with the same prompt text could not be told apart, so such a dataset is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hopgym.envs.pool import EnvPool, EnvSource
from hopgym.errors import ConfigError, require
from hopgym.types import Task

__all__ = ["TASK_ID_COLUMN", "PromptIndex", "task_prompts", "tasks_dataset"]

#: The dataset column holding each row's hopgym task id (kept for reading; TRL passes only ``prompt``).
TASK_ID_COLUMN = "task_id"


async def task_prompts(pool: EnvPool, tasks: Iterable[str | Task] | None = None) -> list[tuple[str, str]]:
    """``(task id, prompt)`` of ``tasks`` (default: all of the pool's env's tasks), in order."""
    env = await pool.new_env()
    try:
        by_id = {t.id: t for t in env.tasks}
        wanted = (
            [t.id if isinstance(t, Task) else str(t) for t in tasks] if tasks is not None else list(by_id)
        )
        missing = [t for t in wanted if t not in by_id]
        if missing:
            raise ConfigError(
                f"{len(missing)} task id(s) are not among the env's {len(by_id)} tasks (first: {missing[0]!r}); "
                "build the dataset from the env the rollout function plays"
            )
        return [(task_id, env.protocol.prompt(by_id[task_id])) for task_id in wanted]
    finally:
        await env.aclose()


class PromptIndex:
    """Prompt text (or task id) -> task id, for the tasks of one env."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._ids = frozenset(task_id for task_id, _ in pairs)
        self._by_prompt: dict[str, str] = {}
        self._ambiguous: dict[str, list[str]] = {}
        for task_id, prompt in pairs:
            other = self._by_prompt.get(prompt)
            if other is not None and other != task_id:
                self._ambiguous.setdefault(prompt, [other]).append(task_id)
            self._by_prompt.setdefault(prompt, task_id)

    @property
    def ambiguous(self) -> Mapping[str, list[str]]:
        """Prompts shared by several tasks, with those tasks' ids."""
        return self._ambiguous

    def task_id(self, prompt: object) -> str:
        """The task whose prompt (or id) ``prompt`` is; ConfigError naming the cause otherwise."""
        if not isinstance(prompt, str):
            raise ConfigError(
                f"the rollout function got a {type(prompt).__name__} prompt; hopgym's rollout needs the env's "
                "prompt text (or a task id) in the dataset's 'prompt' column: build the dataset with "
                "hopgym.trainers.trl.tasks_dataset(env)"
            )
        if prompt in self._ambiguous:
            raise ConfigError(
                f"the prompt {prompt[:80]!r}... belongs to tasks {self._ambiguous[prompt]}: put task ids in the "
                "'prompt' column for these, or drop all but one of them from the env"
            )
        task_id = self._by_prompt.get(prompt)
        if task_id is not None:
            return task_id
        if prompt in self._ids:
            return prompt
        raise ConfigError(
            f"the prompt {prompt[:80]!r} is neither the prompt nor the id of a task of the rollout's env: build "
            "the dataset with hopgym.trainers.trl.tasks_dataset() from the same env (id, kwargs and world seed)"
        )


def tasks_dataset(
    env: EnvSource | EnvPool,
    *,
    tasks: Iterable[str | Task] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """A ``datasets.Dataset`` with one row per task: ``prompt`` (the env protocol's prompt) and ``task_id``.

    ``env`` is what :class:`~hopgym.trainers.trl.HopgymRollout` plays (an env id with ``env_kwargs``, an env,
    a factory or an ``EnvPool``); ``tasks`` picks and orders tasks (default: all). Call it outside a running
    event loop. Raises ConfigError when two of the tasks share a prompt text (the rollout could not tell them
    apart).
    """
    datasets: Any = require("datasets", extra="trl", purpose="the TRL training dataset")

    async def collect() -> list[tuple[str, str]]:
        pool = (
            env if isinstance(env, EnvPool) else EnvPool(env, env_kwargs=env_kwargs, retriever_batching=False)
        )
        try:
            return await task_prompts(pool, tasks)
        finally:
            if pool is not env:
                await pool.aclose()

    if isinstance(env, EnvPool) and env_kwargs:
        raise ConfigError("env_kwargs apply to an env id; configure the EnvPool's source instead")
    pairs = asyncio.run(collect())
    ambiguous = PromptIndex(pairs).ambiguous
    if ambiguous:
        prompt, ids = next(iter(ambiguous.items()))
        raise ConfigError(
            f"{len(ambiguous)} prompt text(s) are shared by several tasks (e.g. tasks {ids}: {prompt[:80]!r}); "
            "the rollout function identifies a task by its prompt: pass tasks= without the duplicates"
        )
    return datasets.Dataset.from_dict(
        {"prompt": [prompt for _, prompt in pairs], TASK_ID_COLUMN: [task_id for task_id, _ in pairs]}
    )
