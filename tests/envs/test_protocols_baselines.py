"""The seed papers' baselines (direct, naive_rag, iter_retgen, ircot): parsing, the env options they use
(``prefetch_k``, ``last_turn_answers``), episodes on the engine with scripted policies and the tiny model, and
``hopgym eval --method``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hopgym
from hopgym.agents.policy import Context, Generation, SamplingParams
from hopgym.agents.rollout.engine import collect_episodes
from hopgym.agents.scripted_policy import ScriptedOraclePolicy
from hopgym.envs import AsyncSearchQAEnv, EnvConfig
from hopgym.envs.protocols import PROTOCOL_NAMES, available_protocols, get_protocol
from hopgym.envs.protocols.baselines import (
    BASELINE_PROTOCOLS,
    METHODS,
    DirectProtocol,
    IRCoTProtocol,
    IterRetGenProtocol,
    NaiveRAGProtocol,
    extract_answer,
    method_settings,
)
from hopgym.errors import ConfigError, RetrieverError
from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.testing import check_protocol
from hopgym.types import Passage, Task

PASSAGES = [
    Passage("p1", "Velmora Works", "Velmora Works was founded by Ilsa Tarrow in 1921."),
    Passage("p2", "Ilsa Tarrow", "Ilsa Tarrow was born in the city of Quenfield."),
    Passage("p3", "Quenfield", "Quenfield is a city located in Dravonia."),
]
TASKS = [Task("t1", "Where was the founder of Velmora Works born?", ("Quenfield",))]


@pytest.fixture
def retriever() -> InMemoryBM25Retriever:
    return InMemoryBM25Retriever(PASSAGES)


# -- parsing (pure) -----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [DirectProtocol(), NaiveRAGProtocol()])
def test_direct_and_naive_rag_read_every_turn_as_the_answer(protocol: DirectProtocol) -> None:
    assert protocol.parse("Quenfield").answer == "Quenfield"
    assert protocol.parse("\n  Answer: Quenfield\nQuestion: who else?").answer == "Quenfield"
    assert protocol.parse("It is in Dravonia. So the answer is: Quenfield.\nMore").answer == "Quenfield."
    assert protocol.parse("so the answer is quenfield").answer == "quenfield"
    # The last marker wins, so re-parsing an extracted answer gives it back.
    assert protocol.parse("So the answer is: a. So the answer is: b").answer == "b"
    empty = protocol.parse(" \n ")
    assert empty.kind == "answer" and empty.answer == "" and "empty answer" in empty.notes
    assert protocol.parse(None).kind == "invalid"  # type: ignore[arg-type]
    assert protocol.stop == () and protocol.default_reward == "em"


def test_iter_retgen_drafts_are_queries_and_the_last_draft_is_the_answer(
    check_action: Callable[..., None],
) -> None:
    protocol = IterRetGenProtocol()
    draft = "Velmora Works was founded by Ilsa Tarrow.\nSo the answer is: Ilsa Tarrow"
    check_action(protocol.parse(draft), "search", draft)
    check_action(protocol.parse("  \n"), "invalid", "empty draft")
    long = protocol.parse("word " * 300)
    assert long.kind == "search" and len(long.query or "") <= 512 and "truncated" in long.notes[0]
    check_action(protocol.parse_final(draft), "answer", "Ilsa Tarrow")
    # Without the marker the whole generation is the prediction, as FlashRAG scores Iter-RetGen.
    check_action(protocol.parse_final(" Ilsa Tarrow, a founder. \n"), "answer", "Ilsa Tarrow, a founder.")
    assert protocol.prefetch_question and protocol.last_turn_answers and protocol.default_max_turns == 3


def test_ircot_thoughts_are_queries_until_the_answer_marker(check_action: Callable[..., None]) -> None:
    protocol = IRCoTProtocol()
    assert protocol.stop == ("\n",)
    check_action(protocol.parse("Velmora Works was founded by Ilsa Tarrow.\n"), "search",
                 "Velmora Works was founded by Ilsa Tarrow.")  # fmt: skip
    check_action(protocol.parse("Thought: Ilsa Tarrow was born in Quenfield.\nand more"), "search",
                 "Ilsa Tarrow was born in Quenfield.")  # fmt: skip
    check_action(
        protocol.parse("She was born there. So the answer is: Quenfield\nextra"), "answer", "Quenfield"
    )
    check_action(protocol.parse("\n\n"), "invalid", "empty thought")
    check_action(protocol.parse("Thought:"), "invalid", "empty thought")
    check_action(protocol.parse_final("Ilsa Tarrow was born in Quenfield."), "answer",
                 "Ilsa Tarrow was born in Quenfield.")  # fmt: skip
    assert protocol.parse(protocol.render_answer("Quenfield")).answer == "Quenfield"
    assert protocol.parse(protocol.render_search("Who founded it?")).query == "Who founded it?"


def test_extract_answer_is_idempotent_on_tricky_text() -> None:
    for text in [
        "Answer: Answer: x",
        "a\nSo the answer is: Answer: b\nc",
        "So the answer is:",
        "x\u2028y",
        "",
    ]:
        once = extract_answer(text)
        assert extract_answer(once) == once, text


@pytest.mark.parametrize("name", sorted(BASELINE_PROTOCOLS))
def test_check_protocol_passes(name: str) -> None:
    # direct/naive_rag never search and iter_retgen answers only on its last turn (parse_final), so the
    # round trip those lack is skipped; every other check (fuzz, random text, contract) runs.
    skip = {"direct": ("query_round_trip",), "naive_rag": ("query_round_trip",),
            "iter_retgen": ("answer_round_trip",), "ircot": ()}[name]  # fmt: skip
    check_protocol(name, skip=skip, examples=300)


def test_baselines_are_registered_but_not_agent_protocols() -> None:
    assert set(BASELINE_PROTOCOLS) <= set(available_protocols())
    assert not set(BASELINE_PROTOCOLS) & set(PROTOCOL_NAMES)
    assert isinstance(get_protocol("ircot"), IRCoTProtocol)
    custom = get_protocol("naive_rag", prompt_template="Q: {question}\n")
    assert custom.prompt(TASKS[0]) == f"Q: {TASKS[0].question}\n"


def test_prompts_hold_the_question_and_the_chat_form_asks_it() -> None:
    for name in BASELINE_PROTOCOLS:
        protocol = get_protocol(name)
        assert TASKS[0].question in protocol.prompt(TASKS[0])
        messages = protocol.messages(TASKS[0])
        assert messages[0]["role"] == "system" and messages[-1]["content"] == f"Question: {TASKS[0].question}"


# -- method settings ----------------------------------------------------------------------------------


def test_method_settings() -> None:
    assert METHODS == ("agent", "direct", "naive_rag", "iter_retgen", "ircot")
    assert method_settings("agent", protocol="research", max_turns=6) == {
        "protocol": "research",
        "max_turns": 6,
    }
    assert method_settings(None) == {"protocol": None, "max_turns": None}
    assert method_settings("direct") == {"protocol": "direct", "max_turns": 1}
    assert method_settings("iter_retgen") == {"protocol": "iter_retgen", "max_turns": 3}
    assert method_settings("ircot", max_turns=5) == {"protocol": "ircot", "max_turns": 5}
    assert method_settings("naive_rag", protocol="naive_rag")["protocol"] == "naive_rag"
    with pytest.raises(ConfigError, match="drop --protocol search_r1"):
        method_settings("ircot", protocol="search_r1")
    with pytest.raises(ConfigError, match="choose one of agent, direct"):
        method_settings("self_rag")


# -- the env options ----------------------------------------------------------------------------------


async def test_prefetch_k_puts_the_questions_passages_in_the_first_prompt(
    retriever: InMemoryBM25Retriever,
) -> None:
    env = AsyncSearchQAEnv(TASKS, retriever, "search_r1", top_k=2, prefetch_k=1)
    prompt, info = await env.reset(options={"task_id": "t1"})
    plain = env.protocol.prompt(TASKS[0])
    assert prompt.startswith(plain)
    added = prompt[len(plain) :]
    assert added.startswith("\n\n<information>") and added.count("Doc ") == 1  # prefetch_k, not top_k
    assert "Velmora Works" in added
    assert info["messages"][-1]["content"].endswith(added)  # the chat form gets the same passages
    assert len(info["messages"]) == len(env.protocol.messages(TASKS[0]))
    _, _, terminated, _, step = await env.step("<answer> Quenfield </answer>")
    assert terminated and step["num_searches"] == 1  # the prefetch counts as a search


async def test_prefetch_defaults_to_top_k_for_baselines_and_to_none_for_agents(
    retriever: InMemoryBM25Retriever,
) -> None:
    rag = AsyncSearchQAEnv(TASKS, retriever, "naive_rag", top_k=2)
    prompt, info = await rag.reset(options={"task_id": "t1"})
    assert prompt.count("Doc ") == 2 and "Documents:" in info["messages"][-1]["content"]
    off = AsyncSearchQAEnv(TASKS, retriever, "naive_rag", top_k=2, prefetch_k=0)
    assert (await off.reset(options={"task_id": "t1"}))[0] == off.protocol.prompt(TASKS[0])
    agent = AsyncSearchQAEnv(TASKS, retriever, "search_r1")
    assert (await agent.reset(options={"task_id": "t1"}))[0] == agent.protocol.prompt(TASKS[0])
    with pytest.raises(ConfigError, match="prefetch_k=-1"):
        EnvConfig(prefetch_k=-1)
    assert EnvConfig(prefetch_k="2", last_turn_answers="true") == EnvConfig(  # type: ignore[arg-type]
        prefetch_k=2, last_turn_answers=True
    )  # text from --env-arg


async def test_prefetch_retriever_failure_is_raised_not_hidden() -> None:
    class Down(InMemoryBM25Retriever):
        async def search(self, queries: Any, k: int) -> Any:
            raise RetrieverError("backend down")

    env = AsyncSearchQAEnv(TASKS, Down(PASSAGES), "naive_rag")
    with pytest.raises(RetrieverError, match="backend down"):
        await env.reset(options={"task_id": "t1"})


async def test_last_turn_answers(retriever: InMemoryBM25Retriever) -> None:
    # Opted in for an agent protocol: the last allowed turn ends the episode answered.
    env = AsyncSearchQAEnv(TASKS, retriever, "search_r1", reward="em", max_turns=2, last_turn_answers=True)
    await env.reset(options={"task_id": "t1"})
    _, _, terminated, _, info = await env.step("<search> Velmora Works </search>")
    assert not terminated and info["action_kind"] == "search"
    _, reward, terminated, truncated, info = await env.step(" Quenfield ")
    assert (terminated, truncated, reward, info["answer"]) == (True, False, 1.0, "Quenfield")
    # ... and an answer parse finds is kept as parsed.
    await env.reset(options={"task_id": "t1"})
    await env.step("<search> Velmora Works </search>")
    assert (await env.step("<answer> Quenfield </answer>"))[4]["answer"] == "Quenfield"
    # Iter-RetGen's rounds: drafts are searches, the last one is the answer (parse_final).
    rounds = AsyncSearchQAEnv(TASKS, retriever, "iter_retgen", max_turns=2)
    await rounds.reset(options={"task_id": "t1"})
    _, _, terminated, _, info = await rounds.step("Ilsa Tarrow founded it. So the answer is: Ilsa Tarrow")
    assert not terminated and info["query"] == "Ilsa Tarrow founded it. So the answer is: Ilsa Tarrow"
    _, reward, terminated, _, info = await rounds.step(
        "She was born in Quenfield. So the answer is: Quenfield"
    )
    assert terminated and info["answer"] == "Quenfield" and reward == 1.0 and info["num_searches"] == 2
    # Turned off, the last draft is a search like the others and the episode is cut off unanswered.
    off = AsyncSearchQAEnv(TASKS, retriever, "iter_retgen", max_turns=1, last_turn_answers=False)
    await off.reset(options={"task_id": "t1"})
    _, reward, terminated, truncated, info = await off.step("So the answer is: Quenfield")
    assert (terminated, truncated, reward, info["answer"]) == (False, True, 0.0, None)


async def test_malformed_turns_are_env_outcomes(retriever: InMemoryBM25Retriever) -> None:
    env = AsyncSearchQAEnv(TASKS, retriever, "ircot", max_turns=3)
    await env.reset(options={"task_id": "t1"})
    obs, _, terminated, _, info = await env.step("   \n")
    assert info["invalid"] and not terminated and "empty thought" in obs
    _, _, terminated, _, info = await env.step("\x00<search>")
    assert info["action_kind"] == "search" and not terminated
    _, _, terminated, _, info = await env.step("")  # the last turn: read as an (empty) answer
    assert terminated and info["answer"] == ""


# -- episodes on the engine ---------------------------------------------------------------------------


class _Scripted:
    """A policy writing ``reply(context, turn)``; records each turn's context text and stop strings."""

    name = "scripted"

    def __init__(self, reply: Callable[[Context, int], str]) -> None:
        self.reply = reply
        self.seen: list[tuple[str, tuple[str, ...]]] = []

    async def generate(self, context: Context, params: SamplingParams) -> Generation:
        turn = sum(1 for m in context.messages if m["role"] == "assistant")
        self.seen.append((context.prompt + context.text, params.stop))
        return Generation(text=self.reply(context, turn), finish_reason="stop")

    async def aclose(self) -> None:
        return None


