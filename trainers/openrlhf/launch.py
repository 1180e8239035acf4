"""The ``python -m openrlhf.cli.train_ppo_ray`` command of a hopgym run (OpenRLHF 0.11.2's dotted flags).

:func:`openrlhf_command` maps hopgym's algorithm settings (:class:`~hopgym.trainers.algorithms.AlgorithmConfig`,
whose fields are named after OpenRLHF's flags) and an :class:`OpenRLHFLaunch` (models, data, batch sizes,
GPUs, Ray address, output directory) to the argument list. Every flag is one that OpenRLHF 0.11.2's
``train_ppo_ray.py`` defines; the test parses the list with that file's own parser.

With a Ray address the command is ``ray job submit --address ADDR --runtime-env-json '{"env_vars": ...}' --
python3 -m openrlhf.cli.train_ppo_ray ...``, so that ``$HOPGYM_AGENT_CONFIG`` reaches every Ray actor;
without one it is ``env HOPGYM_AGENT_CONFIG=... python -m openrlhf.cli.train_ppo_ray ...`` (OpenRLHF starts a
local Ray cluster, whose workers inherit the environment).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from hopgym.errors import ConfigError
from hopgym.options import check_fields
from hopgym.trainers.algorithms.config import AlgorithmConfig
from hopgym.trainers.openrlhf.config import CONFIG_ENV
from hopgym.trainers.openrlhf.data import INPUT_KEY, LABEL_KEY

__all__ = ["AGENT_MODULE", "OpenRLHFLaunch", "agent_file", "openrlhf_command", "openrlhf_flags"]

#: The module whose file is the agent for ``--train.agent_func_path``.
AGENT_MODULE = "hopgym.trainers.openrlhf.agent"


def agent_file() -> str:
    """Absolute path of the agent file (found without importing it: it imports OpenRLHF)."""
    spec = importlib.util.find_spec(AGENT_MODULE)
    if spec is None or spec.origin is None:
        raise ConfigError(f"cannot find {AGENT_MODULE}: is hopgym installed in this environment?")
    return str(Path(spec.origin).absolute())


@dataclass(frozen=True)
class OpenRLHFLaunch:
    """The run settings OpenRLHF needs besides the algorithm.

    - ``pretrain``: the starting model (``--actor.model_name_or_path``; also the reference model).
    - ``prompt_data`` / ``agent_config``: the files :func:`~hopgym.trainers.openrlhf.prepare_openrlhf_data`
      wrote (paths that every node of the cluster can read).
    - ``out_dir``: checkpoints, the final model and TensorBoard logs.
    - ``samples_per_prompt``: episodes per task (``--rollout.n_samples_per_prompt``, the group).
    - ``rollout_batch_size``: prompts per rollout (``--rollout.batch_size``); ``train_batch_size``: samples per
      optimizer step (``--train.batch_size``); the micro batch sizes are per GPU.
    - ``max_len``: token budget of a whole episode (``--data.max_len``: prompt, turns and observations).
    - ``max_new_tokens``: optional cap on one turn (``--rollout.max_new_tokens``; the agent config's
      ``max_tokens`` is the turn budget otherwise).
    - ``num_nodes`` x ``gpus_per_node``: the actor's (and reference model's) GPUs; ``vllm_engines`` x
      ``vllm_tensor_parallel``: the rollout engines (0 engines: one per actor GPU). ``colocate``: actor,
      reference and vLLM share the GPUs and take turns (``--train.colocate_all`` with sleep modes).
    - ``ray_address``: submit to this Ray cluster's job server (e.g. ``http://10.0.0.1:8265``); empty: a
      local cluster.
    - ``extra_args``: further OpenRLHF flags, appended as given.
    """

    pretrain: str
    prompt_data: str
    agent_config: str
    out_dir: str
    samples_per_prompt: int = 8
    rollout_batch_size: int = 32
    train_batch_size: int = 256
    micro_train_batch_size: int = 4
    micro_rollout_batch_size: int = 8
    max_len: int = 4096
    max_new_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    lr: float = 1e-6
    num_episodes: int = 1
    max_epochs: int = 1
    seed: int = 42
    num_nodes: int = 1
    gpus_per_node: int = 8
    vllm_engines: int = 0
    vllm_tensor_parallel: int = 1
    vllm_gpu_memory_utilization: float = 0.6
    colocate: bool = True
    zero_stage: int = 2
    gradient_checkpointing: bool = True
    dynamic_filtering: bool = False
    save_steps: int = -1
    ray_address: str = ""
    python: str = ""
    extra_args: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_args", tuple(str(a) for a in self.extra_args))
        check_fields(self, owner="openrlhf launch ", skip=("extra_args",))
        for name in ("pretrain", "prompt_data", "agent_config", "out_dir"):
            if not getattr(self, name):
                raise ConfigError(f"openrlhf launch {name} is empty: give a path")
        positive = ("samples_per_prompt", "rollout_batch_size", "train_batch_size", "micro_train_batch_size",
                    "micro_rollout_batch_size", "max_len", "num_episodes", "max_epochs", "num_nodes",
                    "gpus_per_node", "vllm_tensor_parallel")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"openrlhf launch {name}={getattr(self, name)}: use a positive integer")
        if self.max_new_tokens < 0 or self.vllm_engines < 0:
            raise ConfigError("openrlhf launch max_new_tokens and vllm_engines must be >= 0 (0: automatic)")
        if self.max_new_tokens >= self.max_len:
            raise ConfigError(
                f"openrlhf launch max_new_tokens={self.max_new_tokens} leaves no room for the prompt in "
                f"max_len={self.max_len}: lower it, or use 0 (the agent config's turn budget)"
            )
        if not 0 < self.vllm_gpu_memory_utilization <= 1 or self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ConfigError(
                "openrlhf launch: vllm_gpu_memory_utilization must be in (0, 1], temperature > 0, top_p in (0, 1]"
            )
        if self.zero_stage not in (0, 1, 2, 3):
            raise ConfigError(f"openrlhf launch zero_stage={self.zero_stage}: DeepSpeed ZeRO stages are 0-3")
        actor_gpus = self.num_nodes * self.gpus_per_node
        if self.colocate and self.engines * self.vllm_tensor_parallel != actor_gpus:
            # OpenRLHF asserts this for --train.colocate_all (train_ppo_ray.py, train()).
            raise ConfigError(
                f"openrlhf launch colocate=true needs vllm_engines x vllm_tensor_parallel = num_nodes x "
                f"gpus_per_node ({self.engines} x {self.vllm_tensor_parallel} != {actor_gpus}); set "
                "vllm_engines=0 (one per GPU) or colocate=false"
            )
        samples = self.rollout_batch_size * self.samples_per_prompt
        if self.train_batch_size > samples or samples % self.train_batch_size:
            raise ConfigError(
                f"openrlhf launch train_batch_size={self.train_batch_size} must divide the rollout's "
                f"{self.rollout_batch_size} prompts x {self.samples_per_prompt} samples = {samples}"
            )
        if self.train_batch_size % (self.micro_train_batch_size * actor_gpus):
            raise ConfigError(
                f"openrlhf launch train_batch_size={self.train_batch_size} must be a multiple of "
                f"micro_train_batch_size x GPUs = {self.micro_train_batch_size} x {actor_gpus}"
            )
        if samples // self.micro_rollout_batch_size < actor_gpus:
            raise ConfigError(
                f"openrlhf launch: {samples} samples in micro batches of {self.micro_rollout_batch_size} give "
                f"fewer batches than the {actor_gpus} actor GPUs; lower micro_rollout_batch_size"
            )
        if self.dynamic_filtering and self.samples_per_prompt < 2:
            raise ConfigError(
                "openrlhf launch dynamic_filtering needs samples_per_prompt >= 2 (it filters groups)"
            )

    @property
    def engines(self) -> int:
        """The number of vLLM engines (``vllm_engines``, or one per actor GPU)."""
        if self.vllm_engines:
            return self.vllm_engines
        return max(1, self.num_nodes * self.gpus_per_node // self.vllm_tensor_parallel)


def _number(value: float) -> str:
    # Positional notation: argparse takes "-1e-05" for an option, but "-0.00001" for a negative number.
    return format(Decimal(repr(float(value))), "f")


def _algorithm_flags(algorithm: AlgorithmConfig) -> list[str]:
    """hopgym's algorithm settings as OpenRLHF flags (field docs of AlgorithmConfig name each one)."""
    flags = [
        "--algo.advantage.estimator", algorithm.estimator,
        "--algo.advantage.gamma", _number(algorithm.gamma),
        # Always given: OpenRLHF's default is 0.01, hopgym's 0 (no reference model).
        "--algo.kl.init_coef", _number(algorithm.kl_coef),
        "--algo.kl.estimator", algorithm.kl_estimator,
        "--actor.eps_clip_low_high", _number(algorithm.eps_clip_low), _number(algorithm.eps_clip_high),
        "--actor.loss_agg_mode", algorithm.loss_aggregation,
        "--actor.entropy_coef", _number(algorithm.entropy_coef),
        "--algo.advantage.is_correction_level", algorithm.is_correction_level,
    ]  # fmt: skip
    if algorithm.use_kl_loss:
        flags.append("--algo.kl.use_loss")
    if algorithm.kl_unbiased_gradient:
        flags.append("--algo.kl.unbiased_gradient")
    if algorithm.dual_clip is not None:
        flags += ["--actor.dual_clip", _number(algorithm.dual_clip)]
    # OpenRLHF always clamps rewards; hopgym's None (no clamp) is a range no reward reaches.
    low, high = algorithm.reward_clip if algorithm.reward_clip is not None else (-1e9, 1e9)
    flags += ["--reward.clip_range", _number(low), _number(high)]
    if not algorithm.advantage_std_norm:
        flags.append("--algo.advantage.no_std_norm")
    if algorithm.is_correction_level != "off":
        band_low, band_high = algorithm.is_correction_threshold
        flags += [
            "--algo.advantage.is_correction_mode", algorithm.is_correction_mode,
            "--algo.advantage.is_correction_gating", algorithm.is_correction_gating,
            "--algo.advantage.is_correction_threshold", _number(band_low), _number(band_high),
        ]  # fmt: skip
    return flags


