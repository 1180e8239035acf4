"""OpenAIPolicy against a scripted HTTP transport: request bodies, response parsing, retries and errors."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hopgym.agents.errors import PolicyError, PolicyRequestError, PolicyTimeout, PolicyUnavailable
from hopgym.agents.openai_policy import OpenAIPolicy, assistant_action
from hopgym.agents.policy import Context, SamplingParams
from hopgym.envs.protocols.tool_call import ToolCallProtocol
from hopgym.errors import ConfigError

BASE = "http://model.test/v1"


class Server:
    """Answers requests with a handler and records their JSON bodies."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path]


def _policy(server: Server, sleeps: list[float] | None = None, **kwargs: Any) -> OpenAIPolicy:
    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    return OpenAIPolicy(
        BASE, "tiny", transport=httpx.MockTransport(server), sleep=sleep, rng=random.Random(0), **kwargs
    )


def _models(owned_by: str) -> httpx.Response:
    return httpx.Response(200, json={"object": "list", "data": [{"id": "tiny", "owned_by": owned_by}]})


def _completion(**choice: Any) -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"index": 0, "finish_reason": "stop", **choice}]})


def _context(text: str = "Question: x\n") -> Context:
    return Context(prompt=text, messages=[{"role": "user", "content": text}])


async def test_vllm_completion_request_and_token_ids() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return _models("vllm")
        return _completion(
            text="<search> a </search>",
            stop_reason="</search>",
            token_ids=[5, 6, 7],
            logprobs={"tokens": ["a", "b", "c"], "token_logprobs": [-0.5, -1.0, -0.25]},
        )

    server = Server(handler)
    async with _policy(server) as policy:
        params = SamplingParams(max_tokens=9, temperature=0.5, stop=("</search>",), seed=3)
        generation = await policy.generate(_context("Q?"), params)
    (body,) = server.bodies("/v1/completions")
    assert body["prompt"] == "Q?" and body["model"] == "tiny" and body["max_tokens"] == 9
    assert body["stop"] == ["</search>"] and body["seed"] == 3 and body["n"] == 1
    assert body["include_stop_str_in_output"] is True and body["return_token_ids"] is True
    assert body["logprobs"] == 0
    assert generation.text == "<search> a </search>" and generation.finish_reason == "stop"
    assert generation.token_ids == (5, 6, 7) and generation.logprobs == (-0.5, -1.0, -0.25)
    assert generation.stop_reason == "</search>"
    assert not policy.token_level


async def test_plain_server_gets_no_vllm_extras_and_stop_string_is_restored() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return _models("openai")
        # A server that strips the stop string but says which one matched.
        return _completion(text="<search> a ", stop_reason="</search>", logprobs={"token_logprobs": [-1.0]})

    server = Server(handler)
    async with _policy(server) as policy:
        generation = await policy.generate(_context(), SamplingParams(stop=("</search>",)))
    (body,) = server.bodies("/v1/completions")
    assert "include_stop_str_in_output" not in body and "return_token_ids" not in body
    assert body["logprobs"] == 1
    assert generation.text == "<search> a </search>"
    assert generation.token_ids is None and generation.logprobs == (-1.0,)
    # Detection runs once, not per request.
    async with _policy(server) as policy:
        for _ in range(3):
            await policy.generate(_context(), SamplingParams())
    assert sum(r.url.path == "/v1/models" for r in server.requests) == 2


async def test_eos_and_length_keep_text_as_is() -> None:
    answers = iter(
        [
            _completion(text="done", stop_reason=None),
            httpx.Response(200, json={"choices": [{"index": 0, "text": "abc", "finish_reason": "length"}]}),
        ]
    )
    server = Server(lambda request: next(answers))
    async with _policy(server, vllm_extras=False) as policy:
        eos = await policy.generate(_context(), SamplingParams(stop=("</answer>",)))
        cut = await policy.generate(_context(), SamplingParams())
    assert (eos.text, eos.finish_reason, eos.stop_reason) == ("done", "stop", None)
    assert (cut.text, cut.finish_reason) == ("abc", "length")


