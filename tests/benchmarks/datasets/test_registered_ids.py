"""The registered dataset ids run on files ``hopgym data prepare`` wrote from the shared real samples."""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from gymnasium.utils.env_checker import check_env

import hopgym
from hopgym.benchmarks.datasets import prepare_dataset

SharedData = Callable[..., Path]


def _bamboogle_csv(shared_data: SharedData, tmp_path: Path) -> Path:
    path = tmp_path / "bamboogle.csv"
    with (
        shared_data("mixed", "seven_datasets_test.jsonl").open(encoding="utf-8") as source,
        path.open("w", encoding="utf-8", newline="") as handle,
    ):
        writer = csv.writer(handle)
        writer.writerow(["Question", "Answer"])
        for line in source:
            row = json.loads(line)
            if row["data_source"] == "Bamboogle":
                writer.writerow([row["question"], row["golden_answers"][0]])
    return path


# id -> (data file parts or None for the Bamboogle CSV, default max_turns)
CASES = {
    "hopgym/HotpotQA-v0": (("hotpotqa", "hf_distractor_dev_100.jsonl"), 4),
    "hopgym/MuSiQue-v0": (("musique", "format_sample.jsonl"), 6),
    "hopgym/2Wiki-v0": (("2wiki", "format_sample.json"), 5),
    "hopgym/NQ-v0": (("nq", "NQ-open.dev.jsonl"), 3),
    "hopgym/Bamboogle-v0": (None, 4),
}


@pytest.mark.parametrize("env_id", sorted(CASES))
def test_dataset_id_plays_a_prepared_task_file(env_id: str, shared_data: SharedData, tmp_path: Path) -> None:
    parts, max_turns = CASES[env_id]
    source = _bamboogle_csv(shared_data, tmp_path) if parts is None else shared_data(*parts)
    dataset, written = prepare_dataset(source, tmp_path / "prepared")
    # Datasets without paragraphs search the Search-R1 corpus sample: the point here is the env, not recall.
    corpus = written.get("corpus", shared_data("corpus_samples", "search_r1_corpus_sample.jsonl"))
    env = hopgym.make(env_id, data=str(written["tasks"]), retriever=f"simple-bm25:{corpus}")
    try:
        assert env.unwrapped.core.config.max_turns == max_turns  # type: ignore[attr-defined]
        assert env.unwrapped.core.config.top_k == 3  # type: ignore[attr-defined]
        task = dataset.tasks[0]
        obs, info = env.reset(options={"task_id": task.id})
        assert info["task_id"] == task.id
        assert task.question in obs
        obs, reward, terminated, _, _ = env.step("<search>" + task.question + "</search>")
        assert not terminated and reward == 0.0
        _, reward, terminated, _, _ = env.step(f"<answer>{task.golden_answers[0]}</answer>")
        assert terminated and reward == 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped)
    finally:
        env.close()


def test_dataset_id_without_data_says_how_to_prepare_it() -> None:
    with pytest.raises(hopgym.ConfigError, match=r"hopgym/NQ-v0 needs data= .*--format nq_open"):
        hopgym.make("hopgym/NQ-v0")
    with pytest.raises(hopgym.ConfigError, match=r"hopgym/MuSiQue-v0 needs data= .*--format musique"):
        hopgym.make("hopgym/MuSiQue-v0", retriever="x")
    with pytest.raises(hopgym.ConfigError, match=r"give the task file once"):
        hopgym.make("hopgym/HotpotQA-v0", data="a.jsonl", tasks="a.jsonl", retriever="x")
