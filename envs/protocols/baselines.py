"""The seed papers' retrieval baselines as action protocols: ``direct``, ``naive_rag``, ``iter_retgen``, ``ircot``.

They run through the same env and episode engine as the agent protocols, so one model can be compared across
methods with the same metrics. What makes them baselines is what a turn means, not a second loop:

- ``direct``: no retrieval; the first turn is the answer.
- ``naive_rag``: the env retrieves ``top_k`` passages with the question at reset (``prefetch_question``) and
  puts them in the first prompt; the first turn is the answer.
- ``iter_retgen`` (Iter-RetGen, Shao et al. 2023): the question's passages are in the first prompt; every turn
  is a full answer draft whose text is the next retrieval's query; the env reads the last allowed turn
  (``max_turns``: the number of rounds) as the answer (``last_turn_answers``). FlashRAG retrieves with the
  question followed by the draft; here the query is the draft alone (a protocol sees only the turn).
- ``ircot`` (IRCoT, Trivedi et al. 2023): the question's passages are in the first prompt; each turn is one
  reasoning sentence (generation stops at a newline), retrieved with, until a turn holds the answer marker
  ``So the answer is:``; the last allowed turn is read as the answer.

Answer extraction (pure, idempotent, so that the usual EM/F1 rewards apply): the rest of the line after the
last ``So the answer is`` (case-insensitive, optional colon); without the marker, ``direct``/``naive_rag`` take
the first non-empty line (minus leading ``Answer:`` labels) and a final ``iter_retgen``/``ircot`` turn is
taken whole (FlashRAG scores the whole generation then). Every stripped, never raises.

:func:`method_settings` maps ``hopgym eval --method`` to the protocol and its default number of turns
(FlashRAG's defaults: 3 Iter-RetGen rounds, 2 IRCoT steps).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from hopgym.envs.protocols.base import ChatMessage
from hopgym.envs.protocols.prompt_templates import TemplatedProtocol, builtin_template
from hopgym.envs.protocols.tag_parsing import clean_query
from hopgym.errors import ConfigError
from hopgym.types import ParsedAction, Passage, Task

__all__ = [
    "ANSWER_MARKER",
    "BASELINE_PROTOCOLS",
    "METHODS",
    "DirectProtocol",
    "IRCoTProtocol",
    "IterRetGenProtocol",
    "NaiveRAGProtocol",
    "extract_answer",
    "method_settings",
]

#: IRCoT's answer marker (as in its prompts and FlashRAG's ``ircot_pred_parse``).
ANSWER_MARKER = "So the answer is:"
# Case-insensitive, colon optional: models often write "so the answer is X".
_MARKER = re.compile(r"so the answer is\s*:?", re.IGNORECASE)
_ANSWER_LABEL = re.compile(r"answer\s*:", re.IGNORECASE)
_THOUGHT_LABEL = re.compile(r"thought\s*:", re.IGNORECASE)
_NO_STOP: tuple[str, ...] = ()
# One reasoning sentence per IRCoT step: generation stops at the end of the line.
_LINE_STOP: tuple[str, ...] = ("\n",)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _drop_labels(text: str, label: re.Pattern[str]) -> str:
    # Repeatedly, so that parsing the result again gives the same text.
    while (found := label.match(text)) is not None:
        text = text[found.end() :].lstrip()
    return text


def _after_marker(text: str) -> str | None:
    """The rest of the line after the last answer marker, stripped; None without a marker."""
    last = None
    for found in _MARKER.finditer(text):
        last = found
    if last is None:
        return None
    rest = text[last.end() :].splitlines()
    return rest[0].strip() if rest else ""


def extract_answer(text: str, *, whole: bool = False) -> str:
    """The answer in one generation: after the last ``So the answer is``, else the first non-empty line
    (``whole``: the whole stripped text), without leading ``Answer:`` labels."""
    marked = _after_marker(text)
    if marked is not None:
        return _drop_labels(marked, _ANSWER_LABEL)
    if whole:
        return text.strip()
    return _drop_labels(_first_line(text), _ANSWER_LABEL)


def _doc_lines(passages: Sequence[Passage]) -> str:
    # FlashRAG's reference format: "Doc {i}(Title: {title}) {text}".
    return "".join(f"Doc {i}(Title: {p.title}) {p.text}\n" for i, p in enumerate(passages, start=1))


@dataclass(frozen=True)
class _BaselineProtocol(TemplatedProtocol):
    """Shared parts: prompts from ``templates/{name}.txt`` and ``{name}_system.txt``, ``em`` as reward,
    passages as ``Doc i(Title: t) text`` lines, observations as plain text (no tags)."""

    #: The env retrieves with the question at reset and appends the passages to the first prompt
    #: (``EnvConfig.prefetch_k`` None: ``top_k`` passages).
    prefetch_question: ClassVar[bool] = False
    #: The env reads the last allowed turn as the answer with :meth:`parse_final`.
    last_turn_answers: ClassVar[bool] = False
    #: The number of turns ``hopgym eval --method`` uses unless ``--max-turns`` says otherwise.
    default_max_turns: ClassVar[int] = 1
    default_invalid_template = "\n[Invalid turn: {reason}.]\n"
    # Set by each subclass (here for the ActionProtocol shape).
    name = "baseline"
    stop = _NO_STOP

    def parse(self, text: str) -> ParsedAction:
        """One turn's meaning (each baseline defines it)."""
        raise NotImplementedError

    def format_passages(self, passages: Sequence[Passage]) -> str:
        """``Doc {i}(Title: {title}) {text}`` lines (FlashRAG's reference format)."""
        return _doc_lines(passages)

    def wrap_observation(self, body: str) -> str:
        """``\\n\\nDocuments:\\n{body}\\nAnswer:`` (the cue for the next generation)."""
        return f"\n\nDocuments:\n{body.strip()}\n\nAnswer:"

    def messages(self, task: Task) -> list[ChatMessage]:
        """The system prompt, then ``Question: {question}`` as the user message."""
        system = self.system_prompt
        if system is None:
            system = builtin_template(f"{self._stem}_system.txt")
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": f"Question: {task.question}"},
        ]

    def parse_final(self, text: str) -> ParsedAction:
        """The last allowed turn as the answer (see the module docstring)."""
        if not isinstance(text, str):
            return ParsedAction.invalid(f"turn is not text but {type(text).__name__}")
        answer = extract_answer(text, whole=True)
        return ParsedAction.final_answer(answer, notes=() if answer else ("empty answer",))

    def render_answer(self, answer: str) -> str:
        """The answer as a model would write it (``parse`` maps it back)."""
        return answer

    def render_search(self, query: str) -> str:
        """The query as plain text (for protocols without searches it parses as an answer)."""
        return query

    def tools(self) -> list[Mapping[str, Any]] | None:
        """None: plain text turns."""
        return None


