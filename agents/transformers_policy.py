"""A token-level policy on a transformers causal LM, batching the requests of concurrent episodes.

Episodes call :meth:`TransformersPolicy.generate` independently; a background task collects the pending
requests (up to ``max_batch_size``, waiting at most ``max_wait_ms`` for more), left-pads them and decodes them
together in a worker thread with a KV cache. The decode loop is our own rather than ``model.generate`` so that
every row keeps its own sampling settings, seed (a ``torch.Generator`` per row), token budget and stop strings.

Across turns an episode's keys and values are kept (keyed by its :class:`Context`, dropped when the context
is garbage-collected or the weights change), so a turn only runs the model over the tokens added since the
last one (the observation), as vLLM's prefix cache does; ``kv_reuse=False`` turns this off.

Semantics (matching vLLM's): ``token_ids`` are exactly the sampled ids, ending with the eos token when the model
emitted it; ``logprobs`` are the log-probabilities of those ids under the model's raw distribution (before
temperature/top-p), so a forward pass over the final sequence reproduces them; ``text`` is the decoded ids
with special tokens skipped. A row stops after the token that completes its first stop string, so the text
ends with the stop string, plus whatever rest of that last token follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hopgym.agents.policy import Context, FinishReason, Generation, SamplingParams
from hopgym.agents.prompt_encoding import PromptEncoder, PromptEncoding
from hopgym.errors import ConfigError, require

__all__ = ["TransformersPolicy"]

logger = logging.getLogger(__name__)


@dataclass
class _Request:
    prompt_ids: list[int]
    params: SamplingParams
    future: asyncio.Future[Generation]
    arrived: float = field(default_factory=time.monotonic)
    #: The episode's key in the KV store (None: no reuse).
    cache_key: int | None = None


@dataclass(frozen=True)
class _Cached:
    """An episode's keys/values after its last turn: ``ids`` is the prefix they cover, ``layers`` holds one
    ``(keys, values)`` pair per layer, each ``(heads, len(ids), head_dim)``."""

    ids: tuple[int, ...]
    layers: tuple[tuple[Any, Any], ...]


@dataclass
class _Row:
    request: _Request
    generator: Any
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish: FinishReason | None = None
    stop_reason: str | None = None


class TransformersPolicy(PromptEncoding):
    """Token-level policy backed by ``AutoModelForCausalLM`` (CPU or GPU).

    ``dtype`` is the compute dtype (``"float32"`` default; the tiny model's bfloat16 weights upcast exactly).
    ``chat_template=True`` makes the first prompt the chat template applied to the episode's messages; the
    default encodes the protocol's completion prompt (:mod:`hopgym.agents.prompt_encoding`, the same encoding
    as every token-level backend). ``torch_threads`` sets
    torch's (process-wide) intra-op threads: 1 is much faster for tiny models on a busy CPU, where spinning
    OpenMP threads contend (measured here: 60x slower decode steps with 2 threads under load).
    """

    token_level = True

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        max_batch_size: int = 16,
        max_wait_ms: float = 5.0,
        chat_template: bool = False,
        torch_threads: int | None = None,
        kv_reuse: bool = True,
    ) -> None:
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size={max_batch_size}: use >= 1")
        if max_wait_ms < 0:
            raise ConfigError(f"max_wait_ms={max_wait_ms}: use >= 0 milliseconds")
        torch = require("torch", extra="hf", purpose="TransformersPolicy")
        require("transformers", extra="hf", purpose="TransformersPolicy")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not hasattr(torch, dtype):
            raise ConfigError(f"dtype={dtype!r} is not a torch dtype; use 'float32', 'bfloat16' or 'float16'")
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)  # type: ignore[attr-defined]
        # transformers' stubs are partial (untyped eval, device-typed to()); treat tokenizer and model as Any.
        tokenizers: Any = AutoTokenizer
        tokenizer: Any = tokenizers.from_pretrained(str(model_path))
        loader: Any = AutoModelForCausalLM
        model: Any = loader.from_pretrained(str(model_path), dtype=getattr(torch, dtype)).to(device).eval()
        self._setup(
            model,
            tokenizer,
            name=f"transformers:{Path(model_path).name}",
            device=device,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            chat_template=chat_template,
            source=str(model_path),
            kv_reuse=kv_reuse,
        )

    @classmethod
    def from_model(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        max_batch_size: int = 16,
        max_wait_ms: float = 5.0,
        chat_template: bool = False,
        name: str = "transformers:in-memory",
        kv_reuse: bool = True,
    ) -> TransformersPolicy:
        """A policy that samples from ``model`` itself (no copy): a trainer's rollouts then always see the
        current weights, so :meth:`load_weights` has nothing to do. Generation runs under
        ``torch.inference_mode`` on the model's device; do not step the optimizer while a run is generating."""
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size={max_batch_size}: use >= 1")
        if max_wait_ms < 0:
            raise ConfigError(f"max_wait_ms={max_wait_ms}: use >= 0 milliseconds")
        require("torch", extra="hf", purpose="TransformersPolicy")
        policy = cls.__new__(cls)
        policy._setup(
            model,
            tokenizer,
            name=name,
            device=str(next(model.parameters()).device),
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            chat_template=chat_template,
            source=name,
            kv_reuse=kv_reuse,
        )
        return policy

    def _setup(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        device: str,
        max_batch_size: int,
        max_wait_ms: float,
        chat_template: bool,
        source: str,
        kv_reuse: bool = True,
    ) -> None:
        import torch

        self._torch: Any = torch
        self.name = name
        self.tokenizer: Any = tokenizer
        self.model: Any = model
        self.device = device
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.prompts: PromptEncoder | None = PromptEncoder(
            self.tokenizer, chat_template=chat_template, source=source
        )
        eos = self.tokenizer.eos_token_id
        self._eos_ids: frozenset[int] = frozenset([eos] if isinstance(eos, int) else (eos or []))
        self._pad_id: int = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._queue: asyncio.Queue[_Request] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0
        self.batched_requests = 0
        self.kv_reuse = kv_reuse
        self._kv: dict[int, _Cached] = {}
        #: Prompt tokens run through the model, and those whose keys/values were reused instead.
        self.prefill_tokens = 0
        self.reused_tokens = 0

    # -- TokenPolicy API -----------------------------------------------------------------------------

    async def generate(self, context: Context, params: SamplingParams) -> Generation:
        if context.token_ids is None:
            raise ConfigError(
                "TransformersPolicy is token-level: the context needs token_ids (encode_prompt)"
            )
        if not context.token_ids:
            raise ConfigError("TransformersPolicy cannot continue an empty token sequence")
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(limit, int):
            room = limit - len(context.token_ids)
            if room < 1:
                raise ConfigError(
                    f"the context has {len(context.token_ids)} tokens, the model's limit is {limit}: "
                    "cap episodes with max_episode_tokens below the model's context length"
                )
            if params.max_tokens > room:
                params = dataclasses.replace(params, max_tokens=room)
        queue = self._ensure_worker()
        future: asyncio.Future[Generation] = asyncio.get_running_loop().create_future()
        key = None
        if self.kv_reuse:
            key = id(context)
            if key not in self._kv:
                # The entry dies with the episode's context (the id may then be reused by a new context).
                weakref.finalize(context, self._kv.pop, key, None)
        await queue.put(_Request(list(context.token_ids), params, future, cache_key=key))
        return await future

    def clear_kv_cache(self) -> None:
        """Forget every episode's keys/values (call it when the model's weights change mid-episode)."""
        self._kv.clear()

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._queue is not None:
            while not self._queue.empty():
                request = self._queue.get_nowait()
                if not request.future.done():
                    request.future.set_exception(RuntimeError("TransformersPolicy was closed"))
        self._queue = None

    def load_weights(self, weights: Iterable[tuple[str, Any]]) -> None:
        """Copy ``(name, tensor)`` pairs into the model (the :class:`~hopgym.agents.policy.WeightSync`
        contract). A policy made by :meth:`from_model` from the training model shares its parameters: passing
        that model's own ``named_parameters()`` then copies nothing."""
        params = dict(self.model.named_parameters())
        self.clear_kv_cache()
        with self._torch.no_grad():
            for name, tensor in weights:
                target = params.get(name)
                if target is None:
                    raise ConfigError(f"load_weights: the policy's model has no parameter {name!r}")
                if target is not tensor:
                    target.copy_(tensor.to(device=target.device, dtype=target.dtype))

    # -- batching -------------------------------------------------------------------------------

    def _ensure_worker(self) -> asyncio.Queue[_Request]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop or self._worker is None or self._worker.done():
            # A new event loop (e.g. another asyncio.run) needs its own queue and worker.
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._serve(self._queue))
        return self._queue

    async def _serve(self, queue: asyncio.Queue[_Request]) -> None:
        while True:
            batch = [await queue.get()]
            deadline = time.monotonic() + self.max_wait_s
            while len(batch) < self.max_batch_size:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            # Sampling is per row, so requests with different settings share a batch.
            batch = [r for r in batch if not r.future.done()]
            if not batch:
                continue
            self.batches += 1
            self.batched_requests += len(batch)
            try:
                generations = await asyncio.to_thread(self._generate_batch, batch)
            except Exception as exc:
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            for request, generation in zip(batch, generations, strict=True):
                if not request.future.done():
                    request.future.set_result(generation)

    def _generate_batch(self, requests: list[_Request]) -> list[Generation]:
        torch = self._torch
        rows = []
        for request in requests:
            generator = None
            if request.params.seed is not None and request.params.temperature > 0:
                generator = torch.Generator(device=self.device).manual_seed(request.params.seed)
            rows.append(_Row(request, generator))
        cached = [self._reusable(request) for request in requests]
        n_rows = len(rows)
        fresh = [
            request.prompt_ids[len(c.ids) if c else 0 :] for request, c in zip(requests, cached, strict=True)
        ]
        past_len = max((len(c.ids) for c in cached if c is not None), default=0)
        width = max(len(f) for f in fresh)
        self.prefill_tokens += sum(len(f) for f in fresh)
        self.reused_tokens += sum(len(c.ids) for c in cached if c is not None)
        # Layout of every row: [cached keys/values, right-aligned in past_len | new tokens, right-aligned in
        # width | one column per decode step]; padding is masked out, positions are each row's own.
        input_ids = torch.full((n_rows, width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((n_rows, past_len + width), dtype=torch.long)
        positions = torch.zeros((n_rows, width), dtype=torch.long)
        for i, (tokens, c) in enumerate(zip(fresh, cached, strict=True)):
            before = len(c.ids) if c is not None else 0
            input_ids[i, width - len(tokens) :] = torch.tensor(tokens, dtype=torch.long)
            attention[i, past_len - before : past_len] = 1
            attention[i, past_len + width - len(tokens) :] = 1
            positions[i, width - len(tokens) :] = torch.arange(before, before + len(tokens))
        past = self._stack_past(cached, past_len) if past_len else None
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        positions = positions.to(self.device)
        budget = max(r.params.max_tokens for r in requests)
        with torch.inference_mode():
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention,
                position_ids=positions,
                past_key_values=past,
                use_cache=True,
            )
            past, logits = out.past_key_values, out.logits[:, -1, :]
            last_pos = positions[:, -1]
            for _ in range(budget):
                logits = logits.float()
                logp = torch.log_softmax(logits, dim=-1)
                active = [i for i, row in enumerate(rows) if row.finish is None]
                tokens = self._sample_rows(logits, rows, active)
                chosen = logp[torch.arange(len(rows)), tokens].tolist()
                next_ids = [self._pad_id] * len(rows)
                for i in active:
                    row, token = rows[i], int(tokens[i])
                    next_ids[i] = token
                    row.ids.append(token)
                    row.logprobs.append(chosen[i])
                    self._check_stop(row, token)
                if all(row.finish is not None for row in rows):
                    break
                step = torch.tensor(next_ids, dtype=torch.long, device=self.device).unsqueeze(-1)
                attention = torch.cat([attention, torch.ones_like(step)], dim=-1)
                last_pos = last_pos + 1
                out = self.model(
                    input_ids=step,
                    attention_mask=attention,
                    position_ids=last_pos.unsqueeze(-1),
                    past_key_values=past,
                    use_cache=True,
                )
                past, logits = out.past_key_values, out.logits[:, -1, :]
            if self.kv_reuse:
                self._store(requests, rows, cached, past, attention, past_len, width)
        return [
            Generation(
                text=self.decode(row.ids),
                finish_reason=row.finish or "length",
                token_ids=tuple(row.ids),
                logprobs=tuple(row.logprobs),
                stop_reason=row.stop_reason,
            )
            for row in rows
        ]

    def _reusable(self, request: _Request) -> _Cached | None:
        """The request's cached keys/values when they cover a proper prefix of its tokens."""
        if request.cache_key is None:
            return None
        entry = self._kv.get(request.cache_key)
        if entry is None or len(entry.ids) >= len(request.prompt_ids):
            return None
        if tuple(request.prompt_ids[: len(entry.ids)]) != entry.ids:
            return None
        return entry

    def _stack_past(self, cached: list[_Cached | None], past_len: int) -> Any:
        """A ``DynamicCache`` holding each row's cached keys/values right-aligned in ``past_len`` columns."""
        from transformers import DynamicCache

        torch = self._torch
        template = next(c for c in cached if c is not None).layers
        layers = []
        for layer, (k0, _) in enumerate(template):
            heads, _, dim = k0.shape
            keys = torch.zeros((len(cached), heads, past_len, dim), dtype=k0.dtype, device=k0.device)
            values = torch.zeros_like(keys)
            for i, c in enumerate(cached):
                if c is not None:
                    k, v = c.layers[layer]
                    keys[i, :, past_len - k.shape[1] :] = k
                    values[i, :, past_len - v.shape[1] :] = v
            layers.append((keys, values))
        return DynamicCache(ddp_cache_data=layers)

    def _store(
        self,
        requests: list[_Request],
        rows: list[_Row],
        cached: list[_Cached | None],
        past: Any,
        attention: Any,
        past_len: int,
        width: int,
    ) -> None:
        """Keep each row's keys/values of its prompt and all but its last generated token (the last one has
        not been run through the model yet): the next turn starts from there."""
        torch = self._torch
        layers = [(layer.keys, layer.values) for layer in past.layers]
        for i, (request, row) in enumerate(zip(requests, rows, strict=True)):
            if request.cache_key is None or not row.ids:
                continue
            fed = len(row.ids) - 1
            valid = attention[i, : past_len + width].nonzero().squeeze(-1)
            decoded = torch.arange(past_len + width, past_len + width + fed, device=valid.device)
            index = torch.cat([valid, decoded])
            ids = (*request.prompt_ids, *row.ids[:fed])
            if index.numel() != len(ids):  # cannot happen; never store a cache that does not match its ids
                continue
            self._kv[request.cache_key] = _Cached(
                ids, tuple((k[i][:, index].clone(), v[i][:, index].clone()) for k, v in layers)
            )

    def _sample_rows(self, logits: Any, rows: list[_Row], active: list[int]) -> Any:
        """One token per row, sampled for the whole batch at once (inverse CDF), greedy where temperature is 0.

        Each active row draws exactly one uniform per token from its own generator (or torch's global RNG),
        so a seeded row samples the same tokens alone or batched with any others.
        """
        torch = self._torch
        params = [row.request.params for row in rows]
        greedy = torch.argmax(logits, dim=-1)
        temps = torch.tensor([p.temperature or 1.0 for p in params], dtype=logits.dtype, device=logits.device)
        probs = torch.softmax(logits / temps.unsqueeze(-1), dim=-1)
        top_p = [p.top_p for p in params]
        order = None
        if any(t < 1.0 for t in top_p):
            # Keep each row's smallest prefix (by probability) whose mass reaches its top_p (the first stays).
            probs, order = torch.sort(probs, dim=-1, descending=True)
            limit = torch.tensor(top_p, dtype=probs.dtype, device=probs.device).unsqueeze(-1)
            probs = torch.where((probs.cumsum(-1) - probs) < limit, probs, 0.0)
        cdf = probs.cumsum(-1)
        uniform = torch.zeros(len(rows), dtype=cdf.dtype)
        for i in active:
            if params[i].temperature > 0:
                uniform[i] = torch.rand((), generator=rows[i].generator)
        target = (uniform.to(cdf.device) * cdf[:, -1]).unsqueeze(-1)
        picked = torch.searchsorted(cdf, target, right=True).clamp(max=cdf.size(-1) - 1).squeeze(-1)
        if order is not None:
            picked = order.gather(-1, picked.unsqueeze(-1)).squeeze(-1)
        zero_temp = torch.tensor([p.temperature == 0 for p in params], device=logits.device)
        return torch.where(zero_temp, greedy, picked).tolist()

    def _check_stop(self, row: _Row, token: int) -> None:
        params = row.request.params
        if token in self._eos_ids:
            row.finish = "stop"
            return
        if params.stop:
            text = self.decode(row.ids)
            hits = [(text.find(s) + len(s), s) for s in params.stop if s in text]
            if hits:
                row.finish, row.stop_reason = "stop", min(hits)[1]
                return
        if len(row.ids) >= params.max_tokens:
            row.finish = "length"
