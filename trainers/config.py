"""The settings of a training run: frozen dataclasses with help text, one TOML file, ``section.field=value``
overrides generated from the fields, and named presets (:mod:`hopgym.trainers.presets`).

A run is a :class:`TrainConfig` made of sections: ``model``, ``env``, ``rollout``, ``algorithm`` (the
policy-gradient math, :class:`~hopgym.trainers.algorithms.AlgorithmConfig`), ``optim``, ``run`` and ``eval``.
Every field carries its help text in ``metadata["help"]`` (``hopgym train --list-options`` prints them), every
value is type-checked by :func:`hopgym.options.check_fields`, and every cross-field rule raises a
:class:`~hopgym.errors.ConfigError` naming the cause and the fix. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import tomllib

from hopgym.errors import ConfigError
from hopgym.options import check_fields
from hopgym.trainers.algorithms.config import AlgorithmConfig

__all__ = [
    "EnvSettings",
    "EvalConfig",
    "EvalSet",
    "ModelConfig",
    "OptimConfig",
    "RewardStage",
    "RolloutSettings",
    "RunSettings",
    "TrainConfig",
    "config_to_dict",
    "describe_options",
    "load_config",
    "train_config_from_dict",
]

Backend = Literal["transformers", "vllm"]
Schedule = Literal["constant", "linear", "cosine"]


def _help(text: str, default: Any = dataclasses.MISSING, **kwargs: Any) -> Any:
    if default is dataclasses.MISSING and "default_factory" not in kwargs:
        return field(metadata={"help": text}, **kwargs)
    return field(default=default, metadata={"help": text}, **kwargs)


def _frozen_mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{name}={value!r} is invalid: use a table of keyword arguments, e.g. {{world_seed = 1}}"
        )
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class ModelConfig:
    """The policy being trained."""

    path: str = _help(
        "a Hugging Face model directory (AutoModelForCausalLM + tokenizer); empty when `warmup` builds it", ""
    )
    warmup: str = _help(
        "build the starting model instead of loading one: 'hopworld-tiny' trains a from-scratch policy on a "
        "noisy scripted agent's traces (cached); empty: load `path`",
        "",
    )
    warmup_options: Mapping[str, Any] = _help(
        "keyword arguments of the warm-up config (see hopgym.trainers.warmup)", default_factory=dict
    )
    backend: Backend = _help(  # noqa: RUF009 - field() with help text
        "who samples the rollouts: 'transformers' (the trained model itself, no copy) or 'vllm' (an in-process "
        "engine that gets the weights after every update)",
        "transformers",
    )
    device: str = _help("torch device of the trained model: 'cpu', 'cuda', 'cuda:1', ...", "cpu")
    dtype: str = _help("parameter dtype: 'float32' (CPU) or 'bfloat16'", "float32")
    bf16_autocast: bool = _help("run forward/backward under bfloat16 autocast (GPU only)", False)
    torch_threads: int = _help(
        "torch intra-op threads; 0 keeps torch's default (tiny models: 1 is fastest)", 0
    )

    def __post_init__(self) -> None:
        check_fields(self, owner="model")
        object.__setattr__(
            self, "warmup_options", _frozen_mapping(self.warmup_options, "model.warmup_options")
        )
        if bool(self.path) == bool(self.warmup):
            raise ConfigError(
                "model: give exactly one of model.path (a model directory) and model.warmup (e.g. "
                f"'hopworld-tiny'); got path={self.path!r}, warmup={self.warmup!r}"
            )
        if self.bf16_autocast and not self.device.startswith("cuda"):
            raise ConfigError(
                f"model.bf16_autocast=true needs a GPU, but model.device={self.device!r}: set "
                "model.bf16_autocast=false on CPU"
            )
        if self.torch_threads < 0:
            raise ConfigError(
                f"model.torch_threads={self.torch_threads}: use 0 (default) or a positive count"
            )


@dataclass(frozen=True)
class EnvSettings:
    """Where the training episodes come from."""

    id: str = _help("a registered env id, e.g. 'hopgym/HopWorld-2hop-v0'", "hopgym/HopWorld-2hop-v0")
    kwargs: Mapping[str, Any] = _help(
        "keyword arguments of hopgym.make(id, ...), e.g. {world_seed = 1, num_questions = 2000}",
        default_factory=dict,
    )
    max_tasks: int = _help("use at most this many of the env's tasks (0: all)", 0)

    def __post_init__(self) -> None:
        check_fields(self, owner="env")
        object.__setattr__(self, "kwargs", _frozen_mapping(self.kwargs, "env.kwargs"))
        if self.max_tasks < 0:
            raise ConfigError(f"env.max_tasks={self.max_tasks}: use 0 (all tasks) or a positive count")


@dataclass(frozen=True)
class RewardStage:
    """From ``start_step`` on, episodes are scored with ``reward`` (e.g. R1-Searcher's two stages)."""

    start_step: int
    reward: str

    def __post_init__(self) -> None:
        check_fields(self, owner="rollout.reward_schedule")
        if self.start_step < 0:
            raise ConfigError(f"rollout.reward_schedule: start_step={self.start_step} must be >= 0")


@dataclass(frozen=True)
class RolloutSettings:
    """How each step's episodes are sampled."""

    prompts_per_step: int = _help("tasks per training step", 16)
    samples_per_prompt: int = _help("episodes per task (the group of GRPO/RLOO/REINFORCE++-baseline)", 8)
    temperature: float = _help("sampling temperature of training rollouts", 1.0)
    top_p: float = _help("nucleus sampling of training rollouts", 1.0)
    max_tokens: int = _help("token budget of one generated turn", 64)
    max_episode_tokens: int = _help("token budget of a whole episode (prompt, turns and observations)", 1024)
    concurrency: int = _help("episodes in flight at once", 128)
    max_episode_retries: int = _help(
        "a failed episode (retriever or backend down after their own retries) is re-run up to this many "
        "times, then the step stops with an error; failures are never trained on as a 0 reward",
        2,
    )
    dynamic_filtering: bool = _help(
        "drop groups whose rewards are all equal (no learning signal for group baselines)", False
    )
    mask_observations: bool = _help(
        "exclude retrieved/observation tokens from loss, KL and whitening (the default, as in Search-R1); "
        "false trains on them too (an ablation)",
        True,
    )
    pipelined: bool = _help(
        "overlap the rollouts of step t+1 with the update of step t (staleness: one step); the sampler is "
        "then a separate copy (transformers) or engine (vllm) that gets the weights after each update",
        False,
    )
    ray_address: str = _help(
        "play the training rollouts on Ray episode workers: a cluster address ('auto', 'ray://HEAD:10001') or "
        "'local' (a local cluster); each step ships the current weights to the workers. Empty: in this process",
        "",
    )
    ray_workers: int = _help("Ray episode workers per step (with rollout.ray_address)", 2)
    reward_schedule: tuple[RewardStage, ...] = _help(
        "switch the env's reward by step: a list of {start_step, reward}, e.g. R1-Searcher's "
        "[{start_step = 0, reward = 'r1_searcher_stage1'}, {start_step = 100, reward = 'r1_searcher'}]",
        (),
    )

    def __post_init__(self) -> None:
        stages = tuple(
            s if isinstance(s, RewardStage) else RewardStage(**_table(s, "rollout.reward_schedule"))
            for s in self.reward_schedule
        )
        object.__setattr__(self, "reward_schedule", stages)
        check_fields(self, owner="rollout", skip=("reward_schedule",))
        for name in (
            "prompts_per_step",
            "samples_per_prompt",
            "max_tokens",
            "max_episode_tokens",
            "concurrency",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"rollout.{name}={getattr(self, name)}: use a positive integer")
        if self.ray_workers < 1:
            raise ConfigError(f"rollout.ray_workers={self.ray_workers}: use at least one worker")
        if self.ray_address and self.pipelined:
            raise ConfigError(
                "rollout.ray_address with rollout.pipelined=true is not supported: drop one of them"
            )
        if self.max_episode_retries < 0:
            raise ConfigError(f"rollout.max_episode_retries={self.max_episode_retries}: use 0 or more")
        if self.temperature <= 0:
            raise ConfigError(
                f"rollout.temperature={self.temperature}: RL needs sampled rollouts, use a temperature > 0 "
                "(evaluation is greedy on its own)"
            )
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"rollout.top_p={self.top_p}: use a value in (0, 1]")
        starts = [s.start_step for s in stages]
        if starts and (starts[0] != 0 or starts != sorted(set(starts))):
            raise ConfigError(
                f"rollout.reward_schedule starts at steps {starts}: the first stage must start at 0 and the "
                "start steps must increase"
            )


