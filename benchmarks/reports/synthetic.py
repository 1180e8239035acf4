"""A synthetic but realistic run directory, for the viewer's browser test and its load benchmark.

``write_synthetic_run(dir, episodes=10_000)`` writes what ``hopgym eval`` writes: ``tasks.jsonl`` (FlashRAG
style, with supporting passage ids, hop counts and datasets in the metadata), ``trajectories.jsonl`` in the
search_r1 protocol's text format (thoughts, searches, ``<information>`` observations of three passages,
invalid actions, answers right and wrong, out-of-turns episodes and infrastructure failures), ``config.json``
naming the task file and ``summary.json``. Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from hopgym.agents.rollout.trajectory import Trajectory, Turn

__all__ = ["synthetic_episode", "write_synthetic_run"]

_DATASETS = (("hotpotqa", 2), ("2wiki", 2), ("musique", 3), ("nq", 1), ("bamboogle", 2))
_PEOPLE = (
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "Emmy Noether",
    "Niels Bohr",
    "Marie Curie",
    "Kurt Gödel",
    "Hedy Lamarr",
    "Srinivasa Ramanujan",
    "Lise Meitner",
    "Claude Shannon",
)
_PLACES = (
    "Vienna",
    "Manchester",
    "Göttingen",
    "Copenhagen",
    "Warsaw",
    "Princeton",
    "Kumbakonam",
    "Berlin",
    "Arlington",
    "New York City",
    "Cambridge",
)
_RELATIONS = ("was born in", "studied in", "worked in", "died in", "is buried in")
_FILLER = (
    "The city has a long history as a centre of science and the arts, and its university attracted "
    "students from across the continent during the nineteenth century."
)


def _passage(rng: random.Random, person: str, place: str, relation: str) -> tuple[str, str]:
    pid = f"p{rng.randrange(10**7):07d}"
    text = f"{person} {relation} {place}. " + " ".join([_FILLER] * rng.randint(1, 3))
    return pid, f'"{person}" {text}'


def synthetic_episode(index: int, rng: random.Random) -> tuple[dict[str, Any], Trajectory]:
    """One task record and the trajectory a search agent might have produced for it."""
    dataset, base_hops = _DATASETS[index % len(_DATASETS)]
    hops = max(1, base_hops + (rng.random() < 0.2))
    person, place = rng.choice(_PEOPLE), rng.choice(_PLACES)
    relation = rng.choice(_RELATIONS)
    question = f"In which city {'was' if hops == 1 else 'did'} the person who {relation} {place} live?"
    task_id = f"{dataset}-{index:05d}"
    golds = [place, f"{place} (city)"] if rng.random() < 0.3 else [place]
    supporting = [_passage(rng, person, place, relation) for _ in range(hops)]
    task = {
        "id": task_id,
        "question": question,
        "golden_answers": golds,
        "metadata": {
            "dataset": dataset,
            "hops": hops,
            "type": rng.choice(("bridge", "comparison")) if dataset in ("hotpotqa", "2wiki") else "chain",
            "supporting_passage_ids": [pid for pid, _ in supporting],
        },
    }
    t0 = 1_700_000_000.0 + index
    if rng.random() < 0.03:
        return task, Trajectory(
            task_id=task_id,
            sample_index=0,
            group_id=task_id,
            termination="failed",
            error="HTTPError: server returned 503 after 3 retries",
            prompt=question,
            started_at=t0,
            finished_at=t0 + 30.0,
        )
    turns: list[Turn] = []
    searches = rng.choice((0, 1, 1, 2, 2, 2, 3, 3, 4))
    for s in range(searches):
        query = f"{person} {relation} {place}" if s == 0 else f"{place} {rng.choice(_RELATIONS)} hop {s}"
        if rng.random() < 0.06:
            turns.append(
                Turn(
                    text=f"<think>I need to look up {query}.</think>\n<search> {query}",
                    finish_reason="stop",
                    observation="\n[Invalid action: unclosed <search> tag: no </search> follows it.]\n",
                    action_kind="invalid",
                    invalid_reason="unclosed <search> tag: no </search> follows it",
                    generation_s=rng.uniform(0.2, 2.0),
                )
            )
        found = [supporting[min(s, hops - 1)]] if rng.random() < 0.7 else []
        found += [
            _passage(rng, rng.choice(_PEOPLE), rng.choice(_PLACES), rng.choice(_RELATIONS))
            for _ in range(3 - len(found))
        ]
        rng.shuffle(found)
        docs = "".join(
            f"Doc {i}(Title: {text.split(chr(34))[1]}) {text.split(chr(34), 2)[2].strip()}\n"
            for i, (_, text) in enumerate(found, start=1)
        )
        turns.append(
            Turn(
                text=f"<think>Step {s + 1}: I should search for {query}.</think>\n<search> {query} </search>",
                finish_reason="stop",
                observation=f"\n\n<information>{docs.strip()}</information>\n\n",
                action_kind="search",
                query=query,
                passage_ids=tuple(pid for pid, _ in found),
                generation_s=rng.uniform(0.2, 2.0),
                step_s=rng.uniform(0.001, 0.05),
            )
        )
    if rng.random() < 0.08:
        termination = "max_turns"
        answer = None
        reward = 0.0
    else:
        termination = "answered"
        answer = place if rng.random() < 0.45 else rng.choice(_PLACES)
        reward = 1.0 if answer == place else 0.0
        turns.append(
            Turn(
                text=f"<think>The evidence points to {answer}.</think>\n<answer> {answer} </answer>",
                finish_reason="stop",
                observation="",
                action_kind="answer",
                answer=answer,
                generation_s=rng.uniform(0.2, 2.0),
            )
        )
    wall = sum(t.generation_s + t.step_s for t in turns)
    return task, Trajectory(
        task_id=task_id,
        sample_index=0,
        group_id=task_id,
        termination=termination,  # type: ignore[arg-type]
        turns=tuple(turns),
        reward=reward,
        reward_components={"em": reward},
        answer=answer,
        num_searches=searches,
        prompt=question,
        policy="synthetic",
        started_at=t0,
        finished_at=t0 + wall,
    )


def write_synthetic_run(out: str | Path, *, episodes: int = 10_000, seed: int = 0) -> Path:
    """Write a synthetic run directory at ``out`` (created) and return it."""
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pairs = [synthetic_episode(i, rng) for i in range(episodes)]
    with (path / "tasks.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(task, ensure_ascii=False) + "\n" for task, _ in pairs)
    with (path / "trajectories.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(t.to_dict(), ensure_ascii=False) + "\n" for _, t in pairs)
    (path / "config.json").write_text(
        json.dumps(
            {"data": str(path / "tasks.jsonl"), "agent": "synthetic", "protocol": "search_r1"}, indent=1
        )
    )
    scored = [t for _, t in pairs if not t.failed]
    summary = {
        "metrics": {"em": sum(t.reward or 0.0 for t in scored) / max(1, len(scored))},
        "episodes": len(pairs),
        "failed": len(pairs) - len(scored),
        "mean_searches": sum(t.num_searches for t in scored) / max(1, len(scored)),
    }
    (path / "summary.json").write_text(json.dumps(summary, indent=1))
    return path