async def test_extra_body_and_params_extra_are_merged() -> None:
    server = Server(lambda request: _completion(text="x"))
    policy = _policy(server, vllm_extras=False, extra_body={"top_k": 20, "repetition_penalty": 1.1})
    await policy.generate(_context(), SamplingParams(logprobs=False, extra={"top_k": 5}))
    await policy.aclose()
    (body,) = server.bodies("/v1/completions")
    assert body["top_k"] == 5 and body["repetition_penalty"] == 1.1 and "logprobs" not in body


async def test_n_choices_sorted_by_index() -> None:
    choices = [
        {"index": 1, "text": "second", "finish_reason": "stop"},
        {"index": 0, "text": "first", "finish_reason": "length"},
    ]
    server = Server(lambda request: httpx.Response(200, json={"choices": choices}))
    async with _policy(server, vllm_extras=False) as policy:
        generations = await policy.generate_n(_context(), SamplingParams(), 2)
        with pytest.raises(PolicyError, match="expected 1 choice"):
            await policy.generate(_context(), SamplingParams())
    assert [g.text for g in generations] == ["first", "second"]
    assert server.bodies("/v1/completions")[0]["n"] == 2


async def test_chat_tool_call_is_serialized_for_the_tool_call_protocol() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_9",
                "type": "function",
                "function": {"name": "search", "arguments": '{"query": "Oslo"}'},
            }
        ],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls",
                        "logprobs": {
                            "content": [{"token": "x", "logprob": -0.1}, {"token": "y", "logprob": -0.2}]
                        },
                    }
                ]
            },
        )

    server = Server(handler)
    protocol = ToolCallProtocol()
    tools = [dict(t) for t in protocol.tools() or []]
    context = Context(prompt="", messages=[{"role": "user", "content": "Where?"}], tools=tools)
    async with _policy(server, mode="chat", vllm_extras=False) as policy:
        generation = await policy.generate(context, SamplingParams())
    (body,) = server.bodies("/v1/chat/completions")
    assert body["messages"] == context.messages and body["tools"] == tools and body["logprobs"] is True
    assert generation.finish_reason == "tool_calls" and generation.logprobs == (-0.1, -0.2)
    assert generation.tool_calls[0]["function"]["name"] == "search"
    assert generation.text == ""
    parsed = protocol.parse(assistant_action(generation))
    assert (parsed.kind, parsed.query, parsed.tool_call_id) == ("search", "Oslo", "call_9")


async def test_chat_plain_answer_and_object_arguments() -> None:
    answers = iter(
        [
            {"message": {"role": "assistant", "content": "Paris"}, "finish_reason": "stop"},
            {
                "message": {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "answer", "arguments": {"answer": "Rome"}}}],
                },
                "finish_reason": "stop",
            },
        ]
    )
    server = Server(lambda request: httpx.Response(200, json={"choices": [{"index": 0, **next(answers)}]}))
    protocol = ToolCallProtocol()
    async with _policy(server, mode="chat", vllm_extras=False) as policy:
        plain = await policy.generate(_context(), SamplingParams())
        call = await policy.generate(_context(), SamplingParams())
    assert plain.text == "Paris" and plain.finish_reason == "stop" and plain.tool_calls == ()
    assert call.finish_reason == "tool_calls" and call.tool_calls[0]["id"] == "call_0"
    assert assistant_action(plain) == "Paris"
    parsed = protocol.parse(assistant_action(call))
    assert (parsed.kind, parsed.answer) == ("answer", "Rome")


async def test_retries_5xx_and_429_then_succeeds_honouring_retry_after() -> None:
    answers = iter(
        [
            httpx.Response(503, json={"error": {"message": "starting"}}),
            httpx.Response(429, headers={"Retry-After": "2"}, json={"error": "busy"}),
            _completion(text="ok"),
        ]
    )
    server = Server(lambda request: next(answers))
    sleeps: list[float] = []
    async with _policy(server, sleeps, vllm_extras=False) as policy:
        generation = await policy.generate(_context(), SamplingParams())
    assert generation.text == "ok"
    assert len(sleeps) == 2 and sleeps[0] <= 0.2 and sleeps[1] >= 2.0


