"""Retriever server benchmark: QPS and latency under 1/16/64 concurrent clients, with and without batching.

The hopgym server runs in a child process (uvicorn on a loopback port) over BM25 (bm25s + numba; the
in-memory BM25 if bm25s is missing) on the shared HotpotQA corpus. Another child process sends single-query
``POST /retrieve`` requests (what one agent episode sends per search, Search-R1's body with k=3) from N
concurrent keep-alive connections. Each setting runs for a fixed time after a warm-up; the figures are
the batched / unbatched throughput ratio at each concurrency and, with ``--baseline-src DIR`` (a ``git
worktree`` of an older commit), each setting's throughput against the same setting served by that code,
run in a second server process and interleaved with this code's runs.

    python benchmarks/retriever_server.py [--quick] [--baseline-src DIR] [--out retriever-server-benchmark.json]

This is a script, not a test: figures depend on the machine and its load.

Figures (2026-12-03, 2 cores shared with other work, load average 8-17; ``--uvloop --repeats 3 --seconds 8
--baseline-src`` an export of 66049c9, the FastAPI/uvicorn server the issue measured; medians of interleaved
runs, two separate runs): batching on, this server over that one 3.13x and 2.61x at 16 clients, 2.85x and
2.22x at 64, 4.32x and 2.33x at 1; 4,982 vs 1,720 q/s at 16 and 4,466 vs 1,330 at 64 in the calmer run.
Per-run ratios spread widely (0.59-6.07) with the load; server CPU per request is steadier: 148-150 vs
405-454 µs at 16 clients, 121-137 vs 407-408 µs at 64 (mean batches 10 and 29-33 against 5 and 16).
Without ``--uvloop`` (both servers and the client on asyncio; 2 runs): 1.78x at 16 clients (3,008 vs 1,701
q/s; 159 vs 434 µs of server CPU per request) and 2.37x at 64 (3,575 vs 1,513; 160 vs 441 µs); there the
load generator's own CPU, on the same two cores, caps what the faster server can show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("hopgym.benchmarks.retriever_server")

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
K = 3
CONCURRENCY = (1, 16, 64)


@dataclass
class Row:
    code: str
    batching: bool
    clients: int
    repeat: int
    requests: int
    errors: int
    qps: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float = float("nan")  # server process CPU time (all threads) per request
    backend_calls: int | None = None
    mean_batch: float | None = None


async def _post_loop(
    host: str, port: int, queries: list[str], offset: int, step: int, measure_from: float, stop_at: float,
    latencies: list[float], errors: list[int], sent_total: list[int],
) -> None:  # fmt: skip
    # A bare HTTP/1.1 keep-alive client: a full client library costs more CPU per request than the server
    # does, and this machine's cores are shared, so the load generator must stay cheap.
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds.
        while (sent := time.perf_counter()) < stop_at:
            body = json.dumps(
                {"queries": [queries[i % len(queries)]], "topk": K, "return_scores": True}
            ).encode()
            i += step
            head = f"POST /retrieve HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
            # One read for the whole head: both servers answer with a content-length.
            response_head = (await reader.readuntil(b"\r\n\r\n")).lower()
            status = int(response_head.split(None, 2)[1])
            start = response_head.index(b"content-length:") + len(b"content-length:")
            await reader.readexactly(int(response_head[start : response_head.index(b"\r\n", start)]))
            sent_total[0] += 1
            if sent >= measure_from:
                if status == 200:
                    latencies.append(time.perf_counter() - sent)
                else:
                    errors.append(status)
    finally:
        writer.close()


def client_load(
    url: str, queries: list[str], clients: int, warmup_s: float, seconds: float, uvloop: bool = False
) -> dict[str, Any]:
    """Run in a child process: ``clients`` connections post single queries until the time is up (on uvloop
    with ``--uvloop``: the load generator shares the machine's cores with the server, so it stays cheap)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)

    async def run() -> dict[str, Any]:
        measure_from = time.perf_counter() + warmup_s
        stop_at = measure_from + seconds
        latencies: list[float] = []
        errors: list[int] = []
        sent_total = [0]
        await asyncio.gather(
            *(
                _post_loop(
                    host, int(port), queries, n, clients, measure_from, stop_at, latencies, errors, sent_total
                )
                for n in range(clients)
            )
        )
        return {"latencies": latencies, "errors": len(errors), "seconds": seconds, "total": sent_total[0]}

    if uvloop:
        import uvloop as uvloop_module

        result: dict[str, Any] = uvloop_module.run(run())
        return result
    return asyncio.run(run())


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class FixedRetriever:
    """Answers every query with the same corpus passages at once: what is left is the server's own cost."""

    def __init__(self, passages: list[Any]) -> None:
        self.passages = passages

    async def search(self, queries: Sequence[str], k: int) -> list[list[Any]]:
        return [self.passages[:k] for _ in queries]

    async def aclose(self) -> None:
        return None


def load_backend(corpus: Path, kind: str = "bm25") -> tuple[Any, str]:
    from hopgym.retrievers.corpus import iter_passages

    passages = list(iter_passages(corpus))
    if kind == "fixed":
        return FixedRetriever(passages), "fixed answers (no search: HTTP handling only)"
    try:
        from hopgym.retrievers.bm25.backend import BM25Retriever

        return BM25Retriever.from_passages(passages), f"bm25 (bm25s), {len(passages)} passages"
    except ImportError as exc:
        logger.warning("bm25s unavailable (%s); using the in-memory BM25", exc)
        from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever

        return InMemoryBM25Retriever(passages), f"memory BM25, {len(passages)} passages"


_PACKAGE_DIRS = {
    "hopgym": "hopgym",
    "hopgym.envs": "envs",
    "hopgym.agents": "agents",
    "hopgym.trainers": "trainers",
    "hopgym.retrievers": "retrievers",
    "hopgym.benchmarks": "benchmarks",
}


def _import_hopgym_from(source: Path) -> None:
    """Make this process import hopgym from another checkout (pyproject's package-dir layout)."""
    import importlib.abc
    import importlib.machinery
    import importlib.util

    class SourceFinder(importlib.abc.MetaPathFinder):
        def find_spec(
            self, name: str, path: Sequence[str] | None = None, target: Any = None
        ) -> importlib.machinery.ModuleSpec | None:
            folder = _PACKAGE_DIRS.get(name)
            if folder is None:
                return None
            return importlib.util.spec_from_file_location(
                name, source / folder / "__init__.py", submodule_search_locations=[str(source / folder)]
            )

    sys.meta_path.insert(0, SourceFinder())


def _serve(conn: Any, source: str | None, corpus: str, uvloop: bool, kind: str) -> None:
    """A server process: builds the backend once, then serves one config per ``start`` command."""
    if source is not None:
        _import_hopgym_from(Path(source))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    async def main() -> None:
        from hopgym.retrievers.server.app import ServerConfig, create_app, running_server

        backend, description = load_backend(Path(corpus), kind)
        conn.send(description)
        while True:
            command, settings = await asyncio.to_thread(conn.recv)
            if command == "quit":
                break
            app = create_app(backend, ServerConfig(**settings))
            async with running_server(app) as url:
                conn.send(url)
                cpu = time.process_time()
                await asyncio.to_thread(conn.recv)  # "stop"
                cpu = time.process_time() - cpu
            batcher = app.state.batcher
            stats = None if batcher is None else (batcher.stats.batches, batcher.stats.mean_batch_size)
            conn.send((cpu, stats))
        await backend.aclose()

    if uvloop:
        import uvloop as uvloop_module

        uvloop_module.run(main())
    else:
        asyncio.run(main())


class ServerProcess:
    def __init__(self, context: Any, source: Path | None, corpus: Path, uvloop: bool, kind: str) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, None if source is None else str(source), str(corpus), uvloop, kind)
        )
        self.process.start()
        self.description: str = self.conn.recv()

    def close(self) -> None:
        self.conn.send(("quit", None))
        self.process.join(60)


