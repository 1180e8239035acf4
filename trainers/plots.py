"""PNG curves of one or several runs (``hopgym plot A B``): train reward and success per step, held-out
success per step and over wall time, KL, entropy, searches and invalid actions. Headless (Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hopgym.errors import ConfigError, require
from hopgym.trainers.metrics import read_metrics, series

__all__ = ["plot_runs"]

_TRAIN_PANELS = (
    ("reward_mean", "train reward (mean)"),
    ("success_rate", "train success rate"),
    ("mean_searches", "searches per episode"),
    ("invalid_action_rate", "invalid-action rate"),
    ("kl", "KL to reference"),
    ("entropy", "entropy (action tokens)"),
)


def plot_runs(run_dirs: Sequence[Path], out: Path, *, labels: Sequence[str] | None = None) -> Path:
    """Overlay the curves of ``run_dirs`` into one PNG at ``out``; returns ``out``."""
    require("matplotlib", extra="train", purpose="training curves")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = []
    for run_dir in run_dirs:
        path = Path(run_dir) / "metrics.jsonl"
        if not path.exists():
            raise ConfigError(f"{run_dir} has no metrics.jsonl: is it a `hopgym train` run directory?")
        runs.append(read_metrics(path))
    names = list(labels) if labels else [Path(d).name for d in run_dirs]
    eval_keys = sorted(
        {
            k
            for records in runs
            for r in records
            if r.get("kind") == "eval"
            for k in r
            if k.endswith("/success_rate")
        }
    )
    panels = len(_TRAIN_PANELS) + 2 * len(eval_keys)
    cols = 3
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    flat = list(axes.flat)
    index = 0
    for key in eval_keys:
        for by_time in (False, True):
            ax = flat[index]
            index += 1
            for name, records in zip(names, runs, strict=True):
                steps, times, values = series(records, key, kind="eval")
                ax.plot([t / 60 for t in times] if by_time else steps, values, marker="o", ms=3, label=name)
            ax.set_title(f"held-out {key.split('/')[1]} success")
            ax.set_xlabel("wall time (min)" if by_time else "step")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
    for key, title in _TRAIN_PANELS:
        ax = flat[index]
        index += 1
        for name, records in zip(names, runs, strict=True):
            steps, _, values = series(records, key)
            ax.plot(steps, values, label=name)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in flat[index:]:
        ax.axis("off")
    flat[0].legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