@dataclass(frozen=True)
class OptimConfig:
    """AdamW and its schedule."""

    lr: float = _help("peak learning rate", 1e-5)
    weight_decay: float = _help("AdamW weight decay", 0.0)
    beta1: float = _help("AdamW beta1", 0.9)
    beta2: float = _help("AdamW beta2", 0.95)
    eps: float = _help("AdamW epsilon", 1e-8)
    warmup_steps: int = _help("linear learning-rate warm-up, in optimizer steps", 0)
    schedule: Schedule = _help(  # noqa: RUF009 - field() with help text
        "after warm-up: 'constant', 'linear' decay to 0, or 'cosine' decay to 0", "constant"
    )
    grad_clip: float = _help("clip the global gradient norm to this (0: no clipping)", 1.0)
    micro_batch_size: int = _help(
        "sequences per forward/backward pass; gradients accumulate over the micro-batches", 16
    )
    mini_batches: int = _help(
        "optimizer steps per rollout batch (1: on-policy; more: PPO-style reuse with clipped ratios)", 1
    )
    epochs: int = _help("passes over each rollout batch", 1)

    def __post_init__(self) -> None:
        check_fields(self, owner="optim")
        if not self.lr > 0:
            raise ConfigError(f"optim.lr={self.lr}: use a positive learning rate, e.g. 1e-5")
        if self.weight_decay < 0 or self.eps <= 0 or not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ConfigError("optim: weight_decay >= 0, eps > 0 and betas in [0, 1) are required")
        if self.warmup_steps < 0 or self.grad_clip < 0:
            raise ConfigError("optim: warmup_steps and grad_clip must be >= 0 (0 disables them)")
        for name in ("micro_batch_size", "mini_batches", "epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"optim.{name}={getattr(self, name)}: use a positive integer")


@dataclass(frozen=True)
class EvalSet:
    """Held-out tasks evaluated greedily through the same engine and metrics as ``hopgym eval``."""

    name: str
    id: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    num_tasks: int = 100

    def __post_init__(self) -> None:
        check_fields(self, owner=f"eval.sets[{self.name!r}]")
        object.__setattr__(self, "kwargs", _frozen_mapping(self.kwargs, f"eval.sets[{self.name!r}].kwargs"))
        if self.num_tasks < 1:
            raise ConfigError(f"eval.sets[{self.name!r}].num_tasks={self.num_tasks}: use a positive count")


@dataclass(frozen=True)
class EvalConfig:
    """Periodic held-out evaluation."""

    every: int = _help("evaluate every N steps (0: only before and after training)", 0)
    max_tokens: int = _help("token budget of one turn during evaluation", 64)
    sets: tuple[EvalSet, ...] = _help(
        "held-out task sets: a list of {name, id, kwargs, num_tasks}; none: no evaluation", ()
    )

    def __post_init__(self) -> None:
        sets = tuple(s if isinstance(s, EvalSet) else EvalSet(**_table(s, "eval.sets")) for s in self.sets)
        object.__setattr__(self, "sets", sets)
        check_fields(self, owner="eval", skip=("sets",))
        if self.every < 0 or self.max_tokens < 1:
            raise ConfigError("eval: every must be >= 0 and max_tokens >= 1")
        names = [s.name for s in sets]
        if len(set(names)) != len(names):
            raise ConfigError(f"eval.sets has repeated names {names}: give each set its own name")


@dataclass(frozen=True)
class RunSettings:
    """Length of the run, seeds, checkpoints and logging."""

    steps: int = _help("training steps (one rollout batch and its update each)", 100)
    seed: int = _help("seed of data order, sampling and initialisation", 0)
    checkpoint_every: int = _help("write a checkpoint every N steps (0: only at the end)", 10)
    keep_checkpoints: int = _help("keep the last N checkpoints", 2)
    max_minutes: float = _help(
        "stop (with a final checkpoint and evaluation) after this wall time; 0: no limit", 0.0
    )
    tensorboard: bool = _help("also write TensorBoard event files (needs the tensorboard package)", False)
    plot: bool = _help("write PNG curves at the end (matplotlib)", True)

    def __post_init__(self) -> None:
        check_fields(self, owner="run")
        if self.steps < 1 or self.seed < 0 or self.checkpoint_every < 0 or self.keep_checkpoints < 1:
            raise ConfigError(
                "run: steps >= 1, seed >= 0, checkpoint_every >= 0 and keep_checkpoints >= 1 are required"
            )
        if self.max_minutes < 0:
            raise ConfigError(f"run.max_minutes={self.max_minutes}: use 0 (no limit) or a positive number")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run (see the module docstring)."""

    model: ModelConfig = field(default_factory=lambda: ModelConfig(path="MODEL_DIR"))
    env: EnvSettings = field(default_factory=EnvSettings)
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunSettings = field(default_factory=RunSettings)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        self.algorithm.check_group_size(self.rollout.samples_per_prompt)
        separate_sampler = self.model.backend == "vllm" or self.rollout.pipelined
        if not separate_sampler and self.algorithm.is_correction_level != "off":
            raise ConfigError(
                "algorithm.is_correction_level corrects for a separate sampler (vLLM, or rollout.pipelined); "
                "with model.backend='transformers' the rollouts come from the trained model itself: set it to "
                "'off', or set rollout.pipelined=true"
            )
        batch = self.rollout.prompts_per_step * self.rollout.samples_per_prompt
        if batch % self.optim.mini_batches:
            raise ConfigError(
                f"optim.mini_batches={self.optim.mini_batches} does not divide the rollout batch "
                f"({self.rollout.prompts_per_step} prompts x {self.rollout.samples_per_prompt} samples = {batch})"
            )


_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "env": EnvSettings,
    "rollout": RolloutSettings,
    "algorithm": AlgorithmConfig,
    "optim": OptimConfig,
    "run": RunSettings,
    "eval": EvalConfig,
}


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a table of fields, got {value!r}")
    return dict(value)


def _build_section(name: str, values: Mapping[str, Any], where: str) -> Any:
    cls = _SECTIONS[name]
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown} in [{name}]; valid fields: {sorted(valid)}")
    values = dict(values)
    for key in ("reward_clip", "is_correction_threshold"):
        if name == "algorithm" and isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: [{name}] {exc}") from None


def train_config_from_dict(data: Mapping[str, Any], *, where: str = "config") -> TrainConfig:
    """A :class:`TrainConfig` from nested tables (a parsed TOML file); missing fields keep their defaults."""
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {unknown}; valid sections: {sorted(_SECTIONS)}")
    sections = {
        name: _build_section(name, _table(data[name], where), where) for name in _SECTIONS if name in data
    }
    if "model" not in sections:
        raise ConfigError(f"{where}: [model] is missing: set model.path (a model directory) or model.warmup")
    return TrainConfig(**sections)


def config_to_dict(config: Any) -> Any:
    """Plain (TOML/JSON-ready) data of a config: tuples as lists, mappings as dicts, None fields dropped."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        out = {}
        for f in fields(config):
            value = config_to_dict(getattr(config, f.name))
            if value is not None:
                out[f.name] = value
        return out
    if isinstance(config, Mapping):
        return {str(k): config_to_dict(v) for k, v in config.items()}
    if isinstance(config, (tuple, list)):
        return [config_to_dict(v) for v in config]
    return config


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        pass
    try:  # TOML inline values: 'cosine' quotes, {a = 1} tables, [1, 2] lists
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``["rollout.samples_per_prompt=4", "algorithm.estimator=group_norm"]`` applied to nested tables."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(
                f"override {item!r}: expected SECTION.FIELD=VALUE, e.g. rollout.samples_per_prompt=4 "
                "(hopgym train --list-options lists every field)"
            )
        if section not in _SECTIONS:
            raise ConfigError(f"override {item!r}: unknown section {section!r}; valid: {sorted(_SECTIONS)}")
        valid = {f.name for f in fields(_SECTIONS[section])}
        if name not in valid:
            raise ConfigError(f"override {item!r}: [{section}] has no field {name!r}; valid: {sorted(valid)}")
        out.setdefault(section, {})[name] = _parse_value(raw.strip())
    return out


