"""summary.json and the --compare table: pure functions of trajectories, tasks and summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopgym.agents.rollout.trajectory import Trajectory, Turn
from hopgym.benchmarks.evaluation.compare import build_table, compare_runs, write_comparison
from hopgym.benchmarks.evaluation.config import EvalConfig, check_resume
from hopgym.benchmarks.evaluation.summary import build_summary
from hopgym.errors import ConfigError, DataError
from hopgym.types import Task

TASKS = {
    "a": Task(
        id="a", question="qa", golden_answers=("Paris", "City of Paris"), metadata={"data_source": "nq"}
    ),
    "b": Task(
        id="b", question="qb", golden_answers=("Lyon",), metadata={"data_source": "hotpotqa", "hops": 2}
    ),
    "c": Task(id="c", question="qc", golden_answers=("x",), metadata={"data_source": "hotpotqa", "hops": 2}),
}


def _answered(
    task_id: str, answer: str | None, reward: float, searches: int = 1, invalid: int = 0
) -> Trajectory:
    turns = [
        Turn(text="<search> q </search>", finish_reason="stop", observation="o", action_kind="search")
    ] * searches
    turns += [
        Turn(
            text="?",
            finish_reason="stop",
            observation="bad",
            action_kind="invalid",
            invalid_reason="no action",
        )
    ] * invalid
    turns.append(
        Turn(text="<answer>", finish_reason="stop", observation="", action_kind="answer", answer=answer)
    )
    return Trajectory(
        task_id, 0, task_id, "answered", tuple(turns), reward=reward, answer=answer, num_searches=searches
    )


def test_metrics_are_over_the_golden_answers_and_failures_are_never_scored() -> None:
    trajectories = [
        _answered("a", "city of paris", 1.0),  # matches the second golden answer
        _answered("b", "Lyon, France", 0.0, searches=2, invalid=1),  # sub_em and f1, not em
        Trajectory("c", 0, "c", "failed", error="PolicyUnavailable: down"),
    ]
    summary = build_summary(
        trajectories, TASKS, reward_name="search_r1", dataset="mix", planned=3, wall_s=1.5,
        tokens={"prompt": 10, "completion": 4},
    )  # fmt: skip
    assert summary["episodes"] == 3 and summary["failed"] == 1 and summary["finished"] == 2
    assert summary["complete"] is False and summary["errors"] == {"PolicyUnavailable": 1}
    metrics = summary["metrics"]
    assert metrics["em"] == 0.5 and metrics["sub_em"] == 1.0 and metrics["search_r1"] == 0.5
    assert metrics["f1"] == pytest.approx((1.0 + 2 / 3) / 2)  # "lyon france" vs "lyon": P 1/2, R 1
    assert summary["mean_searches"] == 1.5
    assert summary["tokens"] == {"prompt": 10, "completion": 4} and summary["wall_s"] == 1.5
    by = summary["by"]
    assert list(by["dataset"]) == ["hotpotqa", "nq"]  # sorted by name
    assert by["dataset"]["hotpotqa"] == {
        "metrics": {"em": 0.0, "f1": pytest.approx(2 / 3), "sub_em": 1.0, "cover_em": 1.0, "search_r1": 0.0},
        "episodes": 2,
        "failed": 1,
    }
    assert by["hops"]["2"]["episodes"] == 2


def test_an_all_failed_run_has_no_metrics_not_zeros() -> None:
    failed = [Trajectory(t, 0, t, "failed", error="PolicyTimeout: slow") for t in TASKS]
    summary = build_summary(failed, TASKS, reward_name="em", dataset="d", planned=3, wall_s=0.0, tokens={})
    assert all(value is None for value in summary["metrics"].values())
    assert summary["failed"] == 3 and summary["complete"] is False


def _summary(em: float, per_dataset: dict[str, float] | None = None) -> dict[str, object]:
    groups = {d: {"metrics": {"em": v, "f1": v}} for d, v in (per_dataset or {}).items()}
    return {"metrics": {"em": em, "f1": em}, "failed": 0, "by": {"dataset": groups} if groups else {}}


def test_compare_table_rows_are_runs_and_columns_dataset_by_metric(tmp_path: Path) -> None:
    table = build_table(
        [("r1", _summary(0.5, {"nq": 0.4, "hotpotqa": 0.6}), "x"), ("r2", _summary(0.25), "nq")],
        metrics=("em", "f1"),
    )
    assert table.datasets == ("nq", "hotpotqa", "all")
    lines = table.to_markdown().splitlines()
    assert lines[0] == "| run | nq EM | nq F1 | hotpotqa EM | hotpotqa F1 | all EM | all F1 | failed |"
    assert lines[2] == "| r1 | 40.0 | 40.0 | 60.0 | 60.0 | 50.0 | 50.0 | 0 |"
    assert lines[3] == "| r2 | 25.0 | 25.0 | - | - | 25.0 | 25.0 | 0 |"
    assert table.to_csv().splitlines()[2] == "r2,0.25,0.25,,,0.25,0.25,0"
    files = write_comparison(table, tmp_path / "cmp")
    assert files["png"].read_bytes()[:4] == b"\x89PNG"


def test_compare_names_a_directory_without_a_summary(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"summary.json: not found; run it with hopgym eval --out first"):
        compare_runs([tmp_path])
    (tmp_path / "summary.json").write_text("[1]")
    with pytest.raises(DataError, match="expected a JSON object"):
        compare_runs([tmp_path])
    (tmp_path / "summary.json").write_text(json.dumps(_summary(1.0)))
    assert compare_runs([tmp_path, tmp_path]).runs == (tmp_path.name, f"{tmp_path.name} (2)")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"agent": "model"}, "needs --base-url URL and --model NAME"),
        ({"data": "d.jsonl"}, "--data needs --retriever SPEC"),
        ({"top_k": 0}, "--top-k 0 is invalid"),
        ({"temperature": -1.0}, "--temperature -1.0 is invalid"),
        ({"api": "rest"}, "--api 'rest' is unknown"),
    ],
)
def test_config_errors_name_the_flag(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EvalConfig(**kwargs)  # type: ignore[arg-type]


def test_config_json_has_no_api_key_and_resume_checks_result_settings(tmp_path: Path) -> None:
    config = EvalConfig(agent="model", base_url="http://h/v1", model="m", api_key="sk-secret", limit=5)
    data = config.to_json()
    assert "sk-secret" not in json.dumps(data) and data["api_key_set"] is True
    check_resume(data, {**data, "limit": 50, "concurrency": 8}, tmp_path)  # more tasks: a longer run
    with pytest.raises(ConfigError, match="model: 'm' there, 'other' now"):
        check_resume(data, {**data, "model": "other"}, tmp_path)


def test_summary_reports_recall_of_supporting_passages_when_tasks_name_them() -> None:
    import dataclasses

    tasks = {
        "s": Task(
            id="s", question="q", golden_answers=("A",), metadata={"supporting_passage_ids": ["p1", "p2"]}
        ),
        "t": Task(id="t", question="q", golden_answers=("B",), metadata={"supporting_passage_ids": ["p3"]}),
    }
    search = Turn(text="<search> q </search>", finish_reason="stop", observation="o", action_kind="search")
    first = _answered("s", "A", 1.0, searches=0)
    first = dataclasses.replace(
        first,
        turns=(
            dataclasses.replace(search, passage_ids=("p1", "p9")),
            dataclasses.replace(search, passage_ids=("p2",)),
            *first.turns,
        ),
    )
    second = dataclasses.replace(_answered("t", "B", 1.0, searches=0), task_id="t")  # never searched
    failed = Trajectory("t", 1, "t", "failed", error="PolicyUnavailable: down")
    summary = build_summary(
        [first, second, failed], tasks, reward_name="em", dataset="d", planned=3, wall_s=0.0, tokens={}
    )
    assert summary["retrieval"] == {
        "episodes_with_supporting": 2.0,
        "supporting_recall": 0.5,  # (2/2 + 0/1) / 2
        "first_search_recall": 0.25,  # (1/2 + 0) / 2
        "all_supporting_found": 0.5,
    }
    assert (
        build_summary([second], TASKS, reward_name="em", dataset="d", planned=1, wall_s=0.0, tokens={})[
            "retrieval"
        ]
        == {}
    )
