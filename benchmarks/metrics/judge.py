"""LLM-as-judge: an OpenAI-compatible chat model decides whether a prediction answers the question as one of
the golden answers does (the seed papers' "LJ" / ACC_L).

The prompt is hopgym's own wording (:data:`DEFAULT_JUDGE_PROMPT`, placeholders ``{question}``,
``{golden_answers}``, ``{prediction}``); pass ``prompt_template`` to use another. The judge is asked for one
word, yes or no; the first yes/no (or correct/incorrect) in its reply, outside a ``<think>`` block, is the
verdict, and a reply with neither is recorded as unparsed (None, scored 0 and counted apart).

Verdicts are cached in a jsonl file (``judge_cache.jsonl`` in a run directory) keyed by the model, the prompt
template and the question, golden answers and prediction, so rerunning an evaluation asks the judge nothing it
was asked before. A missing prediction is judged wrong without asking. Requests use hopgym's bounded retries
(:mod:`hopgym.http_retry`); a judge that stays down raises :class:`JudgeError`, never a silent 0.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hopgym.errors import ConfigError, JudgeError
from hopgym.http_retry import ClientErrors, json_client, post_json

__all__ = [
    "DEFAULT_JUDGE_PROMPT",
    "JUDGE_CACHE_FILE",
    "JudgeCache",
    "JudgeConfig",
    "JudgeError",
    "JudgeItem",
    "JudgeVerdict",
    "LLMJudge",
    "judge_score",
    "parse_verdict",
]

logger = logging.getLogger(__name__)

JUDGE_CACHE_FILE = "judge_cache.jsonl"

DEFAULT_JUDGE_PROMPT = """\
You are checking answers to quiz questions. Decide whether the predicted answer is correct, that is, whether \
it refers to the same thing as at least one of the reference answers. Different wording, abbreviations, \
aliases and extra detail that does not contradict the reference are fine; a different entity, date or number, \
a hedge between several candidates, or no real answer is not.

Question: {question}
Reference answers: {golden_answers}
Predicted answer: {prediction}

Is the predicted answer correct? Reply with one word: yes or no."""

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_VERDICT_WORD = re.compile(r"\b(yes|no|correct|incorrect|true|false)\b", re.IGNORECASE)
_POSITIVE = frozenset({"yes", "correct", "true"})


@dataclass(frozen=True)
class JudgeConfig:
    """The judge model and how to ask it. ``api_key`` None reads ``OPENAI_API_KEY`` (none is fine for a
    local server)."""

    base_url: str
    model: str
    api_key: str | None = None
    prompt_template: str = DEFAULT_JUDGE_PROMPT
    max_tokens: int = 16
    temperature: float = 0.0
    concurrency: int = 16
    timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    max_retries: int = 3
    backoff_base_s: float = 0.5
    backoff_max_s: float = 10.0
    max_retry_after_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"judge base_url={self.base_url!r} is invalid: give the server's URL, e.g. http://127.0.0.1:8000/v1"
            )
        if not self.model:
            raise ConfigError("judge model is empty: give the model name the judge server serves")
        try:
            self.prompt_template.format(question="q", golden_answers="g", prediction="p")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"judge prompt_template cannot be filled ({type(exc).__name__}: {exc}): use only the placeholders "
                "{question}, {golden_answers} and {prediction}, and double other braces ({{ }})"
            ) from exc
        if "{prediction}" not in self.prompt_template:
            raise ConfigError("judge prompt_template has no {prediction}: the judge would not see the answer")
        for name in ("max_tokens", "concurrency"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"judge {name}={value!r} is invalid: use an integer >= 1")
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise ConfigError(f"judge max_retries={self.max_retries!r} is invalid: use an integer >= 0")
        for name in ("timeout_s", "connect_timeout_s", "backoff_max_s", "max_retry_after_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"judge {name}={getattr(self, name)!r} is invalid: use seconds > 0")

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        root = base[: -len("/v1")] if base.endswith("/v1") else base
        return root + "/v1/chat/completions"


@dataclass(frozen=True)
class JudgeItem:
    question: str
    golden_answers: tuple[str, ...]
    prediction: str | None


@dataclass(frozen=True)
class JudgeVerdict:
    """``correct`` is None when the judge's reply said neither yes nor no; ``cached`` when no request was
    made for it in this run."""

    correct: bool | None
    reply: str
    cached: bool = False

    @property
    def score(self) -> float:
        return 1.0 if self.correct else 0.0


def parse_verdict(reply: str) -> bool | None:
    """True for yes/correct/true, False for no/incorrect/false (the first such word after any ``<think>``
    block), None when there is none."""
    match = _VERDICT_WORD.search(_THINK.sub(" ", reply))
    if match is None:
        return None
    return match.group(1).lower() in _POSITIVE


def judge_score(verdicts: Sequence[JudgeVerdict]) -> dict[str, float]:
    """``judge`` (share judged correct; unparsed replies count as wrong) and ``judge_unparsed`` (how many)."""
    if not verdicts:
        return {"judge": 0.0, "judge_unparsed": 0.0}
    return {
        "judge": sum(v.score for v in verdicts) / len(verdicts),
        "judge_unparsed": float(sum(v.correct is None for v in verdicts)),
    }


def _prompt(template: str, item: JudgeItem) -> str:
    golds = "; ".join(item.golden_answers)
    return template.format(question=item.question, golden_answers=golds, prediction=item.prediction or "")


def _cache_key(config: JudgeConfig, item: JudgeItem) -> str:
    material = [
        config.model,
        config.prompt_template,
        item.question,
        list(item.golden_answers),
        item.prediction,
    ]
    return hashlib.sha256(json.dumps(material, ensure_ascii=False).encode()).hexdigest()


class JudgeCache:
    """Verdicts by key in a jsonl file, appended one line per new verdict. A last line cut short by an
    interrupted run is ignored (that verdict is asked again)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._entries: dict[str, JudgeVerdict] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key, correct, reply = record["key"], record["correct"], record["reply"]
            except (json.JSONDecodeError, KeyError, TypeError):
                logger.warning("%s:%d: unreadable judge cache line ignored (asked again)", self.path, number)
                continue
            if (
                isinstance(key, str)
                and (correct is None or isinstance(correct, bool))
                and isinstance(reply, str)
            ):
                self._entries[key] = JudgeVerdict(correct, reply, cached=True)

    def get(self, key: str) -> JudgeVerdict | None:
        return self._entries.get(key)

    def put(self, key: str, verdict: JudgeVerdict, *, model: str) -> None:
        self._entries[key] = JudgeVerdict(verdict.correct, verdict.reply, cached=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"key": key, "model": model, "correct": verdict.correct, "reply": verdict.reply}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def __len__(self) -> int:
        return len(self._entries)


