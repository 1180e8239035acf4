"""Episode records: what each turn generated and observed, and the token-level view a trainer consumes.

For token-level backends a :class:`Trajectory` carries the whole sequence (prompt, then generated and
observation tokens in order) with ``loss_mask`` 1 exactly on the generated tokens, ``logprobs`` aligned with it
(None outside generated tokens) and ``action_spans``, the ``[start, end)`` index range of each generated turn.
The helpers here are pure so that trainers and tests can rebuild and check that view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "TERMINATIONS",
    "Termination",
    "Trajectory",
    "Turn",
    "assemble_tokens",
    "spans_from_mask",
    "verify_trajectory",
]

Termination = Literal["answered", "max_turns", "length", "failed"]
TERMINATIONS: tuple[Termination, ...] = ("answered", "max_turns", "length", "failed")


@dataclass(frozen=True)
class Turn:
    """One generate-then-step round. ``token_ids``/``logprobs`` are None when the backend gives none."""

    text: str
    finish_reason: str
    observation: str
    action_kind: str
    stop_reason: str | None = None
    token_ids: tuple[int, ...] | None = None
    logprobs: tuple[float, ...] | None = None
    observation_token_ids: tuple[int, ...] | None = None
    query: str | None = None
    answer: str | None = None
    passage_ids: tuple[str, ...] = ()
    invalid_reason: str | None = None
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    generation_s: float = 0.0
    step_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "stop_reason": self.stop_reason,
            "observation": self.observation,
            "action_kind": self.action_kind,
            "token_ids": None if self.token_ids is None else list(self.token_ids),
            "logprobs": None if self.logprobs is None else list(self.logprobs),
            "observation_token_ids": None
            if self.observation_token_ids is None
            else list(self.observation_token_ids),
            "query": self.query,
            "answer": self.answer,
            "passage_ids": list(self.passage_ids),
            "invalid_reason": self.invalid_reason,
            "tool_calls": [dict(c) for c in self.tool_calls],
            "generation_s": self.generation_s,
            "step_s": self.step_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Turn:
        def ints(key: str) -> tuple[int, ...] | None:
            value = data.get(key)
            return None if value is None else tuple(int(x) for x in value)

        logprobs = data.get("logprobs")
        return cls(
            text=str(data["text"]),
            finish_reason=str(data["finish_reason"]),
            stop_reason=data.get("stop_reason"),
            observation=str(data.get("observation", "")),
            action_kind=str(data["action_kind"]),
            token_ids=ints("token_ids"),
            logprobs=None if logprobs is None else tuple(float(x) for x in logprobs),
            observation_token_ids=ints("observation_token_ids"),
            query=data.get("query"),
            answer=data.get("answer"),
            passage_ids=tuple(str(p) for p in data.get("passage_ids") or ()),
            invalid_reason=data.get("invalid_reason"),
            tool_calls=tuple(dict(c) for c in data.get("tool_calls") or ()),
            generation_s=float(data.get("generation_s", 0.0)),
            step_s=float(data.get("step_s", 0.0)),
        )


@dataclass(frozen=True)
class Trajectory:
    """One finished (or failed) episode.

    ``reward`` is None only for failed episodes: a failure is never scored as a zero. ``token_ids``,
    ``loss_mask``, ``logprobs`` and ``action_spans`` are set for token-level policies only.
    """

    task_id: str
    sample_index: int
    group_id: str
    termination: Termination
    turns: tuple[Turn, ...] = ()
    reward: float | None = None
    reward_components: Mapping[str, float] = field(default_factory=dict)
    answer: str | None = None
    num_searches: int = 0
    error: str | None = None
    prompt: str = ""
    prompt_token_count: int | None = None
    token_ids: tuple[int, ...] | None = None
    loss_mask: tuple[int, ...] | None = None
    logprobs: tuple[float | None, ...] | None = None
    action_spans: tuple[tuple[int, int], ...] | None = None
    policy: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0

    def __post_init__(self) -> None:
        if self.termination not in TERMINATIONS:
            raise ValueError(f"termination={self.termination!r}: must be one of {TERMINATIONS}")
        if self.termination == "failed" and not self.error:
            raise ValueError("a failed trajectory needs error='Type: message'")
        if self.termination != "failed" and self.reward is None:
            raise ValueError(f"a {self.termination!r} trajectory needs a reward (only failed ones have none)")

    @property
    def key(self) -> tuple[str, int]:
        """The (task id, sample index) pair that identifies this episode in a run."""
        return (self.task_id, self.sample_index)

    @property
    def failed(self) -> bool:
        return self.termination == "failed"

    @property
    def generated_tokens(self) -> int:
        """Generated tokens over all turns (0 when the backend reports no token ids)."""
        return sum(len(t.token_ids) for t in self.turns if t.token_ids is not None)

    @property
    def response(self) -> str:
        """Everything after the prompt: each turn's text followed by its observation."""
        return "".join(t.text + t.observation for t in self.turns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "sample_index": self.sample_index,
            "group_id": self.group_id,
            "termination": self.termination,
            "reward": self.reward,
            "reward_components": dict(self.reward_components),
            "answer": self.answer,
            "num_searches": self.num_searches,
            "error": self.error,
            "prompt": self.prompt,
            "prompt_token_count": self.prompt_token_count,
            "turns": [t.to_dict() for t in self.turns],
            "token_ids": None if self.token_ids is None else list(self.token_ids),
            "loss_mask": None if self.loss_mask is None else list(self.loss_mask),
            "logprobs": None if self.logprobs is None else list(self.logprobs),
            "action_spans": None if self.action_spans is None else [list(s) for s in self.action_spans],
            "policy": self.policy,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trajectory:
        token_ids, mask, logprobs, spans = (
            data.get(k) for k in ("token_ids", "loss_mask", "logprobs", "action_spans")
        )
        reward = data.get("reward")
        return cls(
            task_id=str(data["task_id"]),
            sample_index=int(data["sample_index"]),
            group_id=str(data.get("group_id", data["task_id"])),
            termination=data["termination"],
            turns=tuple(Turn.from_dict(t) for t in data.get("turns") or ()),
            reward=None if reward is None else float(reward),
            reward_components={str(k): float(v) for k, v in (data.get("reward_components") or {}).items()},
            answer=data.get("answer"),
            num_searches=int(data.get("num_searches", 0)),
            error=data.get("error"),
            prompt=str(data.get("prompt", "")),
            prompt_token_count=data.get("prompt_token_count"),
            token_ids=None if token_ids is None else tuple(int(x) for x in token_ids),
            loss_mask=None if mask is None else tuple(int(x) for x in mask),
            logprobs=None if logprobs is None else tuple(None if x is None else float(x) for x in logprobs),
            action_spans=None if spans is None else tuple((int(a), int(b)) for a, b in spans),
            policy=str(data.get("policy", "")),
            started_at=float(data.get("started_at", 0.0)),
            finished_at=float(data.get("finished_at", 0.0)),
        )


def assemble_tokens(
    prompt_ids: Sequence[int], turns: Sequence[Turn]
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[float | None, ...], tuple[tuple[int, int], ...]]:
    """Token ids, loss mask, aligned logprobs and action spans of prompt + turns (token-level turns only).

    Raises ValueError when a turn lacks token ids, or its logprobs do not match them in length.
    """
    ids: list[int] = list(prompt_ids)
    mask: list[int] = [0] * len(ids)
    logprobs: list[float | None] = [None] * len(ids)
    spans: list[tuple[int, int]] = []
    for i, turn in enumerate(turns):
        if turn.token_ids is None:
            raise ValueError(f"turn {i} has no token ids: the trajectory is not token-level")
        if turn.logprobs is not None and len(turn.logprobs) != len(turn.token_ids):
            raise ValueError(f"turn {i}: {len(turn.token_ids)} token ids but {len(turn.logprobs)} logprobs")
        start = len(ids)
        ids += turn.token_ids
        mask += [1] * len(turn.token_ids)
        logprobs += list(turn.logprobs) if turn.logprobs is not None else [None] * len(turn.token_ids)
        spans.append((start, len(ids)))
        obs = turn.observation_token_ids or ()
        ids += obs
        mask += [0] * len(obs)
        logprobs += [None] * len(obs)
    return tuple(ids), tuple(mask), tuple(logprobs), tuple(spans)


def spans_from_mask(mask: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """The maximal ``[start, end)`` runs of 1 in ``mask``."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for i, bit in enumerate(mask):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            spans.append((start, i))
            start = None
    if start is not None:
        spans.append((start, len(mask)))
    return tuple(spans)


def verify_trajectory(traj: Trajectory, decode: Callable[[Sequence[int]], str] | None = None) -> list[str]:
    """Consistency problems of a token-level trajectory (empty list: consistent).

    Checks equal lengths, mask == 1 exactly on the action spans, spans matching the turns' token ids, logprobs
    present exactly on generated tokens, the prompt/observation tokens in place, and, with ``decode``, that each
    span decodes to its turn's text and each observation's tokens to the observation text.
    """
    if traj.token_ids is None:
        return []
    problems: list[str] = []
    ids, mask, logprobs, spans = traj.token_ids, traj.loss_mask, traj.logprobs, traj.action_spans
    if mask is None or logprobs is None or spans is None:
        return ["token_ids is set but loss_mask, logprobs or action_spans is missing"]
    if not len(ids) == len(mask) == len(logprobs):
        problems.append(f"lengths differ: {len(ids)} ids, {len(mask)} mask, {len(logprobs)} logprobs")
        return problems
    if len(spans) != len(traj.turns):
        problems.append(f"{len(spans)} action spans for {len(traj.turns)} turns")
    nonempty = tuple(s for s in spans if s[1] > s[0])
    if spans_from_mask(mask) != _merge_adjacent(nonempty):
        problems.append("loss_mask is not 1 exactly on the action spans")
    try:
        prompt = ids[: traj.prompt_token_count] if traj.prompt_token_count is not None else ()
        expected = assemble_tokens(prompt, traj.turns)
    except ValueError as exc:
        return [*problems, str(exc)]
    if expected[0] != ids:
        problems.append(
            "token_ids differ from the prompt followed by each turn's generated and observation ids"
        )
    if expected[3] != spans:
        problems.append("action_spans differ from the turns' token ranges")
    has_logprobs = any(t.logprobs is not None for t in traj.turns)
    for i, (value, bit) in enumerate(zip(logprobs, mask, strict=True)):
        if value is not None and not (bit and has_logprobs):
            problems.append(f"logprob set at {i}, which is not a generated token with logprobs")
            break
        if value is None and bit and has_logprobs:
            problems.append(f"logprob missing at generated token {i}")
            break
    if decode is not None:
        for i, (turn, (start, end)) in enumerate(zip(traj.turns, spans, strict=False)):
            if decode(ids[start:end]) != turn.text:
                problems.append(f"turn {i}: decoded action span differs from the generated text")
            obs_ids = turn.observation_token_ids or ()
            if decode(obs_ids) != turn.observation:
                problems.append(f"turn {i}: decoded observation tokens differ from the observation text")
    return problems


def _merge_adjacent(spans: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)
