"""The settings of the HopWorld warm-up: the noisy agent's mistakes, the from-scratch model, the SFT run.

Held-out worlds: warm-up traces and the tokenizer come from worlds ``world_seed_start`` ..
``world_seed_start + num_worlds - 1`` (default 1-500); the trainer's preset plays RL on world 1000 and
evaluates on 2001/2002, so keep the warm-up range below 1000 (validated).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from hopgym.errors import ConfigError

__all__ = ["HELD_OUT_SEED_FLOOR", "NoiseConfig", "WarmupConfig"]

#: World seeds from here up are reserved for RL and evaluation: warm-up worlds stay below.
HELD_OUT_SEED_FLOOR = 1000


def _rate(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{owner}.{name}={value!r} is invalid: use a probability from 0.0 to 1.0")


def _positive(owner: str, name: str, value: object, advice: str = "use an integer >= 1") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{owner}.{name}={value!r} is invalid: {advice}")


@dataclass(frozen=True)
class NoiseConfig:
    """How often the scripted agent errs (each an independent draw at its decision point).

    - ``wrong_entity``: per search, search a look-alike of the right entity (or another entity of its type)
      instead, then follow what that search says.
    - ``early_answer``: after resolving a hop that is not the last, answer with the entity just found.
    - ``wrong_copy``: per observation read, take another name of the right type out of the observation
      instead of the fact's object.
    """

    # Few copy-type errors: at 0.1 each the model learned to spread its copies over every name in the
    # passage, and RL did not undo it (held-out 2-hop 0.82 against 0.93 at 0.02; see
    # benchmarks/results/learning/notes.md). Answering early, the error RL has to train away, stays frequent.
    wrong_entity: float = 0.02
    early_answer: float = 0.5
    wrong_copy: float = 0.02

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _rate("NoiseConfig", f.name, getattr(self, f.name))


@dataclass(frozen=True)
class WarmupConfig:
    """A warm-up run: traces of the noisy agent, a from-scratch Qwen2 model and tokenizer, masked SFT.

    Model: ``vocab_size`` (byte-level BPE trained on the warm-up worlds' text), ``hidden_size``, ``layers``,
    ``heads``. Names: ``name_pool`` > 0 makes every world (warm-up, and the held-out ones measured here) draw
    its names from HopWorld's fixed pool of that many stems, each one token of the tokenizer
    (``HopWorldConfig.name_pool``; the RL and evaluation envs must use the same value), so copying a name is
    copying one or two tokens; 0: fresh names per world, split into BPE pieces. ``top_k``: passages per search
    in the warm-up's envs (the env's ``top_k``; use the same value for RL). Data: ``num_worlds`` worlds from
    ``world_seed_start`` with ``questions_per_world`` 2-/3-hop questions each (``hops``), one trace each.
    SFT: ``steps`` AdamW steps of ``batch_size`` traces, ``lr`` with linear decay, masked next-token loss
    (prompt and observations excluded; ``observation_weight`` > 0 adds the observations' next-token loss at
    that weight, an auxiliary objective: predicting a passage's subject after its title is copying);
    ``max_minutes`` stops SFT early at that wall time (0: no limit; the result then depends on the machine's
    speed). ``eval_tasks`` held-out episodes per hop count (0: skip the measurement), ``eval_samples``
    samples per task at temperature 1 for pass@k. ``threads``: torch threads.
    """

    noise: NoiseConfig = field(default_factory=NoiseConfig)
    vocab_size: int = 1024
    hidden_size: int = 128
    layers: int = 2
    heads: int = 4
    max_positions: int = 1024
    num_worlds: int = 500
    world_seed_start: int = 1
    questions_per_world: int = 60
    hops: tuple[int, ...] = (2, 3)
    steps: int = 6000
    batch_size: int = 16
    lr: float = 3e-3
    observation_weight: float = 0.1
    max_minutes: float = 0.0
    seed: int = 0
    eval_world_seed: int = 2001
    eval_tasks: int = 30
    eval_samples: int = 8
    threads: int = 1
    name_pool: int = 2500
    top_k: int = 1

    def __post_init__(self) -> None:
        owner = "WarmupConfig"
        if isinstance(self.noise, dict):
            object.__setattr__(self, "noise", NoiseConfig(**self.noise))
        if not isinstance(self.noise, NoiseConfig):
            raise ConfigError(f"{owner}.noise must be a NoiseConfig or a table of its fields")
        for name in ("vocab_size", "hidden_size", "layers", "heads", "max_positions", "num_worlds"):
            _positive(owner, name, getattr(self, name))
        for name in ("questions_per_world", "steps", "batch_size", "eval_samples", "threads", "top_k"):
            _positive(owner, name, getattr(self, name))
        if self.vocab_size < 512:
            raise ConfigError(f"{owner}.vocab_size={self.vocab_size}: use at least 512 (bytes, merges, tags)")
        if self.hidden_size % self.heads:
            raise ConfigError(
                f"{owner}.hidden_size={self.hidden_size} is not a multiple of heads={self.heads}; change either"
            )
        if isinstance(self.world_seed_start, bool) or not isinstance(self.world_seed_start, int):
            raise ConfigError(f"{owner}.world_seed_start={self.world_seed_start!r}: use an integer >= 0")
        if self.world_seed_start < 0 or self.world_seed_start + self.num_worlds > HELD_OUT_SEED_FLOOR:
            raise ConfigError(
                f"{owner}: warm-up worlds {self.world_seed_start}..{self.world_seed_start + self.num_worlds - 1}"
                f" must lie in 0..{HELD_OUT_SEED_FLOOR - 1} (seeds from {HELD_OUT_SEED_FLOOR} are held out "
                "for RL and evaluation); lower world_seed_start or num_worlds"
            )
        if self.eval_world_seed < HELD_OUT_SEED_FLOOR:
            raise ConfigError(
                f"{owner}.eval_world_seed={self.eval_world_seed}: evaluate on a held-out world, seed >= "
                f"{HELD_OUT_SEED_FLOOR}"
            )
        hops = (self.hops,) if isinstance(self.hops, int) else tuple(self.hops)
        if not hops or not all(isinstance(h, int) and 2 <= h <= 4 for h in hops):
            raise ConfigError(f"{owner}.hops={self.hops!r}: use hop counts from 2 to 4, e.g. (2, 3)")
        object.__setattr__(self, "hops", tuple(sorted(set(hops))))
        if not isinstance(self.lr, (int, float)) or isinstance(self.lr, bool) or not 0 < self.lr < 1:
            raise ConfigError(f"{owner}.lr={self.lr!r}: use a learning rate in (0, 1), e.g. 2e-3")
        if (
            isinstance(self.observation_weight, bool)
            or not isinstance(self.observation_weight, (int, float))
            or not (0.0 <= self.observation_weight <= 1.0)
        ):
            raise ConfigError(
                f"{owner}.observation_weight={self.observation_weight!r}: use a weight from 0.0 (train on the "
                "agent's tokens only) to 1.0"
            )
        if (
            isinstance(self.max_minutes, bool)
            or not isinstance(self.max_minutes, (int, float))
            or self.max_minutes < 0
        ):
            raise ConfigError(
                f"{owner}.max_minutes={self.max_minutes!r}: use 0 (no limit) or a positive number"
            )
        for name in ("lr", "observation_weight", "max_minutes"):  # 24 and 24.0 must hash alike
            object.__setattr__(self, name, float(getattr(self, name)))
        if isinstance(self.name_pool, bool) or not isinstance(self.name_pool, int) or self.name_pool < 0:
            raise ConfigError(
                f"{owner}.name_pool={self.name_pool!r}: use 0 (fresh names) or a pool size such as 2500"
            )
        if isinstance(self.eval_tasks, bool) or not isinstance(self.eval_tasks, int) or self.eval_tasks < 0:
            raise ConfigError(f"{owner}.eval_tasks={self.eval_tasks!r}: use an integer >= 0 (0 skips it)")

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> WarmupConfig:
        """A config from plain keyword arguments (``noise`` may be a table); unknown keys are refused."""
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ConfigError(
                f"unknown warm-up option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(valid))}"
            )
        values = dict(options)
        if isinstance(values.get("noise"), dict):
            values["noise"] = NoiseConfig(**values["noise"])
        if isinstance(values.get("hops"), list):
            values["hops"] = tuple(values["hops"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def model_key(self) -> str:
        """A hash of everything that shapes the trained model (not the evaluation settings)."""
        data = self.to_dict()
        for name in ("eval_world_seed", "eval_tasks", "eval_samples", "threads"):
            data.pop(name)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
