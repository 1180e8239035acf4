"""What the viewer embeds: one compact record per episode and a deduplicated passage table (pure).

Keys are short because a 10,000-episode run embeds every turn: the payload is the page's size and parse time.
Retrieved passages are split out of each observation when the protocol's layout is recognised (Search-R1's
``Doc i(Title: ...)``, the tool protocol's ``Doc i (Title: ...)``, R1-Searcher's ``(i)``, ReSearch's blank
lines) and the piece count matches the turn's passage ids; each distinct (id, text) is stored once and turns
refer to it by index. An observation that cannot be split is kept whole.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from hopgym.agents.rollout.trajectory import Trajectory, Turn
from hopgym.benchmarks.reports.episodes import Episode
from hopgym.benchmarks.reports.markdown import run_facts
from hopgym.benchmarks.reports.run_data import RunData
from hopgym.types import Task

__all__ = ["PassageTable", "episode_record", "split_passages", "viewer_payload"]

# Observation wrappers of the built-in protocols, stripped before splitting.
_WRAPPERS = (
    ("<information>", "</information>"),
    ("<result>", "</result>"),
    ("<|begin_of_documents|>", "<|end_of_documents|>"),
)
# Passage layouts, tried in order; each pattern matches where a passage starts.
_STARTS = (re.compile(r"(?m)^Doc \d+ ?\("), re.compile(r"(?m)^Doc \d+$"), re.compile(r"(?m)^\(\d+\)"))
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _unwrap(observation: str) -> str:
    text = observation.strip()
    for open_tag, close_tag in _WRAPPERS:
        start, end = text.find(open_tag), text.rfind(close_tag)
        if start != -1 and end > start:
            return text[start + len(open_tag) : end].strip()
    return text


def split_passages(observation: str, count: int) -> list[str] | None:
    """The ``count`` passages' texts in ``observation``, or None when its layout is not recognised."""
    if count <= 0:
        return None
    body = _unwrap(observation)
    for pattern in _STARTS:
        starts = [m.start() for m in pattern.finditer(body)]
        if len(starts) == count and starts[0] == 0:
            bounds = [*starts, len(body)]
            return [body[a:b].strip() for a, b in itertools.pairwise(bounds)]
    pieces = [p.strip() for p in _BLANK_LINE.split(body) if p.strip()]
    return pieces if len(pieces) == count else None


class PassageTable:
    """Distinct (passage id, text) pairs in first-seen order; ``add`` returns a pair's index."""

    def __init__(self) -> None:
        self._index: dict[tuple[str, str], int] = {}
        self.rows: list[list[str]] = []

    def add(self, passage_id: str, text: str) -> int:
        key = (passage_id, text)
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self.rows)
            self.rows.append([passage_id, text])
        return index


def _turn_record(turn: Turn, passages: PassageTable) -> dict[str, Any]:
    record: dict[str, Any] = {"x": turn.text, "k": turn.action_kind}
    if turn.query is not None:
        record["qy"] = turn.query
    if turn.answer is not None:
        record["an"] = turn.answer
    if turn.invalid_reason:
        record["inv"] = turn.invalid_reason
    if turn.tool_calls:
        # Native tool calls (tool_call protocol): the text may be empty, the action is here.
        record["tc"] = json.dumps([dict(c) for c in turn.tool_calls], ensure_ascii=False, default=str)
    if turn.finish_reason and turn.finish_reason != "stop":
        record["fr"] = turn.finish_reason
    if turn.token_ids is not None:
        record["nt"] = len(turn.token_ids)
    record["gs"] = round(turn.generation_s, 4)
    record["ss"] = round(turn.step_s, 4)
    pieces = split_passages(turn.observation, len(turn.passage_ids)) if turn.passage_ids else None
    if pieces is not None:
        record["pi"] = [passages.add(pid, text) for pid, text in zip(turn.passage_ids, pieces, strict=True)]
    else:
        if turn.passage_ids:
            record["ids"] = list(turn.passage_ids)
        if turn.observation.strip():
            record["ob"] = turn.observation
    return record


def episode_record(
    traj: Trajectory, episode: Episode, task: Task | None, passages: PassageTable
) -> dict[str, Any]:
    """The viewer's record of one episode (see the module docstring for why the keys are short)."""
    supporting = task.metadata.get("supporting_passage_ids") if task is not None else None
    record: dict[str, Any] = {
        "k": episode.key,
        "q": episode.question if episode.question is not None else traj.prompt[-500:],
        "o": episode.outcome,
        "ns": episode.num_searches,
        "ni": episode.invalid_actions,
        "a": episode.answer,
        "g": list(episode.golden_answers),
        "term": episode.termination,
        "w": round(episode.wall_s, 3),
        "t": [_turn_record(turn, passages) for turn in traj.turns],
    }
    optional: Mapping[str, Any] = {
        "d": episode.dataset,
        "h": episode.hops,
        "ty": episode.question_type,
        "m": dict(episode.metrics) or None,
        "r": episode.reward,
        "rc": dict(traj.reward_components) or None,
        "err": episode.error,
        "sup": [str(s) for s in supporting] if isinstance(supporting, (list, tuple)) and supporting else None,
    }
    record.update({k: v for k, v in optional.items() if v is not None})
    return record


def viewer_payload(run: RunData, episodes: Sequence[Episode] | None = None) -> dict[str, Any]:
    """Everything the page shows: run facts, the passage table and one record per episode."""
    scored = episodes if episodes is not None else run.episodes()
    passages = PassageTable()
    records = [
        episode_record(traj, episode, run.tasks.get(traj.task_id), passages)
        for traj, episode in zip(run.trajectories, scored, strict=True)
    ]
    return {
        "run": {
            "name": run.name,
            "summary": dict(run.summary) if run.summary else None,
            "config": dict(run.config) if run.config else None,
            "facts": [[k, v] for k, v in run_facts(run.config)],
            "has_golds": bool(records) and all(e.golden_answers for e in scored if not e.failed),
        },
        "passages": passages.rows,
        "episodes": records,
    }
