"""A scripted HopWorld agent that makes a learner's mistakes: the oracle's plan plus configurable errors.

It follows :class:`~hopgym.agents.hopworld_oracle.HopWorldOracle`'s plan (search ``"<entity> <keyword>"`` per
hop, read the object out of the observation, answer after the last hop), and at each decision point may err
as :class:`~hopgym.trainers.warmup.config.NoiseConfig` says: search a look-alike, answer too early with the
intermediate entity, or copy another name out of the observation. Every action carries a label saying which
mistake (if any) it made, so tests can check the rates.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Literal

from hopgym.envs.hopworld import NAME_PATTERNS, RELATIONS, HopWorld, find_object, search_query
from hopgym.errors import DataError
from hopgym.trainers.warmup.config import NoiseConfig
from hopgym.types import Task

__all__ = ["Label", "NoisyAction", "NoisyHopWorldAgent"]

Label = Literal["ok", "wrong_entity", "early_answer", "wrong_copy", "retry", "gave_up"]
NoisyAction = tuple[Literal["search", "answer"], str, Label]


class NoisyHopWorldAgent:
    """Plays one HopWorld task; call :meth:`next_action` with None first, then with each observation.

    ``world`` supplies look-alikes (entities whose ``distractor_of`` is the right one) and same-type names for
    ``wrong_entity``. Labels: an action's own mistake (``wrong_entity`` on the search that erred,
    ``early_answer``), ``wrong_copy`` on the action that uses a wrongly copied name, else ``ok``;
    ``retry``/``gave_up`` when a fact was not in the observation (the oracle's fallback).
    """

    def __init__(self, task: Task, world: HopWorld, noise: NoiseConfig, rng: random.Random) -> None:
        spec = task.metadata.get("hopworld")
        if not isinstance(spec, dict) or not isinstance(spec.get("start"), str) or not spec.get("relations"):
            raise DataError(f"task {task.id!r} is not a HopWorld task: metadata['hopworld'] is missing")
        self._relations: tuple[str, ...] = tuple(spec["relations"])
        self._world = world
        self._noise = noise
        self._rng = rng
        self._current: str = spec["start"]
        self._hop = 0
        self._awaiting = False
        self._retried = False
        self._done = False
        #: Every noise draw: (mistake kind, whether it was made); for checking the rates.
        self.draws: list[tuple[str, bool]] = []

    @property
    def done(self) -> bool:
        return self._done

    def next_action(self, observation: str | None) -> NoisyAction:
        if self._done:
            raise RuntimeError("the agent has already answered")
        label: Label = "ok"
        if self._awaiting:
            relation = self._relations[self._hop]
            found = find_object(observation or "", relation, self._current)
            if found is None:
                if not self._retried:
                    self._retried = True
                    return ("search", self._current, "retry")
                return self._answer("gave_up")
            other = self._other_name(observation or "", relation, exclude=(found, self._current))
            if other is not None:
                erred = self._draw("wrong_copy", self._noise.wrong_copy)
                if erred:
                    found, label = other, "wrong_copy"
            self._current = found
            self._hop += 1
            self._awaiting = False
            self._retried = False
            if self._hop < len(self._relations) and self._draw("early_answer", self._noise.early_answer):
                return self._answer("early_answer")
        if self._hop == len(self._relations):
            return self._answer(label)
        wrong = self._look_alike(self._current)
        if wrong is not None and self._draw("wrong_entity", self._noise.wrong_entity):
            self._current, label = wrong, "wrong_entity"
        self._awaiting = True
        return ("search", search_query(self._relations[self._hop], self._current), label)

    def _draw(self, kind: str, rate: float) -> bool:
        erred = self._rng.random() < rate
        self.draws.append((kind, erred))
        return erred

    def _answer(self, label: Label) -> NoisyAction:
        self._done = True
        return ("answer", self._current, label)

    def _look_alike(self, name: str) -> str | None:
        try:
            etype = self._world.entity(name).type
        except KeyError:
            return None
        alikes = [e.name for e in self._world.entities if e.distractor_of == name]
        if alikes:
            return self._rng.choice(alikes)
        same = [e.name for e in self._world.entities if e.type == etype and e.name != name]
        return self._rng.choice(same) if same else None

    def _other_name(self, text: str, relation: str, exclude: Sequence[str]) -> str | None:
        pattern = re.compile(rf"(?<!\w){NAME_PATTERNS[RELATIONS[relation].object_type]}(?!\w)")
        names = sorted({m.group(0) for m in pattern.finditer(text)} - set(exclude) - {"Doc", "Title"})
        names = [n for n in names if _is_entity(self._world, n)]
        if not names:  # no other name of the object's type: any other entity the observation mentions
            names = sorted({e for e in _mentioned(self._world, text)} - set(exclude))
        return self._rng.choice(names) if names else None


def _mentioned(world: HopWorld, text: str) -> set[str]:
    found: set[str] = set()
    for pattern in NAME_PATTERNS.values():
        for match in re.finditer(rf"(?<!\w){pattern}(?!\w)", text):
            if _is_entity(world, match.group(0)):
                found.add(match.group(0))
    return found


def _is_entity(world: HopWorld, name: str) -> bool:
    try:
        world.entity(name)
    except KeyError:
        return False
    return True
