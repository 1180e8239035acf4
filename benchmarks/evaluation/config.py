"""What an evaluation run is: one frozen, validated value, written to ``DIR/config.json`` (the resolved
command) and checked on resume, so a rerun cannot silently mix two settings in one run directory."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hopgym.errors import ConfigError

__all__ = ["AGENTS", "APIS", "RESULT_FIELDS", "EvalConfig", "check_resume"]

AGENTS = ("oracle", "model")
APIS = ("chat", "completions")
#: Settings that change what an episode does: a run directory keeps them fixed across reruns.
RESULT_FIELDS = (
    "data",
    "env",
    "env_args",
    "retriever",
    "agent",
    "model",
    "api",
    "protocol",
    "reward",
    "top_k",
    "max_turns",
    "max_tokens",
    "temperature",
    "samples",
    "seed",
    "extra_body",
)


def _positive(name: str, value: object, flag: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{flag} {value!r} is invalid: give an integer >= 1 (field {name})")


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation: the tasks (``data`` file or registered ``env`` id), the retriever, the agent (the
    HopWorld ``oracle`` or a ``model`` behind an OpenAI-compatible ``base_url``) and the episode settings.

    ``None`` for ``protocol``/``reward``/``top_k``/``max_turns`` keeps the env's own default (the resolved
    value is what ``config.json`` records). ``api_key`` is never written anywhere.
    """

    data: str | None = None
    env: str | None = None
    env_args: Mapping[str, Any] = field(default_factory=dict)
    retriever: str | None = None
    data_format: str | None = None
    agent: str = "oracle"
    base_url: str | None = None
    model: str | None = None
    api: str = "chat"
    api_key: str | None = field(default=None, repr=False)
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    protocol: str | None = None
    reward: str | None = None
    top_k: int | None = None
    max_turns: int | None = None
    max_tokens: int = 512
    temperature: float = 0.0
    samples: int = 1
    limit: int | None = None
    concurrency: int = 64
    seed: int | None = None
    timeout_s: float = 300.0
    max_retries: int = 3
    #: Stop the run (resumable) after this many episodes in a row failed the same way: a server that is
    #: down would otherwise fail every remaining episode one by one, each after its retries.
    max_consecutive_failures: int = 32
    out: str | None = None
    dataset: str | None = None
    #: LLM-as-judge (optional): any OpenAI-compatible chat model; verdicts cached in the run directory.
    judge_base_url: str | None = None
    judge_model: str | None = None

    def __post_init__(self) -> None:
        if self.data is not None and self.env is not None:
            raise ConfigError("give --data FILE or --env ID, not both")
        if self.data is None and self.env is None:
            object.__setattr__(self, "env", "hopgym/HopWorld-v0")
        if self.agent not in AGENTS:
            raise ConfigError(f"--agent {self.agent!r} is unknown; choose one of {', '.join(AGENTS)}")
        if self.agent == "model" and (not self.base_url or not self.model):
            raise ConfigError(
                "a model run needs --base-url URL and --model NAME (e.g. --base-url http://127.0.0.1:8000/v1 "
                "--model Qwen/Qwen2.5-7B-Instruct)"
            )
        if self.agent == "oracle" and self.base_url:
            raise ConfigError("--base-url is for a model; drop it, or drop --agent oracle")
        if (self.judge_base_url is None) != (self.judge_model is None):
            raise ConfigError("the judge needs both --judge-base-url URL and --judge-model NAME")
        if self.api not in APIS:
            raise ConfigError(f"--api {self.api!r} is unknown; choose one of {', '.join(APIS)}")
        if self.data is not None and not self.retriever:
            raise ConfigError(
                "--data needs --retriever SPEC: an index directory, an http(s) retriever server URL, or "
                "bm25:CORPUS.jsonl (indexed in memory)"
            )
        for name, flag in (
            ("top_k", "--top-k"),
            ("max_turns", "--max-turns"),
            ("max_tokens", "--max-tokens"),
            ("samples", "-n"),
            ("limit", "--limit"),
            ("concurrency", "--concurrency"),
            ("max_consecutive_failures", "max_consecutive_failures"),
        ):
            _positive(name, getattr(self, name), flag)
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)):
            raise ConfigError(f"--temperature {self.temperature!r} is invalid: give a number >= 0")
        if self.temperature < 0:
            raise ConfigError(f"--temperature {self.temperature} is invalid: give a number >= 0 (0: greedy)")
        if not isinstance(self.extra_body, Mapping):
            raise ConfigError("--extra-body must be a JSON object, e.g. '{\"top_k\": 20}'")
        object.__setattr__(self, "extra_body", dict(self.extra_body))
        object.__setattr__(self, "env_args", dict(self.env_args))

    @property
    def source(self) -> str:
        """The task source as written: the data file or the env id."""
        return self.data if self.data is not None else str(self.env)

    @property
    def dataset_name(self) -> str:
        """The name episodes without their own ``data_source`` are grouped under: ``--dataset``, else the
        data file as ``parent/stem`` (``hotpotqa/dev_500``), else the env id."""
        if self.dataset:
            return self.dataset
        if self.data is not None:
            path = Path(self.data)
            return f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem
        return str(self.env)

    def resolved(self, **values: Any) -> EvalConfig:
        """This config with the env's defaults filled in (``protocol=..., reward=..., ...``)."""
        return dataclasses.replace(self, **values)

    def to_json(self) -> dict[str, Any]:
        """``config.json``: every setting but the API key, plus the dataset name reports group by."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "api_key"}
        data["extra_body"] = dict(self.extra_body)
        data["env_args"] = dict(self.env_args)
        data["dataset"] = self.dataset_name
        data["api_key_set"] = self.api_key is not None
        return data


def check_resume(previous: Mapping[str, Any], current: Mapping[str, Any], path: Path) -> None:
    """Refuse to resume a run directory whose ``config.json`` has other result-changing settings."""
    differ = [
        name
        for name in RESULT_FIELDS
        if name in previous and _canonical(previous.get(name)) != _canonical(current.get(name))
    ]
    if differ:
        details = ", ".join(f"{n}: {previous.get(n)!r} there, {current.get(n)!r} now" for n in differ)
        raise ConfigError(
            f"{path} holds a run with other settings ({details}); rerun with the same settings to resume it, "
            "or give another --out directory"
        )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
