"""Environments: the async core, the Gymnasium facade, protocols, rewards, HopWorld and the registry."""

from __future__ import annotations

from hopgym.envs.core import DEFAULT_REWARDS, AsyncSearchQAEnv, EnvConfig
from hopgym.envs.registration import (
    hopgym_env_ids,
    load_plugins,
    make,
    make_async,
    register_builtin_envs,
    register_env,
)
from hopgym.envs.spaces import FreeText
from hopgym.envs.sync_env import SearchQAEnv
from hopgym.envs.tasks import load_tasks

__all__ = [
    "DEFAULT_REWARDS",
    "AsyncSearchQAEnv",
    "EnvConfig",
    "FreeText",
    "SearchQAEnv",
    "hopgym_env_ids",
    "load_plugins",
    "load_tasks",
    "make",
    "make_async",
    "register_builtin_envs",
    "register_env",
]

register_builtin_envs()
