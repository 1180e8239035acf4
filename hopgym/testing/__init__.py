"""Tools for testing hopgym and its plugins: tiny models, a vLLM server launcher and conformance checks.

``check_retriever`` and ``check_protocol`` are to retriever backends and action protocols what Gymnasium's
``check_env`` is to environments: run them in a plugin's tests. The tiny model and the vLLM launcher live
in :mod:`hopgym.testing.tiny_model` and :mod:`hopgym.testing.vllm_server` (imported from there: they need
the ``transformers``/``vllm`` extras); :mod:`hopgym.testing.openai_server` is a small OpenAI-API-shaped server
(stdlib only) that cuts stop strings as the OpenAI API does, for testing agents against non-vLLM servers.
"""

from hopgym.testing.protocol_check import (
    COMMON_FRAGMENTS,
    ProtocolCheckError,
    check_action,
    check_parse,
    check_protocol,
)
from hopgym.testing.retriever_check import (
    RetrieverCheckError,
    acheck_retriever,
    check_retriever,
    conformance_passages,
)

__all__ = [
    "COMMON_FRAGMENTS",
    "ProtocolCheckError",
    "RetrieverCheckError",
    "acheck_retriever",
    "check_action",
    "check_parse",
    "check_protocol",
    "check_retriever",
    "conformance_passages",
]
