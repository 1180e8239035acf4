"""The built-in trainer on a tiny real model (transformers), real HopWorld episodes through the engine.

A random tiny model rarely earns the QA reward, so these tests score episodes with a registered reward that
varies between samples (shorter responses score higher): what matters here is that rewards turn into
gradients, masks hold, metrics and checkpoints are written, and a killed run resumes exactly.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hopgym.envs.rewards import register_reward  # noqa: E402
from hopgym.types import RewardInput, RewardResult  # noqa: E402


def brevity_reward(inp: RewardInput) -> RewardResult:
    return RewardResult(score=-len(inp.response) / 1000.0, reward_components={"brevity": -len(inp.response)})


register_reward("trainer_test_brevity", brevity_reward, replace=True)


def _overrides(model_dir: Path, **extra: str) -> list[str]:
    base = {
        "model.path": str(model_dir),
        "model.torch_threads": "1",
        "env.id": "hopgym/HopWorld-2hop-v0",
        "env.kwargs": "{num_entities = 60, num_questions = 12, reward = 'trainer_test_brevity'}",
        "rollout.prompts_per_step": "2",
        "rollout.samples_per_prompt": "4",
        "rollout.max_tokens": "12",
        "rollout.max_episode_tokens": "420",
        "algorithm.estimator": "group_norm",
        "optim.lr": "1e-3",
        "optim.micro_batch_size": "8",
        "run.steps": "3",
        "run.checkpoint_every": "1",
        "run.keep_checkpoints": "5",
        "run.plot": "false",
        "eval.sets": '[{name = "2hop", id = "hopgym/HopWorld-2hop-v0", kwargs = {world_seed = 7, num_entities = 60, num_questions = 4}, num_tasks = 2}]',
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hopgym.testing.tiny_model import build_tiny_model

    return Path(build_tiny_model(tmp_path_factory.mktemp("tiny")))


def _params(model_dir: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_training_changes_parameters_and_logs_metrics(tiny: Path, tmp_path: Path) -> None:
    from hopgym.trainers.config import load_config
    from hopgym.trainers.metrics import read_metrics
    from hopgym.trainers.trainer import Trainer

    config = load_config(overrides=_overrides(tiny, **{"run.tensorboard": "true", "run.plot": "true"}))
    result = Trainer(config, tmp_path / "run").train()
    assert (tmp_path / "run" / "curves.png").stat().st_size > 10_000
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    assert result.steps == 3
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert [r["step"] for r in evals] == [0, 3]
    for key in ("success_rate", "em", "f1", "sub_em", "cover_em", "mean_searches", "invalid_action_rate"):
        assert 0.0 <= evals[0][f"eval/2hop/{key}"] <= (1.0 if key != "mean_searches" else 10.0), key
    for record in train:
        for key in ("reward_mean", "reward_std", "success_rate", "mean_searches", "invalid_action_rate",
                    "response_tokens", "episode_tokens", "entropy", "clip_fraction", "grad_norm", "lr",
                    "tokens_per_s", "time/generation_s", "time/retrieval_s", "time/forward_backward_s",
                    "time/weight_sync_s", "policy_loss"):  # fmt: skip
            assert isinstance(record[key], float) and math.isfinite(record[key]), key
        assert record["grad_norm"] > 0  # the rewards differ within groups, so the loss has a gradient
    before, after = _params(tiny), _params(tmp_path / "run" / "checkpoints" / "step-000003" / "model")
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before), f"unchanged: {set(before) - set(changed)}"
    # the resolved config is saved and loads back
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["rollout"]["samples_per_prompt"] == 4
    assert (tmp_path / "run" / "config.toml").read_text().startswith("[model]")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary["eval_before"]) == {"eval/2hop/success_rate"}

    from hopgym.cli import main

    overlay = tmp_path / "overlay.png"
    assert (
        main(
            [
                "plot",
                str(tmp_path / "run"),
                str(tmp_path / "run"),
                "--labels",
                "a",
                "b",
                "--out",
                str(overlay),
            ]
        )
        == 0
    )
    assert overlay.stat().st_size > 10_000
    assert main(["plot", str(tmp_path)]) == 2  # not a run directory: a clear error, no traceback


def test_pipelined_rollouts_overlap_updates_and_still_learn(tiny: Path, tmp_path: Path) -> None:
    from hopgym.trainers.config import load_config
    from hopgym.trainers.metrics import read_metrics
    from hopgym.trainers.trainer import Trainer

    overrides = _overrides(
        tiny,
        **{
            "rollout.pipelined": "true",
            "algorithm.is_correction_level": "token",
            "algorithm.is_correction_mode": "clip",
            "eval.every": "2",
            "run.steps": "3",
        },
    )
    result = Trainer(load_config(overrides=overrides), tmp_path / "run").train()
    assert result.steps == 3
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert [r["step"] for r in records if r["kind"] == "eval"] == [0, 2, 3]
    # the sampler is a separate copy: it received the weights after the updates
    assert all(r["time/weight_sync_s"] > 0 for r in train[1:])
    before, after = _params(tiny), _params(tmp_path / "run" / "checkpoints" / "step-000003" / "model")
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("mask_observations", [True, False])
def test_retrieved_tokens_get_zero_gradient(tiny: Path, mask_observations: bool) -> None:
    import asyncio
    import dataclasses

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hopgym.agents.policy import SamplingParams
    from hopgym.agents.rollout.engine import collect_episodes
    from hopgym.agents.scripted_policy import TokenScriptedOraclePolicy
    from hopgym.agents.transformers_policy import TransformersPolicy
    from hopgym.envs.builtin import make_hopworld_core
    from hopgym.trainers.algorithms import AlgorithmConfig, actor_loss, compute_advantages
    from hopgym.trainers.batch import make_batch
    from hopgym.trainers.logprobs import sequence_log_probs

    # The scripted oracle searches, so every episode has retrieved tokens; its token ids come from the tiny
    # model's tokenizer, which is what the model scores.
    model = AutoModelForCausalLM.from_pretrained(str(tiny))
    tokenizer = AutoTokenizer.from_pretrained(str(tiny))
    policy = TransformersPolicy.from_model(model, tokenizer)
    env = make_hopworld_core(hops=[2], num_entities=60, num_questions=4)
    oracle = TokenScriptedOraclePolicy(env.tasks, env.protocol, encode=policy.encode)
    result = asyncio.run(
        collect_episodes(env, oracle, None, samples_per_task=2, sampling=SamplingParams(max_tokens=64))
    )
    trajectories = sorted(result.trajectories, key=lambda t: t.key)
    # The oracle always succeeds: zero one sample per group so that the group baseline leaves a signal.
    rewards_varied = [t if i % 2 else dataclasses.replace(t, reward=0.0) for i, t in enumerate(trajectories)]
    batch = make_batch(rewards_varied, group_size=2, pad_id=0, mask_observations=mask_observations)
    assert batch.observation_mask.sum() > 0
    config = AlgorithmConfig(estimator="group_norm")
    advantages = compute_advantages(batch.rewards, batch.action_mask, config, group_size=2).advantages
    log_probs, _ = sequence_log_probs(model, batch.input_ids, batch.attention_mask)
    log_probs.retain_grad()
    loss = actor_loss(log_probs, log_probs.detach(), advantages, batch.action_mask, config).loss
    loss.backward()
    grad = log_probs.grad
    assert grad is not None
    on_observation = grad[batch.observation_mask > 0]
    on_actions = grad[(batch.action_mask > 0) & (batch.observation_mask == 0)]
    assert on_actions.abs().sum() > 0
    if mask_observations:
        assert torch.count_nonzero(on_observation) == 0
    else:  # the ablation trains on retrieved tokens too
        assert torch.count_nonzero(on_observation) > 0


@pytest.mark.slow
def test_killed_run_resumes_at_its_checkpoint_with_the_same_data(tiny: Path, tmp_path: Path) -> None:
    from hopgym.trainers.config import load_config
    from hopgym.trainers.metrics import read_metrics
    from hopgym.trainers.trainer import Trainer

    overrides = _overrides(tiny, **{"run.steps": "4", "eval.sets": "[]"})
    reference = Trainer(load_config(overrides=overrides), tmp_path / "whole").train()
    assert reference.steps == 4

    # The same run in a child process, killed with SIGKILL once its step-2 checkpoint exists.
    run_dir = tmp_path / "killed"
    script = tmp_path / "train_child.py"
    script.write_text(
        "import sys\n"
        "from hopgym.envs.rewards import register_reward\n"
        "from hopgym.types import RewardResult\n"
        "register_reward('trainer_test_brevity', lambda inp: RewardResult(score=-len(inp.response) / 1000.0))\n"
        "from hopgym.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = [sys.executable, str(script), "train", "--out", str(run_dir), *overrides]
    child = subprocess.Popen(args, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoints" / "step-000002" / "state.json").exists():
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    steps_logged = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "train"]
    assert steps_logged[:2] == [1, 2] and max(steps_logged) < 4

    resumed = Trainer.resume(run_dir).train()
    assert resumed.steps == 4
    records = [r for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in records] == [1, 2, 3, 4]  # nothing logged twice
    whole = [r for r in read_metrics(tmp_path / "whole" / "metrics.jsonl") if r["kind"] == "train"]
    # Same data order and sampling seeds: the resumed steps saw the same episodes and rewards.
    assert [r["reward_mean"] for r in records] == pytest.approx([r["reward_mean"] for r in whole])
    a = _params(tmp_path / "whole" / "checkpoints" / "step-000004" / "model")
    b = _params(run_dir / "checkpoints" / "step-000004" / "model")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_skipping_the_old_log_prob_pass_gives_the_same_update(tiny: Path) -> None:
    """With one optimizer step and the sampler being the trained model, old log-probs = the update's own
    detached forward pass: the update must equal the one with a separate recompute pass."""
    import asyncio
    import copy
    import dataclasses

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hopgym.agents.policy import SamplingParams
    from hopgym.agents.rollout.engine import collect_episodes
    from hopgym.agents.scripted_policy import TokenScriptedOraclePolicy
    from hopgym.envs.builtin import make_hopworld_core
    from hopgym.trainers.algorithms import AlgorithmConfig
    from hopgym.trainers.batch import make_batch
    from hopgym.trainers.config import OptimConfig
    from hopgym.trainers.update import batch_log_probs, update_policy

    tokenizer = AutoTokenizer.from_pretrained(str(tiny))
    env = make_hopworld_core(hops=[2], num_entities=60, num_questions=3)
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    oracle = TokenScriptedOraclePolicy(env.tasks, env.protocol, encode=encode)
    result = asyncio.run(
        collect_episodes(env, oracle, None, samples_per_task=2, sampling=SamplingParams(max_tokens=64))
    )
    trajectories = sorted(result.trajectories, key=lambda t: t.key)
    trajectories = [t if i % 2 else dataclasses.replace(t, reward=0.0) for i, t in enumerate(trajectories)]
    batch = make_batch(trajectories, group_size=2, pad_id=0)
    algorithm = AlgorithmConfig(estimator="group_norm")
    optim = OptimConfig(lr=1e-2, micro_batch_size=2)
    base = AutoModelForCausalLM.from_pretrained(str(tiny))
    finals = []
    for recompute in (True, False):
        model = copy.deepcopy(base)
        optimizer = torch.optim.AdamW(model.parameters(), lr=optim.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        old = batch_log_probs(model, batch, 2) if recompute else None
        stats = update_policy(model, optimizer, scheduler, batch, algorithm, optim, old_log_probs=old)
        assert stats.optimizer_steps == 1 and stats.clip_fraction == 0.0
        finals.append(dict(model.named_parameters()))
    for name, value in finals[0].items():
        torch.testing.assert_close(value, finals[1][name], rtol=1e-4, atol=1e-6)
    assert any(not torch.equal(v, dict(base.named_parameters())[k]) for k, v in finals[0].items())
    with pytest.raises(ValueError, match="old_log_probs are needed"):
        update_policy(
            base,
            optimizer,
            scheduler,
            batch,
            algorithm,
            OptimConfig(mini_batches=2, micro_batch_size=2),
            old_log_probs=None,
        )


@pytest.mark.slow
def test_rollouts_on_ray_workers_train_the_model(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rollout.ray_address=local: each step's episodes are played by Ray actors (a local 2-CPU cluster) with
    the step's weights shipped to them; the trainer learns from them as from local rollouts."""
    pytest.importorskip("ray")
    from hopgym.trainers.config import load_config
    from hopgym.trainers.metrics import read_metrics
    from hopgym.trainers.trainer import Trainer

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    # The workers score with a built-in reward (a test-registered one does not exist in their processes).
    overrides = _overrides(
        tiny,
        **{
            "rollout.ray_address": "local",
            "env.kwargs": "{num_entities = 60, num_questions = 12, reward = 'research'}",
            "algorithm.estimator": "reinforce",
            "run.steps": "2",
            "eval.sets": "[]",
        },
    )
    result = Trainer(load_config(overrides=overrides), tmp_path / "run").train()
    assert result.steps == 2
    train = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2] and all(r["episodes"] == 8 for r in train)
    assert all(math.isfinite(r["grad_norm"]) and r["response_tokens"] > 0 for r in train)


def test_a_ray_worker_policy_samples_with_the_shipped_weights(tiny: Path) -> None:
    """The worker-side factory loads the trainer's state_dict, not the directory's weights."""
    from transformers import AutoModelForCausalLM

    from hopgym.trainers.ray_rollout import transformers_policy_from_state

    model = AutoModelForCausalLM.from_pretrained(str(tiny))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    policy = transformers_policy_from_state(str(tiny), state)
    shipped = dict(policy.model.named_parameters())  # type: ignore[attr-defined]
    for name, value in model.named_parameters():
        assert torch.equal(shipped[name], value)
    original = dict(AutoModelForCausalLM.from_pretrained(str(tiny)).named_parameters())
    assert any(not torch.equal(original[k], shipped[k]) for k in original)
