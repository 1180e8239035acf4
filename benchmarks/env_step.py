"""Env step overhead: ``AsyncSearchQAEnv.step`` against Search-R1's own per-turn environment logic.

Search-R1 (PeterGriffinJin/Search-R1, ``search_r1/llm_agent/generation.py``) has no env object: a turn is
parsed by ``postprocess_predictions`` (the first match of ``<(search|answer)>(.*?)</\\1>``, DOTALL, gives the
action and its stripped content) and ``execute_predictions`` turns it into the next observation: the
retrieval result as ``Doc {i+1}(Title: {title}) {text}\\n`` lines wrapped in
``\\n\\n<information>...</information>\\n\\n`` for a search, nothing for an answer, a fixed message for anything
else. That logic is re-implemented below from this description (``reference_step``) and timed against one
hopgym step with the Search-R1 protocol, its default reward, and a retriever that returns a precomputed
result, so both sides do the same work on the same turn and neither pays for a search.

Three actions (a search, an answer, an invalid turn), each measured as 256 steps in sequence and as 256 steps
gathered concurrently (``asyncio.gather``, one env per step). Both rows are compared with Search-R1's cost for
one turn at a time, and the gathered row also with Search-R1's whole batch at once. Gathering wraps every
coroutine in a Task, whose cost the script measures on empty coroutines and prints: the rollout engine runs
each episode as one task that awaits its steps in turn, so a rollout pays that cost once an episode, not once
a step. Rounds interleave the candidates; figures are medians over rounds. An answer turn also pays for the
episode's EM reward on both sides (hopgym scores inside ``step``; Search-R1 scores later, in its reward manager).

    python benchmarks/env_step.py [--rounds 30] [--batch 256] [--out env-step.json]

This is a script, not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import statistics
import string
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hopgym.envs.core import AsyncSearchQAEnv
from hopgym.types import Passage, Task

DEFAULT_CORPUS = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "corpus_samples"
    / "search_r1_corpus_sample.jsonl"
)
K = 3
QUESTION = "Which company did Evan Morris lobby for?"
GOLDS = ("Genentech",)
# A reasoning block of a few sentences (~110 tokens) before each action, as Search-R1-trained models write.
_REASONING = (
    "The question asks which company Evan Morris lobbied for. The retrieved passages mention that he began his"
    " career as an intern in the Clinton White House, then worked at Patton Boggs before joining Roche in 2005."
    " Roche is the parent corporation of Genentech, and one passage says he was a lobbyist for Genentech and"
    " its parent. I should make sure the company name is the one the question wants"
)
ACTIONS = {
    "search": f"<think>{_REASONING}, so I will search first.</think>\n<search> Evan Morris lobbyist Genentech </search>",
    "answer": f"<think>{_REASONING}; it is Genentech.</think>\n<answer> Genentech </answer>",
    "invalid": f"<think>{_REASONING}; it is Genentech.</think>\nSo the final answer is Genentech, I am fairly sure.",
}

# -- Search-R1's per-turn logic, re-implemented from its description (see the module docstring) ------------

_REFERENCE_ACTION = re.compile(r"<(search|answer)>(.*?)</\1>", re.DOTALL)
_REFERENCE_INVALID = (
    "\nMy previous action is invalid. If I want to search, I should put the query between <search> and"
    " </search>. If I want to give the final answer, I should put the answer between <answer> and </answer>."
    " Let me try again.\n"
)


def reference_parse(predictions: Sequence[str]) -> tuple[list[str | None], list[str]]:
    """Per prediction: the first action's tag and stripped content, or (None, "")."""
    actions: list[str | None] = []
    contents: list[str] = []
    for prediction in predictions:
        found = _REFERENCE_ACTION.search(prediction)
        if found:
            content, action = found.group(2).strip(), found.group(1)
        else:
            content, action = "", None
        actions.append(action)
        contents.append(content)
    return actions, contents


def reference_passages(result: Sequence[dict[str, Any]]) -> str:
    """``Doc {i}(Title: {first line}) {other lines}\n`` per retrieved document."""
    out = ""
    for i, item in enumerate(result):
        contents = item["document"]["contents"]
        title = contents.split("\n")[0]
        text = "\n".join(contents.split("\n")[1:])
        out += f"Doc {i + 1}(Title: {title}) {text}\n"
    return out


