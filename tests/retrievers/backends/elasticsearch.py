"""Conformance entry: ElasticsearchRetriever against a real server speaking the Elasticsearch API.

By default each ``open_retriever`` starts its own noida-db (``noida-db start --only elasticsearch``) on a free
loopback port with a throwaway data directory and stops its whole process group on exit. Set
``HOPGYM_ES_URL`` to use an already running server instead (a uniquely named index is created and deleted).
Without either, the tests skip, unless ``HOPGYM_REQUIRE_ES=1`` (CI), which turns the skip into a failure.

The Elasticsearch test files load this module by path for :func:`es_server` and :func:`require_es`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from hopgym.retrievers.base import Retriever
from hopgym.types import Passage

NAME = "elasticsearch"
MARKS = [pytest.mark.elasticsearch]

ENV_URL = "HOPGYM_ES_URL"
ENV_REQUIRE = "HOPGYM_REQUIRE_ES"
ENV_BINARY = "HOPGYM_NOIDA_DB"
_READY_TIMEOUT_S = 30.0


def noida_binary() -> str | None:
    """The noida-db server executable: $HOPGYM_NOIDA_DB, the binary inside the installed noida_db package,
    then a ``noida-db`` on PATH or next to this Python.

    The package's binary is preferred over its console script, a Python wrapper that runs the binary as a
    child process: started directly, the server is our own child and is reaped when it stops.
    """
    explicit = os.environ.get(ENV_BINARY)
    if explicit:
        return explicit
    spec = importlib.util.find_spec("noida_db")
    if spec is not None and spec.origin is not None:
        packaged = Path(spec.origin).parent / "noida-db"
        if packaged.is_file() and os.access(packaged, os.X_OK):
            return str(packaged)
    found = shutil.which("noida-db")
    if found:
        return found
    beside = Path(sys.executable).parent / "noida-db"
    return str(beside) if beside.is_file() else None


def require_es() -> None:
    """Skip (or, with HOPGYM_REQUIRE_ES=1, fail) when there is no server to test against."""
    if os.environ.get(ENV_URL) or noida_binary():
        return
    reason = (
        "no Elasticsearch-compatible server: install noida-db (pip install noida-db) or set "
        f"{ENV_URL}=http://host:9200"
    )
    if os.environ.get(ENV_REQUIRE) == "1":
        pytest.fail(f"{ENV_REQUIRE}=1 but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen[bytes], port: int) -> None:
    # Signal the whole process group (a console-script wrapper would otherwise leave the server running),
    # then wait until the port is closed: the server finishes in-flight requests before exiting.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + 10
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        while time.monotonic() < deadline and _port_open(port):
            time.sleep(0.05)
        if process.poll() is not None and not _port_open(port):
            return
    raise RuntimeError(f"noida-db (pid {process.pid}) did not stop; port {port} is still open")


class NoidaServer:
    """A noida-db Elasticsearch server on a free loopback port, owned by this test process."""

    def __init__(self, data_dir: Path) -> None:
        binary = noida_binary()
        if binary is None:
            raise RuntimeError("noida-db executable not found")
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / "noida.log"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopped = False
        command = [
            binary,
            "start",
            "--only",
            "elasticsearch",
            "--elasticsearch-port",
            str(self.port),
            "--host",
            "127.0.0.1",
            "--data-dir",
            str(data_dir / "data"),
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"noida-db exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/_cluster/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"noida-db did not answer within {_READY_TIMEOUT_S:g} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            _stop(self.process, self.port)


@contextlib.contextmanager
def es_server(workdir: Path) -> Iterator[str]:
    """Yield the URL of a server to test against (HOPGYM_ES_URL, or a noida-db started and stopped here)."""
    require_es()
    external = os.environ.get(ENV_URL)
    if external:
        yield external.rstrip("/")
        return
    server = NoidaServer(workdir / f"noida-{uuid.uuid4().hex[:8]}")
    try:
        yield server.url
    finally:
        server.stop()


def unique_index_name(prefix: str = "hopgym-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@contextlib.asynccontextmanager
async def open_retriever(passages: Sequence[Passage], workdir: Path) -> AsyncIterator[Retriever]:
    from hopgym.retrievers.elasticsearch.backend import ElasticsearchRetriever, index_into_elasticsearch
    from hopgym.retrievers.elasticsearch.config import ElasticsearchConnection, IndexSettings

    with es_server(workdir) as url:
        connection = ElasticsearchConnection(hosts=(url,))
        settings = IndexSettings(index_name=unique_index_name())
        await index_into_elasticsearch(passages, connection, settings)
        retriever = ElasticsearchRetriever(connection, settings.index_name)
        try:
            yield retriever
        finally:
            await retriever.aclose()
            cleanup = ElasticsearchRetriever(connection, settings.index_name)
            try:
                await cleanup.delete_index()
            finally:
                await cleanup.aclose()