def _golden(env: AsyncSearchQAEnv, context: Context) -> str:
    task = next(t for t in env.tasks if t.question in context.prompt)
    return task.golden_answers[0]


async def test_direct_and_naive_rag_episodes_on_hopworld() -> None:
    for method, searches in (("direct", 0), ("naive_rag", 1)):
        settings = method_settings(method)
        env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=4, **settings)
        policy = _Scripted(lambda ctx, turn, env=env: f"Answer: {_golden(env, ctx)}\nQuestion: next one?")
        result = await collect_episodes(env, policy, [t.id for t in env.tasks[:6]], concurrency=3)
        await env.aclose()
        assert result.summary.failed == 0 and result.summary.finished == 6
        for traj in result.trajectories:
            assert traj.termination == "answered" and len(traj.turns) == 1 and traj.reward == 1.0
            assert traj.num_searches == searches
            assert ("Documents:" in traj.prompt) is (method == "naive_rag")
            assert traj.prompt.count("Doc ") == 3 * searches  # top_k passages, only with naive_rag


async def test_iter_retgen_episodes_run_their_rounds_on_hopworld() -> None:
    env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=4, **method_settings("iter_retgen"))

    def draft(ctx: Context, turn: int) -> str:
        return f"Round {turn} draft. So the answer is: {_golden(env, ctx) if turn == 2 else 'unsure'}"

    policy = _Scripted(draft)
    result = await collect_episodes(env, policy, [t.id for t in env.tasks[:4]], concurrency=2)
    await env.aclose()
    for traj in result.trajectories:
        assert traj.termination == "answered" and len(traj.turns) == 3 and traj.reward == 1.0
        assert [t.action_kind for t in traj.turns] == ["search", "search", "answer"]
        assert traj.turns[0].query == "Round 0 draft. So the answer is: unsure"  # the draft is the query
        assert traj.num_searches == 3 and traj.turns[1].observation.endswith("Answer:")
    assert all(stop == () for _, stop in policy.seen)