@dataclass(frozen=True)
class DirectProtocol(_BaselineProtocol):
    """No retrieval: every turn is the answer (``extract_answer``); an empty turn is an empty answer."""

    name = "direct"
    stop = _NO_STOP

    def parse(self, text: str) -> ParsedAction:
        """The turn's answer (never a search, never raises)."""
        if not isinstance(text, str):
            return ParsedAction.invalid(f"turn is not text but {type(text).__name__}")
        answer = extract_answer(text)
        return ParsedAction.final_answer(answer, notes=() if answer else ("empty answer",))

    def parse_final(self, text: str) -> ParsedAction:
        """As ``parse``."""
        return self.parse(text)


@dataclass(frozen=True)
class NaiveRAGProtocol(DirectProtocol):
    """Retrieve once with the question (at reset, into the first prompt), then answer as ``direct``."""

    name = "naive_rag"
    prefetch_question = True


@dataclass(frozen=True)
class IterRetGenProtocol(_BaselineProtocol):
    """Iter-RetGen: every turn is an answer draft and the next query; the last round's draft is the answer.

    ``parse`` reads a non-empty turn as a search for its whole stripped text (cut to MAX_QUERY_CHARS, noted);
    an empty turn is invalid. The env's ``last_turn_answers`` turns the last round into the answer.
    """

    name = "iter_retgen"
    stop = _NO_STOP
    prefetch_question = True
    last_turn_answers = True
    default_max_turns = 3  # FlashRAG's iter_num

    def parse(self, text: str) -> ParsedAction:
        """A draft: a search for the whole turn; invalid when empty."""
        if not isinstance(text, str):
            return ParsedAction.invalid(f"turn is not text but {type(text).__name__}")
        if not text.strip():
            return ParsedAction.invalid("empty draft: write an answer to the question")
        return clean_query(text)


