"""openrlhf_command: hopgym's settings become OpenRLHF 0.11.2 flags that its own parser and checks accept."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from hopgym.errors import ConfigError
from hopgym.trainers.algorithms import AlgorithmConfig
from hopgym.trainers.openrlhf import OpenRLHFLaunch, agent_file, openrlhf_command, openrlhf_flags


def _launch(tmp_path: Path, **overrides: Any) -> OpenRLHFLaunch:
    settings: dict[str, Any] = {
        "pretrain": "/models/Qwen2.5-3B-Instruct",
        "prompt_data": str(tmp_path / "train.jsonl"),
        "agent_config": str(tmp_path / "agent.json"),
        "out_dir": str(tmp_path / "run"),
        "samples_per_prompt": 8,
        "rollout_batch_size": 32,
        "train_batch_size": 128,
        "micro_train_batch_size": 2,
        "micro_rollout_batch_size": 4,
        "max_len": 8192,
        "gpus_per_node": 8,
    }
    settings.update(overrides)
    return OpenRLHFLaunch(**settings)


ALGORITHMS = {
    "reinforce++": AlgorithmConfig(estimator="reinforce", gamma=0.99, kl_coef=0.001),
    "grpo": AlgorithmConfig(
        estimator="group_norm", kl_coef=0.001, use_kl_loss=True, kl_estimator="k3", eps_clip_high=0.28
    ),
    "reinforce++-baseline": AlgorithmConfig(
        estimator="reinforce_baseline",
        dual_clip=3.0,
        reward_clip=None,
        advantage_std_norm=False,
        loss_aggregation="seq-mean-token-mean",
        entropy_coef=0.001,
        is_correction_level="token",
        is_correction_mode="clip",
        is_correction_threshold=(0.5, 2.0),
    ),
    "dr_grpo": AlgorithmConfig(estimator="dr_grpo", reward_clip=(-1.0e-5, 1.0)),
}


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_openrlhfs_parser_reads_back_every_setting(parse_args: Any, tmp_path: Path, name: str) -> None:
    algorithm = ALGORITHMS[name]
    launch = _launch(tmp_path, max_new_tokens=512, dynamic_filtering=True)
    args = parse_args(openrlhf_flags(algorithm, launch))

    adv, kl, actor = args.algo.advantage, args.algo.kl, args.actor
    assert adv.estimator == algorithm.estimator
    assert adv.gamma == algorithm.gamma
    assert kl.init_coef == algorithm.kl_coef
    assert kl.estimator == algorithm.kl_estimator
    assert kl.use_loss is algorithm.use_kl_loss
    assert kl.unbiased_gradient is algorithm.kl_unbiased_gradient
    assert tuple(actor.eps_clip_low_high) == (algorithm.eps_clip_low, algorithm.eps_clip_high)
    assert actor.dual_clip == algorithm.dual_clip
    assert actor.loss_agg_mode == algorithm.loss_aggregation
    assert actor.entropy_coef == algorithm.entropy_coef
    assert adv.no_std_norm is (not algorithm.advantage_std_norm)
    low, high = args.reward.clip_range
    if algorithm.reward_clip is None:
        assert low <= -1e9 and high >= 1e9
    else:
        assert (low, high) == algorithm.reward_clip
    assert adv.is_correction_level == algorithm.is_correction_level
    if algorithm.is_correction_level != "off":
        assert adv.is_correction_mode == algorithm.is_correction_mode
        assert adv.is_correction_gating == algorithm.is_correction_gating
        assert tuple(adv.is_correction_threshold) == algorithm.is_correction_threshold

    # The launch settings, and what OpenRLHF derives from them.
    assert args.train.agent_func_path == agent_file() and Path(agent_file()).is_file()
    assert args.reward.remote_url == ["agent"]  # train_ppo_ray: an agent path stands for the reward
    assert args.critic.model_name_or_path is None  # no critic for these estimators
    assert args.actor.model_name_or_path == launch.pretrain
    assert (args.data.prompt_dataset, args.data.input_key, args.data.label_key) == (
        launch.prompt_data,
        "prompt",
        "label",
    )
    assert args.data.apply_chat_template is False and args.data.input_template is None
    assert args.data.max_len == 8192 and args.rollout.max_new_tokens == 512
    assert args.rollout.n_samples_per_prompt == 8 and args.rollout.batch_size == 32
    assert args.train.batch_size == 128 and args.train.micro_batch_size == 2
    assert args.vllm.num_engines == 8 and args.train.colocate_all and args.vllm.enable_sleep
    assert args.algo.dynamic_filtering_enable
    assert args.ckpt.output_dir == str(Path(launch.out_dir) / "model")
    if algorithm.kl_coef > 0:
        assert (args.ref.num_nodes, args.ref.num_gpus_per_node) == (1, 8)


def test_the_command_carries_the_agent_config_to_the_ray_actors(parse_args: Any, tmp_path: Path) -> None:
    algorithm = ALGORITHMS["grpo"]
    local = openrlhf_command(algorithm, _launch(tmp_path, python="python3"))
    assert local[:4] == ["env", f"HOPGYM_AGENT_CONFIG={tmp_path / 'agent.json'}", "python3", "-m"]
    assert local[4] == "openrlhf.cli.train_ppo_ray"
    assert parse_args(local[5:]).algo.advantage.estimator == "group_norm"

    remote = openrlhf_command(algorithm, _launch(tmp_path, ray_address="http://10.0.0.1:8265"))
    split = remote.index("--")
    assert remote[:5] == ["ray", "job", "submit", "--address", "http://10.0.0.1:8265"]
    runtime_env = json.loads(remote[remote.index("--runtime-env-json") + 1])
    assert runtime_env == {"env_vars": {"HOPGYM_AGENT_CONFIG": str(tmp_path / "agent.json")}}
    assert remote[split + 1 : split + 4] == ["python3", "-m", "openrlhf.cli.train_ppo_ray"]
    assert remote[split + 4 :] == local[5:]


def test_extra_args_pass_through_and_kl_free_runs_have_no_reference_model(
    parse_args: Any, tmp_path: Path
) -> None:
    launch = _launch(tmp_path, colocate=False, vllm_engines=2, extra_args=("--logger.wandb.project", "hops"))
    flags = openrlhf_flags(AlgorithmConfig(), launch)
    args = parse_args(flags)
    assert args.logger.wandb.project == "hops"
    assert args.algo.kl.init_coef == 0.0  # hopgym's default, not OpenRLHF's 0.01
    assert "--ref.num_nodes" not in flags
    assert not args.train.colocate_all and args.vllm.num_engines == 2
    assert math.isclose(args.actor.adam.lr, 1e-6)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train_batch_size": 100}, "must divide"),
        ({"micro_train_batch_size": 3}, "multiple of"),
        ({"vllm_engines": 3}, "colocate=true needs"),
        ({"max_new_tokens": 9000}, "no room"),
        ({"pretrain": ""}, "pretrain is empty"),
        ({"micro_rollout_batch_size": 64, "rollout_batch_size": 8, "train_batch_size": 64}, "fewer batches"),
    ],
)
def test_bad_launch_settings_name_the_fix(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _launch(tmp_path, **overrides)


def test_group_estimators_need_groups(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 2 samples"):
        openrlhf_command(ALGORITHMS["grpo"], _launch(tmp_path, samples_per_prompt=1, train_batch_size=32))
