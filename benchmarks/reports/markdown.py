"""``report.md``: the run's headline numbers and its breakdowns as markdown tables (pure: returns text)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hopgym.benchmarks.reports.episodes import METRICS
from hopgym.benchmarks.reports.tables import FailureTable, GroupRow, Summary

__all__ = ["RUN_FACTS", "render_report", "run_facts", "table"]


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    # A pipe or newline would break the table row.
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; numbers right-aligned."""
    align = ["---:" if rows and isinstance(rows[0][i], (int, float)) else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _group_table(rows: Sequence[GroupRow], first: str, accuracy: str) -> str:
    metric_names = [m for m in METRICS if rows and all(m in r.metrics for r in rows if r.scored)]
    if metric_names:
        # With golden answers the accuracy is the EM column: no need to print it twice.
        header = [first, "episodes", "failed", *metric_names]
        body = [[r.label, r.episodes, r.failed, *(r.metrics.get(m) for m in metric_names)] for r in rows]
    else:
        header = [first, "episodes", "failed", accuracy]
        body = [[r.label, r.episodes, r.failed, r.accuracy] for r in rows]
    return table(header, body)


def _headline(summary: Summary, run_summary: Mapping[str, Any] | None) -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = []
    if run_summary is not None:
        metrics = run_summary.get("metrics")
        if isinstance(metrics, Mapping):
            items += [(str(k), v) for k, v in metrics.items() if isinstance(v, (int, float))]
        for key in ("episodes", "failed", "mean_searches", "invalid_action_rate", "wall_s"):
            value = run_summary.get(key)
            if isinstance(value, (int, float)):
                items.append((key, value))
        tokens = run_summary.get("tokens")
        if isinstance(tokens, Mapping):
            items += [(f"tokens.{k}", v) for k, v in tokens.items() if isinstance(v, (int, float))]
        if items:
            return items
    items = [(name, value) for name, value in summary.metrics.items()]
    if not summary.metrics:
        items.append(("accuracy (reward > 0)", summary.accuracy))
    items += [
        ("episodes", summary.episodes),
        ("failed", summary.failed),
        ("mean_searches", summary.mean_searches),
        ("invalid_action_rate", summary.invalid_action_rate),
    ]
    return items


# config.json settings worth a line in the report, in this order (those present and set are shown).
RUN_FACTS = (
    "agent", "model", "method", "api", "protocol", "reward", "dataset", "data", "env", "retriever",
    "top_k", "max_turns", "max_tokens", "temperature", "samples",
)  # fmt: skip


# Sampling settings that mean nothing for the scripted oracle (config.json records their defaults anyway).
_MODEL_ONLY = frozenset({"api", "max_tokens", "temperature"})


def run_facts(config: Mapping[str, Any] | None) -> list[tuple[str, object]]:
    """The settings of ``config.json`` a reader needs to know what was run."""
    if not config:
        return []
    skip = _MODEL_ONLY if config.get("agent") == "oracle" else frozenset()
    return [(k, config[k]) for k in RUN_FACTS if k not in skip and config.get(k) not in (None, "", {}, [])]


def render_report(
    *,
    title: str,
    summary: Summary,
    run_summary: Mapping[str, Any] | None,
    config: Mapping[str, Any] | None = None,
    by_searches: Sequence[GroupRow],
    breakdowns: Mapping[str, Sequence[GroupRow]],
    histogram: Mapping[int, int],
    failures: FailureTable,
    plots: Sequence[tuple[str, str]] = (),
) -> str:
    """The whole report. ``plots`` are (caption, relative PNG path) pairs, linked under the tables."""
    accuracy = "EM" if summary.has_golds else "correct (reward > 0)"
    parts = [f"# {title}", ""]
    if not summary.has_golds:
        parts += [
            "Golden answers were not available for every episode, so *correct* means a positive reward and"
            " answer metrics are left out.",
            "",
        ]
    facts = run_facts(config)
    if facts:
        parts += [
            " · ".join(f"{k}: `{v:g}`" if isinstance(v, float) else f"{k}: `{v}`" for k, v in facts),
            "",
        ]
    parts += ["## Summary", "", table(["metric", "value"], _headline(summary, run_summary)), ""]
    parts += ["## Accuracy by number of searches", "", _group_table(by_searches, "searches", accuracy), ""]
    for name, rows in breakdowns.items():
        parts += [f"## Accuracy by {name}", "", _group_table(rows, name, accuracy), ""]
    total = sum(histogram.values())
    parts += [
        "## Searches per episode",
        "",
        table(
            ["searches", "episodes", "share"],
            [[n, c, c / total if total else 0.0] for n, c in histogram.items()],
        ),
        "",
        "## Failures and invalid actions",
        "",
        table(["termination", "episodes"], [[k, v] for k, v in failures.terminations.items()]),
        "",
    ]
    if failures.failure_kinds:
        parts += [
            "Failed episodes are not scored (they are retried by the next run with the same --out).",
            "",
            table(["failure", "episodes"], [[k, v] for k, v in failures.failure_kinds.items()]),
            "",
        ]
    parts += [f"Episodes with at least one invalid action: {failures.episodes_with_invalid:,}.", ""]
    if failures.invalid_reasons:
        parts += [
            table(["invalid action reason", "turns"], [[k, v] for k, v in failures.invalid_reasons.items()]),
            "",
        ]
    if plots:
        parts += ["## Plots", ""]
        parts += [f"![{caption}]({path})" for caption, path in plots]
        parts.append("")
    return "\n".join(parts)
