"""TransformersPolicy on the real tiny model: token ids, logprobs, stop strings, seeds, batching, episodes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import hopgym  # noqa: E402
from hopgym.agents.policy import Context, Generation, SamplingParams  # noqa: E402
from hopgym.agents.rollout.engine import collect_episodes  # noqa: E402
from hopgym.agents.rollout.trajectory import verify_trajectory  # noqa: E402
from hopgym.agents.scripted_policy import TokenScriptedOraclePolicy  # noqa: E402
from hopgym.agents.transformers_policy import TransformersPolicy  # noqa: E402
from hopgym.errors import ConfigError  # noqa: E402
from hopgym.testing.tiny_model import build_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return build_tiny_model()


@pytest.fixture(scope="module")
def policy(model_dir: Path) -> Iterator[TransformersPolicy]:
    yield TransformersPolicy(model_dir, max_batch_size=8, max_wait_ms=20, torch_threads=1)


def _context(policy: TransformersPolicy, question: str) -> Context:
    ctx = Context(prompt=question, messages=[{"role": "user", "content": question}])
    ctx.token_ids = policy.encode_prompt(ctx)
    return ctx


def _rescore(policy: TransformersPolicy, prompt: list[int], gen: Generation) -> list[float]:
    assert gen.token_ids is not None
    ids = torch.tensor([prompt + list(gen.token_ids)])
    with torch.inference_mode():
        logp = torch.log_softmax(policy.model(ids).logits[0].float(), dim=-1)
    start = len(prompt)
    return [float(logp[start + i - 1, tok]) for i, tok in enumerate(gen.token_ids)]


async def test_token_ids_decode_to_text_and_logprobs_rescore(policy: TransformersPolicy) -> None:
    contexts = [_context(policy, f"Where was person {i} born?") for i in range(6)]
    params = [SamplingParams(max_tokens=20, temperature=1.0, seed=i) for i in range(6)]
    gens = await asyncio.gather(*(policy.generate(c, p) for c, p in zip(contexts, params, strict=True)))
    for ctx, gen in zip(contexts, gens, strict=True):
        assert gen.token_ids is not None and gen.logprobs is not None
        assert len(gen.token_ids) == len(gen.logprobs) >= 1
        assert policy.decode(gen.token_ids) == gen.text
        assert ctx.token_ids is not None
        rescored = _rescore(policy, ctx.token_ids, gen)
        assert max(abs(a - b) for a, b in zip(rescored, gen.logprobs, strict=True)) < 1e-3
        assert all(lp <= 0 for lp in gen.logprobs)
    assert policy.batches < policy.batched_requests  # concurrent requests shared forward passes


async def test_max_tokens_gives_length(policy: TransformersPolicy) -> None:
    gen = await policy.generate(_context(policy, "Q?"), SamplingParams(max_tokens=7, seed=3))
    if gen.finish_reason == "length":
        assert gen.token_ids is not None and len(gen.token_ids) == 7
    else:  # the model emitted eos first: then it must be the last token
        assert gen.token_ids is not None and gen.token_ids[-1] == policy.tokenizer.eos_token_id


async def test_stop_strings_end_the_turn_at_the_token_that_completes_them(policy: TransformersPolicy) -> None:
    stops = ("ra", "o")
    gens = await asyncio.gather(
        *(
            policy.generate(_context(policy, f"Q{i}"), SamplingParams(max_tokens=60, stop=stops, seed=i))
            for i in range(8)
        )
    )
    stopped = [g for g in gens if g.stop_reason is not None]
    assert len(stopped) >= 4, [g.text for g in gens]
    for gen in stopped:
        assert gen.finish_reason == "stop" and gen.token_ids is not None
        assert gen.stop_reason in gen.text
        assert not any(s in policy.decode(gen.token_ids[:-1]) for s in stops)
        first_end = min(gen.text.find(s) + len(s) for s in stops if s in gen.text)
        assert first_end > len(policy.decode(gen.token_ids[:-1])) - 1
    for gen in gens:
        if gen.stop_reason is None:
            assert not any(s in gen.text for s in stops)


async def test_seeds_reproduce_alone_or_batched_and_greedy_is_argmax(policy: TransformersPolicy) -> None:
    ctx = _context(policy, "Who founded the city?")
    params = SamplingParams(max_tokens=16, seed=42)
    alone = await policy.generate(ctx, params)
    others = [
        policy.generate(_context(policy, f"other {i}"), SamplingParams(max_tokens=12, seed=i))
        for i in range(5)
    ]
    batched, *_ = await asyncio.gather(policy.generate(ctx, params), *others)
    assert batched.token_ids == alone.token_ids
    different = await policy.generate(ctx, SamplingParams(max_tokens=16, seed=43))
    assert different.token_ids != alone.token_ids

    greedy = await policy.generate(ctx, SamplingParams(max_tokens=10, temperature=0.0))
    assert greedy.token_ids is not None and ctx.token_ids is not None
    ids = ctx.token_ids + list(greedy.token_ids)
    with torch.inference_mode():
        logits = policy.model(torch.tensor([ids])).logits[0]
    start = len(ctx.token_ids)
    assert [int(logits[start + i - 1].argmax()) for i in range(len(greedy.token_ids))] == list(
        greedy.token_ids
    )


async def test_episodes_with_the_model_have_consistent_tokens_and_masks(policy: TransformersPolicy) -> None:
    env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=4, max_turns=3)
    ids = [t.id for t in env.tasks[:16]]
    result = await collect_episodes(
        env,
        policy,
        ids,
        concurrency=16,
        sampling=SamplingParams(max_tokens=24, seed=5),
        max_episode_tokens=1024,
    )
    await env.aclose()
    assert result.summary.finished == 16 and result.summary.failed == 0
    for traj in result.trajectories:
        assert traj.termination in ("answered", "max_turns", "length") and traj.reward is not None
        assert verify_trajectory(traj, policy.decode) == []
        assert traj.token_ids is not None and traj.logprobs is not None and traj.loss_mask is not None
        for turn, (a, b) in zip(traj.turns, traj.action_spans or (), strict=True):
            assert turn.token_ids == traj.token_ids[a:b] and all(traj.loss_mask[a:b])
            assert turn.observation_token_ids is not None
            obs = traj.token_ids[b : b + len(turn.observation_token_ids)]
            assert policy.decode(obs) == turn.observation and not any(traj.loss_mask[b : b + len(obs)])
        if traj.termination == "length":
            assert len(traj.token_ids) >= 1024


async def test_real_tokenizer_masks_information_blocks(policy: TransformersPolicy) -> None:
    # The scripted oracle writes well-formed actions, tokenized by the real tokenizer: <information> blocks appear.
    env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=4, reward="em")
    oracle = TokenScriptedOraclePolicy(env.tasks, env.protocol, policy.encode)
    result = await collect_episodes(env, oracle, [t.id for t in env.tasks[:10]], concurrency=10)
    await env.aclose()
    for traj in result.trajectories:
        assert traj.reward == 1.0 and verify_trajectory(traj, policy.decode) == []
        assert (
            traj.token_ids is not None and traj.loss_mask is not None and traj.prompt_token_count is not None
        )
        n = traj.prompt_token_count
        unmasked = [t for t, m in zip(traj.token_ids[n:], traj.loss_mask[n:], strict=True) if not m]
        assert policy.decode(unmasked).count("<information>") == traj.num_searches >= 2
        generated = [t for t, m in zip(traj.token_ids, traj.loss_mask, strict=True) if m]
        assert "<information>" not in policy.decode(generated)
        assert policy.encode("</search>") == [policy.tokenizer.convert_tokens_to_ids("</search>")]


async def test_context_longer_than_the_model_is_refused(policy: TransformersPolicy) -> None:
    limit = policy.model.config.max_position_embeddings
    ctx = Context(prompt="x", messages=[], token_ids=[5] * limit)
    with pytest.raises(ConfigError, match="max_episode_tokens"):
        await policy.generate(ctx, SamplingParams(max_tokens=4))
    ctx.token_ids = [5] * (limit - 3)
    gen = await policy.generate(ctx, SamplingParams(max_tokens=50, seed=0))
    assert gen.token_ids is not None and len(gen.token_ids) <= 3


def test_batched_sampling_follows_each_rows_distribution(policy: TransformersPolicy) -> None:
    """The batch sampler (inverse CDF, one uniform per row) draws from softmax(logits / T), truncated by top_p."""
    import torch

    from hopgym.agents.transformers_policy import _Request, _Row

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.5, 0.3, 0.15, 0.05], [0.1, 0.2, 0.3, 0.4]]))
    settings = [
        SamplingParams(temperature=1.0),
        SamplingParams(temperature=1.0, top_p=0.7),  # keeps 0.5 and 0.3 only
        SamplingParams(temperature=0.0),  # greedy
    ]
    torch.manual_seed(0)
    counts = torch.zeros(3, 4)
    for _ in range(4000):
        rows = [_Row(_Request([1], p, None), None) for p in settings]  # type: ignore[arg-type]
        picked = policy._sample_rows(logits, rows, [0, 1, 2])
        for i, token in enumerate(picked):
            counts[i, token] += 1
    freq = counts / counts.sum(-1, keepdim=True)
    assert torch.allclose(freq[0], torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.03)
    assert torch.allclose(freq[1], torch.tensor([0.625, 0.375, 0.0, 0.0]), atol=0.03)
    assert freq[2].tolist() == [0.0, 0.0, 0.0, 1.0]


async def test_kv_reuse_across_turns_changes_nothing_but_the_work(model_dir: Path) -> None:
    """Multi-turn episodes with and without keeping each episode's keys/values: the same greedy tokens and
    log-probs (float noise), with only the tokens added since the last turn run through the model."""
    import hopgym
    from hopgym.agents.rollout.engine import collect_episodes

    results = {}
    for reuse in (False, True):
        policy = TransformersPolicy(model_dir, max_batch_size=16, kv_reuse=reuse)
        env = hopgym.make_async(
            "hopgym/HopWorld-2hop-v0", world_seed=5, num_entities=60, num_questions=4, max_turns=3
        )
        run = await collect_episodes(
            env, policy, None, samples_per_task=2, sampling=SamplingParams(max_tokens=16, temperature=0.0)
        )
        await env.aclose()
        results[reuse] = (
            sorted(run.trajectories, key=lambda t: t.key),
            policy.prefill_tokens,
            policy.reused_tokens,
        )
    (plain, plain_prefill, plain_reused), (reused, prefill, reused_tokens) = results[False], results[True]
    assert plain_reused == 0 and reused_tokens > 0
    assert prefill + reused_tokens == plain_prefill  # every later turn skipped exactly its cached prefix
    assert all(len(t.turns) > 1 for t in plain)
    for a, b in zip(plain, reused, strict=True):
        assert a.token_ids == b.token_ids
        assert a.logprobs is not None and b.logprobs is not None
        assert max(abs((x or 0.0) - (y or 0.0)) for x, y in zip(a.logprobs, b.logprobs, strict=True)) < 1e-4
