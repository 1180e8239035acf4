"""Bad dataset input fails with ``file:line: field: reason`` (or ``file: record N: ...``) and what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hopgym.benchmarks.datasets import (
    PreparedDataset,
    read_dataset,
    read_hf_dataset,
    sniff_format,
    write_prepared,
)
from hopgym.errors import ConfigError, DataError
from hopgym.types import Task


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _musique_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "2hop__1_2",
        "question": "Who?",
        "answer": "Ann",
        "answer_aliases": [],
        "paragraphs": [{"idx": 0, "title": "T", "paragraph_text": "Ann is.", "is_supporting": True}],
        "question_decomposition": [{"id": 1}, {"id": 2}],
    }
    row.update(changes)
    return row


def test_flashrag_missing_answers_names_line_and_field(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "dev.jsonl",
        [
            {"id": "a", "question": "q1", "golden_answers": ["x"]},
            {"id": "b", "question": "q2", "golden_answers": ["y"]},
            {"id": "c", "question": "q3", "answers": ["z"]},
        ],
    )
    with pytest.raises(
        DataError, match=rf"^{path}:3: golden_answers: missing \(fields present: answers, id, question\)"
    ):
        read_dataset(path, "flashrag")


def test_answers_of_the_wrong_type(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "nq.jsonl", [{"question": "q", "answer": [["nested"]]}])
    with pytest.raises(DataError, match=rf"^{path}:1: answer\[0\]: must be a string, got array"):
        read_dataset(path, "nq_open")
    path = _jsonl(tmp_path / "nq.jsonl", [{"question": "q", "answer": []}])
    with pytest.raises(DataError, match=rf"^{path}:1: answer: must be a non-empty string or list"):
        read_dataset(path, "nq_open")


def test_empty_question(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "nq.jsonl", [{"question": "  ", "answer": ["a"]}])
    with pytest.raises(DataError, match=rf"^{path}:1: question: is empty"):
        read_dataset(path, "nq_open")


def test_musique_paragraph_without_title(tmp_path: Path) -> None:
    bad = _musique_row(
        paragraphs=[
            {"idx": 0, "title": "T", "paragraph_text": "a", "is_supporting": False},
            {"idx": 1, "paragraph_text": "b", "is_supporting": True},
        ]
    )
    path = _jsonl(tmp_path / "musique.jsonl", [_musique_row(), {**bad, "id": "2hop__3_4"}])
    with pytest.raises(DataError, match=rf"^{path}:2: paragraphs\[1\].title: missing"):
        read_dataset(path, "musique")


def test_musique_without_decomposition(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "musique.jsonl", [_musique_row(question_decomposition=[])])
    with pytest.raises(DataError, match=r":1: question_decomposition: is empty: it has one entry per hop"):
        read_dataset(path, "musique")


def test_json_list_errors_name_the_record(tmp_path: Path) -> None:
    good = {
        "_id": "a",
        "question": "q",
        "answer": "x",
        "context": [["T", ["s."]]],
        "supporting_facts": [["T", 0]],
    }
    path = tmp_path / "hotpot.json"
    path.write_text(json.dumps([good, {**good, "_id": "b", "context": "oops"}]), encoding="utf-8")
    with pytest.raises(
        DataError, match=rf"^{path}: record 2: context: must be a list of paragraphs, got string"
    ):
        read_dataset(path, "hotpotqa")
    path.write_text(json.dumps([good, {**good, "_id": "b", "supporting_facts": [["Elsewhere", 0]]}]))
    with pytest.raises(DataError, match=r"record 2: supporting_facts: title 'Elsewhere' is not among"):
        read_dataset(path, "hotpotqa")
    path.write_text(json.dumps([{k: v for k, v in good.items() if k != "answer"}]))
    with pytest.raises(DataError, match=r"record 1: answer: missing \(a test split without answers"):
        read_dataset(path, "hotpotqa")


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "dev.jsonl"
    path.write_text('{"question": "q", "golden_answers": ["a"]}\n{"question": \n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}:2: invalid JSON"):
        read_dataset(path, "flashrag")


def test_duplicate_ids(tmp_path: Path) -> None:
    rows = [{"id": "a", "question": "q", "golden_answers": ["x"]}] * 2
    path = _jsonl(tmp_path / "dev.jsonl", rows)
    with pytest.raises(DataError, match=rf"^{path}:2: id: duplicate task id 'a' \(first at line 1\)"):
        read_dataset(path)


def test_csv_without_the_answer_column(tmp_path: Path) -> None:
    path = tmp_path / "bamboogle.csv"
    path.write_text("Question,Reply\nWho?,Ann\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}:2: Answer: missing \(fields present: Question, Reply\)"):
        read_dataset(path)


def test_search_r1_row_without_a_question(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "train.parquet"
    rows = [
        {
            "prompt": [{"role": "user", "content": "Tell me: who?"}],
            "reward_model": {"ground_truth": {"target": ["a"]}},
        }
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(
        DataError, match=rf"^{path}: record 1: prompt: no 'Question:' line .* add a 'question' column"
    ):
        read_dataset(path)


def test_unknown_format_and_unknowable_files(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "x.jsonl", [{"query": "q", "label": "a"}])
    with pytest.raises(DataError, match=r"cannot tell the dataset format .*\(label, query\): pass --format"):
        sniff_format(path)
    with pytest.raises(DataError, match=r"unknown dataset format 'squad': use one of flashrag, nq_open"):
        read_dataset(path, "squad")
    corpus = _jsonl(tmp_path / "corpus.jsonl", [{"id": "p", "contents": '"T"\ntext'}])
    with pytest.raises(DataError, match=r"this is a corpus .* hopgym index build"):
        read_dataset(corpus)
    with pytest.raises(DataError, match=r"dataset file not found"):
        read_dataset(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match=r"the file is empty"):
        read_dataset(tmp_path / "empty.jsonl")


def test_a_parquet_file_named_jsonl_is_named_as_parquet(tmp_path: Path) -> None:
    path = tmp_path / "dev.jsonl"
    path.write_bytes(b"PAR1\x00\x00garbage")
    with pytest.raises(DataError, match=r"this is a parquet file"):
        read_dataset(path, "flashrag")


def test_write_prepared_removes_a_stale_corpus_and_refuses_a_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "corpus.jsonl").write_text('{"id": "old", "contents": "x"}\n')
    dataset = PreparedDataset("nq_open", "nq.jsonl", (Task("nq-0", "q", ("a",)),))
    written = write_prepared(dataset, out)
    assert set(written) == {"tasks"}
    assert not (out / "corpus.jsonl").exists()
    assert json.loads((out / "tasks.jsonl").read_text()) == {
        "id": "nq-0",
        "question": "q",
        "golden_answers": ["a"],
        "metadata": {},
    }
    with pytest.raises(ConfigError, match=r"is a file: give a directory"):
        write_prepared(dataset, out / "tasks.jsonl")


def test_hub_unreachable_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("datasets")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    started = time.monotonic()
    with pytest.raises(
        DataError, match=r"^hf:hotpotqa/hotpot_qa/distractor\[validation\]: cannot reach .* offline"
    ):
        read_hf_dataset("hotpotqa/hotpot_qa", config="distractor")
    assert time.monotonic() - started < 10


def test_hub_offline_without_a_cached_copy(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    # In a fresh process: huggingface_hub reads HF_HUB_OFFLINE when imported, and an online retry here could
    # start downloading the real dataset.
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets"),
    }
    code = (
        "from hopgym.benchmarks.datasets import read_hf_dataset\n"
        "read_hf_dataset('hotpotqa/hotpot_qa', config='distractor')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "DataError: hf:hotpotqa/hotpot_qa/distractor[validation]: cannot load it:" in last
    assert "not in the local Hugging Face cache" in last