@dataclass(frozen=True)
class IRCoTProtocol(_BaselineProtocol):
    """IRCoT: one reasoning sentence per turn (stop at a newline), retrieved with, until the answer marker.

    ``parse``: a turn holding ``So the answer is`` is the answer (the rest of that line); otherwise its first
    non-empty line, minus leading ``Thought:`` labels, is the search query; an empty turn is invalid.
    """

    name = "ircot"
    stop = _LINE_STOP
    prefetch_question = True
    last_turn_answers = True
    default_max_turns = 2  # FlashRAG's max_iter

    def parse(self, text: str) -> ParsedAction:
        """The answer after the marker, else a search for the reasoning sentence."""
        if not isinstance(text, str):
            return ParsedAction.invalid(f"turn is not text but {type(text).__name__}")
        marked = _after_marker(text)
        if marked is not None:
            answer = _drop_labels(marked, _ANSWER_LABEL)
            return ParsedAction.final_answer(answer, notes=() if answer else ("empty answer",))
        thought = _drop_labels(_first_line(text), _THOUGHT_LABEL)
        if not thought:
            return ParsedAction.invalid(
                f"empty thought: write one reasoning sentence, or '{ANSWER_MARKER} ...' to answer"
            )
        return clean_query(thought)

    def format_passages(self, passages: Sequence[Passage]) -> str:
        """``Wikipedia Title: {title}\\n{text}`` blocks, as IRCoT's prompts list paragraphs."""
        return "".join(f"Wikipedia Title: {p.title}\n{p.text}\n\n" for p in passages)

    def wrap_observation(self, body: str) -> str:
        """The passages found with the last thought, then the cue for the next one."""
        return f"\n{body.strip()}\n\nThought:"

    def render_answer(self, answer: str) -> str:
        """``So the answer is: {answer}``."""
        return f"{ANSWER_MARKER} {answer}"


#: The baseline protocols by name (registered in :mod:`hopgym.envs.protocols.registry`).
BASELINE_PROTOCOLS: dict[str, type[_BaselineProtocol]] = {
    "direct": DirectProtocol,
    "naive_rag": NaiveRAGProtocol,
    "iter_retgen": IterRetGenProtocol,
    "ircot": IRCoTProtocol,
}

#: ``hopgym eval --method`` choices: ``agent`` (the protocol the env or ``--protocol`` names) or a baseline.
METHODS: tuple[str, ...] = ("agent", *BASELINE_PROTOCOLS)


def method_settings(
    method: str | None, *, protocol: str | None = None, max_turns: int | None = None
) -> dict[str, Any]:
    """``{"protocol": ..., "max_turns": ...}`` for ``hopgym eval --method``: ``agent`` (or None) keeps the given
    values; a baseline sets its protocol and, unless ``max_turns`` is given, its default number of turns.

    Raises ConfigError for an unknown method, or a baseline with another ``--protocol``.
    """
    if method is None or method == "agent":
        return {"protocol": protocol, "max_turns": max_turns}
    if method not in BASELINE_PROTOCOLS:
        raise ConfigError(f"--method {method!r} is unknown; choose one of {', '.join(METHODS)}")
    if protocol is not None and protocol != method:
        raise ConfigError(
            f"--method {method} uses its own protocol ({method}); drop --protocol {protocol}, or use "
            f"--method agent --protocol {protocol}"
        )
    cls = BASELINE_PROTOCOLS[method]
    return {"protocol": method, "max_turns": max_turns if max_turns is not None else cls.default_max_turns}
