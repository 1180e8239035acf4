"""Answer normalizations used by the seed projects' metrics."""

from __future__ import annotations

import re
import string
from functools import lru_cache

__all__ = ["normalize_answer", "normalize_cover"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_DELETE_PUNCTUATION = str.maketrans("", "", string.punctuation)
# R1-Searcher also treats typographic quotes and accents as punctuation, and turns them into spaces so that
# "o'neill" becomes two tokens instead of one.
_SPACE_PUNCTUATION = str.maketrans(dict.fromkeys(string.punctuation + "‘’´`", " "))
# R1-Searcher maps the Python-style booleans found in some datasets' answers onto yes/no before comparing.
_BOOL_WORDS = {"True": "yes", "False": "no"}


# Golden answers are normalized again in every episode of their task and short predictions repeat, so short
# texts are cached; long ones (a whole response, for sub_em) are not kept.
_CACHED_CHARS = 256
_CACHE_SIZE = 16_384


def normalize_answer(text: str) -> str:
    """SQuAD-style: lowercase, delete punctuation, drop a/an/the, collapse whitespace."""
    return _normalize_answer_cached(text) if len(text) <= _CACHED_CHARS else _normalize_answer(text)


def _normalize_answer(text: str) -> str:
    text = text.lower().translate(_DELETE_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


_normalize_answer_cached = lru_cache(maxsize=_CACHE_SIZE)(_normalize_answer)


def normalize_cover(text: str) -> str:
    """R1-Searcher's: True/False -> yes/no, punctuation and ``_`` become spaces, then SQuAD-style."""
    return _normalize_cover_cached(text) if len(text) <= _CACHED_CHARS else _normalize_cover(text)


def _normalize_cover(text: str) -> str:
    text = _BOOL_WORDS.get(text, text)
    text = text.replace("_", " ").lower().translate(_SPACE_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


_normalize_cover_cached = lru_cache(maxsize=_CACHE_SIZE)(_normalize_cover)
