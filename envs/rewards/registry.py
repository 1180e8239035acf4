"""Rewards by name: the built-in ones plus any a user registers (a :class:`Registry`)."""

from __future__ import annotations

import warnings

from hopgym.errors import ConfigError
from hopgym.registry import Registry

from .base import RewardFn
from .prediction import cover_em_reward, em_reward, f1_reward, sub_em_reward
from .r1_searcher import r1_searcher_reward, r1_searcher_stage1_reward
from .research import research_reward
from .search_r1 import search_r1_reward, search_r1_sub_reward

__all__ = [
    "PREDICTION_REWARDS",
    "REWARDS",
    "REWARD_NAMES",
    "available_rewards",
    "get_reward",
    "register_reward",
]

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


def _callable_reward(name: str, fn: object) -> RewardFn:
    if not callable(fn):
        raise ConfigError(
            f"reward {name!r}: {fn!r} is not callable; pass a function RewardInput -> RewardResult"
        )
    return fn


#: Reward functions by name. Built-in names cannot be replaced; names are Python identifiers.
REWARDS: Registry[RewardFn] = Registry(
    "reward",
    _callable_reward,
    protected=_BUILTIN,
    name_rule=(str.isidentifier, "a Python identifier such as 'my_reward'"),
    register_hint="register_reward",
)
for _name, _fn in _BUILTIN.items():
    REWARDS.register(_name, _fn)

#: The built-in reward names.
REWARD_NAMES: tuple[str, ...] = tuple(_BUILTIN)
#: Built-in rewards that score ``RewardInput.prediction``; the others score ``RewardInput.response``.
PREDICTION_REWARDS: frozenset[str] = frozenset({"em", "f1", "sub_em", "cover_em"})


def available_rewards() -> tuple[str, ...]:
    """Every name ``get_reward`` accepts now: the built-ins, then user registrations in order."""
    return REWARDS.names()


def get_reward(name: str) -> RewardFn:
    """The reward registered under ``name``; ConfigError listing the valid names otherwise."""
    return REWARDS.get(name)


def register_reward(
    name: str, fn: RewardFn | str, *, replace: bool = False, overwrite: bool | None = None
) -> None:
    """Make ``fn`` (or the ``"module:attr"`` it names, imported on first use) available as ``get_reward(name)``.

    Built-in names cannot be replaced. ``overwrite`` is the old spelling of ``replace`` (deprecated).
    """
    if overwrite is not None:
        warnings.warn(
            "register_reward(overwrite=...) is deprecated; use replace=...", DeprecationWarning, stacklevel=2
        )
        replace = replace or overwrite
    REWARDS.register(name, fn, replace=replace)
