"""``hopgym eval --compare DIR ...``: one table of finished runs, as the seed papers' tables look.

Rows are runs (named by their directory), columns are dataset x metric from each run's ``summary.json``
(``by.dataset``; a run without that breakdown contributes its overall metrics under its dataset name), with
an ``all`` column group when the runs span more than one dataset. Written as markdown, CSV and a grouped bar
chart PNG (one group per dataset, one bar per run; the first metric). The table is a pure function of the
summaries; only :func:`compare_runs` and :func:`write_comparison` touch files.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hopgym.errors import DataError

__all__ = ["COMPARE_METRICS", "CompareTable", "build_table", "compare_runs", "write_comparison"]

COMPARE_METRICS = ("em", "f1", "sub_em", "cover_em")


@dataclass(frozen=True)
class CompareTable:
    """``values[run][(dataset, metric)]``: None where a run has no value (shown as ``-``)."""

    runs: tuple[str, ...]
    datasets: tuple[str, ...]
    metrics: tuple[str, ...]
    values: Mapping[str, Mapping[tuple[str, str], float | None]]
    failed: Mapping[str, int]

    @property
    def columns(self) -> list[tuple[str, str]]:
        return [(d, m) for d in self.datasets for m in self.metrics]

    def rows(self) -> list[list[Any]]:
        return [
            [run, *(self.values[run].get(c) for c in self.columns), self.failed[run]] for run in self.runs
        ]

    def to_markdown(self) -> str:
        header = ["run", *(f"{d} {m.upper()}" for d, m in self.columns), "failed"]
        lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
        for row in self.rows():
            cells = [str(row[0])] + [_cell(v) for v in row[1:-1]] + [str(row[-1])]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["run", *(f"{d}:{m}" for d, m in self.columns), "failed"])
        for row in self.rows():
            writer.writerow(["" if v is None else v for v in row])
        return buffer.getvalue()


def _cell(value: float | None) -> str:
    # Percentages with one decimal, as the seed papers print EM/F1.
    return "-" if value is None else f"{100 * value:.1f}"


def _run_metrics(summary: Mapping[str, Any], dataset: str) -> dict[str, Mapping[str, Any]]:
    """dataset -> metrics of one summary."""
    by = summary.get("by")
    groups = by.get("dataset") if isinstance(by, Mapping) else None
    out: dict[str, Mapping[str, Any]] = {}
    if isinstance(groups, Mapping) and groups:
        for name, group in groups.items():
            metrics = group.get("metrics") if isinstance(group, Mapping) else None
            if isinstance(metrics, Mapping):
                out[str(name)] = metrics
    if not out:
        metrics = summary.get("metrics")
        out[dataset] = metrics if isinstance(metrics, Mapping) else {}
    return out


def build_table(
    summaries: Sequence[tuple[str, Mapping[str, Any], str]], metrics: Sequence[str] = COMPARE_METRICS
) -> CompareTable:
    """The table of ``(run name, summary, dataset name)`` triples (pure)."""
    names = _unique_names([name for name, _, _ in summaries])
    per_run = {
        name: _run_metrics(summary, dataset)
        for name, (_, summary, dataset) in zip(names, summaries, strict=True)
    }
    datasets: list[str] = []
    for groups in per_run.values():
        datasets += [d for d in groups if d not in datasets]
    values: dict[str, dict[tuple[str, str], float | None]] = {}
    for (name, groups), (_, summary, _) in zip(per_run.items(), summaries, strict=True):
        row: dict[tuple[str, str], float | None] = {}
        for dataset in datasets:
            for metric in metrics:
                value = groups.get(dataset, {}).get(metric)
                row[(dataset, metric)] = float(value) if isinstance(value, (int, float)) else None
        found = summary.get("metrics")
        overall: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        for metric in metrics:
            value = overall.get(metric)
            row[("all", metric)] = float(value) if isinstance(value, (int, float)) else None
        values[name] = row
    shown = [*datasets, "all"] if len(datasets) > 1 else datasets
    failed = {name: int(s.get("failed") or 0) for name, (_, s, _) in zip(names, summaries, strict=True)}
    return CompareTable(tuple(names), tuple(shown), tuple(metrics), values, failed)


def _unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def compare_runs(run_dirs: Sequence[Path]) -> CompareTable:
    """Read each run directory's ``summary.json`` (and ``config.json`` for its dataset name)."""
    summaries: list[tuple[str, Mapping[str, Any], str]] = []
    for run_dir in run_dirs:
        summary = _read_object(run_dir / "summary.json", "run it with hopgym eval --out first")
        config_path = run_dir / "config.json"
        config = _read_object(config_path, "") if config_path.is_file() else {}
        dataset = str(config.get("dataset") or config.get("data") or config.get("env") or run_dir.name)
        summaries.append((run_dir.resolve().name, summary, dataset))
    if not summaries:
        raise DataError("no run directories to compare: give at least one --compare DIR")
    return build_table(summaries)


def _read_object(path: Path, hint: str) -> Mapping[str, Any]:
    if not path.is_file():
        raise DataError(f"not found{'; ' + hint if hint else ''}", path=str(path))
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"not valid JSON ({exc}); fix or delete the file", path=str(path)) from exc
    if not isinstance(value, dict):
        raise DataError("expected a JSON object", path=str(path))
    return value


def write_comparison(table: CompareTable, out_dir: Path) -> dict[str, Path]:
    """``compare.md``, ``compare.csv`` and (with matplotlib) ``compare.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"markdown": out_dir / "compare.md", "csv": out_dir / "compare.csv"}
    files["markdown"].write_text(table.to_markdown(), encoding="utf-8")
    files["csv"].write_text(table.to_csv(), encoding="utf-8")
    png = out_dir / "compare.png"
    if _plot(table, png):
        files["png"] = png
    return files


def _plot(table: CompareTable, path: Path) -> bool:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        import logging

        logging.getLogger(__name__).warning(
            "no compare.png: matplotlib is not installed (pip install 'hopgym[train]')"
        )
        return False
    metric = table.metrics[0]
    figure = Figure(figsize=(max(4.0, 1.2 * len(table.datasets) * max(1, len(table.runs)) / 2 + 2), 3.6))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(table.runs))
    for i, run in enumerate(table.runs):
        heights = [100 * (table.values[run].get((d, metric)) or 0.0) for d in table.datasets]
        positions = [j + i * width - 0.4 + width / 2 for j in range(len(table.datasets))]
        axes.bar(positions, heights, width, label=run)
    axes.set_xticks(range(len(table.datasets)), list(table.datasets))
    axes.set_ylabel(f"{metric.upper()} (%)")
    axes.set_ylim(0, 100)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(str(path), dpi=110)
    return True
