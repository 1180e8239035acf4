"""Named training presets (``hopgym train --preset NAME``): nested tables in the TOML layout, so a preset,
a config file and command-line overrides compose in that order."""

from __future__ import annotations

import copy
from typing import Any

from hopgym.errors import ConfigError

__all__ = ["PRESETS", "preset_dict", "run_warmup"]


#: HopWorld's name pool for the tiny policies: every stem one token (``HopWorldConfig.name_pool``); the
#: warm-up's default (``WarmupConfig.name_pool``) is the same, and every env of a run must use it.
NAME_POOL = 2500
#: One passage per search (``WarmupConfig.top_k``'s default too): the query names the relation, so BM25 puts
#: the asked fact first, and a 2-layer policy reads one sentence instead of picking it out of three.
TOP_K = 1


def _held_out(num_tasks: int) -> list[dict[str, Any]]:
    """The held-out eval sets: 2-hop and 3-hop questions of two worlds no run trains on."""
    return [
        {
            "name": f"{hops}hop",
            "id": f"hopgym/HopWorld-{hops}hop-v0",
            "kwargs": {"world_seed": seed, "name_pool": NAME_POOL, "top_k": TOP_K},
            "num_tasks": num_tasks,
        }
        for hops, seed in ((2, 2001), (3, 2002))
    ]


# hopworld-tiny: a from-scratch policy warmed up on a noisy scripted agent's traces (worlds with seeds
# below 1000), trained with RL on a world it never saw (seed 1000), evaluated on two more (2001, 2002).
PRESETS: dict[str, dict[str, Any]] = {
    "hopworld-tiny": {
        "model": {"warmup": "hopworld-tiny", "torch_threads": 1},
        "env": {
            "id": "hopgym/HopWorld-v0",
            "kwargs": {
                "world_seed": 1000,
                "hops": [2, 3],
                "num_entities": 600,
                "num_questions": 2000,
                "name_pool": NAME_POOL,
                "top_k": TOP_K,
            },
        },
        "rollout": {
            "prompts_per_step": 16,
            "samples_per_prompt": 8,
            "temperature": 0.7,
            "max_tokens": 48,
            "max_episode_tokens": 768,
        },
        "algorithm": {"estimator": "group_norm"},
        "optim": {"lr": 3e-4, "micro_batch_size": 32, "grad_clip": 1.0},
        "run": {"steps": 60, "checkpoint_every": 10, "keep_checkpoints": 2},
        "eval": {"every": 5, "max_tokens": 48, "sets": _held_out(100)},
    },
}


# hopworld-tiny-quick: the same pipeline in about five minutes on 2 cores (the README quickstart and CI): a short
# warm-up (its own held-out measurement skipped: the trainer evaluates before and after), a few RL steps.
PRESETS["hopworld-tiny-quick"] = {
    **PRESETS["hopworld-tiny"],
    "model": {
        "warmup": "hopworld-tiny",
        "torch_threads": 1,
        "warmup_options": {
            "steps": 400,
            "hidden_size": 64,  # half the full warm-up's width: 0.29 s per SFT step instead of 0.47 here
            "num_worlds": 6,
            "questions_per_world": 300,
            "eval_tasks": 0,
        },
    },
    "rollout": {**PRESETS["hopworld-tiny"]["rollout"], "prompts_per_step": 8},
    "run": {"steps": 8, "max_minutes": 2.5, "checkpoint_every": 4, "keep_checkpoints": 1},
    "eval": {"every": 4, "max_tokens": 48, "sets": _held_out(50)},
}


def preset_dict(name: str) -> dict[str, Any]:
    """A deep copy of preset ``name``'s tables."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: use one of {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def run_warmup(name: str, options: dict[str, Any], *, seed: int) -> tuple[str, dict[str, Any]]:
    """Build (or reuse from the cache) the starting model ``model.warmup = name``; ``(model_dir, report)``."""
    if name != "hopworld-tiny":
        raise ConfigError(f"model.warmup={name!r} is unknown: use 'hopworld-tiny', or set model.path instead")
    from hopgym.trainers import warmup

    build: Any = getattr(warmup, "warm_up_for_trainer", None)
    if build is None:
        raise ConfigError("the hopworld-tiny warm-up is not available in this version; set model.path")
    model_dir, report = build(options, seed=seed)
    return str(model_dir), dict(report)
