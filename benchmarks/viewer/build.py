"""``write_viewer(run_dir)``: the static trajectory viewer of a run, ``run_dir/viewer/index.html``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from hopgym.benchmarks.reports.run_data import RunData, load_run
from hopgym.benchmarks.viewer.page import render_page
from hopgym.benchmarks.viewer.records import viewer_payload
from hopgym.types import Task

__all__ = ["write_viewer"]

logger = logging.getLogger(__name__)


def write_viewer(
    run_dir: str | Path,
    *,
    out: str | Path | None = None,
    tasks: Sequence[Task] | Mapping[str, Task] | None = None,
    run: RunData | None = None,
) -> Path:
    """Write the viewer page (default ``run_dir/viewer/index.html``) and return its path.

    ``tasks`` gives golden answers and supporting passage ids when the run's config.json names no readable
    task file; ``run`` reuses an already loaded run.
    """
    data = run if run is not None else load_run(run_dir, tasks=tasks)
    page = render_page(viewer_payload(data), title=f"hopgym · {data.name}")
    path = Path(out) if out is not None else data.path / "viewer" / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    logger.info("wrote %s (%d episodes, %.1f MB)", path, len(data.trajectories), len(page) / 1e6)
    return path
