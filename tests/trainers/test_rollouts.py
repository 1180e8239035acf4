"""collect_groups: group order (one count or one per task), re-runs of failed groups with their
seeds, the error naming the caller's setting, and an eval store played twice (resume)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hopgym.agents.policy import Context, Generation, SamplingParams
from hopgym.agents.scripted_policy import TokenScriptedOraclePolicy
from hopgym.envs.builtin import make_hopworld_core
from hopgym.envs.pool import EnvPool
from hopgym.errors import ConfigError, EpisodesFailed, RetrieverUnavailable
from hopgym.trainers.rollouts import PlayedGroups, collect_groups


def test_a_full_eval_store_is_read_back_not_played_again(tmp_path: Path) -> None:
    env = make_hopworld_core(hops=[2], num_entities=60, num_questions=4)
    policy = TokenScriptedOraclePolicy(env.tasks, env.protocol, encode=lambda text: [ord(c) for c in text])
    ids = [t.id for t in env.tasks]
    store = tmp_path / "eval.jsonl"

    async def play() -> list[tuple[str, int, float | None]]:
        async with EnvPool(env) as pool:
            played = await collect_groups(
                pool, policy, ids, samples=1, sampling=SamplingParams(max_tokens=32, temperature=0.0),
                max_episode_tokens=2048, concurrency=4, retries=0, store=store,
            )  # fmt: skip
        return [(t.task_id, t.sample_index, t.reward) for t in played.trajectories]

    first = asyncio.run(play())
    calls = policy.calls
    assert [k[0] for k in first] == ids and all(r == 1.0 for _, _, r in first)
    # Before the fix, the second call raised KeyError: the engine skipped the stored episodes.
    assert asyncio.run(play()) == first
    assert policy.calls == calls  # nothing was generated again


class _FlakyOracle(TokenScriptedOraclePolicy):
    """The token-level oracle, except that its first ``fails`` turns of the task asking ``question`` raise (a
    backend that is down); records the sampling seed of every turn, per question."""

    def __init__(self, env: Any, question: str, fails: int) -> None:
        super().__init__(env.tasks, env.protocol, encode=lambda text: [ord(c) for c in text])
        self._question, self._fails = question, fails
        self.seeds: list[tuple[str, int | None]] = []

    async def generate(self, context: Context, params: SamplingParams) -> Generation:
        question = self._task(context).question
        self.seeds.append((question, params.seed))
        if question == self._question and self._fails > 0:
            self._fails -= 1
            raise RetrieverUnavailable("retriever at http://127.0.0.1:9 is down")
        return await super().generate(context, params)


def _counted(env: Any, policy: Any, counts: dict[str, int], *, retries: int) -> PlayedGroups:
    async def play() -> PlayedGroups:
        async with EnvPool(env) as pool:
            return await collect_groups(
                pool, policy, list(counts), samples=counts, sampling=SamplingParams(max_tokens=32, seed=11),
                max_episode_tokens=2048, concurrency=4, retries=retries, fix_hint="raise my.retries",
            )  # fmt: skip

    return asyncio.run(play())


def test_per_task_counts_keep_task_order_and_replay_a_failed_group_with_its_seeds() -> None:
    env = make_hopworld_core(hops=[2], num_entities=60, num_questions=3)
    a, b, c = (t.id for t in env.tasks)
    counts = {c: 1, a: 2, b: 2}  # a and b share one engine run; c is a run of its own
    clean = _FlakyOracle(env, env.tasks[1].question, fails=0)
    expected = _counted(env, clean, counts, retries=0)
    flaky = _FlakyOracle(env, env.tasks[1].question, fails=1)
    played = _counted(env, flaky, counts, retries=1)
    assert [t.key for t in played.trajectories] == [(c, 0), (a, 0), (a, 1), (b, 0), (b, 1)]
    assert not any(t.failed for t in played.trajectories) and all(
        t.reward == 1.0 for t in played.trajectories
    )
    assert expected.episodes == 5
    assert played.episodes == 5 + 2  # b's whole group (2 episodes) was played again, nothing else
    # The re-run used the seeds of the first try: b saw exactly the seeds of a run without failures.
    question = env.tasks[1].question
    assert {s for q, s in flaky.seeds if q == question} == {s for q, s in clean.seeds if q == question}
    assert [(t.key, t.token_ids) for t in played.trajectories] == [
        (t.key, t.token_ids) for t in expected.trajectories
    ]


def test_a_group_that_keeps_failing_raises_with_the_callers_hint() -> None:
    env = make_hopworld_core(hops=[2], num_entities=60, num_questions=3)
    a, b, _ = (t.id for t in env.tasks)
    policy = _FlakyOracle(env, env.tasks[1].question, fails=100)
    with pytest.raises(
        EpisodesFailed, match=rf"1 task\(s\) \('{b}'\).*RetrieverUnavailable.*raise my\.retries$"
    ):
        _counted(env, policy, {a: 1, b: 2}, retries=1)
    # b's two episodes fail on their first turn, twice (one re-run); a's one episode played once, to its end.
    assert sum(q == env.tasks[1].question for q, _ in policy.seeds) == 2 * 2


@pytest.mark.parametrize(
    ("samples", "message"),
    [({"t1": 1}, r"has no count for 't2'"), ({"t1": 1, "t2": 1, "x": 1}, r"counts 'x', which are not among"),
     ({"t1": 1, "t2": 0}, r"samples \{'t2': 0\} are invalid")],
)  # fmt: skip
def test_per_task_counts_must_cover_the_tasks(samples: dict[str, int], message: str) -> None:
    env = make_hopworld_core(hops=[2], num_entities=60, num_questions=2)
    policy = _FlakyOracle(env, "", fails=0)

    async def play() -> None:
        async with EnvPool(env) as pool:
            await collect_groups(
                pool, policy, ["t1", "t2"], samples=samples, sampling=SamplingParams(max_tokens=32),
                max_episode_tokens=2048, concurrency=1, retries=0,
            )  # fmt: skip

    with pytest.raises(ConfigError, match=message):
        asyncio.run(play())
    assert policy.seeds == []
