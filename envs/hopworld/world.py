"""The immutable result of HopWorld generation: entities, facts, passages and tasks."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from hopgym.envs.hopworld.config import HopWorldConfig
from hopgym.envs.hopworld.relations import EntityType
from hopgym.types import Passage, Task

if TYPE_CHECKING:
    from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever

__all__ = ["Entity", "Fact", "HopWorld"]


@dataclass(frozen=True)
class Entity:
    """A named thing. ``distractor_of`` names the real entity a look-alike imitates (None for real ones)."""

    name: str
    type: EntityType
    distractor_of: str | None = None


@dataclass(frozen=True)
class Fact:
    """``subject --relation--> object``, by entity name."""

    subject: str
    relation: str
    object: str


@dataclass(frozen=True)
class HopWorld:
    """A generated world. Build it with :func:`hopgym.envs.hopworld.generate_world`."""

    config: HopWorldConfig
    entities: tuple[Entity, ...]
    facts: tuple[Fact, ...]
    passages: tuple[Passage, ...]
    tasks: tuple[Task, ...]

    @cached_property
    def _entities_by_name(self) -> dict[str, Entity]:
        return {e.name: e for e in self.entities}

    @cached_property
    def _objects(self) -> dict[tuple[str, str], str]:
        return {(f.subject, f.relation): f.object for f in self.facts}

    def entity(self, name: str) -> Entity:
        """The entity called ``name`` (KeyError if there is none)."""
        return self._entities_by_name[name]

    def object_of(self, subject: str, relation: str) -> str | None:
        """The object of ``subject``'s ``relation`` fact, or None when the world states no such fact."""
        return self._objects.get((subject, relation))

    def corpus_records(self) -> list[dict[str, str]]:
        """The passages in Search-R1's corpus format: ``{"id", "contents"}`` with the title on line one."""
        return [{"id": p.id, "contents": p.contents} for p in self.passages]

    def retriever(self, *, k1: float = 0.9, b: float = 0.4) -> InMemoryBM25Retriever:
        """A fresh in-memory BM25 retriever over this world's passages."""
        from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever

        return InMemoryBM25Retriever(self.passages, k1=k1, b=b)
