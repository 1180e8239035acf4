"""``write_report(run_dir)``: report.md and the PNG plots of a run directory (the I/O edge of reports)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from hopgym.benchmarks.reports.markdown import render_report
from hopgym.benchmarks.reports.plots import plot_accuracy, plot_failures, plot_searches_histogram
from hopgym.benchmarks.reports.run_data import RunData, load_run
from hopgym.benchmarks.reports.tables import (
    GROUPINGS,
    accuracy_by,
    accuracy_by_searches,
    available_groupings,
    failure_table,
    searches_histogram,
    summarize,
)
from hopgym.types import Task

__all__ = ["REPORT", "write_report"]

logger = logging.getLogger(__name__)

REPORT = "report.md"
PLOTS_DIR = "plots"


def _have_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def write_report(
    run_dir: str | Path,
    *,
    tasks: Sequence[Task] | Mapping[str, Task] | None = None,
    plots: bool = True,
    run: RunData | None = None,
) -> Path:
    """Write ``run_dir/report.md`` and (``plots=True``) ``run_dir/plots/*.png``; returns the report's path.

    ``tasks`` gives the golden answers when the caller has them (else the task file in config.json is read);
    ``run`` skips reading the directory again when the caller already loaded it.
    """
    data = run if run is not None else load_run(run_dir, tasks=tasks)
    episodes = data.episodes()
    summary = summarize(episodes)
    by_searches = accuracy_by_searches(episodes)
    breakdowns = {name: accuracy_by(episodes, GROUPINGS[name]) for name in available_groupings(episodes)}
    histogram = searches_histogram(episodes)
    failures = failure_table(episodes)
    metric = "EM" if summary.has_golds else "correct (reward > 0)"
    figures: list[tuple[str, str]] = []
    if plots and episodes and not _have_matplotlib():
        logger.warning("report without plots: matplotlib is not installed (pip install 'hopgym[train]')")
    elif plots and episodes:
        out = data.path / PLOTS_DIR
        if by_searches:
            plot_accuracy(out / "accuracy_by_searches.png", by_searches, by="searches", metric=metric)
            figures.append(("accuracy by number of searches", f"{PLOTS_DIR}/accuracy_by_searches.png"))
        for name, rows in breakdowns.items():
            plot_accuracy(out / f"accuracy_by_{name}.png", rows, by=name, metric=metric)
            figures.append((f"accuracy by {name}", f"{PLOTS_DIR}/accuracy_by_{name}.png"))
        if histogram:
            plot_searches_histogram(out / "searches_histogram.png", histogram)
            figures.append(("searches per episode", f"{PLOTS_DIR}/searches_histogram.png"))
        plot_failures(out / "failures.png", failures, len(episodes))
        figures.append(("failures", f"{PLOTS_DIR}/failures.png"))
    text = render_report(
        title=f"Run {data.name}",
        summary=summary,
        run_summary=data.summary,
        config=data.config,
        by_searches=by_searches,
        breakdowns=breakdowns,
        histogram=histogram,
        failures=failures,
        plots=figures,
    )
    path = data.path / REPORT
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    logger.info("wrote %s (%d episodes, %d plots)", path, len(episodes), len(figures))
    return path
