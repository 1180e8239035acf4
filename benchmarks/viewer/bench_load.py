"""Viewer load time: how long the static page takes to become usable in headless Chromium, by run size.

For each size (default 1,000 and 10,000 synthetic episodes, see :mod:`hopgym.benchmarks.reports.synthetic`)
the page is built once (build time and size printed), then each round opens it in a fresh tab from file://
and times: ``load`` (navigate until the page says it is ready: HTML parse, JSON.parse of the data, first
render), ``init`` (the page's own script, from JSON.parse to ready), ``filter`` (a click on the "correct"
checkbox until the count changes), ``search`` (a text search over every episode's turns, including the
page's 120 ms typing debounce) and ``open`` (a
click on a row until its episode is shown). The baseline, in the same rounds, is a bare page carrying the
same data that only JSON.parses it: the viewer's cost over the unavoidable parse. Rounds interleave the
pages (order rotates); figures are medians with [min, max].

    python -m hopgym.benchmarks.viewer.bench_load [--sizes 1000 10000] [--rounds 5]

Measured 2026-12-03 on 2 shared cores under heavy load (load average 5.4 and 9.4 in two runs of 5 rounds),
Chromium 150: 10,000 episodes make a 33 MB page, built in 8-14 s; it loads in 1.43 s and 0.98 s (medians of
the two runs; the bare JSON page 0.92 s and 0.96 s, so most of the load is parsing the data), then filters in
40 ms, searches in 0.3-0.4 s and opens an episode in 0.07-0.15 s. 1,000 episodes load in 0.34-0.44 s.

This is a script, not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hopgym.benchmarks.reports.synthetic import write_synthetic_run
from hopgym.benchmarks.viewer.build import write_viewer
from hopgym.benchmarks.viewer.chromium import Browser, Page, find_chromium

READY = "document.body.dataset.ready === '1'"
_BARE = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{data}'
    "<script>const d = JSON.parse(document.getElementById('data').textContent);"
    "document.body.dataset.ready = d.episodes.length ? '1' : '0';</script></body></html>"
)


def _bare_page(viewer: Path, out: Path) -> Path:
    page = viewer.read_text(encoding="utf-8")
    start = page.index('<script type="application/json" id="data">')
    end = page.index("</script>", start) + len("</script>")
    out.write_text(_BARE.format(data=page[start:end]), encoding="utf-8")
    return out


def _timed(page: Page, action: str, until: str) -> float:
    start = time.perf_counter()
    page.evaluate(action)
    page.wait_for(until, timeout_s=60)
    return time.perf_counter() - start


def _measure_viewer(browser: Browser, url: str) -> dict[str, float]:
    page = browser.new_page()
    start = time.perf_counter()
    page.navigate(url, ready=READY, timeout_s=120)
    load = time.perf_counter() - start
    init = float(page.evaluate("window.hopgymViewer.loadMs")) / 1000
    total = page.evaluate("window.hopgymViewer.shown()")
    filt = _timed(
        page,
        "document.getElementById('f-correct').click()",
        f"window.hopgymViewer.shown() !== {total}",
    )
    search = _timed(
        page,
        "(() => { const t = document.getElementById('f-text'); t.value = 'grace hopper';"
        " t.dispatchEvent(new Event('change')); t.dispatchEvent(new Event('input')); })()",
        "location.hash.includes('q=grace')",
    )
    opened = _timed(
        page,
        "document.querySelector('#list .row').click()",
        "document.querySelector('#detail .turn, #detail h2') !== null",
    )
    page.send("Page.close")
    return {"load": load, "init": init, "filter": filt, "search": search, "open": opened}


def _measure_bare(browser: Browser, url: str) -> dict[str, float]:
    page = browser.new_page()
    start = time.perf_counter()
    page.navigate(url, ready=READY, timeout_s=120)
    load = time.perf_counter() - start
    page.send("Page.close")
    return {"load": load}


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.0f} ms [{min(values) * 1000:.0f}, {max(values) * 1000:.0f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    executable = find_chromium()
    if executable is None:
        print("no chromium on the PATH: apt-get install -y chromium", file=sys.stderr)
        return 2
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    with tempfile.TemporaryDirectory(prefix="hopgym-viewer-bench-") as tmp:
        pages: dict[str, tuple[str, str]] = {}  # name -> (kind, url)
        for size in args.sizes:
            run = write_synthetic_run(Path(tmp) / f"run{size}", episodes=size, seed=size)
            start = time.perf_counter()
            viewer = write_viewer(run)
            build = time.perf_counter() - start
            bare = _bare_page(viewer, run / "bare.html")
            mb = viewer.stat().st_size / 1e6
            print(
                f"{size:>6} episodes: page {mb:.1f} MB, built in {build:.2f} s (Python: read, score, render)"
            )
            pages[f"viewer {size}"] = ("viewer", viewer.as_uri())
            pages[f"bare {size}"] = ("bare", bare.as_uri())
        results: dict[str, dict[str, list[float]]] = {name: {} for name in pages}
        names = list(pages)
        with Browser(executable, timeout_s=120) as browser:
            for r in range(args.rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                for name in order:
                    kind, url = pages[name]
                    figures = (
                        _measure_viewer(browser, url) if kind == "viewer" else _measure_bare(browser, url)
                    )
                    for key, value in figures.items():
                        results[name].setdefault(key, []).append(value)
    print(f"\nmedians of {args.rounds} interleaved rounds [min, max]:")
    for name in names:
        for key, values in results[name].items():
            print(f"  {name:<14} {key:<7} {_fmt(values)}")
    for size in args.sizes:
        viewer_load = statistics.median(results[f"viewer {size}"]["load"])
        bare_load = statistics.median(results[f"bare {size}"]["load"])
        print(f"{size:>6} episodes: viewer load / bare JSON page load = {viewer_load / bare_load:.2f}x")
    if len(args.sizes) > 1:
        small, big = min(args.sizes), max(args.sizes)
        ratio = statistics.median(results[f"viewer {big}"]["load"]) / statistics.median(
            results[f"viewer {small}"]["load"]
        )
        print(f"viewer load {big} / {small} episodes = {ratio:.2f}x (for {big / small:.0f}x the episodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
