"""Scored episodes and the report's tables, from hand-built trajectories (pure functions)."""

from __future__ import annotations

import pytest

from hopgym.agents.rollout.trajectory import Trajectory, Turn
from hopgym.benchmarks.reports import (
    accuracy_by,
    accuracy_by_searches,
    available_groupings,
    failure_table,
    score_episode,
    searches_histogram,
    summarize,
)
from hopgym.benchmarks.reports.episodes import episode_key, hop_count
from hopgym.benchmarks.reports.tables import GROUPINGS
from hopgym.types import Task


def _turn(kind: str, *, invalid: str | None = None, answer: str | None = None) -> Turn:
    return Turn(
        text="t",
        finish_reason="stop",
        observation="",
        action_kind=kind,
        invalid_reason=invalid,
        answer=answer,
    )


def _traj(
    task_id: str, answer: str | None, searches: int, *, invalid: int = 0, failed: bool = False
) -> Trajectory:
    if failed:
        return Trajectory(
            task_id=task_id,
            sample_index=0,
            group_id=task_id,
            termination="failed",
            error="TimeoutError: read",
        )
    turns = [_turn("search") for _ in range(searches)] + [
        _turn("invalid", invalid="no tag") for _ in range(invalid)
    ]
    if answer is not None:
        turns.append(_turn("answer", answer=answer))
    return Trajectory(
        task_id=task_id,
        sample_index=0,
        group_id=task_id,
        termination="answered" if answer is not None else "max_turns",
        turns=tuple(turns),
        reward=0.0,
        answer=answer,
        num_searches=searches,
    )


def _task(task_id: str, golds: tuple[str, ...], **metadata: object) -> Task:
    return Task(id=task_id, question=f"q {task_id}?", golden_answers=golds, metadata=metadata)


def test_score_episode_takes_the_best_golden_answer_after_normalisation() -> None:
    task = _task("a", ("Paris", "City of Light"), dataset="hotpotqa", hops=2, type="bridge")
    episode = score_episode(_traj("a", "the city of light!", 2), task)
    assert episode.metrics["em"] == 1.0 and episode.metrics["f1"] == 1.0
    assert episode.correct is True and episode.outcome == "correct"
    assert (episode.dataset, episode.hops, episode.question_type) == ("hotpotqa", 2, "bridge")
    wrong = score_episode(_traj("a", "Paris, Texas", 1), task)
    assert wrong.metrics["em"] == 0.0 and 0.0 < wrong.metrics["f1"] < 1.0
    assert wrong.metrics["sub_em"] == 1.0  # the gold "paris" is inside the prediction
    assert wrong.outcome == "wrong"


def test_failed_episode_is_neither_correct_nor_wrong() -> None:
    episode = score_episode(_traj("a", None, 0, failed=True), _task("a", ("x",)))
    assert episode.correct is None and episode.outcome == "failed" and episode.metrics == {}


def test_without_golden_answers_a_positive_reward_counts_as_correct() -> None:
    traj = _traj("a", "x", 1)
    rewarded = Trajectory(**{**traj.__dict__, "reward": 1.0})
    assert score_episode(rewarded, None).correct is True
    assert score_episode(traj, None).correct is False
    assert score_episode(traj, None, default_dataset="hopgym/HopWorld-v0").dataset == "hopgym/HopWorld-v0"


def test_invalid_actions_are_counted_with_their_reasons() -> None:
    episode = score_episode(_traj("a", "x", 1, invalid=2), _task("a", ("x",)))
    assert episode.invalid_actions == 2 and episode.invalid_reasons == ("no tag", "no tag")
    assert episode.turns == 4


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"hops": 3}, 3),
        ({"hops": ["q1", "q2"]}, 2),
        ({"supporting_passage_ids": ["p1", "p2", "p3"]}, 3),
        ({"hops": True}, None),
        ({}, None),
    ],
)
def test_hop_count(metadata: dict[str, object], expected: int | None) -> None:
    assert hop_count(metadata) == expected


