"""Rewards by name: the built-in ones plus any a user registers."""

from __future__ import annotations

from hopgym.errors import ConfigError

from .base import RewardFn
from .prediction import cover_em_reward, em_reward, f1_reward, sub_em_reward
from .r1_searcher import r1_searcher_reward, r1_searcher_stage1_reward
from .research import research_reward
from .search_r1 import search_r1_reward, search_r1_sub_reward

__all__ = ["PREDICTION_REWARDS", "REWARD_NAMES", "available_rewards", "get_reward", "register_reward"]

_BUILTIN: dict[str, RewardFn] = {
    "em": em_reward,
    "f1": f1_reward,
    "sub_em": sub_em_reward,
    "cover_em": cover_em_reward,
    "search_r1": search_r1_reward,
    "search_r1_sub": search_r1_sub_reward,
    "research": research_reward,
    "r1_searcher": r1_searcher_reward,
    "r1_searcher_stage1": r1_searcher_stage1_reward,
}

#: The built-in reward names.
REWARD_NAMES: tuple[str, ...] = tuple(_BUILTIN)
#: Built-in rewards that score ``RewardInput.prediction``; the others score ``RewardInput.response``.
PREDICTION_REWARDS: frozenset[str] = frozenset({"em", "f1", "sub_em", "cover_em"})

_registered: dict[str, RewardFn] = dict(_BUILTIN)


def available_rewards() -> tuple[str, ...]:
    """Every name ``get_reward`` accepts now: the built-ins, then user registrations in order."""
    return tuple(_registered)


def get_reward(name: str) -> RewardFn:
    """The reward registered under ``name``; ConfigError listing the valid names otherwise."""
    try:
        return _registered[name]
    except KeyError:
        raise ConfigError(
            f"unknown reward {name!r}; choose one of: {', '.join(available_rewards())} "
            "(or add yours with register_reward)"
        ) from None


def register_reward(name: str, fn: RewardFn, *, overwrite: bool = False) -> None:
    """Make ``fn`` available as ``get_reward(name)``. Built-in names cannot be replaced."""
    if not name or not name.isidentifier():
        raise ConfigError(f"reward name {name!r} must be a Python identifier such as 'my_reward'")
    if not callable(fn):
        raise ConfigError(
            f"reward {name!r}: {fn!r} is not callable; pass a function RewardInput -> RewardResult"
        )
    if name in _BUILTIN:
        raise ConfigError(f"reward {name!r} is built in and cannot be replaced; register under another name")
    if name in _registered and not overwrite:
        raise ConfigError(f"reward {name!r} is already registered; pass overwrite=True to replace it")
    _registered[name] = fn
