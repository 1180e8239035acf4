"""hopgym: async, Gymnasium-style environments for LLM agents that reason with search.

Importing hopgym is light: no torch, vllm, faiss, elasticsearch or transformers. Heavy backends live in
extras and are imported where they are used.
"""

from __future__ import annotations

from hopgym.errors import (
    ConfigError,
    DataError,
    DependencyNotInstalledError,
    HopgymError,
    RetrieverError,
    RetrieverTimeout,
    RetrieverUnavailable,
)
from hopgym.types import ParsedAction, Passage, RewardInput, RewardResult, Task

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "DependencyNotInstalledError",
    "HopgymError",
    "ParsedAction",
    "Passage",
    "RetrieverError",
    "RetrieverTimeout",
    "RetrieverUnavailable",
    "RewardInput",
    "RewardResult",
    "Task",
    "__version__",
]
