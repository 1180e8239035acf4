"""The vLLM worker side of :meth:`VLLMPolicy.load_weights <hopgym.agents.vllm_policy.VLLMPolicy.load_weights>`.

vLLM loads this class into its worker processes (``worker_extension_cls``): its method runs there through
``collective_rpc``. The weights travel as a safetensors snapshot in a directory (tensors passed as RPC
arguments arrive as plain lists: vLLM decodes untyped utility arguments without their tensor type) and are
loaded with the worker's own ``reload_weights``, which loads checkpoint-named tensors in place and re-runs each
layer's post-load processing. That processing matters on CPU, where linear layers keep prepacked oneDNN
copies of their weights: a plain ``model.load_weights`` would leave the packed copies stale.

vLLM 0.32's layer-wise reload loads nothing into a tied ``lm_head`` (the checkpoint has no ``lm_head.*`` when
the embeddings are tied) and puts its old kernel tensors back, so the head would keep computing logits with
the old embedding; :meth:`WeightSyncWorker.hopgym_reload_weights` re-runs the head's processing on the
embedding it shares.

This module is imported inside vLLM's worker: it imports nothing heavy at module level.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EXTENSION", "RPC_METHOD", "WeightSyncWorker"]

#: The ``worker_extension_cls`` value that gives a vLLM engine's workers this extension.
EXTENSION = "hopgym.agents.vllm_weight_sync.WeightSyncWorker"
#: The ``collective_rpc`` method name.
RPC_METHOD = "hopgym_reload_weights"


class WeightSyncWorker:
    """Mixed into vLLM's worker class (``self`` is the worker: ``reload_weights``, ``model_runner``, ...)."""

    reload_weights: Any
    model_runner: Any
    model_config: Any

    def hopgym_reload_weights(self, path: str) -> int:
        """Load the safetensors files under ``path`` (checkpoint names) in place; returns the tensor count."""
        from pathlib import Path

        from safetensors import safe_open

        count = 0
        for file in sorted(Path(path).glob("*.safetensors")):
            with safe_open(str(file), framework="pt") as handle:
                count += len(list(handle.keys()))
        self.reload_weights(weights_path=path, is_checkpoint_format=True)
        model = self.model_runner.get_model()
        head = getattr(model, "lm_head", None)
        config = getattr(self.model_config, "hf_text_config", None) or getattr(
            self.model_config, "hf_config", None
        )
        if head is not None and getattr(config, "tie_word_embeddings", False):
            method = getattr(head, "quant_method", None)
            if method is not None and hasattr(method, "process_weights_after_loading"):
                method.process_weights_after_loading(head)
        return count
