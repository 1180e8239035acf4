"""HopWorld generation: determinism, names, facts, distractors and passages."""

from __future__ import annotations

import collections
import hashlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hopgym.envs.hopworld import RELATIONS, HopWorld, HopWorldConfig, generate_world, name_pool
from hopgym.envs.hopworld.relations import COMPANY_SUFFIXES, RIVER_SUFFIX, template_words
from hopgym.errors import ConfigError
from hopgym.retrievers.base import Retriever
from hopgym.retrievers.bm25.simple import STOPWORDS, tokenize

REPO = Path(__file__).resolve().parents[2]


def _digest(world: HopWorld) -> str:
    payload = {
        "passages": [p.to_dict() for p in world.passages],
        "tasks": [t.to_dict() for t in world.tasks],
        "facts": [(f.subject, f.relation, f.object) for f in world.facts],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@pytest.fixture(scope="module")
def world() -> HopWorld:
    return generate_world(HopWorldConfig(seed=7, distractors=2, paraphrases=3, facts_per_passage=1))


def _levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def test_same_config_same_world_and_other_seed_differs() -> None:
    config = HopWorldConfig(seed=11, num_questions=50)
    first, second = generate_world(config), generate_world(config)
    assert first == second
    assert _digest(first) == _digest(second)
    other = generate_world(HopWorldConfig(seed=12, num_questions=50))
    assert {p.text for p in other.passages} != {p.text for p in first.passages}
    assert [t.question for t in other.tasks] != [t.question for t in first.tasks]


def test_world_does_not_depend_on_hash_randomisation() -> None:
    code = (
        "import hashlib, json\n"
        "from hopgym.envs.hopworld import HopWorldConfig, generate_world\n"
        "w = generate_world(HopWorldConfig(seed=5, num_questions=40))\n"
        "print(hashlib.sha256(json.dumps([[p.id, p.title, p.text] for p in w.passages]"
        " + [t.to_dict() for t in w.tasks], sort_keys=True).encode()).hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_global_random_state_is_untouched() -> None:
    import random

    random.seed(123)
    expected = random.random()
    random.seed(123)
    generate_world(HopWorldConfig(num_questions=20))
    assert random.random() == expected


def test_sizes_of_default_world() -> None:
    world = generate_world(HopWorldConfig())
    assert 1000 <= len(world.passages) <= 2000
    assert len(world.tasks) == 200
    assert sum(e.distractor_of is None for e in world.entities) == 300


def test_names_are_unique_title_case_and_not_template_words(world: HopWorld) -> None:
    names = [e.name for e in world.entities]
    assert len(names) == len(set(names))
    banned = template_words() | STOPWORDS
    word_re = re.compile(r"^[A-Z][a-z]+$")
    for e in world.entities:
        words = e.name.split()
        assert all(word_re.match(w) for w in words), e.name
        if e.type == "person":
            assert len(words) == 2
        elif e.type == "company":
            assert len(words) == 2 and words[1] in COMPANY_SUFFIXES
        elif e.type == "river":
            assert len(words) == 2 and words[1] == RIVER_SUFFIX
        else:
            assert len(words) == 1
        stems = words if e.type == "person" else words[:1]
        assert not any(s.lower() in banned for s in stems), e.name


def test_real_entities_share_no_name_stem(world: HopWorld) -> None:
    # Every real stem belongs to one entity only: that is what makes a name query unambiguous.
    owners: dict[str, set[str]] = collections.defaultdict(set)
    for e in world.entities:
        if e.distractor_of is None:
            for stem in e.name.split()[: 2 if e.type == "person" else 1]:
                owners[stem].add(e.name)
    assert all(len(names) == 1 for names in owners.values())


def test_distractors_sound_alike_but_differ_by_one_token(world: HopWorld) -> None:
    distractors = [e for e in world.entities if e.distractor_of is not None]
    on_chains = {name for t in world.tasks for name in t.metadata["chain"]}
    assert len(distractors) == 2 * len(on_chains)
    for d in distractors:
        assert d.distractor_of is not None
        original = world.entity(d.distractor_of)
        assert original.distractor_of is None and original.type == d.type
        pairs = list(zip(d.name.split(), original.name.split(), strict=True))
        changed = [(a, b) for a, b in pairs if a != b]
        assert len(changed) == 1, (d.name, original.name)
        assert 1 <= _levenshtein(*changed[0]) <= 2, (d.name, original.name)


def test_distractors_have_the_same_relations_as_their_originals(world: HopWorld) -> None:
    titles = collections.Counter(p.title for p in world.passages)
    for d in (e for e in world.entities if e.distractor_of is not None):
        assert titles[d.name] >= 1, f"no passage about distractor {d.name}"
        for rel in RELATIONS.values():
            if rel.subject_type == d.type and rel.name not in ("married_to", "capital", "leader"):
                assert world.object_of(d.name, rel.name) is not None, (d.name, rel.name)


def test_real_facts_are_total_and_consistent(world: HopWorld) -> None:
    for e in world.entities:
        for rel in RELATIONS.values():
            if rel.subject_type != e.type:
                continue
            obj = world.object_of(e.name, rel.name)
            if e.distractor_of is None and rel.name != "married_to":
                assert obj is not None, f"real {e.type} {e.name} lacks {rel.name}"
            if obj is None:
                continue
            assert world.entity(obj).type == rel.object_type
            if e.distractor_of is None:
                assert world.entity(obj).distractor_of is None, "real facts point at real entities only"
            if rel.symmetric:
                assert world.object_of(obj, rel.name) == e.name
            if rel.name == "capital":
                assert world.object_of(obj, "located_in") == e.name
    leaders = [f.object for f in world.facts if f.relation == "leader"]
    assert len(leaders) == len(set(leaders))


def test_passages_ids_titles_and_fact_grouping() -> None:
    for per_passage in (1, 2, 3):
        world = generate_world(HopWorldConfig(seed=3, num_questions=60, facts_per_passage=per_passage))
        ids = [p.id for p in world.passages]
        assert ids == [f"hw-3-{n}" for n in range(len(ids))]
        names = {e.name for e in world.entities}
        facts_per_subject = collections.Counter(f.subject for f in world.facts)
        passages_per_title = collections.Counter(p.title for p in world.passages)
        assert set(passages_per_title) <= names
        for subject, n_facts in facts_per_subject.items():
            assert passages_per_title[subject] == math.ceil(n_facts / per_passage)
        assert sum(p.text.count(".") for p in world.passages) == len(world.facts)


def test_every_fact_is_stated_in_some_passage_of_its_subject(world: HopWorld) -> None:
    texts_by_title: dict[str, list[str]] = collections.defaultdict(list)
    for p in world.passages:
        texts_by_title[p.title].append(p.text)
    for f in world.facts:
        assert any(f.subject in t and f.object in t for t in texts_by_title[f.subject]), f


@pytest.mark.parametrize("paraphrases", [1, 3])
def test_paraphrases_limit_the_wordings(paraphrases: int) -> None:
    world = generate_world(HopWorldConfig(seed=2, num_questions=80, paraphrases=paraphrases))
    used: dict[str, set[int]] = collections.defaultdict(set)
    for f in world.facts:
        text = next(p.text for p in world.passages if p.title == f.subject and f.object in p.text)
        templates = RELATIONS[f.relation].passage_templates
        matches = [i for i, t in enumerate(templates) if t.format(s=f.subject, o=f.object) in text]
        assert matches, (f, text)
        used[f.relation].add(matches[-1])  # later templates extend earlier ones, so take the longest
    if paraphrases == 1:
        assert all(u == {0} for u in used.values())
    else:
        assert all(u == {0, 1, 2} for u in used.values())


def test_each_relation_keyword_is_in_all_its_templates_and_no_other() -> None:
    for rel in RELATIONS.values():
        for other in RELATIONS.values():
            for template in other.passage_templates:
                tokens = tokenize(template.replace("{s}", " ").replace("{o}", " "))
                assert (rel.keyword in tokens) == (other is rel), (rel.name, template)


def test_corpus_records_and_retriever(world: HopWorld) -> None:
    records = world.corpus_records()
    assert records[0] == {
        "id": world.passages[0].id,
        "contents": f'"{world.passages[0].title}"\n{world.passages[0].text}',
    }
    assert isinstance(world.retriever(), Retriever)


def test_changing_distractors_keeps_the_questions() -> None:
    base = generate_world(HopWorldConfig(seed=4, num_questions=50, distractors=0))
    more = generate_world(HopWorldConfig(seed=4, num_questions=50, distractors=3))
    assert [(t.question, t.golden_answers) for t in base.tasks] == [
        (t.question, t.golden_answers) for t in more.tasks
    ]
    assert len(more.passages) > len(base.passages)


def _stems(world: HopWorld) -> set[str]:
    return {stem for e in world.entities for stem in e.name.split()[: 2 if e.type == "person" else 1]}


def test_a_name_pool_is_fixed_and_its_prefixes_are_smaller_pools() -> None:
    pool = name_pool(800)
    assert len(pool) == len(set(pool)) == 800
    assert name_pool(300) == pool[:300]
    banned = template_words() | STOPWORDS
    assert all(re.fullmatch(r"[A-Z][a-z]{3,}", s) and s.lower() not in banned for s in pool)
    # The same list in a fresh process (no dependence on hash randomisation or import order).
    code = "from hopgym.envs.hopworld import name_pool; print(','.join(name_pool(800)))"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert tuple(out.stdout.strip().split(",")) == pool


def test_pooled_worlds_draw_every_stem_from_the_pool_and_still_differ_in_their_facts() -> None:
    pool = set(name_pool(1500))
    a = generate_world(HopWorldConfig(seed=1, num_entities=300, num_questions=100, name_pool=1500))
    b = generate_world(HopWorldConfig(seed=2, num_entities=300, num_questions=100, name_pool=1500))
    assert _stems(a) <= pool and _stems(b) <= pool
    # Every entity still has a name of its own, real stems still belong to one real entity each.
    assert len({e.name for e in a.entities}) == len(a.entities)
    real = [s for e in a.entities if e.distractor_of is None for s in e.name.split()[:2] if s in pool]
    assert len(real) == len(set(real))
    # Look-alikes keep all but one word of their original.
    for d in (e for e in a.entities if e.distractor_of is not None):
        assert d.distractor_of is not None
        pairs = zip(d.name.split(), d.distractor_of.split(), strict=True)
        assert sum(x != y for x, y in pairs) == 1
    # Worlds share stems but not facts: the same stem plays other parts in another world.
    shared = _stems(a) & _stems(b)
    assert len(shared) > 100
    facts_a = {(f.subject, f.relation, f.object) for f in a.facts}
    facts_b = {(f.subject, f.relation, f.object) for f in b.facts}
    assert len(facts_a & facts_b) < 0.01 * len(facts_a)
    # Same config, same world.
    again = generate_world(HopWorldConfig(seed=1, num_entities=300, num_questions=100, name_pool=1500))
    assert _digest(again) == _digest(a)


def test_a_pool_too_small_for_the_world_names_the_fix() -> None:
    with pytest.raises(ConfigError, match="raise name_pool or lower num_entities"):
        generate_world(HopWorldConfig(seed=1, num_entities=600, num_questions=100, name_pool=200))
