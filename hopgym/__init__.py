"""hopgym: async, Gymnasium-style environments for LLM agents that reason with search.

Importing hopgym registers the ``hopgym/`` environment ids with Gymnasium (so ``gymnasium.make(
"hopgym/HopWorld-v0")`` works after ``import hopgym``) and stays light: it imports Gymnasium and no torch,
vllm, faiss, elasticsearch or transformers. Heavy backends live in extras and are imported where they are
used; the env core loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hopgym.errors import (
    ActionTypeError,
    ConfigError,
    DataError,
    DependencyNotInstalledError,
    EnvClosedError,
    EnvError,
    HopgymError,
    PolicyError,
    PolicyRequestError,
    PolicyTimeout,
    PolicyUnavailable,
    ResetNeeded,
    RetrieverError,
    RetrieverTimeout,
    RetrieverUnavailable,
    VLLMServerError,
)
from hopgym.lazy import lazy_exports
from hopgym.types import ParsedAction, Passage, RewardInput, RewardResult, Task
from hopgym.version import __version__

if TYPE_CHECKING:
    from hopgym.envs import AsyncSearchQAEnv, SearchQAEnv, make, make_async, register_env

# The env core (protocols, rewards, the async env) is imported on first use, keeping ``import hopgym`` fast.
_LAZY = {
    "AsyncSearchQAEnv": "hopgym.envs",
    "SearchQAEnv": "hopgym.envs",
    "make": "hopgym.envs",
    "make_async": "hopgym.envs",
    "register_env": "hopgym.envs",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "ActionTypeError",
    "AsyncSearchQAEnv",
    "ConfigError",
    "DataError",
    "DependencyNotInstalledError",
    "EnvClosedError",
    "EnvError",
    "HopgymError",
    "ParsedAction",
    "Passage",
    "PolicyError",
    "PolicyRequestError",
    "PolicyTimeout",
    "PolicyUnavailable",
    "ResetNeeded",
    "RetrieverError",
    "RetrieverTimeout",
    "RetrieverUnavailable",
    "RewardInput",
    "RewardResult",
    "SearchQAEnv",
    "Task",
    "VLLMServerError",
    "__version__",
    "make",
    "make_async",
    "register_env",
]

# Registration needs only gymnasium.register with string entry points (see hopgym.envs.registration), so it
# runs here, last, without loading the env core.
from hopgym.envs.registration import register_builtin_envs as _register_builtin_envs  # noqa: E402

_register_builtin_envs()
