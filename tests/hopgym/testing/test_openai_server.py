"""hopgym.testing.openai_server: the OpenAI API's answers, and bounded work per request, over real sockets."""

from __future__ import annotations

import socket

import httpx
import pytest

from hopgym.errors import ConfigError
from hopgym.testing.openai_server import OpenAIServer


def _raw(server: OpenAIServer, data: bytes) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_completion_and_chat_answers_are_shaped_as_the_openai_api() -> None:
    with (
        OpenAIServer(lambda request: f"echo {request.index} </stop> cut") as server,
        httpx.Client() as client,
    ):
        models = client.get(f"{server.base_url}/models").json()
        assert models["data"][0]["id"] == "test-model"
        body = {"model": "test-model", "prompt": "hi", "stop": ["</stop>"], "n": 2, "max_tokens": 8}
        answer = client.post(f"{server.base_url}/completions", json=body).json()
        assert [c["text"] for c in answer["choices"]] == ["echo 0 ", "echo 1 "]
        assert all(c["finish_reason"] == "stop" and "stop_reason" not in c for c in answer["choices"])
        assert answer["usage"] == {"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5}
        chat = {"model": "test-model", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1}
        message = client.post(f"{server.base_url}/chat/completions", json=chat).json()["choices"][0]
        assert message["message"] == {"role": "assistant", "content": "echo"}
        assert message["finish_reason"] == "length"
    assert server.requests == 2


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "other", "prompt": "x"}, 404, "does not exist"),
        ({"model": "test-model", "prompt": 1}, 400, "prompt must be a string"),
        ({"model": "test-model", "prompt": "x", "n": 99}, 400, "n must be an integer in 1..16"),
        ({"model": "test-model", "prompt": "x", "max_tokens": 10**6}, 400, "max_tokens must be an integer"),
        ({"model": "test-model", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, 400, "at most 4"),
        ({"model": "test-model", "prompt": "x", "tools": []}, 400, "tools are not supported"),
    ],
)
def test_bad_requests_get_openai_style_errors(body: dict[str, object], status: int, message: str) -> None:
    with OpenAIServer(lambda request: "x") as server:
        response = httpx.post(f"{server.base_url}/completions", json=body)
    assert response.status_code == status
    assert message in response.json()["error"]["message"]


def test_work_per_request_is_bounded_and_keys_are_checked() -> None:
    with OpenAIServer(lambda request: "x", api_key="k", max_body_bytes=1000) as server:
        url = f"{server.base_url}/completions"
        assert httpx.post(url, json={"model": "test-model", "prompt": "x"}).status_code == 401
        big = {"model": "test-model", "prompt": "x" * 2000}
        assert httpx.post(url, json=big, headers={"Authorization": "Bearer k"}).status_code == 413
        head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
        assert _raw(server, head).startswith(b"HTTP/1.1 431")
        chunked = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        assert _raw(server, chunked).startswith(b"HTTP/1.1 411")
        garbage = b"POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer k\r\nConnection: close\r\nContent-Length: 3\r\n\r\n{{{"
        reply = _raw(server, garbage)
        assert b" 400 " in reply.split(b"\r\n")[0] and b"body is not JSON" in reply
        server.fail_with = 503
        assert httpx.post(url, json={"model": "test-model", "prompt": "x"},
                          headers={"Authorization": "Bearer k"}).status_code == 503  # fmt: skip
    assert server.requests == 0


def test_binds_loopback_and_stop_closes_it() -> None:
    server = OpenAIServer(lambda request: "x").start()
    assert server.host == "127.0.0.1"
    port = server.port
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models")
    with pytest.raises(ConfigError):
        OpenAIServer("not callable")  # type: ignore[arg-type]
