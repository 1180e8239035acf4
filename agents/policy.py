"""The policy contracts: one async call that continues an episode by one turn.

A policy is stateless across episodes; the per-episode state lives in a :class:`Context` owned by the episode
engine. Completion-style policies read ``context.text`` (prompt plus every turn so far); chat policies read
``context.messages`` (and ``context.tools``). Token-level policies (:class:`TokenPolicy`: vLLM in-process,
transformers, ``OpenAIPolicy`` with a tokenizer) read ``context.token_ids`` so that the ids a trainer sees are
exactly the ids that were sampled: the prompt is tokenized once, each observation is tokenized on its own and
appended, and the whole text is never re-tokenized between turns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from hopgym.errors import ConfigError

__all__ = [
    "Context",
    "FinishReason",
    "Generation",
    "Policy",
    "SamplingParams",
    "TokenPolicy",
    "WeightSync",
    "messages_text",
    "token_policy",
]

FinishReason = Literal["stop", "length", "tool_calls"]


@dataclass(frozen=True)
class SamplingParams:
    """Per-turn sampling settings. ``stop`` strings end a turn and are kept in the returned text."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ConfigError(
                f"max_tokens={self.max_tokens}: a turn needs at least one token; set max_tokens >= 1"
            )
        if self.temperature < 0:
            raise ConfigError(f"temperature={self.temperature}: must be >= 0 (0 means greedy)")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p={self.top_p}: must be in (0, 1]")
        object.__setattr__(self, "stop", tuple(self.stop))


@dataclass(frozen=True)
class Generation:
    """One turn of generated text.

    ``token_ids``/``logprobs`` are set by backends that can give them (same length; logprobs of the sampled
    tokens). ``text`` includes the matched stop string, if any. ``tool_calls`` holds OpenAI-style tool calls
    for chat backends (``{"id", "type": "function", "function": {"name", "arguments"}}``).
    """

    text: str
    finish_reason: FinishReason
    token_ids: tuple[int, ...] | None = None
    logprobs: tuple[float, ...] | None = None
    stop_reason: str | None = None
    tool_calls: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if (
            self.token_ids is not None
            and self.logprobs is not None
            and len(self.token_ids) != len(self.logprobs)
        ):
            raise ValueError(f"{len(self.token_ids)} token ids but {len(self.logprobs)} logprobs")


@dataclass
class Context:
    """The running state of one episode as a policy sees it (mutable, owned by the engine)."""

    prompt: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    text: str = ""
    #: Running token ids (prompt, generations, observations) for token-level policies; None otherwise.
    token_ids: list[int] | None = None
    #: 1 for tokens the policy generated, 0 for prompt and observation tokens (same length as token_ids).
    loss_mask: list[int] | None = None

    def __post_init__(self) -> None:
        if not self.text:
            self.text = self.prompt


@runtime_checkable
class Policy(Protocol):
    """An async, batched-by-concurrency policy backend that continues episodes as text (or chat messages)."""

    async def generate(self, context: Context, params: SamplingParams) -> Generation:
        """Continue ``context`` by one turn (do not mutate ``context``; the engine appends the result)."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class TokenPolicy(Policy, Protocol):
    """A policy that works on token ids: the engine keeps ``context.token_ids`` (the prompt encoded once, then
    each generation's sampled ids and each observation encoded on its own) and the policy continues them,
    returning ``Generation.token_ids``/``logprobs``. The built-in backends encode through
    :class:`~hopgym.agents.prompt_encoding.PromptEncoder`, so they agree on every id."""

    #: True when the backend works on token ids now (an ``OpenAIPolicy`` without a tokenizer is text-level).
    token_level: bool

    def encode_prompt(self, context: Context) -> list[int]:
        """Token ids of the first prompt (see :mod:`hopgym.agents.prompt_encoding` for the rules)."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` on its own (no special tokens)."""
        ...


@runtime_checkable
class WeightSync(Protocol):
    """A backend whose weights a trainer replaces after each optimizer step (the weight-sync contract).

    ``load_weights`` takes ``(name, tensor)`` pairs named as the training model's ``named_parameters()`` and
    returns once every later ``generate`` samples from the new weights. A transformers policy built on the
    training model itself shares its parameters (nothing to copy); an in-process vLLM engine loads them into
    its workers.
    """

    def load_weights(self, weights: Iterable[tuple[str, Any]]) -> None: ...


def token_policy(policy: Policy) -> TokenPolicy | None:
    """``policy`` as a :class:`TokenPolicy` when it works on token ids, else None (a text-level policy)."""
    if isinstance(policy, TokenPolicy) and policy.token_level:
        return policy
    return None


def messages_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """Plain concatenation of message contents (for logs and reward text of chat episodes)."""
    return "".join(str(m.get("content") or "") for m in messages)