async def test_ircot_with_the_oracle_answers_multi_hop_questions_on_hopworld() -> None:
    # The oracle writes its hop queries as thoughts and "So the answer is: ..." at the end.
    env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=4, **method_settings("ircot", max_turns=4))
    oracle = ScriptedOraclePolicy(env.tasks, env.protocol)
    result = await collect_episodes(env, oracle, [t.id for t in env.tasks[:10]], concurrency=5)
    await env.aclose()
    assert result.summary.failed == 0
    for traj in result.trajectories:
        assert traj.termination == "answered" and traj.reward == 1.0
        assert [t.action_kind for t in traj.turns] == ["search", "search", "answer"]
        assert traj.turns[-1].text.startswith("So the answer is: ")
        assert traj.turns[0].observation.endswith("Thought:") and "Wikipedia Title: " in traj.prompt


@pytest.mark.parametrize("method", sorted(BASELINE_PROTOCOLS))
async def test_each_method_with_the_tiny_model(method: str, tiny_policy: Any) -> None:
    env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=4, **method_settings(method))
    result = await collect_episodes(
        env, tiny_policy, [t.id for t in env.tasks[:3]], concurrency=3,
        sampling=SamplingParams(max_tokens=16, temperature=1.0, seed=1),
    )  # fmt: skip
    await env.aclose()
    assert result.summary.failed == 0 and result.summary.finished == 3
    limit = method_settings(method)["max_turns"]
    for traj in result.trajectories:
        # Whatever the model writes, every baseline episode ends answered within its turns.
        assert traj.termination == "answered" and traj.reward is not None and traj.answer is not None
        assert len(traj.turns) <= limit
        assert traj.num_searches == (
            0 if method == "direct" else 1 + sum(t.action_kind == "search" for t in traj.turns)
        )


