"""Reading facts back out of observation text, with patterns built from the generator's own templates.

Any wrapper around the passages (Search-R1 ``Doc i(Title: ...)``, numbered lines, plain text) is fine: the
patterns look for a whole templated sentence whose subject is the exact entity name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from hopgym.envs.hopworld.relations import COMPANY_SUFFIXES, RELATIONS, RIVER_SUFFIX, EntityType

__all__ = ["NAME_PATTERNS", "fact_patterns", "find_object", "search_query"]

_WORD = r"[A-Z][a-z]+"

#: The shape of a name of each type. Name words are joined by exactly one space, so a name never spans lines.
NAME_PATTERNS: Mapping[EntityType, str] = MappingProxyType(
    {
        "person": rf"{_WORD} {_WORD}",
        "city": _WORD,
        "country": _WORD,
        "company": rf"{_WORD} (?:{'|'.join(COMPANY_SUFFIXES)})",
        "river": rf"{_WORD} {RIVER_SUFFIX}",
    }
)


def search_query(relation: str, subject: str) -> str:
    """The query that finds ``subject``'s ``relation`` fact: the exact name plus the relation's keyword."""
    return f"{subject} {RELATIONS[relation].keyword}"


def _literal(text: str) -> str:
    # Case-insensitive, and any run of whitespace matches any other: wrappers reflow and recase prose.
    pieces = [r"\s+" if piece.isspace() else re.escape(piece) for piece in re.split(r"(\s+)", text) if piece]
    return f"(?i:{''.join(pieces)})" if pieces else ""


def _template_regex(template: str, subject_slot: str, subject: str, object_type: EntityType) -> str:
    subject_regex = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in subject.split()) + r"(?!\w)"
    object_regex = rf"(?<!\w)(?P<obj>{NAME_PATTERNS[object_type]})(?!\w)"
    object_slot = "{o}" if subject_slot == "{s}" else "{s}"
    parts = []
    for piece in re.split(r"(\{s\}|\{o\})", template):
        if piece == subject_slot:
            parts.append(subject_regex)
        elif piece == object_slot:
            parts.append(object_regex)
        else:
            parts.append(_literal(piece))
    return "".join(parts)


@lru_cache(maxsize=4096)
def fact_patterns(relation: str, subject: str) -> tuple[re.Pattern[str], ...]:
    """Patterns for every wording of ``subject``'s ``relation`` fact; group ``obj`` captures the object.

    Symmetric relations also match the fact stated from the object's side.
    """
    rel = RELATIONS[relation]
    slots = ("{s}", "{o}") if rel.symmetric else ("{s}",)
    return tuple(
        re.compile(_template_regex(t, slot, subject, rel.object_type))
        for slot in slots
        for t in rel.passage_templates
    )


def find_object(text: str, relation: str, subject: str) -> str | None:
    """The object of ``subject``'s ``relation`` stated in ``text`` (the earliest statement wins), or None."""
    best: re.Match[str] | None = None
    for pattern in fact_patterns(relation, subject):
        match = pattern.search(text)
        if match is not None and (best is None or match.start() < best.start()):
            best = match
    return None if best is None else best.group("obj")
