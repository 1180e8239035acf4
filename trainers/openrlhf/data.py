"""The prompt file OpenRLHF reads (``--data.prompt_dataset``), and how its labels name hopgym tasks.

Each JSONL line is ``{"prompt": <the env's first prompt for the task>, "label": <label>}``, read with
``--data.input_key prompt --data.label_key label`` (no ``--data.apply_chat_template``: the prompt is passed on
as written, and the agent applies the chat template itself when configured to). The label is a JSON string
``{"env": ENV_ID, "task_id": TASK_ID}``: OpenRLHF hands it to the agent with the prompt, and the agent plays
that task of that env.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hopgym.errors import ConfigError
from hopgym.trainers.openrlhf.config import AgentConfig, write_agent_config

__all__ = [
    "INPUT_KEY",
    "LABEL_KEY",
    "OpenRLHFData",
    "aprepare_openrlhf_data",
    "decode_label",
    "encode_label",
    "prepare_openrlhf_data",
]

INPUT_KEY = "prompt"
LABEL_KEY = "label"


def encode_label(env_id: str, task_id: str) -> str:
    """The label of one task (a JSON string)."""
    return json.dumps({"env": env_id, "task_id": task_id}, ensure_ascii=False, sort_keys=True)


def decode_label(label: object, *, env_id: str) -> str:
    """The task id in ``label``; raises :class:`ConfigError` when it is not a label for ``env_id``."""
    try:
        data = json.loads(label) if isinstance(label, str) else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("task_id"), str) or not data["task_id"]:
        raise ConfigError(
            f"OpenRLHF label {label!r} does not name a hopgym task: the prompt file must come from "
            "prepare_openrlhf_data, read with --data.label_key label"
        )
    if data.get("env") != env_id:
        raise ConfigError(
            f"OpenRLHF label {label!r} is a task of env {data.get('env')!r}, but the agent config plays "
            f"{env_id!r}: prepare the prompt file and the agent config together (prepare_openrlhf_data)"
        )
    return str(data["task_id"])


@dataclass(frozen=True)
class OpenRLHFData:
    """What :func:`prepare_openrlhf_data` wrote: the prompt file, the agent config and the task count."""

    prompts: Path
    agent_config: Path
    tasks: int


def prepare_openrlhf_data(
    config: AgentConfig,
    out_dir: str | Path,
    *,
    max_tasks: int = 0,
    task_ids: Sequence[str] | None = None,
    name: str = "train",
) -> OpenRLHFData:
    """Write ``<out_dir>/<name>.jsonl`` (one line per task of ``config.env``: its first prompt and its label)
    and ``<out_dir>/agent.json`` (``config``, for ``$HOPGYM_AGENT_CONFIG``).

    ``task_ids`` picks tasks (default: all, in the env's order); ``max_tasks`` > 0 keeps the first that many.
    From a coroutine, await :func:`aprepare_openrlhf_data` instead.
    """
    return asyncio.run(
        aprepare_openrlhf_data(config, out_dir, max_tasks=max_tasks, task_ids=task_ids, name=name)
    )


async def aprepare_openrlhf_data(
    config: AgentConfig,
    out_dir: str | Path,
    *,
    max_tasks: int = 0,
    task_ids: Sequence[str] | None = None,
    name: str = "train",
) -> OpenRLHFData:
    """:func:`prepare_openrlhf_data` on the running event loop."""
    if max_tasks < 0:
        raise ConfigError(f"max_tasks={max_tasks}: use 0 (all tasks) or a positive count")
    if not name or "/" in name:
        raise ConfigError(f"name={name!r}: use a plain file name stem, e.g. 'train'")
    config.check_env()
    lines = await _prompt_lines(config, task_ids, max_tasks)
    return _write(config, Path(out_dir), name, lines)


def _write(config: AgentConfig, out_dir: Path, name: str, lines: list[str]) -> OpenRLHFData:
    out = out_dir.absolute()
    out.mkdir(parents=True, exist_ok=True)
    prompts = out / f"{name}.jsonl"
    partial = prompts.with_name(prompts.name + ".partial")
    partial.write_text("".join(lines), encoding="utf-8")
    partial.replace(prompts)
    agent = write_agent_config(config, out / "agent.json")
    return OpenRLHFData(prompts=prompts, agent_config=agent, tasks=len(lines))


async def _prompt_lines(config: AgentConfig, task_ids: Sequence[str] | None, max_tasks: int) -> list[str]:
    from hopgym.envs.registration import make_async

    env = make_async(config.env, **dict(config.env_kwargs))
    try:
        known = [t.id for t in env.tasks]
        if task_ids is None:
            chosen = known
        else:
            missing = sorted(set(task_ids) - set(known))
            if missing:
                raise ConfigError(
                    f"task ids {missing[:5]} are not tasks of {config.env} (with these env_kwargs)"
                )
            chosen = list(task_ids)
        if max_tasks:
            chosen = chosen[:max_tasks]
        if not chosen:
            raise ConfigError(
                f"{config.env} has no tasks to write (check env_kwargs, task_ids and max_tasks)"
            )
        lines = []
        for task_id in chosen:
            prompt, _ = await env.reset(options={"task_id": task_id})
            record = {INPUT_KEY: prompt, LABEL_KEY: encode_label(config.env, task_id)}
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        return lines
    finally:
        await env.aclose()
