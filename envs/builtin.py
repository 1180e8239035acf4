"""The built-in environment ids and their core factories.

Importing this module is light (``import hopgym`` registers the ids from it); the factories import the env
core when called.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hopgym.envs.core import AsyncSearchQAEnv
    from hopgym.types import Task

__all__ = ["BUILTIN_ENVS", "make_dataset_core", "make_hopworld_core", "make_search_qa_core"]

_HOPWORLD = "hopgym.envs.builtin:make_hopworld_core"
_SEARCH_QA = "hopgym.envs.builtin:make_search_qa_core"
_DATASET = "hopgym.envs.builtin:make_dataset_core"

BUILTIN_ENVS: dict[str, tuple[str, dict[str, Any]]] = {
    "hopgym/HopWorld-v0": (_HOPWORLD, {"hops": [2, 3, 4]}),
    "hopgym/HopWorld-2hop-v0": (_HOPWORLD, {"hops": [2]}),
    "hopgym/HopWorld-3hop-v0": (_HOPWORLD, {"hops": [3]}),
    "hopgym/HopWorld-4hop-v0": (_HOPWORLD, {"hops": [4]}),
    "hopgym/SearchQA-v0": (_SEARCH_QA, {}),
    # The standard QA datasets: a prepared task file (``hopgym data prepare``) and a retriever at make time.
    # max_turns is one search per hop, the answer and one spare turn: NQ 1 hop, HotpotQA and Bamboogle 2,
    # 2Wiki 2-4 (inference and bridge-comparison questions need more), MuSiQue 2-4. top_k 3 as Search-R1.
    "hopgym/NQ-v0": (_DATASET, {"dataset": "NQ", "max_turns": 3}),
    "hopgym/HotpotQA-v0": (_DATASET, {"dataset": "HotpotQA", "max_turns": 4}),
    "hopgym/Bamboogle-v0": (_DATASET, {"dataset": "Bamboogle", "max_turns": 4}),
    "hopgym/2Wiki-v0": (_DATASET, {"dataset": "2Wiki", "max_turns": 5}),
    "hopgym/MuSiQue-v0": (_DATASET, {"dataset": "MuSiQue", "max_turns": 6}),
}
# The `hopgym data prepare --format` that reads each dataset's original files.
_PREPARE_FORMATS = {"NQ": "nq_open", "HotpotQA": "hotpotqa", "Bamboogle": "bamboogle", "2Wiki": "2wiki"}


@cache
def env_keywords() -> frozenset[str]:
    """The keyword arguments :class:`AsyncSearchQAEnv` takes besides tasks and retriever: its own keyword
    parameters and every :class:`EnvConfig` field (derived, so a new config field needs no edit here)."""
    from hopgym.envs.core import AsyncSearchQAEnv, EnvConfig

    params = inspect.signature(AsyncSearchQAEnv.__init__).parameters.values()
    own = {p.name for p in params if p.kind is not p.VAR_KEYWORD} - {"self", "tasks", "retriever"}
    return frozenset(own | {f.name for f in fields(EnvConfig)})


def make_hopworld_core(
    *, world_seed: int = 0, hops: Sequence[int] = (2, 3, 4), max_turns: int = 6, **kwargs: Any
) -> AsyncSearchQAEnv:
    """A HopWorld env: a generated world, its passages in the in-memory BM25 retriever, its questions as tasks.

    Keyword arguments other than the env's own (``protocol``, ``reward``, ``max_turns``, ``top_k``,
    observation caps) go to :class:`~hopgym.envs.hopworld.HopWorldConfig`. A ``retriever`` may be passed to
    search the world's passages with another backend.
    """
    from hopgym.envs.core import AsyncSearchQAEnv
    from hopgym.envs.hopworld import HopWorldConfig, generate_world
    from hopgym.retrievers.bm25.simple import InMemoryBM25Retriever

    env_kwargs = {k: kwargs.pop(k) for k in env_keywords() - {"close_retriever"} if k in kwargs}
    retriever = kwargs.pop("retriever", None)
    world = generate_world(HopWorldConfig(seed=world_seed, hops=tuple(hops), **kwargs))
    owned = retriever is None
    return AsyncSearchQAEnv(
        world.tasks,
        retriever if retriever is not None else InMemoryBM25Retriever(world.passages),
        close_retriever=owned,
        max_turns=max_turns,
        **env_kwargs,
    )


def make_dataset_core(
    *,
    dataset: str,
    data: str | Path | Sequence[Task] | Sequence[Mapping[str, Any]] | None = None,
    tasks: str | Path | Sequence[Task] | Sequence[Mapping[str, Any]] | None = None,
    retriever: Any = None,
    top_k: int = 3,
    **kwargs: Any,
) -> AsyncSearchQAEnv:
    """A standard dataset's env: ``data=`` (or ``tasks=``) is its prepared task file (``hopgym data prepare
    --format DATASET IN --out DIR`` writes ``DIR/tasks.jsonl``) or a list of tasks; ``retriever=`` as for
    ``hopgym/SearchQA-v0``. Other keyword arguments are the env's own (``protocol``, ``reward``, ...)."""
    from hopgym.errors import ConfigError

    env_id = f"hopgym/{dataset}-v0"
    if data is not None and tasks is not None:
        raise ConfigError(f"{env_id}: give the task file once, as data= (tasks= is the same argument)")
    source = data if data is not None else tasks
    if source is None or retriever is None:
        prepare_format = _PREPARE_FORMATS.get(dataset, dataset.lower())
        raise ConfigError(
            f"{env_id} needs data= (a task file: hopgym data prepare --format {prepare_format} IN --out "
            "DIR writes DIR/tasks.jsonl) and retriever= (a Retriever, an index directory or a retriever "
            f"server URL), e.g. hopgym.make('{env_id}', data='DIR/tasks.jsonl', retriever='DIR/bm25')"
        )
    return make_search_qa_core(tasks=source, retriever=retriever, top_k=top_k, **kwargs)


def make_search_qa_core(
    *,
    tasks: Sequence[Task] | Sequence[Mapping[str, Any]] | str | Path | None = None,
    retriever: Any = None,
    **kwargs: Any,
) -> AsyncSearchQAEnv:
    """A QA env over any task file/list and any retriever (a Retriever, or a spec for ``load_retriever``)."""
    from hopgym.envs.core import AsyncSearchQAEnv
    from hopgym.errors import ConfigError

    if tasks is None or retriever is None:
        raise ConfigError(
            "hopgym/SearchQA-v0 needs tasks= (a jsonl path or a list of tasks) and retriever= (a Retriever, an "
            "index directory or a retriever server URL), e.g. hopgym.make('hopgym/SearchQA-v0', "
            "tasks='dev.jsonl', retriever='indexes/wiki-bm25')"
        )
    owned = False
    if isinstance(retriever, (str, Path)):
        from hopgym.retrievers.loading import load_retriever

        retriever, owned = load_retriever(retriever), True
    return AsyncSearchQAEnv(tasks, retriever, close_retriever=owned, **kwargs)
