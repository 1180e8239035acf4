"""OpenAIPolicy against a server that follows the OpenAI API (hopgym.testing.openai_server), not vLLM.

Such a server cuts the stop string from the text and does not say which one matched, so before the
completion rule every search turn came back as ``<search> q`` and was invalid (issue 11 §1). These tests
play whole HopWorld episodes through the engine over real HTTP, in both API modes and the three tag
protocols, and check the rule's edges.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from hopgym.agents.errors import PolicyRequestError
from hopgym.agents.openai_policy import OpenAIPolicy, ToolsNotSupported, assistant_action, complete_cut_stop
from hopgym.agents.policy import Context, SamplingParams
from hopgym.agents.rollout.engine import collect_episodes
from hopgym.agents.scripted_policy import ScriptedOraclePolicy
from hopgym.envs import make_async
from hopgym.envs.protocols import get_protocol
from hopgym.envs.protocols.base import ActionProtocol
from hopgym.testing.openai_server import ModelRequest, OpenAIServer, ToolCall, apply_stop
from hopgym.types import Task

TAG_PROTOCOLS = ("search_r1", "research", "r1_searcher")
# What each protocol wraps an observation in, to find the observations in a completions prompt.
_OBSERVATIONS = {
    "search_r1": re.compile(r"<information>(.*?)</information>", re.S),
    "research": re.compile(r"<result>(.*?)</result>", re.S),
    "r1_searcher": re.compile(r"<\|begin_of_documents\|>(.*?)<\|end_of_documents\|>", re.S),
}
# A model goes on writing after its stop string; the server must cut all of it.
RAMBLE = " and then <information>made-up passages</information> more."


class OracleResponder:
    """The HopWorld oracle as the 'model' behind the server: it writes the next action in ``protocol``,
    followed by text a real model would write past the stop string."""

    def __init__(self, tasks: list[Task], protocol: ActionProtocol) -> None:
        self.policy = ScriptedOraclePolicy(tasks, protocol)
        self.protocol = protocol
        self.tasks = tasks

    def __call__(self, request: ModelRequest) -> str:
        if request.messages is not None:
            context = Context(prompt=request.text, messages=[dict(m) for m in request.messages])
        else:
            prompt = request.prompt or ""
            task = next(
                t for t in self.tasks if self.protocol.prompt(t) == prompt[: len(self.protocol.prompt(t))]
            )
            first = self.protocol.messages(task)
            later = _OBSERVATIONS[self.protocol.name].findall(prompt[len(self.protocol.prompt(task)) :])
            messages = [*first, *({"role": "user", "content": body} for body in later)]
            context = Context(prompt=prompt, messages=messages)
        return self.policy.next_text(context) + RAMBLE


def _hopworld(protocol: str, n: int) -> tuple[list[Task], ActionProtocol]:
    env = make_async("hopgym/HopWorld-v0", protocol=protocol)
    return list(env.tasks[:n]), env.protocol


@pytest.mark.parametrize("mode", ["completions", "chat"])
@pytest.mark.parametrize("protocol", TAG_PROTOCOLS)
async def test_episodes_over_an_openai_api_server_score_as_the_oracle(protocol: str, mode: str) -> None:
    """Fails before the fix: every search turn came back without its closing tag, so every action was
    invalid and every episode scored 0."""
    tasks, proto = _hopworld(protocol, 12)
    sampling = SamplingParams(max_tokens=256, temperature=0.0)
    direct = await collect_episodes(
        "hopgym/HopWorld-v0", ScriptedOraclePolicy(tasks, proto), tasks, env_kwargs={"protocol": protocol, "reward": "em"},
        sampling=sampling,
    )  # fmt: skip
    with OpenAIServer(OracleResponder(tasks, proto)) as server:
        async with OpenAIPolicy(server.base_url, server.model, mode=mode) as policy:
            result = await collect_episodes(
                "hopgym/HopWorld-v0",
                policy,
                tasks,
                env_kwargs={"protocol": protocol, "reward": "em"},
                sampling=sampling,
            )
        assert server.requests > len(tasks)
        assert all("stop_reason" not in str(body) for body in server.bodies)  # no vLLM extras asked
    expected = {t.task_id: t.reward for t in direct.trajectories}
    assert result.summary.failed == 0
    assert {t.task_id: t.reward for t in result.trajectories} == expected
    assert sum(expected.values()) > 0
    turns = [turn for traj in result.trajectories for turn in traj.turns]
    assert all(turn.action_kind != "invalid" for turn in turns), [t.invalid_reason for t in turns]
    for turn in turns:
        if turn.action_kind == "search":
            assert "made-up" not in turn.text
            assert turn.stop_reason is not None and turn.text.endswith(turn.stop_reason)


async def test_the_explicit_protocol_decides_which_stop_string_closes_the_turn() -> None:
    replies = iter(["<search> a query ", "<answer> x </answer>", "<answer> \\boxed{x} ", "plain text"])
    with OpenAIServer(lambda request: next(replies)) as server:
        stops = SamplingParams(stop=("</search>", "</answer>"))
        async with OpenAIPolicy(server.base_url, server.model, protocol="search_r1") as policy:
            search = await policy.generate(Context("q", []), stops)
            kept = await policy.generate(Context("q", []), stops)
        async with OpenAIPolicy(server.base_url, server.model, protocol="research") as policy:
            # ReSearch's answer ends with EOS (</answer> is no stop string of it): nothing is added.
            eos_answer = await policy.generate(Context("q", []), SamplingParams(stop=("</search>",)))
            plain = await policy.generate(Context("q", []), SamplingParams(stop=("</search>",)))
    assert (search.text, search.stop_reason) == ("<search> a query </search>", "</search>")
    assert (kept.text, kept.stop_reason) == ("<answer> x </answer>", "</answer>")
    assert (eos_answer.text, eos_answer.stop_reason) == ("<answer> \\boxed{x} ", None)
    assert (plain.text, plain.stop_reason) == ("plain text", None)


def test_complete_cut_stop_asks_the_protocols_and_needs_agreement() -> None:
    r1, sr1, research = (get_protocol(n) for n in ("r1_searcher", "search_r1", "research"))
    assert complete_cut_stop("<think> x <|begin_of_query|> q", r1.stop, [r1]) == "<|end_of_query|>"
    assert complete_cut_stop("<answer> y", sr1.stop, [sr1, research]) == "</answer>"
    assert complete_cut_stop("<search> y", sr1.stop, [sr1, research]) == "</search>"
    assert complete_cut_stop("<search> y </search>", sr1.stop, [sr1]) is None
    assert complete_cut_stop("<search> y", ("</answer>",), [sr1]) is None  # not a stop string of the turn
    assert complete_cut_stop("<search> y", sr1.stop, [get_protocol("tool_call")]) is None
    assert complete_cut_stop("no action", sr1.stop, [sr1]) is None


def _mock(choice: dict[str, Any], owned_by: str) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m", "owned_by": owned_by}]})
        return httpx.Response(200, json={"choices": [{"index": 0, **choice}]})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("choice", "owned_by", "text", "stop_reason"),
    [
        # vLLM says stop_reason null for EOS: a turn that ended on EOS inside a tag stays as it is.
        ({"text": "<search> q", "finish_reason": "stop", "stop_reason": None}, "vllm", "<search> q", None),
        # vLLM's stop token id (an int) is no stop string either.
        ({"text": "<search> q", "finish_reason": "stop", "stop_reason": 7}, "vllm", "<search> q", None),
        # SGLang names the matched stop string in matched_stop.
        ({"text": "<search> q", "finish_reason": "stop", "matched_stop": "</search>"}, "sglang",
         "<search> q</search>", "</search>"),
        # TGI: stop_sequence is a cut stop string, eos_token the model's own end.
        ({"text": "<search> q", "finish_reason": "stop_sequence"}, "tgi", "<search> q</search>", "</search>"),
        ({"text": "<search> q", "finish_reason": "eos_token"}, "tgi", "<search> q", None),
        ({"text": "<search> q", "finish_reason": "length"}, "openai", "<search> q", None),
        # A server that kept the stop string: nothing to add.
        ({"text": "<search> q</search>", "finish_reason": "stop"}, "openai", "<search> q</search>", None),
    ],
)  # fmt: skip
async def test_which_answers_are_completed(
    choice: dict[str, Any], owned_by: str, text: str, stop_reason: str | None
) -> None:
    policy = OpenAIPolicy("http://m.test/v1", "m", transport=_mock(choice, owned_by))
    async with policy:
        generation = await policy.generate(Context("q", []), SamplingParams(stop=("</search>", "</answer>")))
    assert (generation.text, generation.stop_reason) == (text, stop_reason)


async def test_a_server_that_rejects_tools_names_the_tag_protocol_fix() -> None:
    tool_call = get_protocol("tool_call")
    tools = tool_call.tools()
    assert tools is not None
    context = Context("q", [{"role": "user", "content": "q"}], tools=[dict(t) for t in tools])
    with OpenAIServer(lambda request: "x") as server:
        async with OpenAIPolicy(server.base_url, server.model, mode="chat") as policy:
            with pytest.raises(ToolsNotSupported, match=r"--protocol search_r1") as caught:
                await policy.generate(context, SamplingParams())
    assert caught.value.status == 400
    assert "tools are not supported" in str(caught.value)


async def test_tool_calls_work_against_a_server_that_supports_tools() -> None:
    tools = get_protocol("tool_call").tools()
    assert tools is not None
    context = Context("q", [{"role": "user", "content": "q"}], tools=[dict(t) for t in tools])
    reply = ToolCall("search", {"query": "capital of France"})
    with OpenAIServer(lambda request: reply, supports_tools=True) as server:
        async with OpenAIPolicy(server.base_url, server.model, mode="chat") as policy:
            generation = await policy.generate(context, SamplingParams())
    assert generation.finish_reason == "tool_calls"
    assert generation.tool_calls[0]["function"]["name"] == "search"
    parsed = get_protocol("tool_call").parse(assistant_action(generation))
    assert (parsed.kind, parsed.query) == ("search", "capital of France")


async def test_api_key_is_sent_and_a_missing_one_is_refused() -> None:
    with OpenAIServer(lambda request: "x", api_key="sk-test") as server:
        async with OpenAIPolicy(server.base_url, server.model, api_key="sk-test") as policy:
            assert (await policy.generate(Context("q", []), SamplingParams())).text == "x"
        async with OpenAIPolicy(server.base_url, server.model) as policy:
            with pytest.raises(PolicyRequestError, match="HTTP 401"):
                await policy.generate(Context("q", []), SamplingParams())


def test_apply_stop_cuts_like_the_openai_api() -> None:
    assert apply_stop("<search> q </search> more", ["</search>"], 100) == ("<search> q ", "stop")
    assert apply_stop("a b c d", ["</x>"], 2) == ("a b", "length")
    assert apply_stop("a </x> b", ["</y>", "</x>"], 1) == ("a ", "stop")
    assert apply_stop("done", [], 5) == ("done", "stop")
