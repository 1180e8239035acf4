"""``hopgym score``: scoring JSONL files from the command line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hopgym.cli import main
from hopgym.cli.score import _DESCRIPTION
from hopgym.envs.rewards import PREDICTION_REWARDS, REWARD_NAMES

_EPISODE = (
    "<think> Where is the tower? </think>\n<search> Eiffel Tower </search>\n"
    "<result>\nThe Eiffel Tower is in Paris.\n</result>\n"
    "<think> Paris. </think>\n<answer> \\boxed{Paris} </answer>"
)


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_single_reward_adds_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows: list[dict[str, Any]] = [
        {"id": "q1", "golden_answers": ["Paris"], "prediction": "the Paris!"},
        {"id": "q2", "golden_answers": ["Zürich", "Zurich"], "prediction": "Zurich"},
        {"id": "q3", "golden_answers": ["Lyon"], "prediction": None},
        {"id": "q4", "golden_answers": ["New York City"], "prediction": "New York"},
    ]
    source, target = _write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl"
    assert main(["score", "--reward", "em", "--input", str(source), "--output", str(target)]) == 0
    out = _read_jsonl(target)
    assert out == [{**row, "score": score} for row, score in zip(rows, [1.0, 1.0, 0.0, 0.0], strict=True)]
    summary = capsys.readouterr().out
    assert "em" in summary and "0.5000" in summary


def test_several_rewards_and_components(tmp_path: Path) -> None:
    rows = [
        {"golden_answers": ["Paris"], "response": _EPISODE},
        {"golden_answers": ["Paris"], "response": _EPISODE, "finished": False},
        {"golden_answers": ["Lyon"], "response": _EPISODE},
    ]
    source, target = _write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl"
    argv = ["score", "--reward", "research", "--reward", "search_r1_sub", "--input", str(source)]
    assert main([*argv, "--output", str(target), "--components"]) == 0
    out = _read_jsonl(target)
    assert [line["score"] for line in out] == [1.0, 0.0, 0.1]
    assert [line["scores"] for line in out] == [
        {"research": 1.0, "search_r1_sub": 1.0},
        {"research": 0.0, "search_r1_sub": 1.0},
        {"research": 0.1, "search_r1_sub": 0.0},
    ]
    assert out[1]["components"]["research"] == {"format_ok": 1.0, "finished": 0.0, "f1": 0.0}
    assert out[0]["components"]["search_r1_sub"] == {"has_answer": 1.0, "sub_em": 1.0}


def test_output_to_stdout_sends_summary_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"golden_answers": ["yes"], "prediction": "True"}\n'))
    assert main(["score", "--reward", "cover_em", "--input", "-", "--output", "-"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line) for line in captured.out.splitlines()] == [
        {"golden_answers": ["yes"], "prediction": "True", "score": 1.0}
    ]
    assert "cover_em" in captured.err and "<stdin>" in captured.err


_OK = '{"golden_answers": ["a"], "prediction": "a"}\n'
_NOT_A_LIST = "must be a non-empty list of strings"


@pytest.mark.parametrize(
    ("content", "reward", "message"),
    [
        (_OK + '{"golden_answers": ["a"], "prediction": \n', "em", ":2: invalid JSON"),
        ('{"prediction": "a"}\n', "em", ':1: missing field "golden_answers"'),
        ('{"golden_answers": "Paris", "prediction": "a"}\n', "em", f':1: "golden_answers" {_NOT_A_LIST}'),
        ('{"golden_answers": [], "prediction": "a"}\n', "em", f':1: "golden_answers" {_NOT_A_LIST}'),
        ('{"golden_answers": ["a", 3], "prediction": "a"}\n', "f1", f':1: "golden_answers" {_NOT_A_LIST}'),
        ('{"golden_answers": ["a"], "response": "a"}\n', "em", ':1: missing field "prediction"'),
        (_OK, "research", ':1: missing field "response"'),
        (
            '{"golden_answers": ["a"], "prediction": 1}\n',
            "sub_em",
            ':1: "prediction" must be a string or null',
        ),
        ('{"golden_answers": ["a"], "response": null}\n', "search_r1", ':1: "response" must be a string'),
        ('{"golden_answers": ["a"], "response": "", "finished": 0}\n', "research", ':1: "finished" must be'),
        (_OK + "\n" + _OK, "em", ":2: blank line"),
        ('["a"]\n', "em", ":1: expected a JSON object, got list"),
        ("", "em", ": no records"),
    ],
)
def test_bad_input_exits_2_without_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, reward: str, message: str
) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(content, encoding="utf-8")
    assert main(["score", "--reward", reward, "--input", str(source), "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"{source}{message}" in err
    assert not target.exists()
    assert list(tmp_path.iterdir()) == [source]


def test_every_bad_line_is_reported_and_existing_output_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        _OK + 'not json\n{"golden_answers": ["a"]}\n',
        encoding="utf-8",
    )
    target = tmp_path / "out.jsonl"
    target.write_text("previous results\n", encoding="utf-8")
    assert main(["score", "--reward", "em", "--input", str(source), "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"{source}:2: invalid JSON" in err
    assert f'{source}:3: missing field "prediction"' in err
    assert f"{source}:1:" not in err
    assert target.read_text(encoding="utf-8") == "previous results\n"


def test_unknown_reward_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _write_jsonl(tmp_path / "in.jsonl", [{"golden_answers": ["a"], "prediction": "a"}])
    assert main(["score", "--reward", "exact", "--input", str(source)]) == 2
    assert "unknown reward 'exact'" in capsys.readouterr().err
    assert main(["score", "--reward", "em", "--input", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: cannot read" in capsys.readouterr().err


def test_not_utf8_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"golden_answers": ["caf\xe9"], "prediction": "a"}\n')
    assert main(["score", "--reward", "em", "--input", str(source)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_help_documents_every_builtin_reward_and_its_field() -> None:
    prediction_line = next(line for line in _DESCRIPTION.splitlines() if '"prediction"' in line)
    for name in REWARD_NAMES:
        assert name in _DESCRIPTION
        listed = f" {name}," in prediction_line or f" {name};" in prediction_line
        assert listed == (name in PREDICTION_REWARDS)


def test_subprocess_on_hotpotqa_dev(tmp_path: Path, shared_data) -> None:
    dev = shared_data("hotpotqa", "dev_500.jsonl")
    questions = [json.loads(line) for line in dev.read_text(encoding="utf-8").splitlines()[:60]]
    # Half the predictions are a golden answer with different casing and punctuation, half are wrong.
    rows = [
        {
            "id": q["id"],
            "golden_answers": q["golden_answers"],
            "prediction": q["golden_answers"][0].upper() + "." if i % 2 == 0 else "no idea at all",
        }
        for i, q in enumerate(questions)
    ]
    source, target = _write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "hopgym", "score", "--reward", "em", "--reward", "f1"]
    done = subprocess.run(
        [*command, "--input", str(source), "--output", str(target)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = _read_jsonl(target)
    assert [line["id"] for line in out] == [row["id"] for row in rows]
    assert [line["scores"]["em"] for line in out] == [1.0 if i % 2 == 0 else 0.0 for i in range(len(rows))]
    assert all(line["score"] == line["scores"]["em"] for line in out)
    assert "0.5000" in done.stdout

    bad = subprocess.run(
        [*command, "--input", str(tmp_path / "nope.jsonl")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
    assert "nope.jsonl: cannot read" in bad.stderr


def test_unwritable_output_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _write_jsonl(tmp_path / "in.jsonl", [{"golden_answers": ["a"], "prediction": "a"}])
    target = tmp_path / "no-such-folder" / "out.jsonl"
    assert main(["score", "--reward", "em", "--input", str(source), "--output", str(target)]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert not target.parent.exists()
