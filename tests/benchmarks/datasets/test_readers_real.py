"""Every dataset reader on the shared real samples (or files built from them in the format's own layout)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hopgym.benchmarks.datasets import (
    FieldNames,
    PrepareOptions,
    load_dataset_tasks,
    prepare_dataset,
    read_dataset,
    sniff_format,
)
from hopgym.envs.tasks import load_tasks

SharedData = Callable[..., Path]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_hotpotqa_hf_rows_reproduce_the_shared_corpus_and_supporting_ids(shared_data: SharedData) -> None:
    dataset = read_dataset(shared_data("hotpotqa", "hf_distractor_dev_100.jsonl"))
    assert dataset.format == "hotpotqa"
    assert len(dataset.tasks) == 100
    shared_corpus = {r["id"]: r["contents"] for r in _jsonl(shared_data("hotpotqa", "corpus.jsonl"))}
    shared_tasks = {r["id"]: r for r in _jsonl(shared_data("hotpotqa", "dev_500.jsonl"))}
    # A paragraph the shared corpus also holds has the same id and the same contents there.
    common = [p for p in dataset.passages if p["id"] in shared_corpus]
    assert len(common) >= 120
    assert all(shared_corpus[p["id"]] == p["contents"] for p in common)
    overlap = [t for t in dataset.tasks if t.id in shared_tasks]
    assert len(overlap) == 12
    for task in overlap:
        assert (
            list(task.metadata["supporting_passage_ids"])
            == (shared_tasks[task.id]["metadata"]["supporting_passage_ids"])
        )
        assert list(task.golden_answers) == shared_tasks[task.id]["golden_answers"]
    # Every task's supporting passages are in the corpus, with the supporting titles.
    contents = {p["id"]: p["contents"] for p in dataset.passages}
    raw = {r["id"]: r for r in _jsonl(shared_data("hotpotqa", "hf_distractor_dev_100.jsonl"))}
    for task in dataset.tasks:
        titles = {
            contents[pid].split("\n", 1)[0].strip('"') for pid in task.metadata["supporting_passage_ids"]
        }
        assert titles == set(raw[task.id]["supporting_facts"]["title"])
        assert task.metadata["type"] in ("bridge", "comparison")
        assert task.metadata["level"] in ("easy", "medium", "hard")
    assert len({p["id"] for p in dataset.passages}) == len(dataset.passages)
    assert len({p["contents"] for p in dataset.passages}) == len(dataset.passages)


def test_hotpotqa_official_json_list_equals_the_hf_rows(shared_data: SharedData, tmp_path: Path) -> None:
    hf_rows = _jsonl(shared_data("hotpotqa", "hf_distractor_dev_100.jsonl"))
    official = [
        {
            "_id": r["id"],
            "question": r["question"],
            "answer": r["answer"],
            "type": r["type"],
            "level": r["level"],
            "supporting_facts": [
                [t, i]
                for t, i in zip(r["supporting_facts"]["title"], r["supporting_facts"]["sent_id"], strict=True)
            ],
            "context": [
                [t, s] for t, s in zip(r["context"]["title"], r["context"]["sentences"], strict=True)
            ],
        }
        for r in hf_rows
    ]
    path = tmp_path / "hotpot_dev_distractor_v1.json"
    path.write_text(json.dumps(official), encoding="utf-8")
    assert sniff_format(path) == "hotpotqa"
    from_official = read_dataset(path)
    from_hf = read_dataset(shared_data("hotpotqa", "hf_distractor_dev_100.jsonl"))
    assert from_official.tasks == from_hf.tasks
    assert from_official.passages == from_hf.passages


def test_musique_hops_answers_aliases_and_supporting_paragraphs(shared_data: SharedData) -> None:
    path = shared_data("musique", "format_sample.jsonl")
    raw = _jsonl(path)
    dataset = read_dataset(path)
    assert dataset.format == "musique"
    assert len(dataset.passages) == len(
        {(p["title"], p["paragraph_text"]) for r in raw for p in r["paragraphs"]}
    )
    contents = {p["id"]: p["contents"] for p in dataset.passages}
    for task, row in zip(dataset.tasks, raw, strict=True):
        assert task.id == row["id"]
        assert task.metadata["hops"] == len(row["question_decomposition"])
        assert task.metadata["type"] == row["id"].split("__")[0]
        assert task.golden_answers == (row["answer"], *row["answer_aliases"])
        supporting = [p for p in row["paragraphs"] if p["is_supporting"]]
        assert [contents[pid] for pid in task.metadata["supporting_passage_ids"]] == [
            f'"{p["title"]}"\n{p["paragraph_text"]}' for p in supporting
        ]
    assert dataset.tasks[0].metadata["hops"] == 2


def test_2wiki_type_evidences_and_supporting_titles(shared_data: SharedData) -> None:
    path = shared_data("2wiki", "format_sample.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    dataset = read_dataset(path)
    assert dataset.format == "2wiki"
    contents = {p["id"]: p["contents"] for p in dataset.passages}
    for task, row in zip(dataset.tasks, raw, strict=True):
        assert task.id == row["_id"]
        assert task.golden_answers == (row["answer"],)
        assert task.metadata["type"] == row["type"]
        assert task.metadata["evidences"] == row["evidences"]
        titles = [
            contents[pid].split("\n", 1)[0].strip('"') for pid in task.metadata["supporting_passage_ids"]
        ]
        assert set(titles) == {fact[0] for fact in row["supporting_facts"]}


def test_nq_open_ids_and_answers(shared_data: SharedData) -> None:
    path = shared_data("nq", "NQ-open.dev.jsonl")
    raw = _jsonl(path)
    dataset = read_dataset(path)
    assert dataset.format == "nq_open"
    assert dataset.passages == ()
    assert len(dataset.tasks) == len(raw) == 3610
    assert [t.id for t in dataset.tasks[:3]] == ["nq-0", "nq-1", "nq-2"]
    assert all(t.golden_answers == tuple(r["answer"]) for t, r in zip(dataset.tasks, raw, strict=True))
    assert dataset.tasks[0].metadata == {"dataset": "nq"}


def test_flashrag_mixed_file_round_trips_through_the_env_task_loader(
    shared_data: SharedData, tmp_path: Path
) -> None:
    path = shared_data("mixed", "seven_datasets_test.jsonl")
    dataset, written = prepare_dataset(path, tmp_path / "mixed")
    assert dataset.format == "flashrag"
    assert set(written) == {"tasks"}
    assert not (tmp_path / "mixed" / "corpus.jsonl").exists()
    loaded = load_tasks(written["tasks"])  # what the envs read
    assert [t.id for t in loaded] == [r["id"] for r in _jsonl(path)]
    assert loaded == list(dataset.tasks)
    counts: dict[str, int] = {}
    for task in loaded:
        counts[task.metadata["dataset"]] = counts.get(task.metadata["dataset"], 0) + 1
    assert counts == {
        "nq": 512,
        "tq": 512,
        "popqa": 512,
        "hotpotqa": 512,
        "2wiki": 512,
        "musique": 512,
        "Bamboogle": 125,
    }


def test_prepared_hotpotqa_loads_as_env_tasks(shared_data: SharedData, tmp_path: Path) -> None:
    _, written = prepare_dataset(shared_data("hotpotqa", "hf_distractor_dev_100.jsonl"), tmp_path / "hp")
    tasks = load_tasks(written["tasks"])
    corpus_ids = {r["id"] for r in _jsonl(written["corpus"])}
    assert len(tasks) == 100
    assert all(set(t.metadata["supporting_passage_ids"]) <= corpus_ids for t in tasks)


def _bamboogle_rows(shared_data: SharedData) -> list[dict[str, Any]]:
    rows = [
        r
        for r in _jsonl(shared_data("mixed", "seven_datasets_test.jsonl"))
        if r["data_source"] == "Bamboogle"
    ]
    assert len(rows) == 125
    return rows


def test_bamboogle_csv(shared_data: SharedData, tmp_path: Path) -> None:
    rows = _bamboogle_rows(shared_data)
    path = tmp_path / "bamboogle.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Question", "Answer"])
        for row in rows:
            writer.writerow([row["question"], row["golden_answers"][0]])
    assert sniff_format(path) == "bamboogle"
    tasks = load_dataset_tasks(path)
    assert [t.question for t in tasks] == [r["question"].strip() for r in rows]
    # Cells are stripped: one answer in the sample ends in a newline.
    assert [t.golden_answers for t in tasks] == [(r["golden_answers"][0].strip(),) for r in rows]
    assert tasks[0].id == "bamboogle-0"
    assert tasks[0].metadata == {"dataset": "bamboogle"}


def _search_r1_prompt(question: str) -> str:
    # The shape of Search-R1's scripts/data_process/qa_search_*.py prompt (our own wording before the question).
    return f"Answer the given question. Search with <search> query </search> when you need to. Question: {question}\n"


def test_search_r1_parquet(shared_data: SharedData, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = _jsonl(shared_data("mixed", "seven_datasets_test.jsonl"))[:40]
    table = pa.Table.from_pylist(
        [
            {
                "data_source": r["data_source"],
                "prompt": [{"role": "user", "content": _search_r1_prompt(r["question"])}],
                "ability": "fact-reasoning",
                "reward_model": {"style": "rule", "ground_truth": {"target": r["golden_answers"]}},
                "extra_info": {"split": "test", "index": i},
            }
            for i, r in enumerate(rows)
        ]
    )
    path = tmp_path / "test.parquet"
    pq.write_table(table, path)
    assert sniff_format(path) == "search_r1_parquet"
    tasks = load_dataset_tasks(path)
    assert [t.question for t in tasks] == [r["question"].strip() for r in rows]
    assert [list(t.golden_answers) for t in tasks] == [r["golden_answers"] for r in rows]
    assert tasks[0].id == f"{rows[0]['data_source']}-0"
    assert tasks[0].metadata == {"dataset": rows[0]["data_source"], "split": "test"}
    # A file that kept the question column uses it, and its ids.
    with_question = table.append_column("question", pa.array([r["question"] for r in rows])).append_column(
        "id", pa.array([r["id"] for r in rows])
    )
    pq.write_table(with_question, path)
    assert [t.id for t in load_dataset_tasks(path)] == [r["id"] for r in rows]


def test_generic_jsonl_with_named_fields(shared_data: SharedData, tmp_path: Path) -> None:
    rows = _jsonl(shared_data("nq", "NQ-open.dev.jsonl"))[:20]
    path = _write_jsonl(
        tmp_path / "custom.jsonl",
        [
            {"qid": f"q{i}", "query": r["question"], "labels": {"answers": r["answer"]}}
            for i, r in enumerate(rows)
        ],
    )
    options = PrepareOptions(dataset="custom", fields=FieldNames("query", "labels.answers", "qid"))
    tasks = read_dataset(path, "generic", options).tasks
    assert [t.id for t in tasks] == [f"q{i}" for i in range(20)]
    assert [t.golden_answers for t in tasks] == [tuple(r["answer"]) for r in rows]
    assert tasks[0].metadata == {"dataset": "custom"}


def test_limit_and_dataset_name(shared_data: SharedData) -> None:
    dataset = read_dataset(
        shared_data("hotpotqa", "hf_distractor_dev_100.jsonl"),
        options=PrepareOptions(limit=5, dataset="hp-dev"),
    )
    assert len(dataset.tasks) == 5
    assert len(dataset.passages) <= 50
    assert {t.metadata["dataset"] for t in dataset.tasks} == {"hp-dev"}


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("hotpotqa", "dev_500.jsonl"), "flashrag"),
        (("hotpotqa", "hf_distractor_dev_100.jsonl"), "hotpotqa"),
        (("nq", "NQ-open.dev.jsonl"), "nq_open"),
        (("mixed", "seven_datasets_test.jsonl"), "flashrag"),
        (("musique", "format_sample.jsonl"), "musique"),
        (("2wiki", "format_sample.json"), "2wiki"),
    ],
)
def test_sniff_format_on_the_shared_files(
    shared_data: SharedData, parts: tuple[str, str], expected: str
) -> None:
    assert sniff_format(shared_data(*parts)) == expected


def test_musique_full_unanswerable_questions_are_left_out_unless_kept(
    shared_data: SharedData, tmp_path: Path
) -> None:
    # MuSiQue's evaluate_v1.0.py scores answers only when ground_truth_instance["answerable"] (l.58-60, commit 8b8d8ce).
    rows = _jsonl(shared_data("musique", "format_sample.jsonl"))
    full = [rows[0], {**rows[1], "answerable": False}, rows[2]]
    path = _write_jsonl(tmp_path / "musique_full_dev.jsonl", full)
    dataset = read_dataset(path)
    assert [t.id for t in dataset.tasks] == [rows[0]["id"], rows[2]["id"]]
    assert dataset.skipped == {"unanswerable": 1}
    kept = read_dataset(path, options=PrepareOptions(keep_unanswerable=True))
    assert [t.metadata["answerable"] for t in kept.tasks] == [True, False, True]
    assert kept.skipped == {}
