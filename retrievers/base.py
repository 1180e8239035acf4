"""The one retriever contract every backend implements: async, batched, closable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from hopgym.types import Passage

__all__ = ["Retriever"]


@runtime_checkable
class Retriever(Protocol):
    """Batched async search.

    ``search`` returns one list per query, in query order, each with at most ``k`` passages ranked best
    first. An empty or whitespace-only query returns an empty list rather than raising. Backends never block
    the event loop: CPU-bound work runs in a worker thread or process. ``aclose`` is idempotent.
    """

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]: ...

    async def aclose(self) -> None: ...
