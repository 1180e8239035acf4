"""The training config: TOML files, presets, SECTION.FIELD overrides, validation that names cause and fix."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from hopgym.errors import ConfigError
from hopgym.trainers.config import (
    TrainConfig,
    config_to_dict,
    describe_options,
    load_config,
    train_config_from_dict,
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_toml_file_then_overrides(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[model]
path = "models/tiny"
[env]
id = "hopgym/HopWorld-2hop-v0"
kwargs = {world_seed = 3, num_entities = 80}
[rollout]
samples_per_prompt = 4
reward_schedule = [{start_step = 0, reward = "r1_searcher_stage1"}, {start_step = 50, reward = "r1_searcher"}]
[algorithm]
estimator = "reinforce_baseline"
reward_clip = [-5, 5]
[eval]
sets = [{name = "2hop", id = "hopgym/HopWorld-2hop-v0", kwargs = {world_seed = 9}, num_tasks = 10}]
""",
    )
    config = load_config(
        path, overrides=["rollout.samples_per_prompt=8", "optim.schedule=cosine", "run.steps=7"]
    )
    assert config.model.path == "models/tiny"
    assert dict(config.env.kwargs) == {"world_seed": 3, "num_entities": 80}
    assert config.rollout.samples_per_prompt == 8
    assert config.rollout.reward_schedule[1].reward == "r1_searcher"
    assert config.algorithm.estimator == "reinforce_baseline"
    assert config.algorithm.reward_clip == (-5.0, 5.0)
    assert config.optim.schedule == "cosine"
    assert config.run.steps == 7
    assert config.eval.sets[0].kwargs["world_seed"] == 9
    # the resolved config round-trips through plain data
    assert train_config_from_dict(config_to_dict(config)) == config


def test_preset_composes_with_overrides() -> None:
    config = load_config(preset="hopworld-tiny", overrides=["algorithm.estimator=reinforce", "run.steps=5"])
    assert config.model.warmup == "hopworld-tiny"
    assert config.algorithm.estimator == "reinforce"
    assert config.run.steps == 5
    assert {s.name for s in config.eval.sets} == {"2hop", "3hop"}
    quick = load_config(preset="hopworld-tiny-quick")
    assert quick.model.warmup == "hopworld-tiny" and quick.run.max_minutes > 0
    assert quick.model.warmup_options["steps"] < 1000


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["model.path=m", "algorithm.estimator=group_norm", "rollout.samples_per_prompt=1"],
            "needs at least 2 samples per prompt",
        ),
        (["model.path=m", "rollout.samples_per_prompt=three"], "samples_per_prompt"),
        (["model.path=m", "rollout.temperature=0"], "RL needs sampled rollouts"),
        (["model.path=m", "optim.lr=0"], "positive learning rate"),
        (["model.path=m", "model.bf16_autocast=true"], "needs a GPU"),
        (["model.path=m", "model.warmup=hopworld-tiny"], "exactly one of model.path"),
        (["model.path=m", "rollout.colour=red"], "has no field 'colour'"),
        (["model.path=m", "bogus.x=1"], "unknown section 'bogus'"),
        (["model.path=m", "rollout"], "expected SECTION.FIELD=VALUE"),
        (["model.path=m", "algorithm.estimator=ppo"], "estimator='ppo' is unknown"),
        (["model.path=m", "algorithm.is_correction_level=token"], "set it to 'off'"),
        (["model.path=m", "optim.mini_batches=3"], "does not divide the rollout batch"),
        (
            ["model.path=m", 'rollout.reward_schedule=[{start_step = 5, reward = "em"}]'],
            "first stage must start at 0",
        ),
    ],
)
def test_bad_settings_name_cause_and_fix(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(overrides=overrides)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[model\npath = 1")
    with pytest.raises(ConfigError, match=r"run\.toml: not valid TOML"):
        load_config(path)
    path = _write(tmp_path, '[model]\npath = "m"\n[rollout]\nsample_per_prompt = 4\n')
    with pytest.raises(
        ConfigError, match=r"run.toml: unknown field\(s\) \['sample_per_prompt'\] in \[rollout\]"
    ):
        load_config(path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")


def test_every_option_has_help() -> None:
    rows = describe_options()
    keys = {key for key, _, _ in rows}
    assert {"rollout.samples_per_prompt", "algorithm.estimator", "optim.lr", "run.steps"} <= keys
    assert all(help_text for _, _, help_text in rows)
    assert isinstance(TrainConfig().rollout.samples_per_prompt, int)


def test_cli_prints_resolved_config(capsys: pytest.CaptureFixture[str]) -> None:
    from hopgym.cli import main

    assert main(["train", "--preset", "hopworld-tiny", "--print-config", "run.steps=3"]) == 0
    out = capsys.readouterr().out
    assert "[run]" in out and "steps = 3" in out
    assert main(["train", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().out


def test_readme_training_config_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Training a search agent") :]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block is not None
    config = load_config(_write(tmp_path, block.group(1)))
    assert config.algorithm.use_kl_loss and config.rollout.reward_schedule[1].start_step == 100


def test_envs_must_match_the_warm_up_names_and_passages() -> None:
    from hopgym.trainers.trainer import _check_warmup_envs
    from hopgym.trainers.warmup import WarmupConfig

    warm = {"config": WarmupConfig().to_dict()}
    _check_warmup_envs(warm, load_config(preset="hopworld-tiny"))  # the preset agrees with its warm-up
    _check_warmup_envs(warm, load_config(preset="hopworld-tiny-quick"))
    config = load_config(preset="hopworld-tiny")
    fresh_names = {**config.env.kwargs, "name_pool": 0}
    with pytest.raises(ConfigError, match=r"env.kwargs.name_pool=0, but the warm-up .* name_pool=2500"):
        _check_warmup_envs(
            warm, dataclasses.replace(config, env=dataclasses.replace(config.env, kwargs=fresh_names))
        )
    with pytest.raises(ConfigError, match=r"eval.sets\['2hop'\].kwargs.top_k=3"):
        config = load_config(preset="hopworld-tiny")
        sets = [
            dataclasses.replace(s, kwargs={"world_seed": 2001, "name_pool": 2500}) for s in config.eval.sets
        ]
        _check_warmup_envs(
            warm, dataclasses.replace(config, eval=dataclasses.replace(config.eval, sets=sets))
        )
    # A model that names no warm-up config is not checked.
    _check_warmup_envs(
        {}, dataclasses.replace(config, env=dataclasses.replace(config.env, kwargs=fresh_names))
    )