def _summarize_error(body: Mapping[str, Any]) -> object:
    error = body.get("error", body.get("detail", body.get("message")))
    return error.get("message", error) if isinstance(error, Mapping) else error


_ERRORS = ClientErrors(
    failed=JudgeError,
    timeout=JudgeError,
    unavailable=JudgeError,
    rejected=lambda message, status: JudgeError(message),
    summarize=_summarize_error,
    timeout_advice="raise the judge timeout or lower the judge concurrency",
    unavailable_advice="check that the judge server is running and reachable (--judge-base-url)",
    auth_hint="give the judge server's API key",
    not_found_hint="wrong judge base URL, or a model name the judge server does not serve: see GET /v1/models",
    label="judge request",
)


class LLMJudge:
    """Judge predictions with ``config``'s model; ``cache`` (a path or a :class:`JudgeCache`) keeps verdicts
    across runs. ``transport`` is for tests (an httpx transport)."""

    def __init__(
        self,
        config: JudgeConfig,
        cache: JudgeCache | str | Path | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.cache = cache if isinstance(cache, JudgeCache) or cache is None else JudgeCache(cache)
        self.requests = 0
        self._client = json_client(
            bearer=config.api_key if config.api_key is not None else os.environ.get("OPENAI_API_KEY"),
            timeout_s=config.timeout_s,
            connect_timeout_s=config.connect_timeout_s,
            max_connections=config.concurrency,
            max_keepalive_connections=config.concurrency,
            transport=transport,
        )
        self._rng = rng or random.Random()
        self._limit = asyncio.Semaphore(config.concurrency)

    async def judge(self, item: JudgeItem) -> JudgeVerdict:
        if item.prediction is None or not item.prediction.strip():
            return JudgeVerdict(False, "", cached=True)
        key = _cache_key(self.config, item)
        if self.cache is not None:
            known = self.cache.get(key)
            if known is not None:
                return known
        async with self._limit:
            reply = await self._ask(_prompt(self.config.prompt_template, item))
        verdict = JudgeVerdict(parse_verdict(reply), reply)
        if verdict.correct is None:
            logger.warning("judge reply has no yes/no verdict, scored 0: %r", reply[:200])
        if self.cache is not None:
            self.cache.put(key, verdict, model=self.config.model)
        return verdict

    async def judge_many(self, items: Sequence[JudgeItem]) -> list[JudgeVerdict]:
        return list(await asyncio.gather(*(self.judge(item) for item in items)))

    async def _ask(self, prompt: str) -> str:
        self.requests += 1
        body = {
            "model": self.config.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
        }
        answer = await post_json(
            self._client,
            self.config.url,
            body,
            settings=self.config,
            errors=_ERRORS,
            sleep=asyncio.sleep,
            rng=self._rng,
            logger=logger,
        )
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise JudgeError(
                f"{self.config.url} answered without choices[0].message.content: {answer!r:.200}"
            ) from exc
        return content if isinstance(content, str) else ""

    async def aclose(self) -> None:
        await self._client.aclose()