def load_config(
    path: str | Path | None = None, *, preset: str | None = None, overrides: Sequence[str] = ()
) -> TrainConfig:
    """The run's config: a preset and/or a TOML file (the file's tables update the preset's), then overrides."""
    data: dict[str, Any] = {}
    if preset:
        from hopgym.trainers.presets import preset_dict

        data = preset_dict(preset)
    where = "overrides"
    if path is not None:
        path = Path(path)
        try:
            loaded = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file") from None
        for section, values in loaded.items():
            if isinstance(values, Mapping) and isinstance(data.get(section), Mapping):
                data[section] = {**data[section], **values}
            else:
                data[section] = values
        where = str(path)
    if not data and not overrides:
        raise ConfigError("no config: give --config FILE.toml or --preset NAME (hopgym train --list-presets)")
    data = apply_overrides(data, overrides)
    return train_config_from_dict(data, where=where)


def describe_options() -> list[tuple[str, str, str]]:
    """``(section.field, default, help)`` for every field, for ``hopgym train --list-options``."""
    rows = []
    defaults: dict[str, Any] = {
        "model": ModelConfig(path="MODEL_DIR"),
        "algorithm": AlgorithmConfig(),
    }
    for section, cls in _SECTIONS.items():
        instance = defaults.get(section) or cls()
        for f in fields(cls):
            help_text = f.metadata.get("help", "")
            if not help_text and cls is AlgorithmConfig:
                help_text = "see hopgym.trainers.algorithms.AlgorithmConfig"
            rows.append((f"{section}.{f.name}", repr(config_to_dict(getattr(instance, f.name))), help_text))
    return rows
