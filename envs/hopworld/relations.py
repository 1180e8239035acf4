"""The HopWorld schema: entity types, relations and every sentence template the generator and oracle share.

Each relation is functional (one object per subject), so a chain of relations has exactly one answer.
Every passage template of a relation contains its ``keyword`` as a whole word, so the query
``"<subject> <keyword>"`` matches the passage that states the fact on both the name and the keyword.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "COMPANY_SUFFIXES",
    "ENTITY_TYPES",
    "MAX_PARAPHRASES",
    "MAX_QUESTION_PARAPHRASES",
    "RELATIONS",
    "RIVER_SUFFIX",
    "EntityType",
    "Relation",
    "template_words",
]

EntityType = Literal["person", "city", "country", "company", "river"]
ENTITY_TYPES: tuple[EntityType, ...] = ("person", "city", "country", "company", "river")

#: The second word of every company name; none of them occurs in a template, so names never match keywords.
COMPANY_SUFFIXES: tuple[str, ...] = ("Group", "Labs", "Holdings", "Systems", "Industries", "Foods", "Motors")
#: The second word of every river name.
RIVER_SUFFIX = "River"


@dataclass(frozen=True)
class Relation:
    """A functional relation ``subject -> object`` and its wordings.

    Passage templates use ``{s}`` and ``{o}``; noun phrases (inner hops of a question) and questions (the
    outermost hop) use ``{x}`` for the subject. The first template of each tuple is the canonical wording.
    """

    name: str
    subject_type: EntityType
    object_type: EntityType
    keyword: str
    passage_templates: tuple[str, ...]
    noun_phrases: tuple[str, ...]
    questions: tuple[str, ...]
    symmetric: bool = False


_RELATION_LIST: tuple[Relation, ...] = (
    Relation(
        name="born_in",
        subject_type="person",
        object_type="city",
        keyword="born",
        passage_templates=(
            "{s} was born in {o}.",
            "{s} was born in the city of {o}.",
            "The city of {o} is where {s} was born.",
        ),
        noun_phrases=("the city where {x} was born", "the birthplace of {x}"),
        questions=("In which city was {x} born?", "Where was {x} born?"),
    ),
    Relation(
        name="works_for",
        subject_type="person",
        object_type="company",
        keyword="works",
        passage_templates=(
            "{s} works for {o}.",
            "{s} works at {o}.",
            "At {o}, {s} works as a manager.",
        ),
        noun_phrases=("the company that employs {x}", "the employer of {x}"),
        questions=("Which company does {x} work for?", "Who is the employer of {x}?"),
    ),
    Relation(
        name="married_to",
        subject_type="person",
        object_type="person",
        keyword="married",
        passage_templates=(
            "{s} is married to {o}.",
            "{s} married {o} years ago.",
            "{s} and {o} are married.",
        ),
        noun_phrases=("the spouse of {x}", "the person married to {x}"),
        questions=("Who is the spouse of {x}?", "Who is {x} married to?"),
        symmetric=True,
    ),
    Relation(
        name="founded_by",
        subject_type="company",
        object_type="person",
        keyword="founded",
        passage_templates=(
            "{s} was founded by {o}.",
            "{o} founded {s}.",
            "The company {s} was founded by {o}.",
        ),
        noun_phrases=("the founder of {x}", "the person who founded {x}"),
        questions=("Who founded {x}?", "Who is the founder of {x}?"),
    ),
    Relation(
        name="headquartered_in",
        subject_type="company",
        object_type="city",
        keyword="headquartered",
        passage_templates=(
            "{s} is headquartered in {o}.",
            "{s} is headquartered in the city of {o}.",
            "The city of {o} is where {s} is headquartered.",
        ),
        noun_phrases=("the city where {x} is headquartered", "the headquarters city of {x}"),
        questions=("In which city is {x} headquartered?", "Where is {x} headquartered?"),
    ),
    Relation(
        name="located_in",
        subject_type="city",
        object_type="country",
        keyword="country",
        passage_templates=(
            "{s} is a city in the country of {o}.",
            "{s} lies in the country of {o}.",
            "{o} is the country where {s} is located.",
        ),
        noun_phrases=("the country where {x} is located", "the country that contains {x}"),
        questions=("In which country is {x}?", "Which country is {x} located in?"),
    ),
    Relation(
        name="capital",
        subject_type="country",
        object_type="city",
        keyword="capital",
        passage_templates=(
            "The capital of {s} is {o}.",
            "{o} is the capital of {s}.",
            "{s} has its capital in {o}.",
        ),
        noun_phrases=("the capital of {x}", "the capital city of {x}"),
        questions=("What is the capital of {x}?", "Which city is the capital of {x}?"),
    ),
    Relation(
        name="leader",
        subject_type="country",
        object_type="person",
        keyword="leader",
        passage_templates=(
            "The leader of {s} is {o}.",
            "{o} is the leader of {s}.",
            "{s} is governed by its leader {o}.",
        ),
        noun_phrases=("the leader of {x}", "the person who leads {x}"),
        questions=("Who is the leader of {x}?", "Who leads {x}?"),
    ),
    Relation(
        name="lies_on",
        subject_type="city",
        object_type="river",
        keyword="banks",
        passage_templates=(
            "{s} lies on the banks of the {o}.",
            "{s} was built on the banks of the {o}.",
            "The banks of the {o} are home to {s}.",
        ),
        noun_phrases=("the river on whose banks {x} lies", "the river that flows past {x}"),
        questions=("On the banks of which river does {x} lie?", "Which river flows past {x}?"),
    ),
    Relation(
        name="source_in",
        subject_type="river",
        object_type="country",
        keyword="source",
        passage_templates=(
            "The {s} has its source in {o}.",
            "The source of the {s} is in {o}.",
            "The {s} rises in {o}, where its source lies.",
        ),
        noun_phrases=("the country where {x} has its source", "the country in which {x} rises"),
        questions=("In which country does {x} have its source?", "Where is the source of {x}?"),
    ),
)

#: Every relation by name, in a fixed order (the generator iterates it, so the order is part of determinism).
RELATIONS: Mapping[str, Relation] = MappingProxyType({r.name: r for r in _RELATION_LIST})
MAX_PARAPHRASES = min(len(r.passage_templates) for r in _RELATION_LIST)
MAX_QUESTION_PARAPHRASES = min(min(len(r.noun_phrases), len(r.questions)) for r in _RELATION_LIST)


def template_words() -> frozenset[str]:
    """Every lowercased word used by a template; generated names must avoid them."""
    words: set[str] = {w.lower() for w in (*COMPANY_SUFFIXES, RIVER_SUFFIX)}
    for r in _RELATION_LIST:
        for text in (*r.passage_templates, *r.noun_phrases, *r.questions):
            cleaned = text.replace("{s}", " ").replace("{o}", " ").replace("{x}", " ")
            words.update("".join(c if c.isalpha() else " " for c in cleaned).lower().split())
    return frozenset(words)
