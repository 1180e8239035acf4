"""Core value types shared by every hopgym subpackage.

They are small frozen dataclasses with no behaviour beyond validation and JSON conversion, so that envs,
retrievers, agents and trainers can exchange them without depending on each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hopgym.errors import DataError

__all__ = ["ActionKind", "ParsedAction", "Passage", "RewardInput", "RewardResult", "Task"]


@dataclass(frozen=True)
class Task:
    """One question with its golden answers.

    ``metadata`` holds dataset-specific extras (supporting passage ids, hop chains, data source, ...).
    """

    id: str
    question: str
    golden_answers: tuple[str, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.golden_answers, str):
            # A bare string would silently become a tuple of characters.
            raise DataError(
                f"task {self.id!r}: golden_answers must be a list of strings, not a string; "
                f'write ["{self.golden_answers}"]'
            )
        object.__setattr__(self, "golden_answers", tuple(self.golden_answers))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "golden_answers": list(self.golden_answers),
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        return cls(
            id=str(data["id"]),
            question=str(data["question"]),
            golden_answers=tuple(str(a) for a in data["golden_answers"]),
            metadata=dict(data.get("metadata") or {}),
        )


@dataclass(frozen=True)
class Passage:
    """A retrieved passage. ``score`` is backend-specific: compare rankings, not raw scores, across backends."""

    id: str
    title: str
    text: str
    score: float = 0.0

    @property
    def contents(self) -> str:
        """The Search-R1 / FlashRAG ``contents`` form: ``"Title"\\ntext``."""
        return f'"{self.title}"\n{self.text}' if self.title else self.text

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "text": self.text, "score": self.score}


ActionKind = Literal["search", "answer", "invalid"]


@dataclass(frozen=True)
class ParsedAction:
    """What one turn of generated text means to the environment.

    Exactly one of ``query`` (kind ``search``), ``answer`` (kind ``answer``) or ``reason`` (kind
    ``invalid``) is set. ``notes`` records recoverable oddities (a query that was truncated, extra tags that
    were ignored) so that they show up in ``info`` without making the action invalid.
    """

    kind: ActionKind
    query: str | None = None
    answer: str | None = None
    reason: str | None = None
    notes: tuple[str, ...] = ()
    tool_call_id: str | None = None

    @classmethod
    def search(
        cls, query: str, *, notes: Sequence[str] = (), tool_call_id: str | None = None
    ) -> ParsedAction:
        return cls._fill("search", query, None, None, tuple(notes), tool_call_id)

    @classmethod
    def final_answer(
        cls, answer: str, *, notes: Sequence[str] = (), tool_call_id: str | None = None
    ) -> ParsedAction:
        return cls._fill("answer", None, answer, None, tuple(notes), tool_call_id)

    @classmethod
    def invalid(cls, reason: str, *, notes: Sequence[str] = ()) -> ParsedAction:
        return cls._fill("invalid", None, None, reason, tuple(notes), None)

    @classmethod
    def _fill(
        cls,
        kind: ActionKind,
        query: str | None,
        answer: str | None,
        reason: str | None,
        notes: tuple[str, ...],
        tool_call_id: str | None,
    ) -> ParsedAction:
        # The env builds one ParsedAction per step. A frozen dataclass's __init__ sets each field through
        # object.__setattr__ (about twice the cost for six fields); filling the instance dict gives the same
        # object.
        self = object.__new__(cls)
        self.__dict__.update(
            kind=kind, query=query, answer=answer, reason=reason, notes=notes, tool_call_id=tool_call_id
        )
        return self


@dataclass(frozen=True)
class RewardInput:
    """Everything a reward function may look at.

    ``response`` is the whole episode text after the prompt: every generated turn and every observation, in
    order (what the seed projects score). ``prediction`` is the answer the protocol extracted, or None.
    ``finished`` is False when generation was cut off (length limit or truncation) rather than ending on its
    own.
    """

    response: str
    golden_answers: tuple[str, ...]
    prediction: str | None = None
    finished: bool = True
    num_searches: int = 0


@dataclass(frozen=True)
class RewardResult:
    """A score plus its named parts (for logging and for composed rewards).

    ``reward_components`` is the one name for a reward's parts everywhere: the env's step info and
    ``Trajectory`` use it too.
    """

    score: float
    reward_components: Mapping[str, float] = field(default_factory=dict)
