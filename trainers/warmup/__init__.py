"""The HopWorld warm-up: a from-scratch tokenizer and Qwen2 policy, SFT on a noisy scripted agent's traces.

``warm_up(WarmupConfig(...), out_dir)`` gives a policy that knows the tag format but errs as the noisy agent
does (searches a look-alike, answers too early, copies the wrong name), well below the target, so RL on
held-out worlds has something visible to learn. Importing this package is light (no torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hopgym.lazy import lazy_exports

if TYPE_CHECKING:
    from hopgym.trainers.warmup.api import WarmupResult, default_warmup_dir, warm_up, warm_up_for_trainer
    from hopgym.trainers.warmup.config import NoiseConfig, WarmupConfig

__all__ = [
    "NoiseConfig",
    "WarmupConfig",
    "WarmupResult",
    "default_warmup_dir",
    "warm_up",
    "warm_up_for_trainer",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "NoiseConfig": ".config",
        "WarmupConfig": ".config",
        "WarmupResult": ".api",
        "default_warmup_dir": ".api",
        "warm_up": ".api",
        "warm_up_for_trainer": ".api",
    },
)
