"""``hopgym eval``'s library side: one evaluation run on the episode engine (:mod:`.run`), its
``summary.json`` (:mod:`.summary`) and the table comparing runs (:mod:`.compare`)."""

from __future__ import annotations

from hopgym.benchmarks.evaluation.config import EvalConfig
from hopgym.benchmarks.evaluation.run import EvalResult, RunStopped, run_eval

__all__ = ["EvalConfig", "EvalResult", "RunStopped", "run_eval"]
