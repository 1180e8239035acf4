"""Pull the final answer out of a whole episode, the way each seed project does."""

from __future__ import annotations

import re

__all__ = ["extract_boxed", "extract_first_answer", "extract_last_answer", "extract_r1_searcher_answer"]

_ANSWER_SPAN = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def extract_last_answer(response: str) -> str | None:
    """Content of the last ``<answer>...</answer>`` span, stripped, or None (Search-R1).

    Spans are matched left to right and non-greedily, so ``<answer> a <answer> b </answer>`` is one span whose
    content is ``a <answer> b``.
    """
    spans = _ANSWER_SPAN.findall(response)
    return spans[-1].strip() if spans else None


def extract_first_answer(response: str) -> str | None:
    """Content of the first ``<answer>...</answer>`` span, unstripped, or None (ReSearch)."""
    match = _ANSWER_SPAN.search(response)
    return match.group(1) if match else None


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
