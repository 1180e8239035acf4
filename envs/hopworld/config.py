"""The knobs of a HopWorld: size, hop counts, distractors, wording variety and the seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

from hopgym.envs.hopworld.relations import MAX_PARAPHRASES, MAX_QUESTION_PARAPHRASES, EntityType
from hopgym.errors import ConfigError

__all__ = ["MAX_FACTS_PER_PASSAGE", "MAX_HOPS", "MIN_ENTITIES", "MIN_HOPS", "MIN_NAME_POOL", "HopWorldConfig"]

MIN_HOPS = 2
MAX_HOPS = 4
MIN_ENTITIES = 40
#: A person has three facts, the most of any entity type, so larger values would change nothing.
MAX_FACTS_PER_PASSAGE = 3
MAX_DISTRACTORS = 3
#: The smallest name pool: a world of MIN_ENTITIES entities needs about this many stems.
MIN_NAME_POOL = 100
#: Questions per entity beyond which questions pile up on the same starts and answers.
MAX_QUESTIONS_PER_ENTITY = 4

# Shares of num_entities per type; people get the remainder. Countries stay numerous enough (>= 8% of the
# world) that a country answer cannot be guessed.
_TYPE_SHARES: dict[EntityType, float] = {"city": 0.20, "country": 0.08, "company": 0.20, "river": 0.12}


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class HopWorldConfig:
    """How to generate a HopWorld. Equal configs generate identical worlds.

    ``hops`` is one hop count or a tuple of them (each 2-4); questions cycle through them evenly.
    ``distractors`` is the number of similar-sounding look-alikes made for every entity that lies on a
    question's chain. ``paraphrases`` is how many passage wordings per relation may be used (1 = canonical
    only), ``question_paraphrases`` the same for question wordings. ``facts_per_passage`` groups that many
    facts about one subject into a passage.
    """

    seed: int = 0
    num_entities: int = 300
    hops: int | tuple[int, ...] = (2, 3)
    num_questions: int = 200
    distractors: int = 1
    paraphrases: int = 2
    question_paraphrases: int = 1
    facts_per_passage: int = 1
    #: 0: every world makes fresh stems. N > 0: stems come from one fixed pool of N stems shared by every world
    #: (see :func:`~hopgym.envs.hopworld.name_pool`); facts are still drawn afresh per world.
    name_pool: int = 0

    def __post_init__(self) -> None:
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError(
                f"seed={self.seed!r} is invalid: it must be an integer >= 0 (it appears in ids)"
            )
        if not _is_int(self.num_entities) or self.num_entities < MIN_ENTITIES:
            raise ConfigError(
                f"num_entities={self.num_entities!r} is too small: a world needs at least {MIN_ENTITIES} "
                f"entities to have several of every type; set num_entities >= {MIN_ENTITIES}"
            )
        hop_values = (self.hops,) if _is_int(self.hops) else self.hops
        if (
            not isinstance(hop_values, (tuple, list))
            or not hop_values
            or not all(_is_int(h) and MIN_HOPS <= h <= MAX_HOPS for h in hop_values)
        ):
            raise ConfigError(
                f"hops={self.hops!r} is invalid: give one hop count or a tuple of them, each between "
                f"{MIN_HOPS} and {MAX_HOPS}, e.g. hops=(2, 3)"
            )
        object.__setattr__(self, "hops", tuple(sorted(set(hop_values))))
        if not _is_int(self.num_questions) or self.num_questions < 1:
            raise ConfigError(f"num_questions={self.num_questions!r} is invalid: it must be an integer >= 1")
        limit = MAX_QUESTIONS_PER_ENTITY * self.num_entities
        if self.num_questions > limit:
            raise ConfigError(
                f"num_questions={self.num_questions} is too many for num_entities={self.num_entities}: "
                f"with more than {MAX_QUESTIONS_PER_ENTITY} questions per entity the questions repeat their "
                f"starts and answers; raise num_entities to at least "
                f"{-(-self.num_questions // MAX_QUESTIONS_PER_ENTITY)} or lower num_questions to {limit}"
            )
        _check_range("distractors", self.distractors, 0, MAX_DISTRACTORS, "look-alikes per chain entity")
        _check_range("paraphrases", self.paraphrases, 1, MAX_PARAPHRASES, "passage wordings per relation")
        _check_range(
            "question_paraphrases",
            self.question_paraphrases,
            1,
            MAX_QUESTION_PARAPHRASES,
            "question wordings per relation",
        )
        _check_range(
            "facts_per_passage", self.facts_per_passage, 1, MAX_FACTS_PER_PASSAGE, "facts per passage"
        )
        if not _is_int(self.name_pool) or self.name_pool < 0 or 0 < self.name_pool < MIN_NAME_POOL:
            raise ConfigError(
                f"name_pool={self.name_pool!r} is invalid: use 0 (fresh stems per world) or a pool of at "
                f"least {MIN_NAME_POOL} stems"
            )

    @property
    def hop_counts(self) -> tuple[int, ...]:
        """The allowed hop counts, sorted."""
        return (self.hops,) if isinstance(self.hops, int) else self.hops

    def type_counts(self) -> dict[EntityType, int]:
        """How many real (non-distractor) entities of each type the world has."""
        counts: dict[EntityType, int] = {
            t: int(self.num_entities * share) for t, share in _TYPE_SHARES.items()
        }
        counts["person"] = self.num_entities - sum(counts.values())
        return counts


def _check_range(name: str, value: object, low: int, high: int, what: str) -> None:
    if not _is_int(value) or not (low <= value <= high):
        raise ConfigError(f"{name}={value!r} is invalid: {what} must be an integer from {low} to {high}")
