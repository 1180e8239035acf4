"""Retriever server benchmark: QPS and latency under 1/16/64 concurrent clients, with and without batching.

The hopgym server runs in this process (uvicorn on a loopback port) over BM25 (bm25s + numba; the in-memory
BM25 if bm25s is missing) on the shared HotpotQA corpus. A separate client process sends single-query
``POST /retrieve`` requests (what one agent episode sends per search, Search-R1's body with k=3) from N
concurrent keep-alive connections. Each setting runs for a fixed time after a warm-up; the figure is
the batched / unbatched throughput ratio at each concurrency.

    python benchmarks/retriever_server.py [--quick] [--out retriever-server-benchmark.json]

This is a script, not a test: figures depend on the machine and its load.
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
    batching: bool
    clients: int
    repeat: int
    requests: int
    errors: int
    qps: float
    p50_ms: float
    p99_ms: float
    backend_calls: int | None = None
    mean_batch: float | None = None


async def _post_loop(
    host: str, port: int, queries: list[str], offset: int, step: int, measure_from: float, stop_at: float,
    latencies: list[float], errors: list[int],
) -> None:  # fmt: skip
    # A bare HTTP/1.1 keep-alive client: a full client library costs more CPU per request than the server
    # does, and this machine's cores are shared, so the load generator must stay cheap.
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        while (sent := loop.time()) < stop_at:
            body = json.dumps(
                {"queries": [queries[i % len(queries)]], "topk": K, "return_scores": True}
            ).encode()
            i += step
            head = f"POST /retrieve HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            if sent >= measure_from:
                if status == 200:
                    latencies.append(loop.time() - sent)
                else:
                    errors.append(status)
    finally:
        writer.close()


def _client_load(
    url: str, queries: list[str], clients: int, warmup_s: float, seconds: float
) -> dict[str, Any]:
    """Run in a child process: ``clients`` connections post single queries until the time is up."""
    host, port = url.removeprefix("http://").rsplit(":", 1)

    async def run() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        measure_from = loop.time() + warmup_s
        stop_at = measure_from + seconds
        latencies: list[float] = []
        errors: list[int] = []
        await asyncio.gather(
            *(
                _post_loop(host, int(port), queries, n, clients, measure_from, stop_at, latencies, errors)
                for n in range(clients)
            )
        )
        return {"latencies": latencies, "errors": len(errors), "seconds": seconds}

    return asyncio.run(run())


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_backend(corpus: Path) -> tuple[Any, str]:
    from hopgym.retrievers.corpus import iter_passages

    passages = list(iter_passages(corpus))
    try:
        from hopgym.retrievers.bm25.backend import BM25Retriever

        return BM25Retriever.from_passages(passages), f"bm25 (bm25s), {len(passages)} passages"
    except ImportError as exc:
        logger.warning("bm25s unavailable (%s); using the in-memory BM25", exc)
        from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever

        return InMemoryBM25Retriever(passages), f"memory BM25, {len(passages)} passages"


async def measure(
    backend: Any, queries: list[str], *, batching: bool, clients: int, warmup_s: float, seconds: float,
    pool: Any, max_batch_size: int, max_wait_ms: float, max_concurrency: int, repeat: int,
) -> Row:  # fmt: skip
    from hopgym.retrievers.server.app import ServerConfig, create_app, running_server

    config = ServerConfig(
        batching=batching,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        max_concurrency=max_concurrency,
    )
    app = create_app(backend, config)
    async with running_server(app) as url:
        future = pool.apply_async(_client_load, (url, queries, clients, warmup_s, seconds))
        # The server keeps running in this loop while the client process works.
        outcome: dict[str, Any] = await asyncio.to_thread(future.get, warmup_s + seconds + 120)
        batcher = app.state.batcher
        stats = (
            (batcher.stats.batches, batcher.stats.mean_batch_size) if batcher is not None else (None, None)
        )
    latencies = outcome["latencies"]
    return Row(
        batching=batching,
        clients=clients,
        repeat=repeat,
        requests=len(latencies),
        errors=outcome["errors"],
        qps=len(latencies) / outcome["seconds"],
        p50_ms=1000 * _percentile(latencies, 0.50),
        p99_ms=1000 * _percentile(latencies, 0.99),
        backend_calls=stats[0],
        mean_batch=stats[1],
    )


def _select(rows: Sequence[Row], batching: bool, clients: int) -> list[Row]:
    return sorted(
        (r for r in rows if r.batching == batching and r.clients == clients), key=lambda r: r.repeat
    )


def _median_row(rows: Sequence[Row], batching: bool, clients: int) -> Row:
    chosen = _select(rows, batching, clients)
    batches = [r.mean_batch for r in chosen if r.mean_batch is not None]
    return Row(
        batching=batching,
        clients=clients,
        repeat=len(chosen),
        requests=sum(r.requests for r in chosen),
        errors=sum(r.errors for r in chosen),
        qps=statistics.median(r.qps for r in chosen),
        p50_ms=statistics.median(r.p50_ms for r in chosen),
        p99_ms=statistics.median(r.p99_ms for r in chosen),
        mean_batch=statistics.median(batches) if batches else None,
    )


def render(rows: Sequence[Row], ratios: dict[int, float], paired: dict[int, list[float]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("batching", "clients", "requests", "errors", "q/s", "p50 ms", "p99 ms", "mean batch"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            "on" if r.batching else "off",
            str(r.clients),
            str(r.requests),
            str(r.errors),
            f"{r.qps:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            "–" if r.mean_batch is None else f"{r.mean_batch:.1f}",
        )
    console = Console()
    console.print(table)
    for clients, ratio in ratios.items():
        spread = ", ".join(f"{r:.2f}" for r in paired[clients])
        console.print(
            f"{clients:>3} clients: batched / unbatched throughput = {ratio:.2f}x (per run: {spread})"
        )


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    corpus = args.data_dir / "hotpotqa" / "corpus.jsonl"
    dev = args.data_dir / "hotpotqa" / "dev_500.jsonl"
    if not corpus.is_file() or not dev.is_file():
        raise SystemExit(f"shared HotpotQA data not found under {args.data_dir}")
    queries = [json.loads(line)["question"] for line in dev.read_text(encoding="utf-8").splitlines() if line]
    started = time.perf_counter()
    backend, description = await asyncio.to_thread(load_backend, corpus)
    logger.info("backend ready in %.1f s: %s", time.perf_counter() - started, description)
    warmup_s, seconds = (0.5, 2.0) if args.quick else (1.0, args.seconds)
    if args.quick:
        args.repeats = 1
    rows: list[Row] = []
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        for repeat in range(args.repeats):
            for clients in args.clients:
                # Alternate the order so that a drift in machine load favours neither setting.
                for batching in (False, True) if repeat % 2 == 0 else (True, False):
                    row = await measure(
                        backend, queries, batching=batching, clients=clients, warmup_s=warmup_s,
                        seconds=seconds, pool=pool, max_batch_size=args.max_batch_size,
                        max_wait_ms=args.max_wait_ms, max_concurrency=args.max_concurrency, repeat=repeat,
                    )  # fmt: skip
                    logger.info("%s", row)
                    rows.append(row)
    await backend.aclose()
    medians = [_median_row(rows, batching, clients) for clients in args.clients for batching in (False, True)]
    ratios: dict[int, float] = {}
    paired: dict[int, list[float]] = {}
    for clients in args.clients:
        on = next(r for r in medians if r.clients == clients and r.batching)
        off = next(r for r in medians if r.clients == clients and not r.batching)
        ratios[clients] = on.qps / off.qps if off.qps else float("nan")
        paired[clients] = [
            a.qps / b.qps
            for a, b in zip(_select(rows, True, clients), _select(rows, False, clients), strict=True)
            if b.qps
        ]
    title = (
        f"Retriever server, POST /retrieve single queries, k={K}: {description}; "
        f"medians of {args.repeats} run(s) of {seconds:g} s"
    )
    render(medians, ratios, paired, title)
    return {
        "backend": description,
        "k": K,
        "seconds_per_setting": seconds,
        "max_batch_size": args.max_batch_size,
        "max_wait_ms": args.max_wait_ms,
        "max_concurrency": args.max_concurrency,
        "cpu_count": os.cpu_count(),
        "repeats": args.repeats,
        "medians": [asdict(r) for r in medians],
        "rows": [asdict(r) for r in rows],
        "batched_over_unbatched_qps": {str(c): round(r, 3) for c, r in ratios.items()},
        "paired_ratios": {str(c): [round(r, 3) for r in rs] for c, rs in paired.items()},
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
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument(
        "--max-concurrency", type=int, default=2, help="backend calls in flight (batching on)"
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument(
        "--out", type=Path, default=Path("retriever-server-benchmark.json"), help="JSON results"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    report = asyncio.run(run_all(args))
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
