"""`hopgym envs`, `hopgym play` and `hopgym eval` run for real (subprocesses where stdin/exit codes matter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hopgym.cli import main


def _hopgym(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hopgym", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_version_flag_prints_the_package_version() -> None:
    from hopgym import __version__

    proc = _hopgym("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"hopgym {__version__}"


def test_envs_lists_builtin_ids_as_json(capsys) -> None:
    assert main(["envs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"hopgym/HopWorld-v0", "hopgym/SearchQA-v0"} <= {r["id"] for r in rows}


def test_play_runs_an_interactive_episode() -> None:
    proc = _hopgym("play", "--env", "hopgym/HopWorld-2hop-v0", "--seed", "1", "--show-answer",
                   stdin="hello there\n<search>anything at all</search>\n<answer>nobody</answer>\n")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "invalid action" in proc.stdout
    assert "<information>" in proc.stdout
    assert "episode over (answered); reward = 0" in proc.stdout
    assert "golden answers:" in proc.stdout


def test_play_bad_env_arg_exits_2() -> None:
    proc = _hopgym("play", "--env-arg", "max_turns")
    assert proc.returncode == 2 and "KEY=VALUE" in proc.stdout + proc.stderr


def test_play_and_eval_env_arg_of_the_wrong_type_is_a_clear_error() -> None:
    # Before EnvConfig checked its field types, "abc" reached `max_turns < 1`: a TypeError traceback.
    for command in ("play", "eval"):
        proc = _hopgym(command, "--env-arg", "max_turns=abc", stdin="")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "max_turns must be an integer, got 'abc'; e.g. max_turns=4" in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr


def test_eval_writes_incrementally_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "eval.jsonl"
    first = _hopgym("eval", "--episodes", "5", "--output", str(out))
    assert first.returncode == 0, first.stderr
    assert "mean reward 1.000" in first.stdout
    lines = out.read_text().splitlines()
    assert len(lines) == 5
    # Simulate a crash mid-write: keep 3 whole records and a torn fourth.
    out.write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
    second = _hopgym("eval", "--episodes", "8", "--output", str(out))
    assert second.returncode == 0, second.stderr
    assert "(3 resumed)" in second.stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    ids = [r["task_id"] for r in records]
    assert len(ids) == 8 and len(set(ids)) == 8
    assert ids[:3] == [json.loads(line)["task_id"] for line in lines[:3]]


def test_eval_env_args_reach_the_env() -> None:
    proc = _hopgym("eval", "--episodes", "3", "--env", "hopgym/HopWorld-3hop-v0", "--env-arg", "protocol=research",
                   "--env-arg", "reward=em")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "3 episodes, mean reward 1.000" in proc.stdout