def reference_execute(
    predictions: Sequence[str], results: Sequence[Sequence[dict[str, Any]]]
) -> tuple[list[str], list[int], list[int], list[int]]:
    """A batch of turns: next observations, done / valid / is-search flags, as Search-R1's environment step.

    ``results`` holds the precomputed retrieval of each search in the batch, in order (the search itself is
    not timed on either side).
    """
    actions, contents = reference_parse(predictions)
    queries = [content for action, content in zip(actions, contents, strict=True) if action == "search"]
    formatted = [reference_passages(result) for result in results[: len(queries)]]
    observations: list[str] = []
    dones: list[int] = []
    valid: list[int] = []
    is_search: list[int] = []
    for action in actions:
        if action == "answer":
            observations.append("")
            dones.append(1)
            valid.append(1)
            is_search.append(0)
        elif action == "search":
            observations.append(f"\n\n<information>{formatted.pop(0).strip()}</information>\n\n")
            dones.append(0)
            valid.append(1)
            is_search.append(1)
        else:
            observations.append(_REFERENCE_INVALID)
            dones.append(0)
            valid.append(0)
            is_search.append(0)
    return observations, dones, valid, is_search


_REFERENCE_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_REFERENCE_PUNCTUATION = set(string.punctuation)
_REFERENCE_ARTICLES = re.compile(r"\b(a|an|the)\b")


def reference_normalize(text: str) -> str:
    """SQuAD normalization as Search-R1's EM check does it: lowercase, drop punctuation character by character,
    drop articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _REFERENCE_PUNCTUATION)
    return " ".join(_REFERENCE_ARTICLES.sub(" ", text).split())


def reference_score(response: str, golds: Sequence[str]) -> float:
    """Search-R1's EM reward of a finished episode: the last ``<answer>`` span against each golden answer."""
    matches = list(_REFERENCE_ANSWER.finditer(response))
    if not matches:
        return 0.0
    prediction = reference_normalize(matches[-1].group(1).strip())
    return 1.0 if any(reference_normalize(gold) == prediction for gold in golds) else 0.0


def reference_steps(actions: Sequence[str], results: Sequence[Sequence[dict[str, Any]]]) -> list[str]:
    """A batch of turns, each from a fresh episode, plus the reward of every episode they finish: hopgym pays
    for the reward inside ``step``; Search-R1 computes the same EM later, in its reward manager."""
    observations, dones, _, _ = reference_execute(actions, results)
    for action, done in zip(actions, dones, strict=True):
        if done:
            reference_score(action, GOLDS)
    return observations


def reference_step(action: str, result: Sequence[dict[str, Any]]) -> str:
    """One turn as a batch of one (how a single episode's turn runs through Search-R1's code)."""
    return reference_steps([action], [result])[0]


# The timer: CPU time of this (single-threaded) process by default, so time spent descheduled on a shared
# machine does not count; --clock wall uses perf_counter.
clock = time.process_time


# -- hopgym -----------------------------------------------------------------------------------------------


class PrecomputedRetriever:
    """Returns the same passages for every query, without suspending: the step's own cost is what remains."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self._passages = list(passages)

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        return [self._passages[:k] for _ in queries]

    async def aclose(self) -> None:
        return None


def load_passages(corpus: Path) -> list[Passage]:
    """The first K rows of a Search-R1-style corpus (``contents`` is '"title"\\ntext'), or generated ones."""
    if corpus.is_file():
        with corpus.open(encoding="utf-8") as handle:
            rows = [json.loads(line) for line, _ in zip(handle, range(K), strict=False)]
        out = []
        for row in rows:
            title, _, text = row["contents"].partition("\n")
            out.append(Passage(str(row["id"]), title.strip('"'), text))
        return out
    print(f"{corpus} not found: using generated passages", file=sys.stderr)
    return [
        Passage(str(i), f"Title {i}", " ".join(f"word{(i + j) % 17}" for j in range(110))) for i in range(K)
    ]


def _fresh_envs(template: AsyncSearchQAEnv, n: int) -> list[AsyncSearchQAEnv]:
    """``n`` fresh episodes of the template's first task (reset outside the timed region)."""
    envs = [template.clone() for _ in range(n)]
    for env in envs:
        # reset() never suspends: drive its coroutine directly, so that setup leaves no work on the loop
        coro = env.reset(options={"task_index": 0})
        try:
            coro.send(None)
        except StopIteration:
            continue
        coro.close()
        raise RuntimeError("reset() suspended; this benchmark needs a reset that does not")
    return envs


async def time_sequential(template: AsyncSearchQAEnv, action: str, n: int) -> float:
    envs = _fresh_envs(template, n)
    gc.collect()
    start = clock()
    for env in envs:
        await env.step(action)
    return (clock() - start) / n


async def time_gathered(template: AsyncSearchQAEnv, action: str, n: int) -> float:
    envs = _fresh_envs(template, n)
    gc.collect()
    start = clock()
    await asyncio.gather(*(env.step(action) for env in envs))
    return (clock() - start) / n


async def _nothing() -> None:
    return None