def measure(
    server: ServerProcess, code: str, queries: list[str], *, batching: bool, clients: int, warmup_s: float,
    seconds: float, pool: Any, settings: dict[str, Any], repeat: int, uvloop: bool = False,
) -> Row:  # fmt: skip
    server.conn.send(("start", {"batching": batching, **settings}))
    url = server.conn.recv()
    outcome: dict[str, Any] = pool.apply(client_load, (url, queries, clients, warmup_s, seconds, uvloop))
    server.conn.send(("stop", None))
    cpu, stats = server.conn.recv()
    stats = stats or (None, None)
    latencies = outcome["latencies"]
    return Row(
        code=code,
        batching=batching,
        clients=clients,
        repeat=repeat,
        requests=len(latencies),
        errors=outcome["errors"],
        qps=len(latencies) / outcome["seconds"],
        p50_ms=1000 * percentile(latencies, 0.50),
        p99_ms=1000 * percentile(latencies, 0.99),
        server_cpu_us=1e6 * cpu / max(outcome["total"], 1),
        backend_calls=stats[0],
        mean_batch=stats[1],
    )


def _select(rows: Sequence[Row], code: str, batching: bool, clients: int) -> list[Row]:
    return sorted(
        (r for r in rows if r.code == code and r.batching == batching and r.clients == clients),
        key=lambda r: r.repeat,
    )


