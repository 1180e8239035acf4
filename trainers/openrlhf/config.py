"""The hopgym agent's settings inside OpenRLHF: one JSON file, named by ``$HOPGYM_AGENT_CONFIG``.

OpenRLHF builds the agent executor in each of its vLLM Ray actors with no arguments, so the settings travel
as a file path in the environment (``ray job submit --runtime-env-json '{"env_vars": {...}}'`` puts it in
every actor). Example::

    {"env": "hopgym/SearchQA-v0",
     "env_kwargs": {"tasks": "/data/train.jsonl", "retriever": "http://10.0.0.5:8000", "reward": "r1_searcher"},
     "max_tokens": 512, "chat_template": true}

``env_kwargs`` are those of ``hopgym.make(env, ...)``: the retriever (an index directory, a retriever server
URL, ...), the reward, the protocol and every other env setting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hopgym.errors import ConfigError
from hopgym.options import check_fields

__all__ = ["CONFIG_ENV", "AgentConfig", "load_agent_config", "write_agent_config"]

#: The environment variable that names the agent's JSON config file.
CONFIG_ENV = "HOPGYM_AGENT_CONFIG"


@dataclass(frozen=True)
class AgentConfig:
    """What each OpenRLHF sample plays.

    - ``env``: a registered hopgym env id; ``env_kwargs``: its keyword arguments (JSON values).
    - ``max_tokens``: token budget of one generated turn (OpenRLHF's ``--rollout.max_new_tokens``, when
      given, lowers it); the whole episode is capped by OpenRLHF's ``--data.max_len``.
    - ``chat_template``: encode the first prompt with the tokenizer's chat template (chat models) instead of
      the protocol's plain completion prompt.
    - ``max_episode_retries``: an episode that fails (retriever or engine down after their own retries) is
      played again up to this many times, then the rollout stops with the error; a failure is never handed
      to OpenRLHF as a reward.
    - ``retriever_batching``: the episodes of one vLLM actor share one micro-batching retriever.
    """

    env: str
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    max_tokens: int = 256
    chat_template: bool = False
    max_episode_retries: int = 2
    retriever_batching: bool = True

    def __post_init__(self) -> None:
        check_fields(self, owner="agent config ", skip=("env_kwargs",))
        if not isinstance(self.env_kwargs, Mapping):
            raise ConfigError(
                f"agent config env_kwargs={self.env_kwargs!r}: use a JSON object of hopgym.make keyword "
                'arguments, e.g. {"world_seed": 1}'
            )
        object.__setattr__(self, "env_kwargs", MappingProxyType(dict(self.env_kwargs)))
        if not self.env:
            raise ConfigError(
                'agent config env is empty: name a registered env id, e.g. "hopgym/HopWorld-v0"'
            )
        if self.max_tokens < 1:
            raise ConfigError(f"agent config max_tokens={self.max_tokens}: a turn needs at least 1 token")
        if self.max_episode_retries < 0:
            raise ConfigError(f"agent config max_episode_retries={self.max_episode_retries}: use 0 or more")

    def check_env(self) -> None:
        """Raise :class:`ConfigError` unless ``env`` is a registered hopgym env id."""
        from hopgym.envs.registration import hopgym_env_ids

        ids = hopgym_env_ids()
        if self.env not in ids:
            raise ConfigError(f"agent config env={self.env!r} is not registered: use one of {', '.join(ids)}")

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["env_kwargs"] = dict(self.env_kwargs)
        return data


def write_agent_config(config: AgentConfig, path: str | Path) -> Path:
    """Write ``config`` as JSON to ``path`` (parents created); returns the absolute path."""
    target = Path(path).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = json.dumps(config.to_dict(), indent=2, sort_keys=True)
    except TypeError as exc:
        raise ConfigError(f"agent config env_kwargs must be JSON values: {exc}") from exc
    target.write_text(text + "\n", encoding="utf-8")
    return target


def load_agent_config(path: str | Path | None = None) -> AgentConfig:
    """The config in ``path``, else in the file ``$HOPGYM_AGENT_CONFIG`` names (errors name file and fix)."""
    if path is None:
        named = os.environ.get(CONFIG_ENV, "")
        if not named:
            raise ConfigError(
                f"${CONFIG_ENV} is not set: point it at the agent's JSON config (prepare_openrlhf_data writes "
                "one), and pass it to every Ray actor, e.g. ray job submit --runtime-env-json "
                f'\'{{"env_vars": {{"{CONFIG_ENV}": "/abs/path/agent.json"}}}}\''
            )
        path = named
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{file}: cannot read the agent config ({exc.strerror}); check ${CONFIG_ENV}"
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file}:{exc.lineno}:{exc.colno}: invalid JSON in the agent config: {exc.msg}"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the agent config must be a JSON object, got {type(data).__name__}")
    known = {f.name for f in fields(AgentConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{file}: unknown agent config keys {unknown}; known keys: {', '.join(sorted(known))}"
        )
    if "env" not in data:
        raise ConfigError(
            f'{file}: the agent config needs "env", a registered env id (e.g. "hopgym/HopWorld-v0")'
        )
    try:
        return AgentConfig(**data)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from exc
