"""Per-step metrics: computed from a step's trajectories (pure), appended to ``metrics.jsonl`` (one line per
step, flushed as written), and read back for plots and resume."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hopgym.agents.rollout.trajectory import Trajectory

__all__ = ["MetricsLog", "answer_metrics", "episode_metrics", "episode_success", "read_metrics"]


def episode_success(traj: Trajectory) -> bool:
    """An episode succeeds when its exact-match component is 1 (or, without one, its reward is >= 1)."""
    if traj.reward is None:
        return False
    em = traj.reward_components.get("em")
    return bool(em >= 1.0) if em is not None else traj.reward >= 1.0


def episode_metrics(trajectories: Sequence[Trajectory], prefix: str = "") -> dict[str, float]:
    """Reward mean/std, success rate, mean searches, invalid-action rate and lengths of finished episodes."""
    done = [t for t in trajectories if not t.failed]
    if not done:
        return {f"{prefix}episodes": 0.0}
    rewards = [float(t.reward or 0.0) for t in done]
    mean = sum(rewards) / len(rewards)
    turns = [turn for t in done for turn in t.turns]
    return {
        f"{prefix}episodes": float(len(done)),
        f"{prefix}reward_mean": mean,
        f"{prefix}reward_std": math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards)),
        f"{prefix}success_rate": sum(episode_success(t) for t in done) / len(done),
        f"{prefix}mean_searches": sum(t.num_searches for t in done) / len(done),
        f"{prefix}invalid_action_rate": sum(turn.action_kind == "invalid" for turn in turns)
        / max(len(turns), 1),
        f"{prefix}answered_rate": sum(t.termination == "answered" for t in done) / len(done),
        f"{prefix}response_tokens": sum(t.generated_tokens for t in done) / len(done),
        f"{prefix}episode_tokens": sum(len(t.token_ids or ()) for t in done) / len(done),
    }


def answer_metrics(
    trajectories: Sequence[Trajectory], golds: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """EM, F1, sub-EM and cover-EM of the extracted answers against each task's golden answers (best match),
    the rules ``hopgym eval`` reports (one implementation: :mod:`hopgym.envs.rewards.qa`); no answer scores 0."""
    from hopgym.envs.rewards.qa import cover_em_score, em_score, f1_score, sub_em_score

    done = [t for t in trajectories if not t.failed]
    if not done:
        return {}
    rules = {"em": em_score, "f1": f1_score, "sub_em": sub_em_score, "cover_em": cover_em_score}
    return {
        name: sum(rule(t.answer, golds[t.task_id]) if t.answer is not None else 0.0 for t in done) / len(done)
        for name, rule in rules.items()
    }


class MetricsLog:
    """``metrics.jsonl`` of a run. On resume, lines after the checkpoint's step are dropped first, so a
    killed run's partial progress is not logged twice."""

    def __init__(self, path: Path, *, resume_step: int | None = None, tensorboard: bool = False) -> None:
        self.path = path
        self._board: Any = None
        if tensorboard:
            from hopgym.errors import require

            require("tensorboard", extra="tensorboard", purpose="run.tensorboard=true")
            from torch.utils.tensorboard import SummaryWriter

            self._board = SummaryWriter(log_dir=str(path.parent / "tensorboard"), purge_step=resume_step)
        if resume_step is not None and path.exists():
            kept = [r for r in read_metrics(path) if int(r.get("step", 0)) <= resume_step]
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
            os.replace(tmp, path)
        self._file = path.open("a", encoding="utf-8")

    def write(self, record: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(dict(record), allow_nan=False, default=float) + "\n")
        self._file.flush()
        if self._board is not None:
            prefix = "" if record.get("kind", "train") == "train" else f"{record['kind']}/"
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
                    name = key if key.startswith(prefix) else f"{prefix}{key}"
                    self._board.add_scalar(name, value, global_step=int(record.get("step", 0)))
            self._board.flush()

    def close(self) -> None:
        self._file.close()
        if self._board is not None:
            self._board.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every record of a ``metrics.jsonl`` (a torn last line from a kill is skipped)."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def finite(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with non-finite floats replaced by None (JSON has no NaN)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def series(
    records: Iterable[Mapping[str, Any]], key: str, *, kind: str = "train"
) -> tuple[list[float], list[float], list[float]]:
    """``(steps, elapsed seconds, values)`` of ``key`` over the records of ``kind``."""
    steps, times, values = [], [], []
    for record in records:
        if record.get("kind", "train") == kind and isinstance(record.get(key), (int, float)):
            steps.append(float(record["step"]))
            times.append(float(record.get("elapsed_s", 0.0)))
            values.append(float(record[key]))
    return steps, times, values
