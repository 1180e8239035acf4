"""Pull the final answer out of a whole episode, the way each seed project does.

The seeds find answer spans with the regex ``<answer>(.*?)</answer>`` (DOTALL). A regex engine retries that
pattern at every ``<answer>`` and scans to the end of the text each time when no ``</answer>`` follows, which
is quadratic: a response of 16k repeated ``<answer>`` tags (125 KiB) took 30 s. ``find_spans`` gives the
same spans in one left-to-right pass.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = [
    "extract_boxed",
    "extract_first_answer",
    "extract_last_answer",
    "extract_r1_searcher_answer",
    "find_spans",
]

_ANSWER_OPEN = "<answer>"
_ANSWER_CLOSE = "</answer>"


def find_spans(text: str, open_tag: str, close_tag: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every non-overlapping ``open_tag.*?close_tag`` match (DOTALL), left to right, as
    ``re.finditer`` yields them; ``text[start:end]`` includes both tags. Linear in ``len(text)``.

    The first match starts at the first ``open_tag`` that has a ``close_tag`` after it, which is the first
    ``open_tag`` when any does; with no ``close_tag`` after an opening, no later opening has one either.
    """
    pos = 0
    while (start := text.find(open_tag, pos)) >= 0:
        close = text.find(close_tag, start + len(open_tag))
        if close < 0:
            return
        pos = close + len(close_tag)
        yield start, pos


def extract_last_answer(response: str) -> str | None:
    """Content of the last ``<answer>...</answer>`` span, stripped, or None (Search-R1).

    Spans are matched left to right and non-greedily, so ``<answer> a <answer> b </answer>`` is one span whose
    content is ``a <answer> b``.
    """
    # find_spans inlined: this runs at the end of every Search-R1 episode.
    content: str | None = None
    start = response.find(_ANSWER_OPEN)
    while start >= 0:
        close = response.find(_ANSWER_CLOSE, start + len(_ANSWER_OPEN))
        if close < 0:
            break
        content = response[start + len(_ANSWER_OPEN) : close]
        start = response.find(_ANSWER_OPEN, close + len(_ANSWER_CLOSE))
    return None if content is None else content.strip()


def extract_first_answer(response: str) -> str | None:
    """Content of the first ``<answer>...</answer>`` span, unstripped, or None (ReSearch)."""
    for start, end in find_spans(response, _ANSWER_OPEN, _ANSWER_CLOSE):
        return response[start + len(_ANSWER_OPEN) : end - len(_ANSWER_CLOSE)]
    return None


def extract_r1_searcher_answer(response: str) -> str:
    """Text after the last ``<answer>`` up to the next ``</answer>`` (or the end), stripped (R1-Searcher).

    Without any ``<answer>`` this is the text before the first ``</answer>`` (or all of it): callers check
    for the tags themselves.
    """
    tail = response.rpartition("<answer>")[2]
    return tail.partition("</answer>")[0].strip()


def extract_boxed(text: str) -> str | None:
    r"""The content of the last ``\boxed{...}`` in ``text`` (braces matched), or None when there is none.

    Mirrors ReSearch's rules: if ``\boxed `` (with a space) occurs anywhere, the answer is what follows its
    last occurrence up to the next ``$``; otherwise the last ``\boxed`` must be followed by ``{`` and a
    balanced brace group, else None.
    """
    if "\\boxed " in text:
        return text.split("\\boxed ")[-1].split("$")[0]
    start = text.rfind("\\boxed")
    # ReSearch falls back to \fbox here but then rejects anything not starting with "\boxed{", so \fbox alone
    # never yields an answer.
    if start < 0 or not text.startswith("\\boxed{", start):
        return None
    depth = 0
    for index in range(start, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start + len("\\boxed{") : index]
    return None
