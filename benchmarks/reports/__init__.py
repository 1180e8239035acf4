"""Reports of a ``hopgym eval`` run: ``report.md`` with the summary and breakdowns, and PNG plots.

``write_report(run_dir)`` reads the run directory (trajectories, summary, config, task file) and writes
``report.md`` plus ``plots/*.png``. The tables are pure functions of scored episodes (:mod:`.tables`), so they
can be computed and tested without files.
"""

from __future__ import annotations

from hopgym.benchmarks.reports.episodes import METRICS, Episode, episode_key, score_episode
from hopgym.benchmarks.reports.run_data import RunData, load_run
from hopgym.benchmarks.reports.tables import (
    FailureTable,
    GroupRow,
    Summary,
    accuracy_by,
    accuracy_by_searches,
    available_groupings,
    failure_table,
    searches_histogram,
    summarize,
)
from hopgym.benchmarks.reports.write import write_report

__all__ = [
    "METRICS",
    "Episode",
    "FailureTable",
    "GroupRow",
    "RunData",
    "Summary",
    "accuracy_by",
    "accuracy_by_searches",
    "available_groupings",
    "episode_key",
    "failure_table",
    "load_run",
    "score_episode",
    "searches_histogram",
    "summarize",
    "write_report",
]
