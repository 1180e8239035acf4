"""HopgymRollout without TRL's trainer loop: prompt -> task mapping, failed episodes, settings, reward field.

The trainer is a stand-in holding what the rollout reads from TRL's ``GRPOTrainer`` (``model``,
``processing_class``, ``args``, ``state``); the model, tokenizer, env and engine are real.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from hopgym.envs.builtin import make_hopworld_core
from hopgym.envs.core import AsyncSearchQAEnv
from hopgym.errors import ConfigError, RetrieverUnavailable
from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.trainers.trl import (
    EpisodesFailed,
    HopgymRollout,
    PromptIndex,
    TRLRolloutConfig,
    hopgym_reward,
    tasks_dataset,
)
from hopgym.types import Passage, Task


@pytest.fixture
def env() -> Iterator[AsyncSearchQAEnv]:
    proto = make_hopworld_core(hops=[2], num_entities=40, num_questions=3, max_turns=3, world_seed=5)
    yield proto
    asyncio.run(proto.aclose())


@pytest.fixture(scope="module")
def trainer() -> Any:
    """What the rollout reads from a GRPOTrainer, around the real tiny model."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hopgym.testing.tiny_model import build_tiny_model

    path = build_tiny_model()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.train()
    args = SimpleNamespace(temperature=1.0, top_p=1.0, top_k=0, min_p=None, repetition_penalty=1.0)
    return SimpleNamespace(
        model=model,
        processing_class=AutoTokenizer.from_pretrained(path),
        args=args,
        state=SimpleNamespace(global_step=0),
        use_vllm=False,
    )


CONFIG = TRLRolloutConfig(max_tokens=8, max_episode_tokens=300, max_episode_retries=1)


def _flaky_factory(proto: AsyncSearchQAEnv, fails: set[int]) -> tuple[Any, list[int]]:
    """An env factory whose calls numbered in ``fails`` raise (call 1 builds the rollout's prompt index)."""
    calls: list[int] = []

    def factory() -> AsyncSearchQAEnv:
        calls.append(len(calls) + 1)
        if calls[-1] in fails:
            raise RetrieverUnavailable("retriever at http://127.0.0.1:9 is down")
        return proto.clone()

    return factory, calls


def test_rows_follow_the_prompts_and_repeats_are_samples(env: AsyncSearchQAEnv, trainer: Any) -> None:
    dataset = tasks_dataset(env)
    prompts = [dataset[1]["prompt"]] * 2 + [dataset[0]["task_id"]] * 2  # a prompt text, then a task id
    with HopgymRollout(env, CONFIG) as rollout:
        out = rollout(prompts, trainer)
        keys = [t.key for t in rollout.trajectories]
    assert keys == [(dataset[1]["task_id"], 0), (dataset[1]["task_id"], 1), (dataset[0]["task_id"], 0),
                    (dataset[0]["task_id"], 1)]  # fmt: skip
    assert out["hopgym_task_id"] == [k[0] for k in keys]
    assert [len(p) + len(c) for p, c in zip(out["prompt_ids"], out["completion_ids"], strict=True)] == [
        len(t.token_ids or ()) for t in rollout.trajectories
    ]
    assert trainer.model.training, "the rollout must give the model back in training mode"


def test_failed_episodes_are_played_again_never_scored(env: AsyncSearchQAEnv, trainer: Any) -> None:
    factory, calls = _flaky_factory(env, fails={2, 3})  # the first two episodes cannot get an env
    with HopgymRollout(factory, CONFIG) as rollout:
        out = rollout(
            [env.protocol.prompt(env.tasks[0])] * 2 + [env.protocol.prompt(env.tasks[1])] * 2, trainer
        )
        trajectories = rollout.trajectories
        timing = rollout.timings[-1]
    assert not any(t.failed for t in trajectories)
    assert out["hopgym_reward"] == [t.reward for t in trajectories]
    # The failed episodes' groups were played again: more episodes than rows.
    assert timing.episodes > 4 and len(calls) == 1 + timing.episodes


def test_episodes_that_keep_failing_raise(env: AsyncSearchQAEnv, trainer: Any) -> None:
    factory, calls = _flaky_factory(env, fails=set(range(2, 100)))
    with (
        HopgymRollout(factory, CONFIG) as rollout,
        pytest.raises(EpisodesFailed, match="RetrieverUnavailable"),
    ):
        rollout([env.protocol.prompt(env.tasks[0])] * 2, trainer)
    assert len(calls) == 1 + 2 * (CONFIG.max_episode_retries + 1)