def test_episode_key_names_extra_samples() -> None:
    assert episode_key("t1", 0) == "t1" and episode_key("t1", 2) == "t1#2"


def _episodes() -> list:
    golds = ("right",)
    rows = [
        (_traj("a", "right", 1), _task("a", golds, dataset="nq", hops=1)),
        (_traj("b", "wrong", 1), _task("b", golds, dataset="nq", hops=1)),
        (_traj("c", "right", 2, invalid=1), _task("c", golds, dataset="hotpotqa", hops=2)),
        (_traj("d", "right", 3), _task("d", golds, dataset="hotpotqa", hops=2)),
        (_traj("e", None, 3), _task("e", golds, dataset="hotpotqa", hops=2)),
        (_traj("f", None, 0, failed=True), _task("f", golds, dataset="hotpotqa", hops=2)),
    ]
    return [score_episode(t, task) for t, task in rows]


def test_accuracy_by_searches_leaves_failed_episodes_out() -> None:
    rows = accuracy_by_searches(_episodes())
    assert [(r.label, r.episodes, r.failed, r.accuracy) for r in rows] == [
        ("1", 2, 0, 0.5),
        ("2", 1, 0, 1.0),
        ("3", 2, 0, 0.5),
    ]
    assert rows[0].metrics["em"] == 0.5


def test_accuracy_by_group_counts_failures_apart() -> None:
    rows = accuracy_by(_episodes(), GROUPINGS["dataset"])
    by_label = {r.label: r for r in rows}
    assert by_label["hotpotqa"].episodes == 4 and by_label["hotpotqa"].failed == 1
    assert by_label["hotpotqa"].accuracy == pytest.approx(2 / 3)
    assert by_label["nq"].accuracy == 0.5
    hops = accuracy_by(_episodes(), GROUPINGS["hops"])
    assert [r.label for r in hops] == ["1", "2"]  # numeric order


def test_numeric_groups_sort_numerically() -> None:
    task = _task("a", ("x",))
    episodes = [score_episode(_traj(f"t{n}", "x", n), task) for n in (10, 2, 1)]
    assert [r.label for r in accuracy_by_searches(episodes)] == ["1", "2", "10"]


def test_available_groupings_need_two_values_except_hops() -> None:
    episodes = _episodes()
    assert available_groupings(episodes) == ["dataset", "hops"]
    single = [e for e in episodes if e.dataset == "nq"]
    assert available_groupings(single) == ["hops"]


def test_searches_histogram_fills_missing_counts() -> None:
    assert searches_histogram(_episodes()) == {0: 0, 1: 2, 2: 1, 3: 2}
    assert searches_histogram([]) == {}


def test_failure_table() -> None:
    table = failure_table(_episodes())
    assert table.terminations == {"answered": 4, "max_turns": 1, "failed": 1}
    assert table.endings == {"correct answer": 3, "wrong answer": 1, "max_turns": 1, "failed": 1}
    assert table.failure_kinds == {"TimeoutError": 1}
    assert table.invalid_reasons == {"no tag": 1}
    assert table.episodes_with_invalid == 1


def test_summarize() -> None:
    summary = summarize(_episodes())
    assert (summary.episodes, summary.failed) == (6, 1)
    assert summary.metrics["em"] == pytest.approx(3 / 5)
    assert summary.mean_searches == pytest.approx(10 / 5)
    # turns of scored episodes: 2 + 2 + 4 + 4 + 3 = 15, one invalid
    assert summary.invalid_action_rate == pytest.approx(1 / 15)
    assert summary.has_golds


def test_run_facts_leave_out_unset_settings_and_sampling_for_the_oracle() -> None:
    from hopgym.benchmarks.reports.markdown import run_facts

    model = {"agent": "model", "model": "m", "api": "chat", "temperature": 0.0, "seed": 3, "retriever": None}
    assert run_facts(model) == [("agent", "model"), ("model", "m"), ("api", "chat"), ("temperature", 0.0)]
    assert run_facts({**model, "agent": "oracle"}) == [("agent", "oracle"), ("model", "m")]
    assert run_facts(None) == []
