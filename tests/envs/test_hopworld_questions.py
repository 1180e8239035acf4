"""HopWorld questions: composition, metadata, and that answers cannot be guessed from the question."""

from __future__ import annotations

import collections
import json
import re

import pytest

from hopgym.envs.hopworld import (
    RELATIONS,
    EntityType,
    HopWorld,
    HopWorldConfig,
    generate_world,
    question_text,
)


@pytest.fixture(scope="module", params=[0, 1, 2])
def world(request: pytest.FixtureRequest) -> HopWorld:
    return generate_world(
        HopWorldConfig(seed=request.param, hops=(2, 3, 4), num_questions=300, question_paraphrases=2)
    )


def test_question_composes_relations_inside_out() -> None:
    question = question_text("Velmora Group", "company", ["founded_by", "born_in", "located_in"], [0, 0, 0])
    assert question == "In which country is the city where the founder of Velmora Group was born?"
    river = question_text("Tamo River", "river", ["source_in", "capital"], [1, 1])
    assert river == "Which city is the capital of the country in which the Tamo River rises?"


def test_metadata_describes_a_true_chain(world: HopWorld) -> None:
    by_id = {p.id: p for p in world.passages}
    for task in world.tasks:
        meta = task.metadata
        spec = meta["hopworld"]
        chain, relations = meta["chain"], spec["relations"]
        assert spec["hops"] == len(relations) == len(chain) - 1 == len(meta["supporting_passage_ids"])
        assert spec["start"] == chain[0]
        assert task.golden_answers == (chain[-1],)
        assert len(set(chain)) == len(chain), "a chain never revisits an entity"
        steps = zip(chain[:-1], relations, chain[1:], meta["supporting_passage_ids"], strict=True)
        for subject, rel, obj, pid in steps:
            assert world.object_of(subject, rel) == obj
            assert world.entity(subject).distractor_of is None
            passage = by_id[pid]
            assert passage.title == subject and obj in passage.text
        json.dumps(task.to_dict())  # metadata must stay JSON-serialisable


def test_hops_cycle_through_the_allowed_counts(world: HopWorld) -> None:
    counts = collections.Counter(t.metadata["hopworld"]["hops"] for t in world.tasks)
    assert counts == {2: 100, 3: 100, 4: 100}
    ids = [t.id for t in world.tasks]
    assert len(set(ids)) == len(ids) and ids[0] == f"hw-{world.config.seed}-q0"
    keys = {
        (t.metadata["hopworld"]["start"], tuple(t.metadata["hopworld"]["relations"])) for t in world.tasks
    }
    assert len(keys) == len(world.tasks), "no two questions ask the same thing"


def test_question_names_only_the_start_entity(world: HopWorld) -> None:
    all_names = [e.name for e in world.entities]
    for task in world.tasks:
        chain = task.metadata["chain"]
        assert chain[0] in task.question
        assert task.golden_answers[0] not in task.question
        mentioned = [n for n in all_names if n in task.question and re.search(rf"\b{n}\b", task.question)]
        assert mentioned == [chain[0]], (task.question, mentioned)


def test_questions_use_the_relation_templates(world: HopWorld) -> None:
    for task in world.tasks:
        last = RELATIONS[task.metadata["hopworld"]["relations"][-1]]
        stems = [q.split("{x}")[0] for q in last.questions]
        assert any(task.question.startswith(s) for s in stems), task.question
        assert task.question.endswith("?")


def test_answers_are_spread_out(world: HopWorld) -> None:
    answers = collections.Counter(t.golden_answers[0] for t in world.tasks)
    assert answers.most_common(1)[0][1] <= 0.05 * len(world.tasks)
    by_chain: dict[tuple[str, ...], list[str]] = collections.defaultdict(list)
    by_answer_type: dict[EntityType, set[str]] = collections.defaultdict(set)
    for t in world.tasks:
        relations = tuple(t.metadata["hopworld"]["relations"])
        by_chain[relations].append(t.golden_answers[0])
        by_answer_type[RELATIONS[relations[-1]].object_type].add(t.golden_answers[0])
    for relations, group in by_chain.items():
        if len(group) >= 8:
            top = collections.Counter(group).most_common(1)[0][1]
            assert top <= 0.4 * len(group), (relations, collections.Counter(group).most_common(3))
    counts = world.config.type_counts()
    for answer_type, distinct in by_answer_type.items():
        # Many different entities of each type actually occur as answers.
        assert len(distinct) >= min(10, counts[answer_type] // 2), answer_type


def test_most_frequent_entity_baseline_scores_near_zero(world: HopWorld) -> None:
    # The strongest guess without searching: the entity of the answer's type mentioned most in the corpus.
    corpus = " ".join(p.text for p in world.passages)
    real = [e for e in world.entities if e.distractor_of is None]
    guess = {
        t: max((e.name for e in real if e.type == t), key=lambda name: (corpus.count(name), name))
        for t in {e.type for e in real}
    }
    correct = sum(
        guess[RELATIONS[t.metadata["hopworld"]["relations"][-1]].object_type] == t.golden_answers[0]
        for t in world.tasks
    )
    assert correct / len(world.tasks) < 0.1
