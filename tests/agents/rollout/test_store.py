"""The trajectory store: streaming appends, done keys, torn-line recovery, and resume after a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import hopgym
from hopgym.agents.rollout.engine import collect_episodes, run_episodes
from hopgym.agents.rollout.store import TrajectoryStore
from hopgym.agents.rollout.trajectory import Trajectory
from hopgym.agents.scripted_policy import ScriptedOraclePolicy
from hopgym.errors import ConfigError


def _traj(task_id: str, sample: int, *, failed: bool = False) -> Trajectory:
    if failed:
        return Trajectory(task_id=task_id, sample_index=sample, group_id=task_id, termination="failed",
                          error="RuntimeError: boom")  # fmt: skip
    return Trajectory(
        task_id=task_id, sample_index=sample, group_id=task_id, termination="answered", reward=1.0
    )


def test_append_then_read_back(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "out.jsonl"
    with TrajectoryStore(path) as store:
        store.append(_traj("a", 0))
        store.append(_traj("a", 1, failed=True))
        store.append(_traj("b", 0))
    store = TrajectoryStore(path)
    assert [t.key for t in store] == [("a", 0), ("a", 1), ("b", 0)]
    assert store.done_keys() == {("a", 0), ("b", 0)}  # the failed one will be retried


def test_latest_prefers_a_success_over_failures(tmp_path: Path) -> None:
    with TrajectoryStore(tmp_path / "s.jsonl") as store:
        store.append(_traj("a", 0, failed=True))
        store.append(_traj("a", 0))
        store.append(_traj("b", 0, failed=True))
    latest = TrajectoryStore(tmp_path / "s.jsonl").latest()
    assert not latest[("a", 0)].failed
    assert latest[("b", 0)].failed


def test_torn_last_line_is_dropped_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    with TrajectoryStore(path) as store:
        store.append(_traj("a", 0))
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"task_id": "b", "sample_ind')  # a write cut by a crash
    assert TrajectoryStore(path).done_keys() == {("a", 0)}
    with TrajectoryStore(path) as store:
        store.append(_traj("c", 0))
    assert [t.key for t in TrajectoryStore(path)] == [("a", 0), ("c", 0)]


_WORKER = """
import asyncio, json, sys
from hopgym.agents.rollout.engine import run_episodes
from hopgym.agents.scripted_policy import ScriptedOraclePolicy
from hopgym.envs.registration import make_async

async def main(path):
    env = make_async("hopgym/HopWorld-v0", world_seed=5, reward="em")
    policy = ScriptedOraclePolicy(env.tasks, env.protocol, delay_s=0.01)
    run = run_episodes(env, policy, concurrency=8, samples_per_task=2, store=path)
    async with run:
        async for _ in run:
            pass
    await env.aclose()
    print(json.dumps(run.summary.to_dict()))

asyncio.run(main(sys.argv[1]))
"""


def _run_worker(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_resume_after_sigkill_keeps_everything_and_duplicates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    proc = _run_worker(path)
    try:
        deadline = time.monotonic() + 60
        while _lines(path) < 40 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, f"worker ended before the kill: {proc.communicate()[1][-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    before = {t.key: t.to_dict() for t in TrajectoryStore(path)}
    assert 40 <= len(before) < 400, "the kill must land mid-run"

    rerun = _run_worker(path)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err[-2000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["planned"] == 400
    assert summary["skipped"] == len(before)
    assert summary["finished"] == 400 - len(before)
    assert summary["failed"] == 0

    records = list(TrajectoryStore(path))
    counts = Counter(t.key for t in records)
    assert [k for k, n in counts.items() if n > 1] == []
    env_tasks = {t.task_id for t in records}
    assert len(env_tasks) == 200 and set(counts) == {(task, s) for task in env_tasks for s in (0, 1)}
    after = {t.key: t.to_dict() for t in records}
    assert all(after[key] == record for key, record in before.items())
    assert all(t.reward == 1.0 for t in records)


_HOLDER = """
import sys, time
from hopgym.agents.rollout.store import TrajectoryStore
store = TrajectoryStore(sys.argv[1]).open()
print("locked", flush=True)
sys.stdin.readline()
store.close()
print("released", flush=True)
sys.stdin.readline()
"""


def test_a_second_writer_is_refused_while_another_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match=rf"{path.name} is being written by another run.*another store"):
            TrajectoryStore(path).open()
        assert list(TrajectoryStore(path)) == []  # reading needs no lock
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        with TrajectoryStore(path) as store:  # free again once the first writer closed
            store.append(_traj("a", 0))
    finally:
        holder.kill()
        holder.wait()
    # A killed writer leaves no lock behind.
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait()
    with TrajectoryStore(path) as store:
        store.append(_traj("b", 0))
    assert [t.key for t in TrajectoryStore(path)] == [("a", 0), ("b", 0)]


async def test_two_runs_on_one_store_do_not_interleave(tmp_path: Path) -> None:
    env = hopgym.make_async("hopgym/HopWorld-2hop-v0", world_seed=6, reward="em")
    policy = ScriptedOraclePolicy(env.tasks, env.protocol, delay_s=0.01)
    ids = [t.id for t in env.tasks[:12]]
    path = tmp_path / "run.jsonl"
    first = run_episodes(env, policy, ids, concurrency=4, store=path)
    async with first:
        got = [await first.__anext__()]  # the first run is writing
        second = collect_episodes(env, policy, ids, concurrency=4, store=path)
        with pytest.raises(ConfigError, match="being written by another run"):
            await second
        got += [t async for t in first]
    await env.aclose()
    assert len(got) == 12
    assert Counter(t.key for t in TrajectoryStore(path)) == Counter({(i, 0): 1 for i in ids})


def test_a_directory_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"is a directory; give a \.jsonl file path"):
        TrajectoryStore(tmp_path).open()
