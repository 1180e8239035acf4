"""HopWorld: a procedurally generated multi-hop QA world that needs no download.

``generate_world(HopWorldConfig(seed=...))`` returns made-up entities, the facts between them, passages that
state the facts (plus look-alike distractors) and 2-4 hop questions, all determined by the config.
"""

from __future__ import annotations

from hopgym.envs.hopworld.config import HopWorldConfig
from hopgym.envs.hopworld.generate import generate_world, name_pool, question_text
from hopgym.envs.hopworld.reading import NAME_PATTERNS, fact_patterns, find_object, search_query
from hopgym.envs.hopworld.relations import ENTITY_TYPES, RELATIONS, EntityType, Relation
from hopgym.envs.hopworld.world import Entity, Fact, HopWorld

__all__ = [
    "ENTITY_TYPES",
    "NAME_PATTERNS",
    "RELATIONS",
    "Entity",
    "EntityType",
    "Fact",
    "HopWorld",
    "HopWorldConfig",
    "Relation",
    "fact_patterns",
    "find_object",
    "generate_world",
    "name_pool",
    "question_text",
    "search_query",
]
