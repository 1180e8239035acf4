"""A policy that calls any OpenAI-compatible server (vLLM, SGLang, OpenAI) over HTTP.

Modes: ``"completions"`` (``POST /v1/completions`` with ``context.text`` as the prompt) and ``"chat"``
(``POST /v1/chat/completions`` with ``context.messages`` and ``context.tools``; native tool calls come back
in :attr:`Generation.tool_calls`, the text in ``Generation.text``; :func:`assistant_action` serializes the
turn as the JSON assistant message the ``tool_call`` protocol parses).

vLLM extras (``vllm_extras``; ``None`` asks ``/v1/models`` once whether the server is vLLM): the request
keeps the matched stop string in the text (``include_stop_str_in_output``) and asks for the sampled token
ids (``return_token_ids``), so ``Generation.token_ids``/``logprobs`` are filled.

Stop strings are kept in ``Generation.text`` whatever the server does with them (the env parses a search turn
by its closing tag). A server that strips the stop string and names it (vLLM's ``stop_reason``, SGLang's
``matched_stop``) gets it re-appended. A server that strips it and does not say which (the OpenAI API itself,
llama.cpp, TGI, Ollama, most hosted endpoints: finish reason ``stop``, or TGI's ``stop_sequence``, and no
``stop_reason``) has its turn completed by this rule: when the text does not already end with one of the
turn's stop strings, the action protocol names the stop string that closes the action tag left open at the
end of the text (:meth:`~hopgym.envs.protocols.tag_protocol.TagProtocol.closing_stop`: ``<search> q`` ->
``</search>``, ``<|begin_of_query|> q`` -> ``<|end_of_query|>``), and it is appended and reported as
``Generation.stop_reason``. The protocol is ``protocol=`` when given; otherwise every built-in tag protocol
whose stop strings are all among the turn's is asked, and the stop string is appended only when they agree.
Nothing is appended when no action is open, when the closing tag is not a stop string (a ReSearch
``<answer>`` ends with EOS), on finish reason ``length``, on TGI's ``eos_token``, or on ``stop_reason: null``
from a server known to be vLLM (``vllm_extras`` or ``/v1/models``; vLLM says that for EOS, and a turn that
ended on EOS inside an open tag stays invalid).

Chat requests with ``tools`` (the ``tool_call`` protocol) that the server refuses with a 4xx naming tools
raise :class:`ToolsNotSupported`, which says to use a tag protocol (``--protocol search_r1``) or to enable
tool calls on the server.

With a ``tokenizer`` (completions mode on vLLM) the policy is token-level: the prompt is sent as token ids
(``context.token_ids``), so the ids a trainer sees are exactly those sampled, as with the in-process engine,
and ``Generation.text`` is the tokenizer's decoding of the sampled ids (special tokens skipped), so that text
and ids always agree (as in the transformers policy).

Connection errors, HTTP 5xx and 429 are retried ``max_retries`` times with jittered exponential backoff
(``Retry-After`` honoured), then :class:`PolicyUnavailable`; a request that times out raises
:class:`PolicyTimeout`; other 4xx answers raise :class:`PolicyRequestError` with the server's message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

import httpx

from hopgym.agents.errors import PolicyError, PolicyRequestError, PolicyTimeout, PolicyUnavailable
from hopgym.agents.policy import Context, FinishReason, Generation, SamplingParams
from hopgym.agents.prompt_encoding import PromptEncoder, PromptEncoding, PromptTokenizer
from hopgym.envs.protocols.base import ActionProtocol
from hopgym.errors import ConfigError, ToolsNotSupported
from hopgym.http_retry import ClientErrors, json_client, post_json

__all__ = [
    "ApiMode",
    "OpenAIPolicy",
    "OpenAIPolicyConfig",
    "TextTokenizer",
    "ToolsNotSupported",
    "assistant_action",
    "complete_cut_stop",
]

logger = logging.getLogger(__name__)

ApiMode = Literal["completions", "chat"]

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    # Hugging Face TGI's finish reasons.
    "stop_sequence": "stop",
    "eos_token": "stop",
}
#: The built-in tag protocols asked which stop string a server cut, when the policy is given no protocol.
_TAG_PROTOCOLS = ("search_r1", "research", "r1_searcher")


#: The part of a Hugging Face tokenizer a token-level HTTP policy needs (kept under its old name).
TextTokenizer = PromptTokenizer


@dataclass(frozen=True)
class OpenAIPolicyConfig:
    """Client settings. ``timeout_s`` bounds one HTTP request (a whole generation); ``extra_body`` is merged
    into every request body (e.g. ``{"top_k": 20}`` or ``{"chat_template_kwargs": {...}}``)."""

    base_url: str
    model: str
    api_key: str | None = None
    mode: ApiMode = "completions"
    timeout_s: float = 300.0
    connect_timeout_s: float = 10.0
    max_retries: int = 3
    backoff_base_s: float = 0.2
    backoff_max_s: float = 10.0
    max_retry_after_s: float = 60.0
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    vllm_extras: bool | None = None
    max_connections: int = 512

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url={self.base_url!r} is invalid: give the server's URL, e.g. http://127.0.0.1:8000/v1"
            )
        if not self.model:
            raise ConfigError("model is empty: give the model name the server serves (see GET /v1/models)")
        if self.mode not in get_args(ApiMode):
            raise ConfigError(f"mode={self.mode!r} is unknown; choose one of {', '.join(get_args(ApiMode))}")
        for name in ("timeout_s", "connect_timeout_s", "backoff_max_s", "max_retry_after_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name}={value!r} is invalid: use a number of seconds > 0")
        if not (isinstance(self.backoff_base_s, (int, float)) and self.backoff_base_s >= 0):
            raise ConfigError(f"backoff_base_s={self.backoff_base_s!r} is invalid: use seconds >= 0")
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise ConfigError(
                f"max_retries={self.max_retries!r} is invalid: use an integer >= 0 (0 disables retries)"
            )
        if isinstance(self.max_connections, bool) or not isinstance(self.max_connections, int):
            raise ConfigError(f"max_connections={self.max_connections!r} is invalid: use an integer >= 1")
        if self.max_connections < 1:
            raise ConfigError(f"max_connections={self.max_connections} is invalid: use an integer >= 1")
        object.__setattr__(self, "extra_body", dict(self.extra_body))

    @property
    def root_url(self) -> str:
        """The server's root; the API paths below it all start with ``/v1``."""
        base = self.base_url.rstrip("/")
        return base[: -len("/v1")] if base.endswith("/v1") else base