@pytest.fixture(scope="module")
def tiny_policy() -> Any:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from hopgym.agents.transformers_policy import TransformersPolicy
    from hopgym.testing.tiny_model import build_tiny_model

    return TransformersPolicy(build_tiny_model(), max_batch_size=4, max_wait_ms=5, torch_threads=1)


# -- hopgym eval --method -----------------------------------------------------------------------------


def test_eval_method_naive_rag_with_the_oracle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hopgym.cli import main

    out = tmp_path / "rag"
    assert main(["eval", "--method", "naive_rag", "--limit", "5", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["protocol"], config["max_turns"], config["reward"]) == ("naive_rag", 1, "em")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 5 and summary["mean_searches"] == 1.0
    assert summary["terminations"] == {"answered": 5}
    assert main(["eval", "--method", "ircot", "--protocol", "search_r1", "--limit", "1"]) == 2
    assert "drop --protocol search_r1" in capsys.readouterr().err


def test_eval_method_naive_rag_against_an_openai_api_server_on_hotpotqa(
    shared_data: Any, tmp_path: Path
) -> None:
    from hopgym.cli import main
    from hopgym.testing.openai_server import ModelRequest, OpenAIServer

    data, corpus = shared_data("hotpotqa", "dev_500.jsonl"), shared_data("hotpotqa", "corpus.jsonl")
    golds = {}
    for line in data.read_text(encoding="utf-8").splitlines()[:4]:
        row = json.loads(line)
        golds[row["question"]] = row["golden_answers"][0]

    def respond(request: ModelRequest) -> str:
        # A "model" that knows the answers: checks the question's passages reached it, and the extraction.
        text = request.text
        assert re.search(r"Documents:\nDoc 1\(Title: ", text), text
        question = max((q for q in golds if q in text), key=len)
        return f"Answer: {golds[question]}\nQuestion: another one?"

    with OpenAIServer(respond) as server:
        out = tmp_path / "run"
        args = ["eval", "--data", str(data), "--retriever", f"bm25:{corpus}", "--base-url", server.base_url,
                "--model", server.model, "--method", "naive_rag", "--limit", "4", "--out", str(out)]  # fmt: skip
        assert main(args) == 0
        assert server.requests == 4  # one generation per episode
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["em"] == 1.0 and summary["failed"] == 0 and summary["mean_searches"] == 1.0
