"""The episode engine driven by the scripted HopWorld oracle: concurrency, groups, masks, errors, resume."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import hopgym
from hopgym.agents.policy import Context, Generation, SamplingParams
from hopgym.agents.rollout.config import RolloutConfig
from hopgym.agents.rollout.engine import collect_episodes, run_episodes, run_episodes_sync
from hopgym.agents.rollout.store import TrajectoryStore
from hopgym.agents.rollout.trajectory import verify_trajectory
from hopgym.agents.scripted_policy import ScriptedOraclePolicy, TokenScriptedOraclePolicy
from hopgym.envs.core import AsyncSearchQAEnv
from hopgym.envs.pool import EnvPool
from hopgym.envs.protocols import PROTOCOL_NAMES
from hopgym.envs.protocols.search_r1 import SearchR1Protocol
from hopgym.errors import ConfigError, RetrieverUnavailable
from hopgym.types import Passage


def _chars(text: str) -> list[int]:
    return [ord(c) for c in text]


def _unchars(ids: object) -> str:
    return "".join(chr(i) for i in ids)  # type: ignore[attr-defined]


@pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
async def test_concurrency_256_oracle_solves_everything(protocol: str) -> None:
    env = hopgym.make_async("hopgym/HopWorld-v0", world_seed=3, protocol=protocol, reward="em")
    policy = ScriptedOraclePolicy(env.tasks, env.protocol)
    result = await asyncio.wait_for(collect_episodes(env, policy, concurrency=256, samples_per_task=2), 60)
    await env.aclose()
    trajs = result.trajectories
    assert len(trajs) == 400 and result.summary.finished == 400 and result.summary.failed == 0
    assert all(t.reward == 1.0 and t.termination == "answered" for t in trajs)
    assert Counter(t.key for t in trajs) == Counter({(t.id, s): 1 for t in env.tasks for s in (0, 1)})
    assert all(t.group_id == t.task_id for t in trajs)
    assert result.summary.mean_reward == 1.0
    first = trajs[0]
    assert first.turns[-1].action_kind == "answer" and first.answer is not None
    assert first.num_searches == sum(turn.action_kind == "search" for turn in first.turns) >= 2
    searches = [turn for turn in first.turns if turn.action_kind == "search"]
    assert all(turn.query and len(turn.passage_ids) == 3 for turn in searches)


async def test_searches_of_all_episodes_share_one_micro_batching_retriever() -> None:
    env = hopgym.make_async("hopgym/HopWorld-3hop-v0", world_seed=1)
    policy = ScriptedOraclePolicy(env.tasks, env.protocol, delay_s=0.001)
    seen: list[int] = []
    result = await collect_episodes(env, policy, concurrency=64, retriever_batching={"on_batch": seen.append})
    await env.aclose()
    searches = sum(t.num_searches for t in result.trajectories)
    # Every search went through the one shared wrapper (this in-memory backend answers without yielding,
    # so each goes out at once: batching only forms under contention, tested in test_batching.py).
    assert sum(seen) == searches


async def test_token_level_mask_covers_generated_text_only() -> None:
    env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=2, protocol="search_r1", reward="em")
    policy = TokenScriptedOraclePolicy(env.tasks, env.protocol, _chars)
    result = await collect_episodes(env, policy, [t.id for t in env.tasks[:20]], concurrency=8)
    await env.aclose()
    for traj in result.trajectories:
        assert verify_trajectory(traj, _unchars) == []
        assert traj.token_ids is not None and traj.loss_mask is not None and traj.action_spans is not None
        n = traj.prompt_token_count
        assert n is not None and _unchars(traj.token_ids[:n]) == traj.prompt and not any(traj.loss_mask[:n])
        context = _unchars(i for i, m in zip(traj.token_ids[n:], traj.loss_mask[n:], strict=True) if not m)
        assert context.count("<information>") == traj.num_searches >= 2
        assert "<search>" not in context and "<answer>" not in context
        spans = [_unchars(traj.token_ids[a:b]) for a, b in traj.action_spans]
        assert spans == [turn.text for turn in traj.turns]
        assert spans[-1].startswith("<answer>") and all(s.startswith("<search>") for s in spans[:-1])


class _FlakyPolicy(ScriptedOraclePolicy):
    """Raises for some tasks (a backend failure)."""

    def __init__(self, *args: object, bad: set[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.bad = bad

    async def generate(self, context: Context, params: SamplingParams) -> Generation:
        if self._task(context).id in self.bad:
            raise RuntimeError("backend exploded")
        return await super().generate(context, params)


async def test_policy_errors_fail_only_their_episodes_and_are_retried_on_resume(tmp_path: Path) -> None:
    env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=6, reward="em")
    ids = [t.id for t in env.tasks[:30]]
    bad = set(ids[:5])
    store = tmp_path / "run.jsonl"
    flaky = _FlakyPolicy(env.tasks, env.protocol, bad=bad)
    first = await collect_episodes(env, flaky, ids, concurrency=16, store=store)
    failed = [t for t in first.trajectories if t.failed]
    assert {t.task_id for t in failed} == bad and first.summary.failed == 5
    assert all(t.reward is None and t.error == "RuntimeError: backend exploded" for t in failed)
    assert first.summary.errors == Counter({"RuntimeError": 5})
    assert all(t.reward == 1.0 for t in first.trajectories if not t.failed)
    assert len(list(TrajectoryStore(store))) == 30  # failures are kept, with their reason

    good = ScriptedOraclePolicy(env.tasks, env.protocol)
    second = await collect_episodes(env, good, ids, concurrency=16, store=store)
    await env.aclose()
    assert second.summary.skipped == 25
    assert {t.task_id for t in second.trajectories} == bad and second.summary.failed == 0
    assert TrajectoryStore(store).done_keys() == {(i, 0) for i in ids}


class _BrokenRetriever:
    async def search(self, queries: object, k: int) -> list[list[Passage]]:
        raise RetrieverUnavailable("index server is down")

    async def aclose(self) -> None:
        return None


async def test_retriever_failure_marks_episode_failed_never_zero_reward() -> None:
    proto = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=6)
    env = AsyncSearchQAEnv(proto.tasks, _BrokenRetriever(), proto.protocol)
    policy = ScriptedOraclePolicy(proto.tasks, proto.protocol)
    result = await collect_episodes(env, policy, [t.id for t in proto.tasks[:4]])
    await proto.aclose()
    assert [t.termination for t in result.trajectories] == ["failed"] * 4
    assert all(
        t.error == "RetrieverUnavailable: index server is down" and t.reward is None
        for t in result.trajectories
    )


async def test_tasks_are_fed_lazily_and_early_exit_cancels_cleanly() -> None:
    env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=6)
    policy = ScriptedOraclePolicy(env.tasks, env.protocol, delay_s=0.01)
    pulled: list[str] = []

    def lazy() -> Iterator[str]:
        for i in range(10_000):
            task_id = env.tasks[i % len(env.tasks)].id
            pulled.append(task_id)
            yield task_id

    run = run_episodes(env, policy, lazy(), concurrency=4, samples_per_task=1)
    got = []
    async with run:
        async for traj in run:
            got.append(traj)
            if len(got) == 3:
                break
    assert len(pulled) <= 3 + 4 + 4 + 1  # consumed + running + queued results: never the whole iterable
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert pending == []
    await env.aclose()


class _LengthPolicy:
    """A token-level policy that never closes its tag: every turn hits max_tokens."""

    token_level = True
    name = "rambler"

    def __init__(self) -> None:
        self.seen: list[SamplingParams] = []

    async def generate(self, context: Context, params: SamplingParams) -> Generation:
        self.seen.append(params)
        ids = tuple(_chars("<search>ab" * 10)[: params.max_tokens])
        return Generation(
            text=_unchars(ids), finish_reason="length", token_ids=ids, logprobs=(-1.0,) * len(ids)
        )

    def encode_prompt(self, context: Context) -> list[int]:
        return _chars(context.prompt)

    def encode(self, text: str) -> list[int]:
        return _chars(text)

    async def aclose(self) -> None:
        return None


async def test_cut_generations_are_stepped_and_the_token_budget_ends_with_length() -> None:
    env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=6, max_turns=50)
    task = env.tasks[0]
    policy = _LengthPolicy()
    prompt_len = len(env.protocol.prompt(task))
    budget = prompt_len + 200
    params = SamplingParams(max_tokens=40, stop=("STOP",), seed=7)
    result = await collect_episodes(env, policy, [task.id], sampling=params, max_episode_tokens=budget)
    await env.aclose()
    (traj,) = result.trajectories
    assert traj.termination == "length" and traj.reward == 0.0
    assert all(turn.finish_reason == "length" and turn.action_kind == "invalid" for turn in traj.turns)
    assert traj.token_ids is not None and len(traj.token_ids) >= budget
    assert verify_trajectory(traj, _unchars) == []
    assert all(set(p.stop) == {"STOP", *env.protocol.stop} for p in policy.seen)
    assert policy.seen[-1].max_tokens < 40  # the last turn only gets the room left
    seeds = [p.seed for p in policy.seen]
    assert len(set(seeds)) == len(seeds)  # a fresh seed per turn, derived from the run's seed


def test_sync_wrapper_with_env_id_and_store(tmp_path: Path) -> None:
    env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=9)
    policy = ScriptedOraclePolicy(env.tasks, env.protocol)
    ids = [t.id for t in env.tasks[:10]]
    result = run_episodes_sync(
        "hopgym/HopWorld-2hop-v0", policy, ids, env_kwargs={"world_seed": 9}, samples_per_task=3,
        store=tmp_path / "o.jsonl",
    )  # fmt: skip
    assert result.summary.finished == 30 and result.summary.mean_reward == 1.0
    again = run_episodes_sync("hopgym/HopWorld-2hop-v0", policy, ids, env_kwargs={"world_seed": 9},
                              samples_per_task=3, store=tmp_path / "o.jsonl")  # fmt: skip
    assert again.trajectories == [] and again.summary.skipped == 30


@dataclasses.dataclass(frozen=True)
class _TaggedObservations(SearchR1Protocol):
    """A protocol that sends observations back in its own chat role."""

    def observation_message(self, body: str, call_id: str | None) -> dict[str, object]:
        return {"role": "observation", "content": body, "call": call_id}


class _RecordingOracle(ScriptedOraclePolicy):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen: list[list[dict[str, object]]] = []

    async def generate(self, context: Context, params: SamplingParams) -> Generation:
        self.seen.append([dict(m) for m in context.messages])
        return await super().generate(context, params)


async def test_the_protocol_builds_the_observation_message() -> None:
    proto = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=2, reward="em")
    env = AsyncSearchQAEnv(proto.tasks, proto.retriever, _TaggedObservations())
    policy = _RecordingOracle(proto.tasks, env.protocol)
    result = await collect_episodes(env, policy, [proto.tasks[0].id])
    await proto.aclose()
    (traj,) = result.trajectories
    assert traj.reward == 1.0 and traj.num_searches >= 2
    last = policy.seen[-1]
    observations = [m for m in last if m["role"] not in ("system", "user", "assistant")]
    assert [m["role"] for m in observations] == ["observation"] * traj.num_searches
    assert [m["content"] for m in observations] == [t.observation for t in traj.turns[:-1]]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("concurrency", 0, "concurrency=0 is invalid"),
        ("samples_per_task", True, "samples_per_task=True is invalid"),
        ("sampling", {"max_tokens": 5}, "sampling must be a SamplingParams"),
        ("max_episode_tokens", 0, "max_episode_tokens=0 is invalid"),
        ("retriever_batching", "on", "retriever_batching='on'"),
    ],
)
def test_rollout_config_names_the_bad_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RolloutConfig(**{field: value})  # type: ignore[arg-type]


async def test_one_env_pool_serves_several_runs_with_a_config() -> None:
    proto = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=5, reward="em")
    policy = ScriptedOraclePolicy(proto.tasks, proto.protocol)
    config = RolloutConfig(concurrency=8, samples_per_task=2)
    ids = [t.id for t in proto.tasks[:6]]
    async with EnvPool(proto) as pool:
        first = await collect_episodes(pool, policy, ids, config)
        second = await collect_episodes(pool, policy, ids, config, samples_per_task=1)  # a keyword wins
        assert pool.retriever is not None  # still open: the runs did not own the pool
        (hits,) = await pool.retriever.search([proto.tasks[0].question], 1)
        assert hits
    await proto.aclose()
    assert first.summary.finished == 12 and second.summary.finished == 6
    assert {t.reward for t in first.trajectories + second.trajectories} == {1.0}
    with pytest.raises(ConfigError, match="env_kwargs apply to an env id"):
        run_episodes(pool, policy, ids, env_kwargs={"world_seed": 1})


def test_a_token_budget_needs_a_token_level_policy() -> None:
    env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=5)
    policy = ScriptedOraclePolicy(env.tasks, env.protocol)
    with pytest.raises(ConfigError, match="max_episode_tokens needs a token-level policy"):
        run_episodes(env, policy, max_episode_tokens=100)


def test_the_agents_face_is_light_and_complete() -> None:
    import subprocess
    import sys

    import hopgym.agents as agents
    import hopgym.agents.rollout as rollout

    code = (
        "import sys, hopgym.agents as a\n"
        "heavy = [m for m in ('torch', 'vllm', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "a.run_episodes, a.RolloutConfig, a.Trajectory, a.TrajectoryStore, a.OpenAIPolicy, a.ScriptedOraclePolicy\n"
        "heavy = [m for m in ('torch', 'vllm', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    for name in agents.__all__:
        if name not in ("VLLMPolicy", "TransformersPolicy"):  # heavy: their own tests import them
            assert getattr(agents, name) is not None
    for name in rollout.__all__:
        assert getattr(rollout, name) is getattr(agents, name)
    assert agents.run_episodes is run_episodes and agents.TokenPolicy.__name__ == "TokenPolicy"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        agents.Nope  # noqa: B018