async def time_gather_floor(n: int) -> float:
    """What ``asyncio.gather`` itself costs per coroutine (a Task each), whatever the coroutines do."""
    gc.collect()
    start = clock()
    await asyncio.gather(*(_nothing() for _ in range(n)))
    return (clock() - start) / n


def time_reference(action: str, result: Sequence[dict[str, Any]], n: int) -> float:
    gc.collect()
    start = clock()
    for _ in range(n):
        reference_step(action, result)
    return (clock() - start) / n


def time_reference_batch(action: str, result: Sequence[dict[str, Any]], n: int) -> float:
    predictions, results = [action] * n, [result] * n
    gc.collect()
    start = clock()
    reference_steps(predictions, results)
    return (clock() - start) / n


async def run(rounds: int, batch: int, corpus: Path) -> dict[str, Any]:
    passages = load_passages(corpus)
    result = [{"document": {"contents": p.contents}, "score": p.score} for p in passages]
    template = AsyncSearchQAEnv(
        [Task("q0", QUESTION, GOLDS)],
        PrecomputedRetriever(passages),
        "search_r1",
        max_turns=4,
        top_k=K,
        max_observation_chars=None,
    )
    # Same observation on both sides, so both do the same work.
    check = template.clone()
    await check.reset()
    assert (await check.step(ACTIONS["search"]))[0] == reference_step(ACTIONS["search"], result)

    names = ("reference", "reference_batch", "sequential", "gathered", "gather_floor")
    samples: dict[str, dict[str, list[float]]] = {kind: {name: [] for name in names} for kind in ACTIONS}
    candidates: list[tuple[str, Callable[[str], Any]]] = [
        ("reference", lambda a: time_reference(a, result, batch)),
        ("reference_batch", lambda a: time_reference_batch(a, result, batch)),
        ("sequential", lambda a: time_sequential(template, a, batch)),
        ("gathered", lambda a: time_gathered(template, a, batch)),
        ("gather_floor", lambda a: time_gather_floor(batch)),
    ]

    async def measure(fn: Callable[[str], Any], action: str) -> float:
        out = fn(action)
        seconds: float = await out if asyncio.iscoroutine(out) else out
        return seconds * 1e6

    for _ in range(2):  # warm-up
        for _, fn in candidates:
            for action in ACTIONS.values():
                await measure(fn, action)
    for r in range(rounds):
        order = candidates if r % 2 == 0 else candidates[::-1]
        for kind, action in ACTIONS.items():
            for name, fn in order:
                samples[kind][name].append(await measure(fn, action))
    table: dict[str, Any] = {}
    for kind, by_name in samples.items():
        med = {name: statistics.median(values) for name, values in by_name.items()}
        table[kind] = {
            "action_chars": len(ACTIONS[kind]),
            **{f"{name}_us": value for name, value in med.items()},
            "sequential_ratio": med["sequential"] / med["reference"],
            "gathered_ratio": med["gathered"] / med["reference"],
            "gathered_vs_batch_ratio": med["gathered"] / med["reference_batch"],
            "gathered_above_floor_ratio": (med["gathered"] - med["gather_floor"]) / med["reference"],
        }
    return {"rounds": rounds, "batch": batch, "passages": len(passages), "results": table}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help="jsonl whose first 3 rows are the hits"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="time by this process's CPU time (default; robust to a loaded machine) or wall time",
    )
    args = parser.parse_args(argv)
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    report = asyncio.run(run(args.rounds, args.batch, args.corpus))
    report["clock"] = args.clock
    print(
        f"us per step ({args.clock} time), median of {args.rounds} interleaved rounds of {args.batch} steps; "
        "ratio = hopgym / "
        "Search-R1 one turn at a time (batch: hopgym gathered / Search-R1 on the whole batch at once)"
    )
    head = ("action", "chars", "Search-R1", "S-R1 batch", "sequential", "ratio", "gathered", "ratio", "batch")
    print("{:8} {:>5} {:>10} {:>10} {:>10} {:>6} {:>9} {:>6} {:>6}".format(*head))
    for kind, row in report["results"].items():
        print(
            f"{kind:8} {row['action_chars']:5d} {row['reference_us']:10.2f} {row['reference_batch_us']:10.2f}"
            f" {row['sequential_us']:10.2f} {row['sequential_ratio']:6.2f} {row['gathered_us']:9.2f}"
            f" {row['gathered_ratio']:6.2f} {row['gathered_vs_batch_ratio']:6.2f}"
        )
    floor = statistics.median(row["gather_floor_us"] for row in report["results"].values())
    print(
        f"asyncio.gather itself costs {floor:.2f} us per coroutine here (a Task each, measured on empty coroutines);"
        " gathered minus that, over Search-R1 one turn at a time: "
        + ", ".join(
            f"{kind} {row['gathered_above_floor_ratio']:.2f}" for kind, row in report["results"].items()
        )
    )
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