def _launch_flags(launch: OpenRLHFLaunch, algorithm: AlgorithmConfig) -> list[str]:
    out = Path(launch.out_dir)
    flags = [
        "--actor.model_name_or_path", launch.pretrain,
        "--train.agent_func_path", agent_file(),
        "--data.prompt_dataset", launch.prompt_data,
        "--data.input_key", INPUT_KEY,
        "--data.label_key", LABEL_KEY,
        "--data.max_len", str(launch.max_len),
        "--rollout.n_samples_per_prompt", str(launch.samples_per_prompt),
        "--rollout.batch_size", str(launch.rollout_batch_size),
        "--rollout.micro_batch_size", str(launch.micro_rollout_batch_size),
        "--rollout.temperature", _number(launch.temperature),
        "--rollout.top_p", _number(launch.top_p),
        "--train.batch_size", str(launch.train_batch_size),
        "--train.micro_batch_size", str(launch.micro_train_batch_size),
        "--train.num_episodes", str(launch.num_episodes),
        "--train.max_epochs", str(launch.max_epochs),
        "--train.seed", str(launch.seed),
        "--actor.adam.lr", _number(launch.lr),
        "--actor.num_nodes", str(launch.num_nodes),
        "--actor.num_gpus_per_node", str(launch.gpus_per_node),
        "--vllm.num_engines", str(launch.engines),
        "--vllm.tensor_parallel_size", str(launch.vllm_tensor_parallel),
        "--vllm.gpu_memory_utilization", _number(launch.vllm_gpu_memory_utilization),
        "--ds.zero_stage", str(launch.zero_stage),
        "--ds.param_dtype", "bf16",
        "--ckpt.output_dir", str(out / "model"),
        "--ckpt.path", str(out / "checkpoints"),
        "--ckpt.save_steps", str(launch.save_steps),
        "--logger.tensorboard_dir", str(out / "tensorboard"),
    ]  # fmt: skip
    if algorithm.needs_reference_model:
        flags += [
            "--ref.num_nodes",
            str(launch.num_nodes),
            "--ref.num_gpus_per_node",
            str(launch.gpus_per_node),
        ]
    if launch.max_new_tokens:
        flags += ["--rollout.max_new_tokens", str(launch.max_new_tokens)]
    if launch.colocate:
        flags += ["--train.colocate_all", "--vllm.enable_sleep", "--ds.enable_sleep"]
    if launch.gradient_checkpointing:
        flags.append("--actor.gradient_checkpointing_enable")
    if launch.dynamic_filtering:
        flags.append("--algo.dynamic_filtering_enable")
    return flags


def openrlhf_flags(algorithm: AlgorithmConfig, launch: OpenRLHFLaunch) -> list[str]:
    """The ``train_ppo_ray`` flags alone (what its parser reads)."""
    algorithm.check_group_size(launch.samples_per_prompt)
    return [*_launch_flags(launch, algorithm), *_algorithm_flags(algorithm), *launch.extra_args]


def openrlhf_command(algorithm: AlgorithmConfig, launch: OpenRLHFLaunch) -> list[str]:
    """The whole command line of the run (see the module docstring); run it with ``subprocess.run(cmd)``."""
    flags = openrlhf_flags(algorithm, launch)
    config = str(Path(launch.agent_config).absolute())
    if launch.ray_address:
        runtime_env = json.dumps({"env_vars": {CONFIG_ENV: config}})
        python = launch.python or "python3"
        return ["ray", "job", "submit", "--address", launch.ray_address, "--runtime-env-json", runtime_env,
                "--", python, "-m", "openrlhf.cli.train_ppo_ray", *flags]  # fmt: skip
    python = launch.python or sys.executable
    return ["env", f"{CONFIG_ENV}={config}", python, "-m", "openrlhf.cli.train_ppo_ray", *flags]
