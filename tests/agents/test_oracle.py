"""The scripted HopWorld oracle: every generated question is solvable with in-memory BM25 at k=3."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hopgym.agents.hopworld_oracle import HopWorldOracle, format_plain, run_oracle
from hopgym.envs.hopworld import HopWorld, HopWorldConfig, generate_world
from hopgym.errors import DataError
from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever
from hopgym.types import Passage, Task

QUESTIONS_PER_WORLD = 60


def format_search_r1(passages: Sequence[Passage]) -> str:
    """Search-R1's observation body: ``Doc i(Title: <first line of contents>) <rest>`` lines."""
    lines = []
    for i, p in enumerate(passages, 1):
        title, _, text = p.contents.partition("\n")
        lines.append(f"Doc {i}(Title: {title}) {text}")
    return "<information>" + "\n".join(lines) + "</information>"


def format_numbered(passages: Sequence[Passage]) -> str:
    """R1-Searcher-style numbered lines with title and text run together."""
    return "\n".join(f"({i}){p.title}   {p.text}" for i, p in enumerate(passages, 1))


def _honest_view(task: Task) -> Task:
    # What the oracle may see: the question and metadata["hopworld"]; no chain, no supporting ids, no answer.
    return Task(
        id=task.id,
        question=task.question,
        golden_answers=("?",),
        metadata={"hopworld": task.metadata["hopworld"]},
    )


async def _success_rate(world: HopWorld, k: int = 3, formatter=format_search_r1) -> float:
    retriever = InMemoryBM25Retriever(world.passages)
    correct = 0
    for task in world.tasks:
        run = await run_oracle(_honest_view(task), retriever, k=k, format_observation=formatter)
        correct += run.answer == task.golden_answers[0]
    await retriever.aclose()
    return correct / len(world.tasks)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("hops", [2, 3, 4])
@pytest.mark.parametrize(("paraphrases", "facts_per_passage"), [(1, 1), (3, 3)])
async def test_oracle_solves_every_question_at_k3(
    seed: int, hops: int, paraphrases: int, facts_per_passage: int
) -> None:
    config = HopWorldConfig(
        seed=seed,
        hops=hops,
        num_questions=QUESTIONS_PER_WORLD,
        distractors=3,
        paraphrases=paraphrases,
        question_paraphrases=2,
        facts_per_passage=facts_per_passage,
    )
    assert await _success_rate(generate_world(config)) == 1.0


@pytest.mark.parametrize("num_entities", [40, 1000])
async def test_oracle_solves_small_and_large_worlds(num_entities: int) -> None:
    config = HopWorldConfig(
        seed=5, num_entities=num_entities, hops=(2, 3, 4), num_questions=120, distractors=2
    )
    assert await _success_rate(generate_world(config)) == 1.0


async def test_negative_control_without_retrieval_scores_zero() -> None:
    # Same oracle, a corpus without the world's passages: success must come from reading search results.
    world = generate_world(HopWorldConfig(seed=3, hops=(2, 3), num_questions=QUESTIONS_PER_WORLD))
    retriever = InMemoryBM25Retriever(generate_world(HopWorldConfig(seed=30, num_questions=10)).passages)
    answers = [(await run_oracle(t, retriever)).answer for t in world.tasks]
    assert sum(a == t.golden_answers[0] for a, t in zip(answers, world.tasks, strict=True)) == 0


@pytest.mark.parametrize("formatter", [format_plain, format_numbered])
async def test_oracle_reads_other_observation_formats(formatter) -> None:
    world = generate_world(
        HopWorldConfig(seed=8, hops=(2, 3, 4), num_questions=QUESTIONS_PER_WORLD, paraphrases=3)
    )
    assert await _success_rate(world, formatter=formatter) == 1.0


async def test_oracle_reads_every_registered_protocols_observations() -> None:
    from hopgym.envs.protocols import available_protocols, get_protocol

    world = generate_world(HopWorldConfig(seed=4, hops=(2, 3, 4), num_questions=30, facts_per_passage=2))
    for name in available_protocols():
        protocol = get_protocol(name)

        def observe(passages: Sequence[Passage], protocol=protocol) -> str:
            return str(protocol.wrap_observation(protocol.format_passages(passages)))

        assert await _success_rate(world, formatter=observe) == 1.0, name


async def test_oracle_query_sequence() -> None:
    world = generate_world(HopWorldConfig(seed=1, hops=3, num_questions=5))
    task = world.tasks[0]
    run = await run_oracle(task, world.retriever())
    chain, relations = task.metadata["chain"], task.metadata["hopworld"]["relations"]
    keywords = {"born_in": "born", "works_for": "works", "married_to": "married", "founded_by": "founded"}
    assert len(run.queries) == 3
    for query, subject, relation in zip(run.queries, chain, relations, strict=False):
        assert query.startswith(subject + " ")
        if relation in keywords:
            assert query.endswith(keywords[relation])


def test_oracle_without_evidence_retries_then_guesses() -> None:
    world = generate_world(HopWorldConfig(seed=1, hops=2, num_questions=5))
    task = world.tasks[0]
    start = task.metadata["hopworld"]["start"]
    oracle = HopWorldOracle(task)
    kind, query = oracle.next_action(None)
    assert kind == "search" and query.startswith(start)
    assert oracle.next_action("nothing useful") == ("search", start)
    assert oracle.next_action(None) == ("answer", start)
    assert oracle.done and oracle.hops_resolved == 0
    assert oracle.next_action("late text") == ("answer", start)


def test_oracle_follows_a_scripted_conversation() -> None:
    task = Task(
        id="t",
        question="In which country is the city where Tavor Melkin was born?",
        golden_answers=("Kestan",),
        metadata={"hopworld": {"start": "Tavor Melkin", "relations": ["born_in", "located_in"], "hops": 2}},
    )
    oracle = HopWorldOracle(task)
    assert oracle.next_action(None) == ("search", "Tavor Melkin born")
    step = oracle.next_action(
        "Tavor Melkan was born in Dranis.\nTavor Melkin was born in the city of Velmora."
    )
    assert step == ("search", "Velmora country")
    assert oracle.next_action("Kestan is the country where Velmora is located.") == ("answer", "Kestan")
    assert oracle.hops_resolved == 2


@pytest.mark.parametrize(
    "metadata",
    [{}, {"hopworld": {"start": "X"}}, {"hopworld": {"start": "X", "relations": ["parent_of"], "hops": 1}}],
)
def test_oracle_rejects_non_hopworld_tasks(metadata: dict[str, object]) -> None:
    with pytest.raises(DataError):
        HopWorldOracle(Task(id="t", question="q", golden_answers=("a",), metadata=metadata))