def _median_row(rows: Sequence[Row], code: str, batching: bool, clients: int) -> Row:
    chosen = _select(rows, code, batching, clients)
    batches = [r.mean_batch for r in chosen if r.mean_batch is not None]
    return Row(
        code=code,
        batching=batching,
        clients=clients,
        repeat=len(chosen),
        requests=sum(r.requests for r in chosen),
        errors=sum(r.errors for r in chosen),
        qps=statistics.median(r.qps for r in chosen),
        p50_ms=statistics.median(r.p50_ms for r in chosen),
        p99_ms=statistics.median(r.p99_ms for r in chosen),
        server_cpu_us=statistics.median(r.server_cpu_us for r in chosen),
        mean_batch=statistics.median(batches) if batches else None,
    )


def _paired(rows: Sequence[Row], a: tuple[str, bool], b: tuple[str, bool], clients: int) -> list[float]:
    """Per-repeat throughput ratios a / b (runs of one repeat were interleaved)."""
    return [
        x.qps / y.qps
        for x, y in zip(_select(rows, *a, clients), _select(rows, *b, clients), strict=True)
        if y.qps
    ]


def render(medians: Sequence[Row], lines: Sequence[str], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    columns = ("code", "batching", "clients", "requests", "errors", "q/s", "p50 ms", "p99 ms", "cpu µs/req")
    for col in (*columns, "mean batch"):
        table.add_column(col, justify="right")
    for r in medians:
        table.add_row(
            r.code,
            "on" if r.batching else "off",
            str(r.clients),
            str(r.requests),
            str(r.errors),
            f"{r.qps:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.server_cpu_us:.0f}",
            "–" if r.mean_batch is None else f"{r.mean_batch:.1f}",
        )
    console = Console()
    console.print(table)
    for line in lines:
        console.print(line)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    corpus = args.data_dir / "hotpotqa" / "corpus.jsonl"
    dev = args.data_dir / "hotpotqa" / "dev_500.jsonl"
    if not corpus.is_file() or not dev.is_file():
        raise SystemExit(f"shared HotpotQA data not found under {args.data_dir}")
    if args.baseline_src is not None and not (args.baseline_src / "retrievers" / "server").is_dir():
        raise SystemExit(f"--baseline-src {args.baseline_src}: not a hopgym checkout (no retrievers/server)")
    queries = [json.loads(line)["question"] for line in dev.read_text(encoding="utf-8").splitlines() if line]
    warmup_s, seconds = (0.5, 2.0) if args.quick else (1.0, args.seconds)
    if args.quick:
        args.repeats = 1
    settings: dict[str, Any] = {
        "max_batch_size": args.max_batch_size,
        "max_concurrency": args.max_concurrency,
    }
    if args.max_wait_ms is not None:  # else each code's own default
        settings["max_wait_ms"] = args.max_wait_ms
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    servers = {"current": ServerProcess(context, None, corpus, args.uvloop, args.backend)}
    if args.baseline_src is not None:
        servers["baseline"] = ServerProcess(context, args.baseline_src, corpus, args.uvloop, args.backend)
    description = servers["current"].description
    logger.info("servers ready in %.1f s: %s", time.perf_counter() - started, description)
    codes = list(servers)
    rows: list[Row] = []
    try:
        with context.Pool(1) as pool:
            for repeat in range(args.repeats):
                for clients in args.clients:
                    # Alternate the order so that a drift in machine load favours no setting.
                    order = [(c, b) for c in codes for b in (False, True)]
                    for code, batching in order if repeat % 2 == 0 else order[::-1]:
                        row = measure(
                            servers[code], code, queries, batching=batching, clients=clients,
                            warmup_s=warmup_s, seconds=seconds, pool=pool, settings=settings, repeat=repeat,
                            uvloop=args.uvloop,
                        )  # fmt: skip
                        logger.info("%s", row)
                        rows.append(row)
    finally:
        for server in servers.values():
            server.close()
    medians = [
        _median_row(rows, code, batching, clients)
        for clients in args.clients
        for code in codes
        for batching in (False, True)
    ]
    ratios: dict[str, dict[str, Any]] = {}
    lines: list[str] = []
    for clients in args.clients:
        for code in codes:
            paired = _paired(rows, (code, True), (code, False), clients)
            key = f"{code} batched/unbatched {clients} clients"
            ratios[key] = {
                "median": round(statistics.median(paired), 3),
                "runs": [round(r, 3) for r in paired],
            }
        if "baseline" in servers:
            for batching in (False, True):
                paired = _paired(rows, ("current", batching), ("baseline", batching), clients)
                key = f"current/baseline batching {'on' if batching else 'off'} {clients} clients"
                ratios[key] = {
                    "median": round(statistics.median(paired), 3),
                    "runs": [round(r, 3) for r in paired],
                }
    for key, value in ratios.items():
        spread = ", ".join(f"{r:.2f}" for r in value["runs"])
        lines.append(f"{key}: {value['median']:.2f}x (per run: {spread})")
    title = (
        f"Retriever server, POST /retrieve single queries, k={K}: {description}; "
        f"medians of {args.repeats} run(s) of {seconds:g} s; event loop: "
        f"{'uvloop' if args.uvloop else 'asyncio'}"
    )
    render(medians, lines, title)
    return {
        "backend": description,
        "k": K,
        "seconds_per_setting": seconds,
        "settings": settings,
        "baseline_src": None if args.baseline_src is None else str(args.baseline_src),
        "uvloop": args.uvloop,
        "backend_kind": args.backend,
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "repeats": args.repeats,
        "medians": [asdict(r) for r in medians],
        "rows": [asdict(r) for r in rows],
        "throughput_ratios": ratios,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 s per setting instead of --seconds")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per setting (default 8)")
    parser.add_argument(
        "--clients", type=int, nargs="+", default=list(CONCURRENCY), help="concurrency levels"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting; medians are reported")
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument(
        "--max-wait-ms", type=float, default=None, help="batch window (default: each code's own default)"
    )
    parser.add_argument(
        "--max-concurrency", type=int, default=2, help="backend calls in flight (batching on)"
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        metavar="DIR",
        help="also serve with the hopgym code in DIR (e.g. `git worktree add DIR <older commit>`), interleaved",
    )
    parser.add_argument(
        "--backend",
        choices=("bm25", "fixed"),
        default="bm25",
        help="bm25 on the corpus, or fixed answers with no search (the server's own per-request cost)",
    )
    parser.add_argument(
        "--uvloop", action="store_true", help="run the servers on uvloop (what `hopgym serve-retriever` uses)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("retriever-server-benchmark.json"), help="JSON results"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    report = run_all(args)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
