"""`hopgym eval` on bad input files: every one ends in ``file:line: reason`` and exit 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