async def test_connect_errors_exhaust_retries_into_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    server = Server(handler)
    sleeps: list[float] = []
    async with _policy(server, sleeps, vllm_extras=False, max_retries=2) as policy:
        with pytest.raises(PolicyUnavailable, match="after 3 attempts"):
            await policy.generate(_context(), SamplingParams())
    assert len(server.requests) == 3 and len(sleeps) == 2


async def test_timeout_raises_at_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    server = Server(handler)
    async with _policy(server, vllm_extras=False) as policy:
        with pytest.raises(PolicyTimeout):
            await policy.generate(_context(), SamplingParams())
    assert len(server.requests) == 1


async def test_4xx_is_a_request_error_with_the_server_message() -> None:
    message = "This model's maximum context length is 512 tokens"
    server = Server(lambda request: httpx.Response(400, json={"error": {"message": message}}))
    async with _policy(server, vllm_extras=False) as policy:
        with pytest.raises(PolicyRequestError, match="maximum context length") as info:
            await policy.generate(_context(), SamplingParams())
    assert info.value.status == 400 and len(server.requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        {"choices": []},
        {"choices": [{"index": 0, "text": 3, "finish_reason": "stop"}]},
        {"choices": [{"index": 0, "text": "x", "finish_reason": "weird"}]},
        {"choices": [{"index": 0, "text": "x", "finish_reason": "stop", "token_ids": ["a"]}]},
        {
            "choices": [
                {
                    "index": 0,
                    "text": "x",
                    "finish_reason": "stop",
                    "token_ids": [1, 2],
                    "logprobs": {"token_logprobs": [-1.0]},
                }
            ]
        },
    ],
)
async def test_malformed_answers_raise_policy_error(answer: dict[str, Any]) -> None:
    server = Server(lambda request: httpx.Response(200, json=answer))
    async with _policy(server, vllm_extras=False) as policy:
        with pytest.raises(PolicyError):
            await policy.generate(_context(), SamplingParams())


async def test_token_level_sends_token_ids_and_encodes_with_the_tokenizer() -> None:
    class Tokenizer:
        def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
            return "".join(chr(i) for i in ids)

        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            return [ord(c) for c in text] + ([0] if add_special_tokens else [])

        def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any:
            assert kwargs["add_generation_prompt"] and not kwargs["tokenize"]
            return "\x01" + "".join(m["content"] for m in conversation) + "\x02"

    # The server's text lost a held-back last character; the policy's text is the ids' decoding.
    server = Server(lambda request: _completion(text="h", token_ids=[104, 105]))
    async with _policy(server, tokenizer=Tokenizer(), chat_template=True) as policy:
        context = _context("ab")
        context.token_ids = policy.encode_prompt(context)
        generation = await policy.generate(context, SamplingParams(logprobs=False))
        assert policy.encode("hi") == [104, 105]
        policy.chat_template = False
        assert policy.encode_prompt(context) == [97, 98, 0]
    assert policy.token_level and context.token_ids == [1, 97, 98, 2]
    assert server.bodies("/v1/completions")[0]["prompt"] == [1, 97, 98, 2]
    assert generation.token_ids == (104, 105) and generation.text == "hi"
    # The server was never asked whether it is vLLM: a tokenizer means token ids, a vLLM extra.
    assert all(r.url.path != "/v1/models" for r in server.requests)


def test_config_errors_state_the_fix() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        OpenAIPolicy("localhost:8000", "m")
    with pytest.raises(ConfigError, match="mode"):
        OpenAIPolicy(BASE, "m", mode="edit")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mode='completions'"):
        OpenAIPolicy(BASE, "m", mode="chat", tokenizer=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_retries"):
        OpenAIPolicy(BASE, "m", max_retries=-1)
    with pytest.raises(ConfigError, match="unknown OpenAIPolicy option"):
        OpenAIPolicy(BASE, "m", retries=3)


async def test_not_token_level_refuses_to_encode_and_closed_refuses_to_generate() -> None:
    server = Server(lambda request: _completion(text="x"))
    policy = _policy(server, vllm_extras=False)
    with pytest.raises(PolicyError, match="tokenizer="):
        policy.encode("x")
    await policy.aclose()
    with pytest.raises(PolicyError, match="closed"):
        await policy.generate(_context(), SamplingParams())
