"""A scripted agent that solves HopWorld questions honestly: it searches and reads, hop by hop.

It knows only what ``task.metadata["hopworld"]`` gives (the start entity and the relation of each hop), never
the chain or the golden answers. It proves that every generated question is solvable by retrieval, and gives
trainers an upper-bound baseline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from hopgym.envs.hopworld import RELATIONS, find_object, search_query
from hopgym.errors import DataError
from hopgym.types import Passage, Task

__all__ = ["HopWorldOracle", "OracleRun", "format_plain", "run_oracle"]

logger = logging.getLogger(__name__)

OracleAction = tuple[Literal["search", "answer"], str]


class Searcher(Protocol):
    """What :func:`run_oracle` needs of a retriever (any ``hopgym.retrievers`` backend fits)."""

    async def search(self, queries: Sequence[str], k: int) -> list[list[Passage]]: ...


class HopWorldOracle:
    """Issues ``"<entity> <keyword>"`` for each hop and reads the next entity out of the observation.

    Call :meth:`next_action` with ``None`` first, then with the text of each observation. When a hop's fact
    is not in the observation it searches once more with the bare entity name, then answers its best guess
    (the last entity it reached) rather than failing.
    """

    def __init__(self, task: Task) -> None:
        spec = task.metadata.get("hopworld")
        if not isinstance(spec, dict) or not isinstance(spec.get("start"), str) or not spec.get("relations"):
            raise DataError(
                f"task {task.id!r} is not a HopWorld task: metadata['hopworld'] with start and relations"
            )
        unknown = [r for r in spec["relations"] if r not in RELATIONS]
        if unknown:
            raise DataError(f"task {task.id!r} names unknown HopWorld relations {unknown}")
        self._relations: tuple[str, ...] = tuple(spec["relations"])
        self._current: str = spec["start"]
        self._hop = 0
        self._awaiting = False
        self._retried = False
        self._done = False

    @property
    def done(self) -> bool:
        """True once the oracle has answered."""
        return self._done

    @property
    def hops_resolved(self) -> int:
        """How many hops the oracle has followed so far."""
        return self._hop

    def next_action(self, observation: str | None) -> OracleAction:
        """The next action given the observation that answered the previous one (None at the start)."""
        if self._done:
            return ("answer", self._current)
        if self._awaiting:
            relation = self._relations[self._hop]
            found = find_object(observation or "", relation, self._current)
            if found is None:
                if not self._retried:
                    self._retried = True
                    return ("search", self._current)
                logger.debug("oracle: no %s fact for %r; answering its best guess", relation, self._current)
                return self._answer()
            self._current = found
            self._hop += 1
            self._awaiting = False
            self._retried = False
        if self._hop == len(self._relations):
            return self._answer()
        self._awaiting = True
        return ("search", search_query(self._relations[self._hop], self._current))

    def _answer(self) -> OracleAction:
        self._done = True
        return ("answer", self._current)


def format_plain(passages: Sequence[Passage]) -> str:
    """Passages as ``title`` / ``text`` blocks: the simplest observation an oracle can read."""
    return "\n\n".join(f"{p.title}\n{p.text}" for p in passages)


@dataclass(frozen=True)
class OracleRun:
    """The oracle's final answer and the queries it issued, in order."""

    answer: str
    queries: tuple[str, ...]


async def run_oracle(
    task: Task,
    retriever: Searcher,
    *,
    k: int = 3,
    format_observation: Callable[[Sequence[Passage]], str] = format_plain,
) -> OracleRun:
    """Drive a :class:`HopWorldOracle` directly against ``retriever`` (no environment, no protocol)."""
    oracle = HopWorldOracle(task)
    queries: list[str] = []
    observation: str | None = None
    while True:
        kind, text = oracle.next_action(observation)
        if kind == "answer":
            return OracleRun(answer=text, queries=tuple(queries))
        queries.append(text)
        (hits,) = await retriever.search([text], k)
        observation = format_observation(hits)
