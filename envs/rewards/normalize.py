"""Answer normalizations used by the seed projects' metrics."""

from __future__ import annotations

import re
import string

__all__ = ["normalize_answer", "normalize_cover"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_DELETE_PUNCTUATION = str.maketrans("", "", string.punctuation)
# R1-Searcher also treats typographic quotes and accents as punctuation, and turns them into spaces so that
# "o'neill" becomes two tokens instead of one.
_SPACE_PUNCTUATION = str.maketrans(dict.fromkeys(string.punctuation + "‘’´`", " "))
# R1-Searcher maps the Python-style booleans found in some datasets' answers onto yes/no before comparing.
_BOOL_WORDS = {"True": "yes", "False": "no"}


def normalize_answer(text: str) -> str:
    """SQuAD-style: lowercase, delete punctuation, drop a/an/the, collapse whitespace."""
    text = text.lower().translate(_DELETE_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def normalize_cover(text: str) -> str:
    """R1-Searcher's: True/False -> yes/no, punctuation and ``_`` become spaces, then SQuAD-style."""
    text = _BOOL_WORDS.get(text, text)
    text = text.replace("_", " ").lower().translate(_SPACE_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())
