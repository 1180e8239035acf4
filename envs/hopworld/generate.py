"""Seeded generation of a HopWorld: names, facts, multi-hop questions, look-alike distractors, passages.

Every stage draws from its own ``random.Random`` seeded by ``(seed, stage)``, so a world is a pure function of
its config, and changing one knob (say ``distractors``) leaves what earlier stages made unchanged.

Why every question is solvable with BM25 at k=3: each name is made of stems no other entity uses (a
look-alike changes one stem), each relation's templates, and only those, contain its keyword, and a fact is
stated in a passage titled by its subject. So for the query ``"<subject> <keyword>"`` the passage stating the
fact holds every query token, with the name twice (title and sentence); other passages name the subject at
most once and look-alikes miss a name token, so it ranks first (tests/agents/test_oracle.py checks this).
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Sequence

from hopgym.envs.hopworld.config import HopWorldConfig
from hopgym.envs.hopworld.names import NameForge
from hopgym.envs.hopworld.relations import (
    COMPANY_SUFFIXES,
    ENTITY_TYPES,
    RELATIONS,
    RIVER_SUFFIX,
    EntityType,
    Relation,
    template_words,
)
from hopgym.envs.hopworld.world import Entity, Fact, HopWorld
from hopgym.errors import ConfigError
from hopgym.types import Passage, Task

__all__ = ["generate_world", "name_pool", "question_text"]

logger = logging.getLogger(__name__)

# Random walks tried per question before concluding the world is too small for the request.
_ATTEMPTS_PER_QUESTION = 200

_Objects = dict[tuple[str, str], str]


def _stream(config: HopWorldConfig, stage: str) -> random.Random:
    # str seeds are hashed with SHA-512 by random.seed, so this is stable across processes and platforms.
    return random.Random(f"hopworld/{config.seed}/{stage}")


@functools.lru_cache(maxsize=4)
def name_pool(size: int) -> tuple[str, ...]:
    """The first ``size`` stems of HopWorld's one name pool: the same list in every process and for every
    world seed, so a tokenizer built from it holds every name a pooled world can use (``size`` >= 1)."""
    if size < 1:
        raise ConfigError(f"name_pool size={size!r}: use an integer >= 1")
    from hopgym.retrievers.bm25.simple import STOPWORDS

    forge = NameForge(random.Random("hopworld/name-pool"), banned=template_words() | STOPWORDS)
    return tuple(forge.stem() for _ in range(size))


def generate_world(config: HopWorldConfig | None = None) -> HopWorld:
    """Generate the world ``config`` describes (the default config when None)."""
    config = config or HopWorldConfig()
    from hopgym.retrievers.bm25.simple import STOPWORDS

    pool = name_pool(config.name_pool) if config.name_pool else None
    forge = NameForge(_stream(config, "names"), banned=template_words() | STOPWORDS, pool=pool)
    real, stems = _real_entities(config, forge)
    by_type = _group(real)
    objects = _real_facts(by_type, _stream(config, "facts"))
    questions = _questions(config, real, objects, _stream(config, "questions"))

    real_by_name = {e.name: e for e in real}
    on_chains = [real_by_name[n] for n in dict.fromkeys(name for q in questions for name in q.chain)]
    distractors = _distractors(config, on_chains, stems, forge)
    objects.update(_distractor_facts(by_type, distractors, objects, _stream(config, "distractor-facts")))

    entities = (*real, *distractors)
    facts = tuple(
        Fact(e.name, r.name, objects[(e.name, r.name)])
        for e in entities
        for r in RELATIONS.values()
        if (e.name, r.name) in objects
    )
    passages, passage_of_fact = _passages(config, entities, facts, _stream(config, "passages"))
    tasks = tuple(q.to_task(config, i, passage_of_fact) for i, q in enumerate(questions))
    logger.debug(
        "hopworld seed=%d: %d entities, %d facts, %d passages, %d tasks",
        config.seed,
        len(entities),
        len(facts),
        len(passages),
        len(tasks),
    )
    return HopWorld(config=config, entities=entities, facts=facts, passages=passages, tasks=tasks)


# --- entities -------------------------------------------------------------------------------------------


def _real_entities(config: HopWorldConfig, forge: NameForge) -> tuple[list[Entity], dict[str, list[str]]]:
    rng = _stream(config, "suffixes")
    entities: list[Entity] = []
    stems: dict[str, list[str]] = {}  # name -> the stems it is made of, for making look-alikes
    for etype, count in config.type_counts().items():
        for _ in range(count):
            if etype == "person":
                parts = [forge.stem(), forge.stem()]
                name = " ".join(parts)
            else:
                parts = [forge.stem()]
                name = _with_suffix(etype, parts[0], rng.choice(COMPANY_SUFFIXES))
            stems[name] = parts
            entities.append(Entity(name, etype))
    return entities, stems


def _with_suffix(etype: EntityType, stem: str, company_suffix: str) -> str:
    if etype == "company":
        return f"{stem} {company_suffix}"
    if etype == "river":
        return f"{stem} {RIVER_SUFFIX}"
    return stem


def _group(entities: Sequence[Entity]) -> dict[EntityType, list[str]]:
    by_type: dict[EntityType, list[str]] = {t: [] for t in ENTITY_TYPES}
    for e in entities:
        by_type[e.type].append(e.name)
    return by_type


# --- facts ----------------------------------------------------------------------------------------------


def _real_facts(by_type: dict[EntityType, list[str]], rng: random.Random) -> _Objects:
    people, cities, countries = by_type["person"], by_type["city"], by_type["country"]
    companies, rivers = by_type["company"], by_type["river"]
    objects: _Objects = {}
    # Every country gets one city first (its capital), so capital and located_in always agree.
    shuffled_cities = rng.sample(cities, len(cities))
    for i, city in enumerate(shuffled_cities):
        country = countries[i] if i < len(countries) else rng.choice(countries)
        objects[(city, "located_in")] = country
        if i < len(countries):
            objects[(country, "capital")] = city
    for city in cities:
        objects[(city, "lies_on")] = rng.choice(rivers)
    for river in rivers:
        objects[(river, "source_in")] = rng.choice(countries)
    for person in people:
        objects[(person, "born_in")] = rng.choice(cities)
        objects[(person, "works_for")] = rng.choice(companies)
    _marry(people, objects, rng)
    for company in companies:
        objects[(company, "founded_by")] = rng.choice(people)
        objects[(company, "headquartered_in")] = rng.choice(cities)
    for country, leader in zip(countries, rng.sample(people, len(countries)), strict=True):
        objects[(country, "leader")] = leader
    return objects


def _marry(people: Sequence[str], objects: _Objects, rng: random.Random) -> None:
    shuffled = rng.sample(list(people), len(people))
    for a, b in zip(shuffled[0::2], shuffled[1::2], strict=False):
        objects[(a, "married_to")] = b
        objects[(b, "married_to")] = a


def _distractors(
    config: HopWorldConfig, originals: Sequence[Entity], stems: dict[str, list[str]], forge: NameForge
) -> list[Entity]:
    rng = _stream(config, "distractors")
    made: list[Entity] = []
    for original in originals:
        parts = stems[original.name]
        for _ in range(config.distractors):
            changed = list(parts)
            i = rng.randrange(len(changed))
            changed[i] = forge.variant(parts[i])
            if original.type == "person":
                name = " ".join(changed)
            else:
                # Same suffix as the original, so that only the changed stem tells them apart.
                name = original.name.replace(parts[0], changed[0], 1)
            made.append(Entity(name, original.type, distractor_of=original.name))
    return made


def _distractor_facts(
    by_type: dict[EntityType, list[str]], distractors: Sequence[Entity], real: _Objects, rng: random.Random
) -> _Objects:
    """Facts about look-alikes: the same relations as real entities, consistent with each other."""
    pool = {t: list(names) for t, names in by_type.items()}
    for d in distractors:
        pool[d.type].append(d.name)
    objects: _Objects = {}
    for d in distractors:
        for rel in RELATIONS.values():
            if rel.subject_type != d.type or rel.name in ("married_to", "capital", "leader"):
                continue
            # Only married_to links a type to itself, so the object is never the subject.
            objects[(d.name, rel.name)] = rng.choice(pool[rel.object_type])
    _marry([d.name for d in distractors if d.type == "person"], objects, rng)
    leaders = {obj for (_, rel), obj in real.items() if rel == "leader"}
    free_people = [p for p in pool["person"] if p not in leaders]
    for d in distractors:
        if d.type != "country":
            continue
        own_cities = [s for (s, rel), obj in objects.items() if rel == "located_in" and obj == d.name]
        if own_cities:
            objects[(d.name, "capital")] = rng.choice(own_cities)
        if free_people:
            objects[(d.name, "leader")] = free_people.pop(rng.randrange(len(free_people)))
    return objects


# --- questions ------------------------------------------------------------------------------------------


class _Question:
    def __init__(self, text: str, relations: tuple[str, ...], chain: tuple[str, ...]) -> None:
        self.text = text
        self.relations = relations
        self.chain = chain  # start, every intermediate entity, answer

    def to_task(self, config: HopWorldConfig, index: int, passage_of_fact: dict[Fact, str]) -> Task:
        facts = [Fact(s, r, o) for s, r, o in zip(self.chain, self.relations, self.chain[1:], strict=False)]
        return Task(
            id=f"hw-{config.seed}-q{index}",
            question=self.text,
            golden_answers=(self.chain[-1],),
            metadata={
                "data_source": "hopworld",
                "hopworld": {
                    "start": self.chain[0],
                    "relations": list(self.relations),
                    "hops": len(self.relations),
                },
                "chain": list(self.chain),
                "supporting_passage_ids": [passage_of_fact[f] for f in facts],
            },
        )


def question_text(
    start: str, start_type: EntityType, relations: Sequence[str], wordings: Sequence[int]
) -> str:
    """The question for a relation chain, composed inside out (``wordings[i]`` picks hop i's wording)."""
    phrase = f"the {start}" if start_type == "river" else start
    rels = [RELATIONS[r] for r in relations]
    for rel, w in zip(rels[:-1], wordings, strict=False):
        phrase = rel.noun_phrases[w].format(x=phrase)
    return rels[-1].questions[wordings[len(rels) - 1]].format(x=phrase)


def _walk(
    start: Entity, hops: int, types: dict[str, EntityType], objects: _Objects, rng: random.Random
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    chain = [start.name]
    relations: list[str] = []
    for _ in range(hops):
        here = chain[-1]
        options: list[Relation] = [
            r
            for r in RELATIONS.values()
            if r.subject_type == types[here]
            and (here, r.name) in objects
            and objects[(here, r.name)] not in chain
        ]
        if not options:
            return None
        rel = rng.choice(options)
        relations.append(rel.name)
        chain.append(objects[(here, rel.name)])
    return tuple(relations), tuple(chain)


def _questions(
    config: HopWorldConfig, real: Sequence[Entity], objects: _Objects, rng: random.Random
) -> list[_Question]:
    types = {e.name: e.type for e in real}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    questions: list[_Question] = []
    hop_counts = config.hop_counts
    for i in range(config.num_questions):
        hops = hop_counts[i % len(hop_counts)]
        for _ in range(_ATTEMPTS_PER_QUESTION):
            start = rng.choice(real)
            walked = _walk(start, hops, types, objects, rng)
            if walked is None or (start.name, walked[0]) in seen:
                continue
            relations, chain = walked
            seen.add((start.name, relations))
            wordings = [rng.randrange(config.question_paraphrases) for _ in relations]
            questions.append(
                _Question(question_text(start.name, start.type, relations, wordings), relations, chain)
            )
            break
        else:
            raise ConfigError(
                f"num_questions={config.num_questions} is too many for num_entities={config.num_entities}: "
                f"only {len(questions)} distinct {hops}-hop questions could be found; raise num_entities or "
                "lower num_questions"
            )
    return questions


# --- passages -------------------------------------------------------------------------------------------


def _passages(
    config: HopWorldConfig, entities: Sequence[Entity], facts: Sequence[Fact], rng: random.Random
) -> tuple[tuple[Passage, ...], dict[Fact, str]]:
    facts_of: dict[str, list[Fact]] = {}
    for f in facts:
        facts_of.setdefault(f.subject, []).append(f)
    drafts: list[tuple[str, list[Fact], str]] = []  # title, facts stated, text
    for e in entities:
        own = facts_of.get(e.name, [])
        own = rng.sample(own, len(own))
        for start in range(0, len(own), config.facts_per_passage):
            group = own[start : start + config.facts_per_passage]
            sentences = [
                RELATIONS[f.relation]
                .passage_templates[rng.randrange(config.paraphrases)]
                .format(s=f.subject, o=f.object)
                for f in group
            ]
            drafts.append((e.name, group, " ".join(sentences)))
    # Shuffled so that a passage's position (BM25's tie-break) says nothing about whether it is real.
    rng.shuffle(drafts)
    passages: list[Passage] = []
    passage_of_fact: dict[Fact, str] = {}
    for n, (title, group, text) in enumerate(drafts):
        pid = f"hw-{config.seed}-{n}"
        passages.append(Passage(id=pid, title=title, text=text))
        for f in group:
            passage_of_fact[f] = pid
    return tuple(passages), passage_of_fact
