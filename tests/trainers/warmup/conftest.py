from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> None:
    """One intra-op thread: tiny models on a shared 2-core machine run far faster than with spinning teams."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Any:
    """The tokenizer of the cached tiny test model (built once per machine)."""
    from transformers import AutoTokenizer

    from hopgym.testing.tiny_model import build_tiny_model

    return AutoTokenizer.from_pretrained(str(build_tiny_model()))
