"""Environments: the async core, the Gymnasium facade, protocols, rewards, HopWorld and the registry.

Importing this package registers the built-in ``hopgym/`` ids with Gymnasium and nothing more; the env core
(and what it imports) loads on first use of one of the names below, so ``import hopgym`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hopgym.envs.registration import (
    hopgym_env_ids,
    load_plugins,
    make,
    make_async,
    register_builtin_envs,
    register_env,
)
from hopgym.lazy import lazy_exports

if TYPE_CHECKING:
    from hopgym.envs.core import AsyncSearchQAEnv, EnvConfig
    from hopgym.envs.info import ResetInfo, StepInfo
    from hopgym.envs.spaces import FreeText
    from hopgym.envs.sync_env import SearchQAEnv
    from hopgym.envs.tasks import load_tasks

_LAZY = {
    "ResetInfo": "hopgym.envs.info",
    "StepInfo": "hopgym.envs.info",
    "AsyncSearchQAEnv": "hopgym.envs.core",
    "EnvConfig": "hopgym.envs.core",
    "FreeText": "hopgym.envs.spaces",
    "SearchQAEnv": "hopgym.envs.sync_env",
    "load_tasks": "hopgym.envs.tasks",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "AsyncSearchQAEnv",
    "EnvConfig",
    "FreeText",
    "ResetInfo",
    "SearchQAEnv",
    "StepInfo",
    "hopgym_env_ids",
    "load_plugins",
    "load_tasks",
    "make",
    "make_async",
    "register_builtin_envs",
    "register_env",
]

register_builtin_envs()