class OpenAIPolicy(PromptEncoding):
    """A :class:`~hopgym.agents.policy.Policy` over an OpenAI-compatible HTTP API (see the module docstring).

    ``tokenizer`` (a Hugging Face tokenizer or a local tokenizer directory) makes a completions-mode policy
    token-level (a :class:`~hopgym.agents.policy.TokenPolicy`); it must be the served model's tokenizer.
    ``chat_template=True`` (token-level only): ``encode_prompt`` applies the tokenizer's chat template to
    ``context.messages`` instead of encoding ``context.prompt``, with the encoding every token-level backend
    shares (:mod:`hopgym.agents.prompt_encoding`). ``protocol`` (an action protocol or its registered name)
    says which stop string closes an open action tag when a server cuts it without saying so (see the module
    docstring; default: ask the built-in tag protocols). ``transport`` and ``sleep`` replace the network and
    the backoff clock (tests); ``rng`` makes the jitter reproducible.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        mode: ApiMode = "completions",
        timeout_s: float = 300.0,
        max_retries: int = 3,
        extra_body: Mapping[str, Any] | None = None,
        vllm_extras: bool | None = None,
        tokenizer: TextTokenizer | str | Path | None = None,
        chat_template: bool = False,
        protocol: ActionProtocol | str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        **options: Any,
    ) -> None:
        """``options`` are the other :class:`OpenAIPolicyConfig` fields (backoff, pool size, ...)."""
        known = set(OpenAIPolicyConfig.__dataclass_fields__)
        unknown = set(options) - known
        if unknown:
            raise ConfigError(
                f"unknown OpenAIPolicy option(s) {', '.join(sorted(unknown))}; valid ones are the fields of "
                "OpenAIPolicyConfig"
            )
        self.config = OpenAIPolicyConfig(
            base_url=base_url,
            model=model,
            api_key=api_key,
            mode=mode,
            timeout_s=timeout_s,
            max_retries=max_retries,
            extra_body=extra_body or {},
            vllm_extras=vllm_extras,
            **options,
        )
        if tokenizer is not None and mode != "completions":
            raise ConfigError(
                "tokenizer= makes the policy token-level, which needs mode='completions' (the chat API "
                "takes messages, not token ids); drop tokenizer= for chat"
            )
        if tokenizer is not None and vllm_extras is False:
            raise ConfigError(
                "tokenizer= needs the sampled token ids back, a vLLM extra; leave vllm_extras unset or True"
            )
        if chat_template and tokenizer is None:
            raise ConfigError(
                "chat_template=True shapes token-level prompts and needs tokenizer=; for a chat model over HTTP "
                "use mode='chat' (the server applies its template)"
            )
        self.tokenizer = _load_tokenizer(tokenizer) if isinstance(tokenizer, (str, Path)) else tokenizer
        self.prompts: PromptEncoder | None = (
            None
            if self.tokenizer is None
            else PromptEncoder(self.tokenizer, chat_template=chat_template, source=str(tokenizer))
        )
        self.token_level = self.prompts is not None
        if isinstance(protocol, str):
            from hopgym.envs.protocols import get_protocol

            protocol = get_protocol(protocol)
        self.protocol: ActionProtocol | None = protocol
        self._inferred: dict[tuple[str, ...], tuple[ActionProtocol, ...]] = {}
        cfg = self.config
        self._client = json_client(
            bearer=cfg.api_key,
            timeout_s=cfg.timeout_s,
            connect_timeout_s=cfg.connect_timeout_s,
            max_connections=cfg.max_connections,
            max_keepalive_connections=cfg.max_connections,
            transport=transport,
        )
        self._sleep = sleep
        self._rng = rng or random.Random()
        # Token ids back are a vLLM extra, so a tokenizer implies a vLLM server.
        self._vllm: bool | None = True if self.token_level else cfg.vllm_extras
        self._detect_lock = asyncio.Lock()
        self._closed = False
        #: Token counts the server reported (``usage``) over every request so far.
        self.usage: dict[str, int] = {"prompt_tokens": 0, "completion_tokens": 0}

    # -- Policy API --------------------------------------------------------------------------------

    async def generate(self, context: Context, params: SamplingParams) -> Generation:
        (generation,) = await self.generate_n(context, params, 1)
        return generation

    async def generate_n(self, context: Context, params: SamplingParams, n: int) -> list[Generation]:
        """``n`` independent continuations of ``context`` in one request (the API's ``n``)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n={n!r} is invalid: ask for at least one continuation")
        if self._closed:
            raise PolicyError("OpenAIPolicy is closed; create a new one to generate again")
        vllm = await self.is_vllm()
        if self.config.mode == "chat":
            body = self._chat_body(context, params, n, vllm)
            answer = await self._post_chat(body)
            choices = _choices(answer, n)
            generations = [_parse_chat_choice(c) for c in choices]
        else:
            body = self._completion_body(context, params, n, vllm)
            answer = await self._post("/v1/completions", body)
            choices = _choices(answer, n)
            generations = [_parse_completion_choice(c, params.logprobs) for c in choices]
        self._count_usage(answer)
        if params.stop:
            generations = [
                self._complete_stop(generation, choice, params.stop, vllm)
                for generation, choice in zip(generations, choices, strict=True)
            ]
        if self.token_level:
            return [self._token_exact(generation) for generation in generations]
        return generations

    def _count_usage(self, answer: Any) -> None:
        usage = answer.get("usage") if isinstance(answer, Mapping) else None
        if isinstance(usage, Mapping):
            for key in self.usage:
                value = usage.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    self.usage[key] += value

    def _complete_stop(
        self, generation: Generation, choice: Mapping[str, Any], stops: tuple[str, ...], vllm: bool
    ) -> Generation:
        """Append the stop string a server cut without naming it (the rule in the module docstring)."""
        if generation.finish_reason != "stop" or generation.stop_reason is not None or generation.tool_calls:
            return generation
        if choice.get("finish_reason") == "eos_token" or isinstance(choice.get("stop_reason"), int):
            return generation  # the model ended the turn itself (TGI's EOS; vLLM's stop token id)
        if vllm and "stop_reason" in choice:
            return generation  # vLLM sends stop_reason null for EOS and names every stop string it matched
        closer = complete_cut_stop(generation.text, stops, self._protocols_for(stops))
        if closer is None:
            return generation
        logger.debug("the server cut the stop string %r without returning it; appended it", closer)
        return dataclasses.replace(generation, text=generation.text + closer, stop_reason=closer)

    def _protocols_for(self, stops: tuple[str, ...]) -> tuple[ActionProtocol, ...]:
        if self.protocol is not None:
            return (self.protocol,)
        found = self._inferred.get(stops)
        if found is None:
            from hopgym.envs.protocols import get_protocol

            candidates = (get_protocol(name) for name in _TAG_PROTOCOLS)
            found = tuple(p for p in candidates if set(p.stop) <= set(stops))
            self._inferred[stops] = found
        return found

    async def _post_chat(self, body: Mapping[str, Any]) -> Any:
        try:
            return await self._post("/v1/chat/completions", body)
        except PolicyRequestError as exc:
            if "tools" in body and exc.status != 404 and exc.status < 500 and "tool" in str(exc).lower():
                raise ToolsNotSupported(
                    f"{exc}\nThe server does not take native tool calls (the tool_call protocol sends `tools`): "
                    "use a tag protocol instead (hopgym eval --protocol search_r1; in Python "
                    "protocol='search_r1'), or enable tool calls on the server (vLLM: "
                    "--enable-auto-tool-choice --tool-call-parser hermes)",
                    status=exc.status,
                ) from exc
            raise

    def _token_exact(self, generation: Generation) -> Generation:
        if generation.token_ids is None:
            raise PolicyError(
                "the server sent no token ids back (return_token_ids); a token-level OpenAIPolicy needs a "
                "vLLM server recent enough to support it"
            )
        # The server's text can differ from its ids at the end: a cut multi-byte character is held back, and
        # the rest of a token past a stop string is dropped. The ids are what a trainer sees, so they rule.
        return dataclasses.replace(generation, text=self.decode(generation.token_ids))

    async def is_vllm(self) -> bool:
        """Whether to send vLLM's request extras: the configured answer, else the server's ``/v1/models``."""
        if self._vllm is not None:
            return self._vllm
        async with self._detect_lock:
            if self._vllm is None:
                self._vllm = await self._detect_vllm()
                logger.info("%s is %sa vLLM server", self.config.root_url, "" if self._vllm else "not ")
        return self._vllm

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()

    async def __aenter__(self) -> OpenAIPolicy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- requests ----------------------------------------------------------------------------------

    def _common_body(self, params: SamplingParams, n: int, vllm: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "n": n,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if vllm:
            body["include_stop_str_in_output"] = True
            body["return_token_ids"] = True
        body.update(self.config.extra_body)
        body.update(params.extra)
        return body

    def _completion_body(
        self, context: Context, params: SamplingParams, n: int, vllm: bool
    ) -> dict[str, Any]:
        body = self._common_body(params, n, vllm)
        if self.token_level:
            if context.token_ids is None:
                raise PolicyError(
                    "a token-level policy needs context.token_ids (set it to policy.encode_prompt(context))"
                )
            body["prompt"] = list(context.token_ids)
        else:
            body["prompt"] = context.text
        if params.logprobs:
            body["logprobs"] = 0 if vllm else 1
        return body

    def _chat_body(self, context: Context, params: SamplingParams, n: int, vllm: bool) -> dict[str, Any]:
        body = self._common_body(params, n, vllm)
        body["messages"] = context.messages
        if context.tools:
            body["tools"] = context.tools
        if params.logprobs:
            body["logprobs"] = True
        return body

    async def _detect_vllm(self) -> bool:
        url = self.config.root_url + "/v1/models"
        try:
            response = await self._client.get(url)
        except httpx.HTTPError as exc:
            logger.warning("could not ask %s which server it is (%s); not sending vLLM extras", url, exc)
            return False
        if response.status_code >= 300:
            return False
        try:
            data = response.json().get("data") or []
        except (ValueError, AttributeError):
            return False
        return any(isinstance(m, Mapping) and m.get("owned_by") == "vllm" for m in data)

    async def _post(self, path: str, payload: Mapping[str, Any]) -> Any:
        return await post_json(
            self._client,
            self.config.root_url + path,
            payload,
            settings=self.config,
            errors=_ERRORS,
            sleep=self._sleep,
            rng=self._rng,
            logger=logger,
        )

    def _prompt_encoder(self) -> PromptEncoder:
        if self.prompts is None:
            raise PolicyError(
                "this OpenAIPolicy is not token-level: pass tokenizer=<the served model's tokenizer directory> "
                "to encode prompts and observations"
            )
        return self.prompts


# -- response parsing (pure) -----------------------------------------------------------------------


def assistant_action(generation: Generation) -> str:
    """The turn as the ``tool_call`` protocol parses it: the text, or with tool calls the assistant message
    as JSON."""
    if not generation.tool_calls:
        return generation.text
    message = {
        "role": "assistant",
        "content": generation.text or None,
        "tool_calls": [dict(call) for call in generation.tool_calls],
    }
    return json.dumps(message, ensure_ascii=False)


def _choices(answer: Any, n: int) -> list[Mapping[str, Any]]:
    choices = answer.get("choices") if isinstance(answer, Mapping) else None
    if not isinstance(choices, list) or len(choices) != n or not all(isinstance(c, Mapping) for c in choices):
        raise PolicyError(f"expected {n} choice(s) in the server's answer, got {str(answer)[:300]!r}")
    # Servers may answer the n choices out of order; "index" says which is which.
    return sorted(choices, key=lambda c: int(c.get("index") or 0))


def _finish(choice: Mapping[str, Any]) -> FinishReason:
    reason = choice.get("finish_reason")
    if reason not in _FINISH:
        raise PolicyError(f"unexpected finish_reason {reason!r} in the server's answer")
    return _FINISH[reason]


def complete_cut_stop(text: str, stops: Sequence[str], protocols: Sequence[ActionProtocol]) -> str | None:
    """The stop string to append to a turn a server ended on an unnamed, stripped stop string, or None.

    None when ``text`` already ends with one of ``stops``; else the stop string that ``protocols`` agree
    closes the action tag open at the end of ``text`` (``closing_stop``; protocols without that method, or
    answering None, are not asked), when it is one of ``stops``.
    """
    if any(text.endswith(stop) for stop in stops):
        return None
    answers: set[str] = set()
    for protocol in protocols:
        closing = getattr(protocol, "closing_stop", None)
        answer = closing(text) if callable(closing) else None
        if isinstance(answer, str) and answer in stops:
            answers.add(answer)
    return answers.pop() if len(answers) == 1 else None


def _restore_stop(text: str, choice: Mapping[str, Any], finish: FinishReason) -> tuple[str, str | None]:
    """Re-append the stop string a server stripped and named: vLLM's ``stop_reason`` (an int is a token),
    SGLang's ``matched_stop``."""
    stop_reason = choice.get("stop_reason")
    if stop_reason is None:
        stop_reason = choice.get("matched_stop")
    if finish != "stop" or not isinstance(stop_reason, str) or not stop_reason:
        return text, stop_reason if isinstance(stop_reason, str) else None
    if not text.endswith(stop_reason):
        text += stop_reason
    return text, stop_reason


def _int_list(value: Any, what: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise PolicyError(f"malformed {what} in the server's answer: {str(value)[:200]!r}")
    return tuple(value)


def _float_list(value: Any) -> tuple[float, ...]:
    # The first token of a prompt has no logprob (null); sampled tokens always have one, -inf included.
    return tuple(float("-inf") if v is None else float(v) for v in value)


def _parse_completion_choice(choice: Mapping[str, Any], want_logprobs: bool) -> Generation:
    text = choice.get("text")
    if not isinstance(text, str):
        raise PolicyError(f"a completion choice has no text: {str(choice)[:200]!r}")
    finish = _finish(choice)
    text, stop_reason = _restore_stop(text, choice, finish)
    token_ids = _int_list(choice.get("token_ids"), "token_ids")
    logprobs: tuple[float, ...] | None = None
    block = choice.get("logprobs")
    if want_logprobs and isinstance(block, Mapping) and isinstance(block.get("token_logprobs"), list):
        logprobs = _float_list(block["token_logprobs"])
    if token_ids is not None and logprobs is not None and len(token_ids) != len(logprobs):
        raise PolicyError(f"the server sent {len(token_ids)} token ids but {len(logprobs)} logprobs")
    return Generation(text, finish, token_ids=token_ids, logprobs=logprobs, stop_reason=stop_reason)


def _tool_calls(message: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise PolicyError(f"malformed tool_calls in the server's answer: {str(calls)[:200]!r}")
    out: list[Mapping[str, Any]] = []
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise PolicyError(f"malformed tool call in the server's answer: {str(call)[:200]!r}")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
        out.append(
            {
                "id": str(call.get("id") or f"call_{len(out)}"),
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments},
            }
        )
    return tuple(out)


def _parse_chat_choice(choice: Mapping[str, Any]) -> Generation:
    message = choice.get("message")
    if not isinstance(message, Mapping):
        raise PolicyError(f"a chat choice has no message: {str(choice)[:200]!r}")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise PolicyError(f"the assistant message's content is not text: {str(content)[:200]!r}")
    finish = _finish(choice)
    calls = _tool_calls(message)
    text, stop_reason = _restore_stop(content or "", choice, finish) if not calls else (content or "", None)
    logprobs: tuple[float, ...] | None = None
    block = choice.get("logprobs")
    if isinstance(block, Mapping) and isinstance(block.get("content"), list):
        logprobs = _float_list(
            [entry.get("logprob") for entry in block["content"] if isinstance(entry, Mapping)]
        )
    token_ids = _int_list(choice.get("token_ids"), "token_ids")
    if token_ids is not None and logprobs is not None and len(token_ids) != len(logprobs):
        logprobs = None  # tool-call parsers may rewrite the content; keep only what is consistent
    return Generation(
        text,
        "tool_calls" if calls else finish,
        token_ids=token_ids,
        logprobs=logprobs,
        stop_reason=stop_reason,
        tool_calls=calls,
    )


def _summarize_error(body: Mapping[str, Any]) -> object:
    # OpenAI-style servers nest the message: {"error": {"message": ...}}; others use "detail" or "message".
    error = body.get("error", body.get("detail", body.get("message")))
    return error.get("message", error) if isinstance(error, Mapping) else error


_ERRORS = ClientErrors(
    failed=PolicyError,
    timeout=PolicyTimeout,
    unavailable=PolicyUnavailable,
    rejected=lambda message, status: PolicyRequestError(message, status=status),
    summarize=_summarize_error,
    timeout_advice="raise timeout_s or lower max_tokens / the number of concurrent episodes",
    unavailable_advice="check that the model server is running and reachable",
    auth_hint="pass the server's API key as api_key=...",
    not_found_hint="wrong base_url, or a model name the server does not serve: see GET /v1/models",
)


def _load_tokenizer(path: str | Path) -> TextTokenizer:
    from hopgym.errors import require

    require("transformers", extra="hf", purpose="a token-level OpenAIPolicy")
    from transformers import AutoTokenizer

    return cast(TextTokenizer, AutoTokenizer.from_pretrained(str(path)))
