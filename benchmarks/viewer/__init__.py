"""A static HTML trajectory viewer for a ``hopgym eval`` run (``hopgym view DIR``).

``write_viewer(run_dir)`` writes ``run_dir/viewer/index.html``: one self-contained file (no server, no CDN;
opens from disk) with the episode list, its filters and every episode turn by turn. :mod:`.chromium` drives a
headless Chromium over the DevTools protocol (stdlib only) for the viewer's browser test and load benchmark.
"""

from __future__ import annotations

from hopgym.benchmarks.viewer.build import write_viewer
from hopgym.benchmarks.viewer.page import embed_json, render_page
from hopgym.benchmarks.viewer.records import episode_record, split_passages, viewer_payload

__all__ = ["embed_json", "episode_record", "render_page", "split_passages", "viewer_payload", "write_viewer"]
