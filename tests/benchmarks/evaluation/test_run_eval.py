"""run_eval against a server that is down: failures are stored, counted, not scored, and stop the run early."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from hopgym.benchmarks.evaluation import EvalConfig, run_eval
from hopgym.testing.openai_server import OpenAIServer


def test_a_run_stops_after_consecutive_failures_and_resumes_them(tmp_path: Path) -> None:
    with OpenAIServer(lambda request: "<answer> nobody </answer>") as server:
        config = EvalConfig(
            env="hopgym/HopWorld-v0", agent="model", base_url=server.base_url, model=server.model, limit=40,
            concurrency=1, max_retries=0, max_consecutive_failures=3, out=str(tmp_path / "run"),
        )  # fmt: skip
        server.fail_with = 500
        stopped = asyncio.run(run_eval(config))
        assert stopped.stopped is not None and "3 episodes in a row failed" in stopped.stopped
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert summary["failed"] == 3 and summary["episodes"] == 3 and summary["complete"] is False
        assert summary["metrics"]["em"] is None and "stopped" in summary
        server.fail_with = None
        done = asyncio.run(run_eval(config))
    assert done.stopped is None and done.summary["complete"] is True
    assert done.summary["episodes"] == 40 and done.summary["failed"] == 0
    assert done.summary["metrics"]["em"] == 0.0  # answered (wrongly): scored, unlike the failures before
