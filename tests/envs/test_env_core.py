"""The async env core against real protocols, rewards and the in-memory BM25 retriever."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from gymnasium.error import ResetNeeded

from hopgym.envs import AsyncSearchQAEnv, EnvConfig
from hopgym.envs.protocols import PROTOCOL_NAMES, SearchR1Protocol, get_protocol
from hopgym.envs.rewards import get_reward
from hopgym.errors import ConfigError, RetrieverError
from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.types import Passage, RewardInput, Task

PASSAGES = [
    Passage("p1", "Velmora Works", "Velmora Works was founded by Ilsa Tarrow in 1921."),
    Passage("p2", "Ilsa Tarrow", "Ilsa Tarrow was born in the city of Quenfield."),
    Passage("p3", "Quenfield", "Quenfield is a city located in Dravonia."),
    Passage("p4", "Orbel Mills", "Orbel Mills was founded by Tomas Brake."),
]
TASKS = [
    Task("t1", "Who founded Velmora Works?", ("Ilsa Tarrow",)),
    Task("t2", "Where was the founder of Velmora Works born?", ("Quenfield",)),
]


@pytest.fixture
def retriever() -> InMemoryBM25Retriever:
    return InMemoryBM25Retriever(PASSAGES)


async def test_reset_gives_prompt_and_chat_messages(retriever: InMemoryBM25Retriever) -> None:
    async with AsyncSearchQAEnv(TASKS, retriever) as env:
        obs, info = await env.reset(options={"task_id": "t1"})
        assert "Who founded Velmora Works?" in obs
        assert info["task_id"] == "t1" and info["turn"] == 0
        assert any("Who founded Velmora Works?" in m["content"] for m in info["messages"])
        assert info["stop"] == list(env.protocol.stop)
        assert "golden_answers" not in info  # the policy must not see the answer


async def test_search_then_answer_episode(retriever: InMemoryBM25Retriever) -> None:
    env = AsyncSearchQAEnv(TASKS, retriever, "search_r1", top_k=2)
    await env.reset(options={"task_id": "t1"})
    obs, reward, terminated, truncated, info = await env.step(
        "<think>look it up</think>\n<search>Velmora Works founder</search>"
    )
    assert obs.startswith("\n\n<information>") and obs.rstrip().endswith("</information>")
    assert "Ilsa Tarrow" in obs
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["action_kind"] == "search" and info["query"] == "Velmora Works founder"
    assert info["passage_ids"][0] == "p1" and len(info["passage_ids"]) <= 2
    assert info["num_searches"] == 1 and info["invalid"] is False

    obs, reward, terminated, truncated, info = await env.step(
        "<think>found</think>\n<answer>Ilsa Tarrow</answer>"
    )
    assert obs == ""
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["answer"] == "Ilsa Tarrow" and info["turn"] == 2
    with pytest.raises(ResetNeeded):
        await env.step("<answer>again</answer>")


async def test_wrong_answer_scores_zero(retriever: InMemoryBM25Retriever) -> None:
    env = AsyncSearchQAEnv(TASKS, retriever, "search_r1", reward="f1")
    await env.reset(options={"task_id": "t1"})
    _, reward, terminated, _, info = await env.step("<answer>Tomas Brake</answer>")
    assert terminated and reward == 0.0
    assert info["reward_components"] == {"f1": 0.0}


async def test_partial_answer_gets_partial_f1(retriever: InMemoryBM25Retriever) -> None:
    env = AsyncSearchQAEnv(TASKS, retriever, "search_r1", reward="f1")
    await env.reset(options={"task_id": "t1"})
    _, reward, _, _, info = await env.step("<answer>Ilsa Brake</answer>")
    assert reward == 0.5 and info["reward_components"] == {"f1": 0.5}


async def test_invalid_action_is_an_outcome_not_a_crash(retriever: InMemoryBM25Retriever) -> None:
    env = AsyncSearchQAEnv(TASKS, retriever, "search_r1", max_turns=3)
    await env.reset(options={"task_id": "t1"})
    obs, reward, terminated, truncated, info = await env.step("I think the answer is obvious")
    assert info["invalid"] is True and info["action_kind"] == "invalid" and info["invalid_reason"]
    assert obs == env.protocol.invalid_message(env.protocol.parse("I think the answer is obvious"))
    assert (reward, terminated, truncated) == (0.0, False, False)


async def test_truncated_after_max_turns(retriever: InMemoryBM25Retriever) -> None:
    env = AsyncSearchQAEnv(TASKS, retriever, "search_r1", max_turns=2)
    await env.reset(options={"task_id": "t2"})
    *_, terminated, truncated, _ = await env.step("<search>Velmora Works</search>")
    assert not terminated and not truncated
    _, reward, terminated, truncated, info = await env.step("<search>Ilsa Tarrow born</search>")
    assert (reward, terminated, truncated) == (0.0, False, True)
    assert info["turn"] == 2 and info["num_searches"] == 2


async def test_observation_char_cap_keeps_tags_balanced(retriever: InMemoryBM25Retriever) -> None:
    env = AsyncSearchQAEnv(TASKS, retriever, "search_r1", max_observation_chars=20)
    await env.reset(options={"task_id": "t1"})
    obs, *_, info = await env.step("<search>Velmora Works</search>")
    assert info["observation_truncated"] is True
    body = obs.split("<information>", 1)[1].split("</information>", 1)[0]
    assert len(body) <= 20 and obs.count("<information>") == obs.count("</information>") == 1


async def test_observation_token_cap(retriever: InMemoryBM25Retriever) -> None:
    def count_words(text: str) -> int:
        return len(text.split())

    env = AsyncSearchQAEnv(TASKS, retriever, "search_r1", max_observation_tokens=5, count_tokens=count_words)
    await env.reset(options={"task_id": "t1"})
    obs, *_, info = await env.step("<search>Velmora Works</search>")
    body = obs.split("<information>", 1)[1].split("</information>", 1)[0]
    assert info["observation_truncated"] and count_words(body) <= 5
    with pytest.raises(ConfigError, match="count_tokens"):
        AsyncSearchQAEnv(TASKS, retriever, max_observation_tokens=5)


async def test_seeded_reset_is_deterministic(retriever: InMemoryBM25Retriever) -> None:
    tasks = [Task(f"t{i}", f"question {i}?", ("x",)) for i in range(50)]
    env = AsyncSearchQAEnv(tasks, retriever)
    first = [(await env.reset(seed=7))[1]["task_id"]]
    first += [(await env.reset())[1]["task_id"] for _ in range(5)]
    second = [(await env.reset(seed=7))[1]["task_id"]]
    second += [(await env.reset())[1]["task_id"] for _ in range(5)]
    assert first == second
    assert len(set(first)) > 1


async def test_reset_options_errors(retriever: InMemoryBM25Retriever) -> None:
    env = AsyncSearchQAEnv(TASKS, retriever)
    with pytest.raises(ConfigError, match="task_id"):
        await env.reset(options={"task_id": "nope"})
    with pytest.raises(ConfigError, match="task_index"):
        await env.reset(options={"task_index": 9})
    with pytest.raises(ConfigError, match="unknown reset options"):
        await env.reset(options={"tsk_id": "t1"})
    assert (await env.reset(options={"task_index": 1}))[1]["task_id"] == "t2"


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match="max_turns"):
        EnvConfig(max_turns=0)
    with pytest.raises(ConfigError, match="top_k"):
        EnvConfig(top_k=0)
    with pytest.raises(ConfigError, match="Retriever protocol"):
        AsyncSearchQAEnv(TASKS, object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="tasks is empty"):
        AsyncSearchQAEnv([], InMemoryBM25Retriever(PASSAGES))


async def test_retriever_failure_raises_instead_of_zero_reward(retriever: InMemoryBM25Retriever) -> None:
    env = AsyncSearchQAEnv(TASKS, retriever)
    await env.reset(options={"task_id": "t1"})
    await retriever.aclose()  # a real failure: the backend is gone
    with pytest.raises(RetrieverError):
        await env.step("<search>Velmora Works</search>")


async def test_aclose_closes_only_an_owned_retriever() -> None:
    shared = InMemoryBM25Retriever(PASSAGES)
    async with AsyncSearchQAEnv(TASKS, shared):
        pass
    assert await shared.search(["Velmora"], 1)  # still usable
    owned = InMemoryBM25Retriever(PASSAGES)
    env = AsyncSearchQAEnv(TASKS, owned, close_retriever=True)
    await env.aclose()
    await env.aclose()
    with pytest.raises(RetrieverError):
        await owned.search(["Velmora"], 1)


@pytest.mark.parametrize("name", PROTOCOL_NAMES)
async def test_every_protocol_round_trips_through_the_env(
    name: str, retriever: InMemoryBM25Retriever
) -> None:
    protocol = get_protocol(name)
    env = AsyncSearchQAEnv(TASKS, retriever, protocol, reward="em")
    _, info = await env.reset(options={"task_id": "t1"})
    if name == "tool_call":
        assert info["tools"] and info["tools"][0]["function"]["name"] == "search"
    obs, *_, info = await env.step(protocol.render_search("Velmora Works founder"))
    assert info["action_kind"] == "search" and "Ilsa Tarrow" in obs
    _, reward, terminated, _, info = await env.step(protocol.render_answer("Ilsa Tarrow"))
    assert terminated and reward == 1.0 and info["answer"] == "Ilsa Tarrow"


async def test_tasks_from_jsonl_path(tmp_path, retriever: InMemoryBM25Retriever) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text(
        '{"id": "a", "question": "Who founded Velmora Works?", "golden_answers": ["Ilsa Tarrow"]}\n'
    )
    env = AsyncSearchQAEnv(path, retriever)
    assert [t.id for t in env.tasks] == ["a"]


async def test_clone_shares_immutable_parts_and_has_its_own_episode(retriever: InMemoryBM25Retriever) -> None:
    env = AsyncSearchQAEnv(TASKS, retriever, close_retriever=True)
    await env.reset(options={"task_id": "t1"})
    await env.step("<search>Velmora Works</search>")
    other = InMemoryBM25Retriever(PASSAGES[:1])
    twin = env.clone(retriever=other)
    assert twin.tasks is env.tasks and twin.protocol is env.protocol and twin.reward_fn is env.reward_fn
    assert twin.retriever is other and twin.render() == ""
    with pytest.raises(ResetNeeded):
        await twin.step("<answer>x</answer>")
    await twin.reset(options={"task_id": "t2"})
    _, _, _, _, info = await env.step("<answer>Ilsa Tarrow</answer>")  # the original episode is untouched
    assert info["turn"] == 2
    await twin.aclose()
    assert await other.search(["Velmora"], 1)  # a clone never closes its retriever


async def test_truncate_scores_the_episode_as_cut_off(retriever: InMemoryBM25Retriever) -> None:
    env = AsyncSearchQAEnv(TASKS, retriever, "research")
    await env.reset(options={"task_id": "t1"})
    await env.step("<think>x</think><search>Velmora Works</search>")
    reward, details = env.truncate()
    assert reward == 0.0 and isinstance(details, dict)  # ReSearch scores a cut-off generation 0
    with pytest.raises(ResetNeeded):
        env.truncate()
    with pytest.raises(ResetNeeded):
        await env.step("<answer>x</answer>")


SEED_REWARDS = {
    "search_r1": "search_r1",
    "research": "research",
    "r1_searcher": "r1_searcher",
    "tool_call": "em",
}


@pytest.mark.parametrize("name", PROTOCOL_NAMES)
async def test_env_scores_with_the_protocols_default_reward(
    name: str, retriever: InMemoryBM25Retriever
) -> None:
    protocol = get_protocol(name)
    assert protocol.default_reward == SEED_REWARDS[name]
    env = AsyncSearchQAEnv(TASKS, retriever, protocol)
    await env.reset(options={"task_id": "t1"})
    answer = protocol.render_answer("Ilsa Tarrow")
    *_, info = await env.step(answer)
    expected = get_reward(SEED_REWARDS[name])(
        RewardInput(response=answer, golden_answers=("Ilsa Tarrow",), prediction="Ilsa Tarrow")
    )
    assert info["reward_components"] == dict(expected.reward_components)


async def test_a_custom_protocol_names_its_own_default_reward(retriever: InMemoryBM25Retriever) -> None:
    @dataclass(frozen=True)
    class F1Tags(SearchR1Protocol):
        default_reward = "f1"

    env = AsyncSearchQAEnv(TASKS, retriever, F1Tags())
    await env.reset(options={"task_id": "t1"})
    _, reward, *_, info = await env.step("<answer>Ilsa Brake</answer>")
    assert reward == 0.5 and info["reward_components"] == {"f1": 0.5}
