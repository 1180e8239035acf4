"""The report's tables, computed from scored episodes: pure functions, no I/O.

Failed episodes (infrastructure failures, retried on the next run) are counted apart and never enter an
accuracy: a failure is not a wrong answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from hopgym.benchmarks.reports.episodes import METRICS, Episode

__all__ = [
    "GROUPINGS",
    "FailureTable",
    "GroupRow",
    "Summary",
    "accuracy_by",
    "accuracy_by_searches",
    "available_groupings",
    "failure_table",
    "searches_histogram",
    "summarize",
]

# Breakdown name -> the episode attribute it groups by.
GROUPINGS: dict[str, Callable[[Episode], Hashable | None]] = {
    "dataset": lambda e: e.dataset,
    "hops": lambda e: e.hops,
    "type": lambda e: e.question_type,
}


@dataclass(frozen=True)
class GroupRow:
    """Episodes sharing one value of a grouping. ``accuracy`` is over the scored (not failed) ones."""

    label: str
    episodes: int
    failed: int
    accuracy: float | None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def scored(self) -> int:
        return self.episodes - self.failed


@dataclass(frozen=True)
class Summary:
    episodes: int
    failed: int
    accuracy: float | None
    metrics: dict[str, float]
    mean_searches: float | None
    invalid_action_rate: float | None
    terminations: dict[str, int]
    has_golds: bool


@dataclass(frozen=True)
class FailureTable:
    """Why episodes ended badly: terminations, failure kinds (the error's type) and invalid-action reasons."""

    terminations: dict[str, int]
    failure_kinds: dict[str, int]
    invalid_reasons: dict[str, int]
    episodes_with_invalid: int
    #: terminations with "answered" split into right and wrong answers, in a fixed order
    endings: dict[str, int] = field(default_factory=dict)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _row(label: str, group: Sequence[Episode]) -> GroupRow:
    scored = [e for e in group if not e.failed]
    metrics: dict[str, float] = {}
    for name in METRICS:
        values = [e.metrics[name] for e in scored if name in e.metrics]
        if values and len(values) == len(scored):
            metrics[name] = sum(values) / len(values)
    accuracy = _mean([1.0 if e.correct else 0.0 for e in scored])
    return GroupRow(label, len(group), len(group) - len(scored), accuracy, metrics)


def _sort_key(value: Hashable) -> tuple[int, float, str]:
    # Numbers in numeric order first, then names alphabetically.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def accuracy_by(episodes: Iterable[Episode], key: Callable[[Episode], Hashable | None]) -> list[GroupRow]:
    """One row per value of ``key`` (episodes where it is None are left out), in natural order."""
    groups: dict[Hashable, list[Episode]] = {}
    for episode in episodes:
        value = key(episode)
        if value is not None:
            groups.setdefault(value, []).append(episode)
    return [_row(str(value), groups[value]) for value in sorted(groups, key=_sort_key)]


def accuracy_by_searches(episodes: Iterable[Episode]) -> list[GroupRow]:
    """Accuracy per number of searches. Failed episodes are left out: their search count is incomplete."""
    return accuracy_by([e for e in episodes if not e.failed], lambda e: e.num_searches)


def available_groupings(episodes: Sequence[Episode]) -> list[str]:
    """The groupings worth a breakdown: those with at least two distinct values (hops: at least one)."""
    out = []
    for name, key in GROUPINGS.items():
        values = {key(e) for e in episodes} - {None}
        if len(values) >= 2 or (name == "hops" and values):
            out.append(name)
    return out


def searches_histogram(episodes: Iterable[Episode]) -> dict[int, int]:
    """Episodes per number of searches (failed ones left out), every count from 0 to the maximum present."""
    counts = Counter(e.num_searches for e in episodes if not e.failed)
    if not counts:
        return {}
    return {n: counts.get(n, 0) for n in range(max(counts) + 1)}


def _failure_kind(error: str | None) -> str:
    # Trajectory errors are "Type: message"; the type is what groups them.
    if not error:
        return "unknown"
    head = error.split(":", 1)[0].strip()
    return head if head and " " not in head else "other"


_ENDINGS = ("correct answer", "wrong answer", "max_turns", "length", "failed")


def _ending(episode: Episode) -> str:
    if episode.termination == "answered":
        return "correct answer" if episode.correct else "wrong answer"
    return episode.termination


def failure_table(episodes: Sequence[Episode], *, top: int = 10) -> FailureTable:
    terminations = Counter(e.termination for e in episodes)
    kinds = Counter(_failure_kind(e.error) for e in episodes if e.failed)
    reasons = Counter(r for e in episodes for r in e.invalid_reasons)
    endings = Counter(_ending(e) for e in episodes)
    return FailureTable(
        endings={k: endings[k] for k in _ENDINGS if endings[k]},
        terminations=dict(terminations.most_common()),
        failure_kinds=dict(kinds.most_common()),
        invalid_reasons=dict(reasons.most_common(top)),
        episodes_with_invalid=sum(1 for e in episodes if e.invalid_actions),
    )


def summarize(episodes: Sequence[Episode]) -> Summary:
    """Headline numbers over all episodes (metrics and accuracy over the scored ones)."""
    row = _row("all", episodes)
    scored = [e for e in episodes if not e.failed]
    turns = sum(e.turns for e in scored)
    return Summary(
        episodes=len(episodes),
        failed=row.failed,
        accuracy=row.accuracy,
        metrics=row.metrics,
        mean_searches=_mean([float(e.num_searches) for e in scored]),
        invalid_action_rate=sum(e.invalid_actions for e in scored) / turns if turns else None,
        terminations=dict(Counter(e.termination for e in episodes).most_common()),
        has_golds=bool(scored) and all(e.golden_answers for e in scored),
    )
