"""TRL's GRPOTrainer trains a tiny model on hopgym episodes through HopgymRollout (real TRL, CPU).

The env's reward is a test reward that depends on the whole episode text (so groups have differing rewards
and the update is not zero); the point is that TRL receives exactly the env's reward, trains only on the
generated tokens, and that the completion it trains on is the episode as the policy saw it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("trl")
torch = pytest.importorskip("torch")

from hopgym.envs.builtin import make_hopworld_core  # noqa: E402
from hopgym.envs.core import AsyncSearchQAEnv  # noqa: E402
from hopgym.testing.tiny_model import build_tiny_model  # noqa: E402
from hopgym.trainers.trl import HopgymRollout, TRLRolloutConfig, hopgym_reward, tasks_dataset  # noqa: E402
from hopgym.types import RewardInput, RewardResult  # noqa: E402


def text_reward(inp: RewardInput, /) -> RewardResult:
    """A reward in [0, 1] that differs between samples of one task (random text has differing lengths)."""
    return RewardResult(score=(len(inp.response) % 11) / 10.0)


@pytest.fixture
def env() -> Iterator[AsyncSearchQAEnv]:
    import asyncio

    proto = make_hopworld_core(
        hops=[2], num_entities=40, num_questions=4, max_turns=3, reward=text_reward, world_seed=3
    )
    yield proto
    asyncio.run(proto.aclose())


def _trainer(env: AsyncSearchQAEnv, tmp_path: Any, rollout: HopgymRollout, steps: int) -> Any:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    class RecordingTrainer(GRPOTrainer):
        """Keeps what TRL computed from the rollout: its rewards and the batch it trains on."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.rewards: list[list[float]] = []
            self.batches: list[dict[str, Any]] = []

        def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, ids: Any) -> Any:
            out = super()._calculate_rewards(inputs, prompts, completions, ids)
            self.rewards.append(out[:, 0].tolist())
            return out

        def _generate_and_score_completions(self, inputs: Any) -> Any:
            out = super()._generate_and_score_completions(inputs)
            self.batches.append({k: v for k, v in out.items() if isinstance(v, torch.Tensor)})
            return out

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    path = build_tiny_model()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        num_generations=2,
        max_steps=steps,
        learning_rate=5e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        bf16=False,
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
    )
    return RecordingTrainer(
        model=model,
        reward_funcs=[hopgym_reward],
        args=args,
        train_dataset=tasks_dataset(env),
        processing_class=tokenizer,
        rollout_func=rollout,
    )


def test_grpo_trainer_trains_on_hopgym_episodes(env: AsyncSearchQAEnv, tmp_path: Any) -> None:
    calls: list[tuple[dict[str, list[Any]], list[Any]]] = []
    config = TRLRolloutConfig(max_tokens=24, max_episode_tokens=400, seed=1)
    with HopgymRollout(env, config) as rollout:

        def recording(prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
            out = rollout(prompts, trainer)
            calls.append((out, list(rollout.trajectories)))
            return out

        trainer = _trainer(env, tmp_path, recording, steps=3)
        before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        trainer.train()
    tokenizer = trainer.processing_class

    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert len(changed) == len(before), f"unchanged: {sorted(set(before) - set(changed))}"
    assert len(calls) == 3 and len(trainer.rewards) == 3

    observation_tokens = 0
    for (out, trajectories), trl_rewards, batch in zip(calls, trainer.rewards, trainer.batches, strict=True):
        assert len(trajectories) == 4
        # Each task's two samples are one GRPO group, played as samples 0 and 1 of that task.
        assert [t.sample_index for t in trajectories] == [0, 1, 0, 1]
        assert trl_rewards == pytest.approx([t.reward for t in trajectories], abs=1e-6)
        assert out["hopgym_reward"] == [t.reward for t in trajectories]
        for i, traj in enumerate(trajectories):
            assert not traj.failed and traj.prompt_token_count is not None and traj.token_ids is not None
            prompt_ids, completion, mask = out["prompt_ids"][i], out["completion_ids"][i], out["env_mask"][i]
            assert list(traj.token_ids) == prompt_ids + completion
            assert tokenizer.decode(prompt_ids) == traj.prompt
            # The completion is the episode as played: decoding it gives the generated turns and observations.
            assert tokenizer.decode(completion, skip_special_tokens=True) == traj.response
            expected: list[int] = []
            for turn in traj.turns:
                assert turn.token_ids is not None and turn.observation_token_ids is not None
                expected += [1] * len(turn.token_ids) + [0] * len(turn.observation_token_ids)
                observation_tokens += len(turn.observation_token_ids)
            assert mask == expected
            # Masked positions decode to exactly the observations (retrieved documents, env messages).
            masked = [tok for tok, bit in zip(completion, mask, strict=True) if not bit]
            assert tokenizer.decode(masked) == "".join(t.observation for t in traj.turns)
            # TRL trains on completion_mask * env_mask: this row's mask reached its batch unchanged.
            row = batch["tool_mask"][i, : len(completion)].tolist()
            assert row == mask
            assert batch["completion_mask"][i, : len(completion)].tolist() == [1] * len(completion)
            assert traj.logprobs is not None
            sampled = traj.logprobs[len(prompt_ids) :]
            assert out["logprobs"][i] == [lp if bit else 0.0 for lp, bit in zip(sampled, mask, strict=True)]
    assert observation_tokens > 0, "no episode had an observation: the masking was not exercised"
