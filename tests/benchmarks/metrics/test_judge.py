"""LLM-as-judge against a local OpenAI-API-shaped HTTP server (stdlib, real sockets)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hopgym.benchmarks.metrics.judge import (
    DEFAULT_JUDGE_PROMPT,
    JudgeCache,
    JudgeConfig,
    JudgeError,
    JudgeItem,
    LLMJudge,
    judge_score,
    parse_verdict,
)
from hopgym.errors import ConfigError


class FakeJudgeServer:
    """Answers /v1/chat/completions: ``reply(prompt)`` gives the text; ``fail_first`` requests get HTTP 503."""

    def __init__(self, reply: Callable[[str], str], fail_first: int = 0) -> None:
        self.prompts: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_first = fail_first
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                if server.fail_first > 0:
                    server.fail_first -= 1
                    self._send(503, {"error": {"message": "warming up"}})
                    return
                prompt = body["messages"][0]["content"]
                server.prompts.append(prompt)
                server.bodies.append(body)
                server.headers.append(dict(self.headers))
                message = {"role": "assistant", "content": reply(prompt)}
                self._send(200, {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _says_yes_when_paris(prompt: str) -> str:
    predicted = prompt.split("Predicted answer: ", 1)[1].split("\n", 1)[0]
    return "<think>the references say Paris</think>Yes." if "paris" in predicted.lower() else "No"


@pytest.fixture
def server() -> Iterator[FakeJudgeServer]:
    fake = FakeJudgeServer(_says_yes_when_paris)
    yield fake
    fake.close()


ITEMS = [
    JudgeItem("What is the capital of France?", ("Paris",), "It is Paris, on the Seine."),
    JudgeItem("What is the capital of France?", ("Paris",), "Lyon"),
    JudgeItem("What is the capital of France?", ("Paris",), None),
]


def _config(url: str, **changes: Any) -> JudgeConfig:
    return JudgeConfig(url, "judge-model", backoff_base_s=0.01, backoff_max_s=0.02, **changes)


async def test_verdicts_are_asked_once_and_cached_in_the_run_directory(
    server: FakeJudgeServer, tmp_path: Path
) -> None:
    cache_path = tmp_path / "run" / "judge_cache.jsonl"
    judge = LLMJudge(_config(server.url, api_key="k-123"), cache_path)
    try:
        verdicts = await judge.judge_many(ITEMS)
    finally:
        await judge.aclose()
    assert [v.correct for v in verdicts] == [True, False, False]
    assert judge_score(verdicts) == {"judge": 1 / 3, "judge_unparsed": 0.0}
    assert judge.requests == 2  # no prediction: wrong without asking
    assert server.bodies[0]["model"] == "judge-model"
    assert server.bodies[0]["temperature"] == 0.0
    assert server.headers[0]["Authorization"] == "Bearer k-123"
    prompt = server.prompts[0]
    assert "Question: What is the capital of France?" in prompt
    assert "Reference answers: Paris" in prompt
    assert len(cache_path.read_text().splitlines()) == 2

    # A rerun (a new judge on the same cache file) asks nothing.
    again = LLMJudge(_config(server.url), cache_path)
    try:
        repeated = await again.judge_many(ITEMS)
    finally:
        await again.aclose()
    assert again.requests == 0
    assert [v.correct for v in repeated] == [True, False, False]
    assert all(v.cached for v in repeated)
    assert len(server.prompts) == 2


async def test_another_prompt_or_model_is_asked_again(server: FakeJudgeServer, tmp_path: Path) -> None:
    cache = JudgeCache(tmp_path / "judge_cache.jsonl")
    first = LLMJudge(_config(server.url), cache)
    custom = (
        "Q={question} | gold={golden_answers} | guess={prediction}\nPredicted answer: {prediction}\nyes/no?"
    )
    second = LLMJudge(_config(server.url, prompt_template=custom), cache)
    try:
        await first.judge(ITEMS[0])
        verdict = await second.judge(ITEMS[0])
    finally:
        await first.aclose()
        await second.aclose()
    assert verdict.correct is True and not verdict.cached
    assert server.prompts[1].startswith("Q=What is the capital of France? | gold=Paris | guess=It is Paris")


async def test_unparsed_reply_scores_zero_and_is_counted(tmp_path: Path) -> None:
    fake = FakeJudgeServer(lambda prompt: "I cannot tell.")
    judge = LLMJudge(_config(fake.url), tmp_path / "c.jsonl")
    try:
        verdicts = await judge.judge_many(ITEMS[:2])
    finally:
        await judge.aclose()
        fake.close()
    assert [v.correct for v in verdicts] == [None, None]
    assert judge_score(verdicts) == {"judge": 0.0, "judge_unparsed": 2.0}


async def test_a_warming_server_is_retried_and_a_dead_one_raises(tmp_path: Path) -> None:
    fake = FakeJudgeServer(_says_yes_when_paris, fail_first=2)
    judge = LLMJudge(_config(fake.url, max_retries=3))
    try:
        assert (await judge.judge(ITEMS[0])).correct is True
    finally:
        await judge.aclose()
    url = fake.url
    fake.close()
    dead = LLMJudge(_config(url, max_retries=1))
    try:
        with pytest.raises(JudgeError, match=r"judge server is running"):
            await dead.judge(ITEMS[0])
    finally:
        await dead.aclose()


async def test_a_wrong_path_is_rejected_with_the_fix(server: FakeJudgeServer) -> None:
    judge = LLMJudge(_config(server.url.replace("/v1", "/api")))
    try:
        with pytest.raises(JudgeError, match=r"HTTP 404.*wrong judge base URL"):
            await judge.judge(ITEMS[0])
    finally:
        await judge.aclose()


def test_a_truncated_cache_line_is_asked_again(tmp_path: Path) -> None:
    path = tmp_path / "judge_cache.jsonl"
    path.write_text(
        json.dumps({"key": "a", "model": "m", "correct": True, "reply": "yes"}) + "\n" + '{"key": "b", "corr'
    )
    cache = JudgeCache(path)
    assert len(cache) == 1
    assert cache.get("a") is not None and cache.get("b") is None


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("yes", True),
        ("Yes.", True),
        ("NO", False),
        ("Correct", True),
        ("incorrect", False),
        ("<think>is it yes? no...</think>\nno", False),
        ("<think>unfinished yes", None),
        ("The answer is correct: yes", True),
        ("maybe", None),
        ("", None),
    ],
)
def test_parse_verdict(reply: str, expected: bool | None) -> None:
    assert parse_verdict(reply) is expected


def test_config_checks_the_prompt_template() -> None:
    assert "{prediction}" in DEFAULT_JUDGE_PROMPT
    with pytest.raises(ConfigError, match=r"use only the placeholders"):
        JudgeConfig("http://x", "m", prompt_template="{answer} {prediction}")
    with pytest.raises(ConfigError, match=r"has no \{prediction\}"):
        JudgeConfig("http://x", "m", prompt_template="{question}")
    with pytest.raises(ConfigError, match=r"base_url='x'"):
        JudgeConfig("x", "m")
    assert JudgeConfig("http://h:1/v1/", "m").url == "http://h:1/v1/chat/completions"
    assert JudgeConfig("http://h:1", "m").url == "http://h:1/v1/chat/completions"
