"""Reading facts back out of observation text with the generator's templates."""

from __future__ import annotations

import pytest

from hopgym.envs.hopworld import (
    RELATIONS,
    HopWorldConfig,
    fact_patterns,
    find_object,
    generate_world,
    search_query,
)


def test_search_query_is_name_plus_keyword() -> None:
    assert search_query("born_in", "Tavor Melkin") == "Tavor Melkin born"
    assert search_query("source_in", "Tamo River") == "Tamo River source"


@pytest.mark.parametrize("relation", sorted(RELATIONS))
def test_every_wording_is_read_back(relation: str) -> None:
    rel = RELATIONS[relation]
    samples = {
        "person": ("Tavor Melkin", "Rina Sulo"),
        "city": ("Velmora", "Dranis"),
        "country": ("Kestan", "Orvela"),
        "company": ("Quarn Group", "Bimel Labs"),
        "river": ("Tamo River", "Lusa River"),
    }
    subject = samples[rel.subject_type][0]
    obj = samples[rel.object_type][1]
    for template in rel.passage_templates:
        sentence = template.format(s=subject, o=obj)
        assert find_object(sentence, relation, subject) == obj, sentence
        # Wrapped in any observation format, reflowed across lines, other passages around it.
        wrapped = f'Doc 1(Title: "Other") Nothing here.\nDoc 2(Title: "{subject}") {sentence}'
        assert find_object(wrapped, relation, subject) == obj
        # Line breaks inside the template's prose, never inside a name (names are joined by one space).
        reflowed = template.replace(" ", "\n  ").format(s=subject, o=obj)
        assert find_object(f"(1){subject}   {reflowed}", relation, subject) == obj


def test_look_alike_subject_is_not_confused() -> None:
    text = "Tavor Melkan was born in Dranis. Tavor Melkinar was born in Orsa. Atavor Melkin was born in Kuvo."
    assert find_object(text, "born_in", "Tavor Melkin") is None
    assert find_object(text + " Tavor Melkin was born in Velmora.", "born_in", "Tavor Melkin") == "Velmora"


def test_earliest_statement_wins_and_other_relations_are_ignored() -> None:
    text = (
        "Tavor Melkin works for Quarn Group. Tavor Melkin was born in Velmora. Tavor Melkin was born in Kuvo."
    )
    assert find_object(text, "born_in", "Tavor Melkin") == "Velmora"
    assert find_object(text, "married_to", "Tavor Melkin") is None
    assert find_object("", "born_in", "Tavor Melkin") is None


def test_symmetric_relation_is_read_from_either_side() -> None:
    assert find_object("Rina Sulo and Tavor Melkin are married.", "married_to", "Tavor Melkin") == "Rina Sulo"
    assert find_object("Rina Sulo is married to Tavor Melkin.", "married_to", "Tavor Melkin") == "Rina Sulo"
    assert len(fact_patterns("married_to", "X Y")) == 2 * len(fact_patterns("born_in", "X Y"))


def test_title_run_into_the_text_does_not_leak_into_the_object() -> None:
    # Some wrappers put the title and the text on one line.
    assert (
        find_object("Velmora Kestan is the country where Velmora is located.", "located_in", "Velmora")
        == "Kestan"
    )
    text = "Title: Quarn Group Tavor Melkin founded Quarn Group."
    assert find_object(text, "founded_by", "Quarn Group") == "Tavor Melkin"


def test_reads_every_fact_of_a_generated_world() -> None:
    config = HopWorldConfig(seed=9, num_entities=100, num_questions=40, paraphrases=3, facts_per_passage=3)
    world = generate_world(config)
    text_of: dict[str, list[str]] = {p.title: [] for p in world.passages}
    for p in world.passages:
        text_of[p.title].append(p.contents)
    for fact in world.facts:
        assert find_object("\n".join(text_of[fact.subject]), fact.relation, fact.subject) == fact.object, fact
