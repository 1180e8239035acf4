"""The report's PNG plots, drawn with matplotlib's Agg canvas (headless; no pyplot global state)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hopgym.benchmarks.reports.tables import FailureTable, GroupRow

__all__ = ["bar_chart", "plot_accuracy", "plot_failures", "plot_searches_histogram"]


def _figure() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "plots need matplotlib: pip install 'hopgym[train]' (or pip install matplotlib)"
        ) from exc
    return Figure(figsize=(6.4, 3.6), dpi=100, layout="constrained")


def bar_chart(
    path: Path,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    annotations: Sequence[str] | None = None,
    ylim: tuple[float, float] | None = None,
    color: str = "#4c72b0",
) -> Path:
    """One bar per label, each annotated (e.g. with its episode count); written as a PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bars = ax.bar(list(labels), list(values), color=color)
    if annotations is not None:
        ax.bar_label(bars, labels=list(annotations), fontsize=8, padding=2)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    else:
        ax.margins(y=0.12)  # room above the tallest bar for its label
    ax.grid(axis="y", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def plot_accuracy(path: Path, rows: Sequence[GroupRow], *, by: str, metric: str) -> Path:
    """Accuracy per group (scored episodes only), each bar labelled with its episode count."""
    return bar_chart(
        path,
        [r.label for r in rows],
        [r.accuracy or 0.0 for r in rows],
        title=f"{metric} by {by}",
        xlabel=by,
        ylabel=metric,
        annotations=[f"n={r.scored:,}" for r in rows],
        ylim=(0.0, 1.1),
    )


def plot_searches_histogram(path: Path, histogram: Mapping[int, int]) -> Path:
    return bar_chart(
        path,
        [str(n) for n in histogram],
        [float(c) for c in histogram.values()],
        title="searches per episode",
        xlabel="searches",
        ylabel="episodes",
        annotations=[f"{c:,}" for c in histogram.values()],
        color="#55a868",
    )


def plot_failures(path: Path, failures: FailureTable, episodes: int) -> Path:
    """How episodes ended (right or wrong answer, out of turns or tokens, failed) and how many had an
    invalid action."""
    endings = failures.endings or failures.terminations
    # Two-word labels on two lines: six bars of one-line labels overlap at this width.
    labels = [label.replace(" ", "\n", 1) for label in [*endings, "had invalid action"]]
    values = [*endings.values(), failures.episodes_with_invalid]
    return bar_chart(
        path,
        labels,
        [float(v) for v in values],
        title=f"how {episodes:,} episodes ended",
        xlabel="",
        ylabel="episodes",
        annotations=[f"{v:,}" for v in values],
        color="#c44e52",
    )
