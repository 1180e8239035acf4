"""``hopgym train --backend openrlhf --dry-run``: the hopgym config mapped to OpenRLHF's data and command."""

from __future__ import annotations

import itertools
import json
import shlex
from pathlib import Path

import pytest

from hopgym.cli import main


def test_dry_run_prepares_data_and_prints_the_mapped_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "train", "--backend", "openrlhf", "--dry-run", "--out", str(out), "--gpus", "2",
            "--openrlhf-arg=--logger.wandb_project=x",
            "model.path=models/policy", "env.id=hopgym/HopWorld-2hop-v0",
            "env.kwargs={num_entities = 60, num_questions = 10}", "rollout.prompts_per_step=4",
            "rollout.samples_per_prompt=4", "rollout.max_episode_tokens=900", "optim.micro_batch_size=2",
            "optim.lr=3e-6", "algorithm.estimator=group_norm", "algorithm.kl_coef=0.001",
            "algorithm.use_kl_loss=true", "algorithm.kl_estimator=k3",
        ]
    )  # fmt: skip
    assert code == 0
    command = shlex.split(capsys.readouterr().out.splitlines()[0])
    flags = dict(itertools.pairwise(command))
    assert flags["--algo.advantage.estimator"] == "group_norm"
    assert flags["--rollout.n_samples_per_prompt"] == "4" and flags["--rollout.batch_size"] == "4"
    assert flags["--train.batch_size"] == "16" and flags["--train.micro_batch_size"] == "2"
    assert flags["--data.max_len"] == "900" and flags["--actor.adam.lr"] == "0.000003"
    assert flags["--algo.kl.estimator"] == "k3" and "--algo.kl.use_loss" in command
    assert flags["--actor.model_name_or_path"].endswith("models/policy")
    assert "--logger.wandb_project=x" in command
    prompts = (out / "openrlhf_data" / "train.jsonl").read_text().splitlines()
    assert len(prompts) == 10 and {"prompt", "label"} <= set(json.loads(prompts[0]))
    agent = json.loads((out / "openrlhf_data" / "agent.json").read_text())
    assert agent["env"] == "hopgym/HopWorld-2hop-v0" and agent["env_kwargs"]["num_questions"] == 10
