"""``hopgym serve-retriever``: argument parsing, a clear failure on a bad index, and a real served process."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hopgym.cli import serve_retriever
from hopgym.types import Passage

# Runs the subcommand the way `hopgym` does, without depending on its registration in hopgym.cli.
DRIVER = """
import argparse, logging, sys
from hopgym.cli import serve_retriever
parser = argparse.ArgumentParser(prog="hopgym")
serve_retriever.register(parser.add_subparsers())
logging.basicConfig(level=logging.INFO)
args = parser.parse_args(sys.argv[1:])
sys.exit(args.handler(args))
"""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hopgym")
    serve_retriever.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_defaults_are_local_and_batched() -> None:
    args = parse(["serve-retriever", "--index", "idx"])
    assert (args.index, args.host, args.port, args.token) == ("idx", "127.0.0.1", 8000, None)
    assert (args.no_batching, args.max_batch_size, args.max_wait_ms) == (False, 64, 0.0)
    assert (args.max_k, args.max_queries, args.max_body_bytes) == (1000, 10_000, 8 * 1024 * 1024)
    assert (args.max_results, args.max_response_bytes) == (20_000, 32 * 1024 * 1024)
    assert (args.header_timeout_s, args.body_timeout_s) == (10.0, 30.0)
    assert args.handler is serve_retriever.run


def test_every_option_parses() -> None:
    options = "--host 0.0.0.0 --port 9001 --token t --max-k 7 --max-queries 9 --max-body-bytes 1024"
    options += " --no-batching --max-batch-size 16 --max-wait-ms 0.5 --timeout-s 3 --max-results 70"
    options += " --max-response-bytes 4096 --header-timeout-s 2 --body-timeout-s 4"
    options += " --option n_threads=2 --option pruning=false"
    args = parse(["serve-retriever", "--index", "d", *options.split()])
    assert args.option == ["n_threads=2", "pruning=false"]
    assert (args.host, args.port, args.token, args.max_k, args.max_queries) == ("0.0.0.0", 9001, "t", 7, 9)
    assert (args.max_body_bytes, args.no_batching, args.max_batch_size) == (1024, True, 16)
    assert (args.max_wait_ms, args.timeout_s) == (0.5, 3.0)
    assert (args.max_results, args.max_response_bytes, args.header_timeout_s, args.body_timeout_s) == (
        70,
        4096,
        2.0,
        4.0,
    )


def test_token_from_an_environment_variable_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOPGYM_TEST_TOKEN", " s3cret\n")
    assert (
        serve_retriever.read_token(
            parse(["serve-retriever", "--index", "x", "--token-env", "HOPGYM_TEST_TOKEN"])
        )
        == "s3cret"
    )
    secret = tmp_path / "token"
    secret.write_text("f1le-token\n# the first line is the token\n", encoding="utf-8")
    args = parse(["serve-retriever", "--index", "x", "--token-file", str(secret)])
    assert serve_retriever.read_token(args) == "f1le-token"
    assert serve_retriever.read_token(parse(["serve-retriever", "--index", "x", "--token", "t"])) == "t"
    assert serve_retriever.read_token(parse(["serve-retriever", "--index", "x"])) is None
    with pytest.raises(SystemExit):  # one source at a time
        parse(["serve-retriever", "--index", "x", "--token", "t", "--token-env", "HOPGYM_TEST_TOKEN"])


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "--token-env",
            "HOPGYM_TEST_UNSET_TOKEN",
            "--token-env HOPGYM_TEST_UNSET_TOKEN: the environment variable is unset",
        ),
        ("--token-file", "missing", "cannot read it"),
        ("--token-file", "empty", "line 1 is empty"),
    ],
)
def test_an_unusable_token_source_fails_before_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, option: str, value: str, message: str
) -> None:
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    if option == "--token-file":
        value = str(tmp_path / value)
    args = parse(["serve-retriever", "--index", "x", option, value])
    with caplog.at_level(logging.ERROR):
        assert serve_retriever.run(args) == 2
    assert message in caplog.text


def test_missing_index_fails_with_a_clear_message(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    args = parse(["serve-retriever", "--index", str(tmp_path / "nowhere")])
    with caplog.at_level(logging.ERROR):
        assert serve_retriever.run(args) == 2
    assert "does not exist" in caplog.text


def test_an_unknown_index_option_fails_before_serving(
    tmp_path: Path, conformance_passages: list[Passage], caplog: pytest.LogCaptureFixture
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": p.id, "contents": p.contents}) + "\n" for p in conformance_passages[:5]),
        encoding="utf-8",
    )
    args = parse(["serve-retriever", "--index", f"bm25:{corpus}", "--option", "n_thread=2"])
    with caplog.at_level(logging.ERROR):
        assert serve_retriever.run(args) == 2
    assert "unknown bm25 option(s) n_thread" in caplog.text


def test_bad_limits_fail_before_serving(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    args = parse(["serve-retriever", "--index", "x", "--max-k", "0"])
    with caplog.at_level(logging.ERROR):
        assert serve_retriever.run(args) == 2
    assert "max_k=0 is invalid" in caplog.text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_served_process_answers_and_stops_on_sigint(
    tmp_path: Path, conformance_passages: list[Passage]
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    with corpus.open("w", encoding="utf-8") as fh:
        for p in conformance_passages[:60]:
            fh.write(json.dumps({"id": p.id, "contents": p.contents}) + "\n")
    port = free_port()
    command = [
        sys.executable,
        "-c",
        DRIVER,
        "serve-retriever",
        "--index",
        f"simple-bm25:{corpus}",
        "--port",
        str(port),
        "--token-env",
        "HOPGYM_TEST_SERVER_TOKEN",
    ]
    env = {**os.environ, "HOPGYM_TEST_SERVER_TOKEN": "env-s3cret"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "server did not start within 30 s"
            time.sleep(0.1)
        request = {"queries": [conformance_passages[7].title], "topk": 2}
        assert httpx.post(f"{url}/retrieve", json=request).status_code == 401
        auth = {"Authorization": "Bearer env-s3cret"}
        body = httpx.post(f"{url}/retrieve", json=request, headers=auth).json()
        assert body["result"][0][0]["id"] == conformance_passages[7].id
        # The secret is not on the command line, where `ps` shows it to every user.
        assert b"env-s3cret" not in Path(f"/proc/{process.pid}/cmdline").read_bytes()
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=20)[0]
    assert process.returncode == 0, output
