"""A tiny warm-up run end to end: loss goes down, the model dir loads, held-out episodes run through the
engine, and a second call with the same config reuses the directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopgym.trainers.warmup import WarmupConfig, warm_up, warm_up_for_trainer
from hopgym.trainers.warmup.sft import masked_lm_loss

TINY = {
    "vocab_size": 600,
    "hidden_size": 32,
    "layers": 1,
    "heads": 2,
    "max_positions": 512,
    "num_worlds": 1,
    "questions_per_world": 48,
    "steps": 24,
    "batch_size": 4,
    "lr": 3e-3,
    "eval_tasks": 2,
    "eval_samples": 2,
}


def test_masked_loss_counts_only_masked_in_targets() -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=2,
        )
    )  # fmt: skip
    ids = torch.randint(0, 50, (2, 9))
    attention = torch.ones_like(ids)
    mask = torch.tensor([[0, 0, 0, 1, 1, 0, 0, 1, 0], [0, 0, 1, 1, 1, 1, 0, 0, 0]], dtype=torch.float32)
    loss = masked_lm_loss(model, ids, attention, mask)
    logp = torch.log_softmax(model(input_ids=ids).logits, -1)
    picked = [-logp[b, t - 1, ids[b, t]] for b in range(2) for t in range(1, 9) if mask[b, t]]
    assert torch.allclose(loss, torch.stack(picked).mean(), atol=1e-6)


@pytest.mark.slow
def test_tiny_warm_up_trains_saves_evaluates_and_is_reused(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "warm"
    result = warm_up(WarmupConfig(**TINY), out)  # type: ignore[arg-type]
    report = result.report
    assert not result.reused and result.model_dir == out
    assert report["sft"]["last_loss"] < report["sft"]["first_loss"] - 0.5
    assert 0.1 < report["trace_success"] < 0.6  # the noisy agent is well below the oracle
    AutoTokenizer.from_pretrained(str(out))
    AutoModelForCausalLM.from_pretrained(str(out))
    assert [h["hops"] for h in report["held_out"]] == [2, 3]
    for figures in report["held_out"]:
        assert figures["tasks"] == 2 and figures["k"] == 2
        assert 0.0 <= figures["greedy_success"] <= 1.0 and 0.0 <= figures["invalid_action_rate"] <= 1.0
    assert json.loads((out / "warmup.json").read_text())["model_key"] == WarmupConfig(**TINY).model_key()  # type: ignore[arg-type]
    # Same model settings (evaluation settings aside): reused, not retrained.
    path, info = warm_up_for_trainer({**TINY, "eval_tasks": 0, "out_dir": str(out)}, seed=0)
    assert path == str(out) and info["reused"] is True