def test_a_policy_factory_samples_instead_of_the_model(env: AsyncSearchQAEnv, trainer: Any) -> None:
    from hopgym.agents.scripted_policy import ScriptedOraclePolicy, TokenScriptedOraclePolicy

    tokenizer = trainer.processing_class

    def oracle(_trainer: Any) -> TokenScriptedOraclePolicy:
        return TokenScriptedOraclePolicy(env.tasks, env.protocol, lambda text: tokenizer.encode(text))

    prompts = [t.id for t in env.tasks[:2] for _ in range(2)]
    config = TRLRolloutConfig(max_episode_tokens=2048)  # room for two searches' passages
    with HopgymRollout(env, config, policy_factory=oracle) as rollout:
        out = rollout(prompts, trainer)
        trajectories = rollout.trajectories
    # The oracle searches and answers right: the env pays full reward, and the rollout passes it on.
    assert [t.termination for t in trajectories] == ["answered"] * 4
    assert out["hopgym_reward"] == [1.0] * 4 and all(t.num_searches >= 2 for t in trajectories)
    assert all(0 in mask and 1 in mask for mask in out["env_mask"])
    with (
        HopgymRollout(
            env, CONFIG, policy_factory=lambda _: ScriptedOraclePolicy(env.tasks, env.protocol)
        ) as text,
        pytest.raises(ConfigError, match="not token-level"),
    ):
        text(prompts, trainer)


def test_prompts_map_to_tasks() -> None:
    index = PromptIndex([("a", "Q1"), ("b", "Q2"), ("c", "Q2")])
    assert index.task_id("Q1") == "a"
    assert index.task_id("b") == "b"  # a task id stands for itself
    with pytest.raises(ConfigError, match=r"belongs to tasks \['b', 'c'\]"):
        index.task_id("Q2")
    with pytest.raises(ConfigError, match="tasks_dataset"):
        index.task_id("an unknown prompt")
    with pytest.raises(ConfigError, match="list prompt"):
        index.task_id([{"role": "user", "content": "Q1"}])


def test_dataset_refuses_tasks_sharing_a_prompt() -> None:
    tasks = [Task("t1", "Who?", ("A",)), Task("t2", "Who?", ("B",)), Task("t3", "Where?", ("C",))]
    env = AsyncSearchQAEnv(tasks, InMemoryBM25Retriever([Passage(id="p", title="T", text="text")]))
    with pytest.raises(ConfigError, match="shared by several tasks"):
        tasks_dataset(env)
    dataset = tasks_dataset(env, tasks=["t1", "t3"])
    assert dataset["task_id"] == ["t1", "t3"] and dataset["prompt"][0] == env.protocol.prompt(tasks[0])
    with pytest.raises(ConfigError, match="not among the env's 3 tasks"):
        tasks_dataset(env, tasks=["t9"])


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", 0), ("max_episode_tokens", 1), ("concurrency", 0), ("max_batch_size", True),
     ("max_wait_ms", -1.0), ("seed", -3), ("max_episode_retries", -1), ("chat_template", "yes")],
)  # fmt: skip
def test_config_names_the_bad_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"TRLRolloutConfig.{field}="):
        TRLRolloutConfig(**{field: value})  # type: ignore[arg-type]


def test_settings_hopgym_cannot_honour_are_refused(env: AsyncSearchQAEnv, trainer: Any) -> None:
    prompts = [env.tasks[0].id]
    with HopgymRollout(env, CONFIG) as rollout:
        vllm = SimpleNamespace(**{**vars(trainer), "use_vllm": True})
        with pytest.raises(ConfigError, match="policy_factory"):
            rollout(prompts, vllm)
        top_k = SimpleNamespace(
            **{**vars(trainer), "args": SimpleNamespace(**{**vars(trainer.args), "top_k": 5})}
        )
        with pytest.raises(ConfigError, match="top_k"):
            rollout(prompts, top_k)
        masked = SimpleNamespace(
            **{
                **vars(trainer),
                "args": SimpleNamespace(**{**vars(trainer.args), "mask_truncated_completions": True}),
            }
        )
        with pytest.raises(ConfigError, match="mask_truncated_completions"):
            rollout(prompts, masked)


def test_reward_needs_the_rollout_field() -> None:
    assert hopgym_reward(["p", "p"], ["a", "b"], hopgym_reward=[1.0, 0.25]) == [1.0, 0.25]
    with pytest.raises(ConfigError, match="rollout_func=HopgymRollout"):
        hopgym_reward(["p"], ["a"])
    with pytest.raises(ConfigError, match="1 hopgym rewards for 2 completions"):
        hopgym_reward(["p", "p"], ["a", "b"], hopgym_reward=[1.0])


def test_import_is_light() -> None:
    code = (
        "import sys, hopgym.trainers.trl as t; t.HopgymRollout, t.tasks_dataset, t.hopgym_reward, t.TRLRolloutConfig; "
        "print(sorted(m for m in ('torch', 'transformers', 'trl', 'datasets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
