"""prepare_openrlhf_data and the agent config: the files OpenRLHF reads, read back with OpenRLHF's own code."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import hopgym
from hopgym.errors import ConfigError
from hopgym.trainers.openrlhf import AgentConfig, load_agent_config, prepare_openrlhf_data
from hopgym.trainers.openrlhf.data import decode_label, encode_label

ENV = "hopgym/HopWorld-2hop-v0"


def _config(**overrides: Any) -> AgentConfig:
    return AgentConfig(**{"env": ENV, "env_kwargs": {"world_seed": 3, "num_questions": 12}, **overrides})


def test_prompt_file_lines_are_the_envs_prompts_with_task_labels(tmp_path: Path, parse_args: Any) -> None:
    from openrlhf.datasets.prompts_dataset import preprocess_data

    config = _config(max_tokens=64)
    data = prepare_openrlhf_data(config, tmp_path / "data", max_tasks=5)
    assert data.tasks == 5 and data.prompts == tmp_path / "data" / "train.jsonl"
    assert load_agent_config(data.agent_config) == config

    expected = asyncio.run(_first_prompts(5))
    rows = [json.loads(line) for line in data.prompts.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5
    for row, (task_id, env_prompt) in zip(rows, expected, strict=True):
        # OpenRLHF's own reader, with the keys the command passes.
        prompt, label = preprocess_data(row, input_key="prompt", label_key="label")
        assert decode_label(label, env_id=ENV) == task_id
        assert prompt == env_prompt


async def _first_prompts(count: int) -> list[tuple[str, str]]:
    env = hopgym.make_async(ENV, world_seed=3, num_questions=12)
    try:
        prompts = []
        for task in env.tasks[:count]:
            prompt, _ = await env.reset(options={"task_id": task.id})
            prompts.append((task.id, prompt))
        return prompts
    finally:
        await env.aclose()


def test_chosen_tasks_and_their_errors(tmp_path: Path) -> None:
    ids = [task_id for task_id, _ in asyncio.run(_first_prompts(5))]
    data = prepare_openrlhf_data(_config(), tmp_path, task_ids=[ids[4], ids[1]], name="pick")
    labels = [json.loads(line)["label"] for line in data.prompts.read_text(encoding="utf-8").splitlines()]
    assert [decode_label(label, env_id=ENV) for label in labels] == [ids[4], ids[1]]
    with pytest.raises(ConfigError, match="not tasks of"):
        prepare_openrlhf_data(_config(), tmp_path, task_ids=["nope"])
    with pytest.raises(ConfigError, match="is not registered"):
        prepare_openrlhf_data(AgentConfig(env="hopgym/Nope-v0"), tmp_path)


def test_labels_name_env_and_task() -> None:
    label = encode_label(ENV, "hw-3-0007")
    assert decode_label(label, env_id=ENV) == "hw-3-0007"
    with pytest.raises(ConfigError, match="agent config plays"):
        decode_label(label, env_id="hopgym/HopWorld-3hop-v0")
    for bad in ("", "hw-3-0007", '{"task": 1}', None, '{"env": "x", "task_id": ""}'):
        with pytest.raises(ConfigError, match="does not name a hopgym task"):
            decode_label(bad, env_id=ENV)


def test_agent_config_errors_name_the_file_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOPGYM_AGENT_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=r"\$HOPGYM_AGENT_CONFIG is not set"):
        load_agent_config()
    path = tmp_path / "agent.json"
    monkeypatch.setenv("HOPGYM_AGENT_CONFIG", str(path))
    with pytest.raises(ConfigError, match="cannot read"):
        load_agent_config()
    path.write_text('{"env": "hopgym/HopWorld-v0",\n "max_tokens": }', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"agent\.json:2:16: invalid JSON"):
        load_agent_config()
    path.write_text('{"env": "hopgym/HopWorld-v0", "max_token": 5}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown agent config keys \['max_token'\]"):
        load_agent_config()
    path.write_text('{"env_kwargs": {}}', encoding="utf-8")
    with pytest.raises(ConfigError, match='needs "env"'):
        load_agent_config()
    path.write_text('{"env": "hopgym/HopWorld-v0", "max_tokens": 0}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"agent\.json: agent config max_tokens=0"):
        load_agent_config()
    path.write_text('{"env": "hopgym/HopWorld-v0", "env_kwargs": [1]}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"JSON object of hopgym\.make"):
        load_agent_config()
    path.write_text('{"env": "hopgym/HopWorld-v0", "chat_template": true}', encoding="utf-8")
    assert load_agent_config() == AgentConfig(env="hopgym/HopWorld-v0", chat_template=True)
