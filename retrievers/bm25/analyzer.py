"""Lexical tokenization for the BM25 backend: lowercase, split on word characters, drop stopwords, stem.

Indexing and querying must tokenize identically, so the settings (and the resolved stopword list) are stored
in the index directory and a :class:`Tokenizer` is rebuilt from them on open.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hopgym.errors import ConfigError, require

__all__ = ["DEFAULT_TOKEN_PATTERN", "STOPWORD_LISTS", "Tokenizer", "TokenizerConfig"]

#: bm25s' default splitter: runs of two or more word characters (single letters carry little signal).
DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"

#: Named stopword lists (resolved from bm25s). "en" is Lucene's 33-word English list, as pyserini uses.
STOPWORD_LISTS = ("en", "english", "en_plus")

# Query words are cached (word -> term id) to skip stemming; bound the cache so odd traffic cannot grow it.
_QUERY_CACHE_LIMIT = 200_000
_STOPWORD = -1
_UNKNOWN = -2


def _named_stopwords(name: str) -> tuple[str, ...]:
    module: Any = require("bm25s.stopwords", extra="bm25", purpose="BM25 stopword lists")
    if name in ("en", "english"):
        return tuple(module.STOPWORDS_EN)
    return tuple(module.STOPWORDS_EN_PLUS)


@dataclass(frozen=True)
class TokenizerConfig:
    """How text becomes BM25 terms.

    ``stemmer`` is a PyStemmer algorithm name ("english" is Snowball/Porter2, "porter" the original Porter
    stemmer pyserini uses) or None; ``stopwords`` is a name from :data:`STOPWORD_LISTS`, an explicit list of
    words, or None for none.
    """

    stemmer: str | None = "english"
    stopwords: str | tuple[str, ...] | None = "en"
    lowercase: bool = True
    token_pattern: str = DEFAULT_TOKEN_PATTERN

    def __post_init__(self) -> None:
        if self.stemmer is not None:
            if not isinstance(self.stemmer, str) or not self.stemmer:
                raise ConfigError(f"stemmer must be a PyStemmer algorithm name or None, got {self.stemmer!r}")
            stemmer_module: Any = require("Stemmer", extra="bm25", purpose="BM25 stemming")
            algorithms = stemmer_module.algorithms()
            if self.stemmer not in algorithms:
                raise ConfigError(
                    f"stemmer {self.stemmer!r} is not a PyStemmer algorithm; use one of "
                    f"{', '.join(algorithms)} or None to disable stemming"
                )
        if isinstance(self.stopwords, str):
            if self.stopwords not in STOPWORD_LISTS:
                raise ConfigError(
                    f"stopwords {self.stopwords!r} is not a known list; use one of "
                    f"{', '.join(STOPWORD_LISTS)}, an explicit list of words, or None"
                )
        elif self.stopwords is not None:
            words = tuple(self.stopwords)
            if not all(isinstance(w, str) for w in words):
                raise ConfigError("stopwords must be a list name, a list of strings, or None")
            object.__setattr__(self, "stopwords", words)
        if not isinstance(self.lowercase, bool):
            raise ConfigError(f"lowercase must be true or false, got {self.lowercase!r}")
        try:
            re.compile(self.token_pattern)
        except (re.error, TypeError) as exc:
            raise ConfigError(
                f"token_pattern {self.token_pattern!r} is not a valid regular expression: {exc}"
            ) from exc

    def stopword_list(self) -> tuple[str, ...]:
        """The resolved stopwords (lowercased when ``lowercase`` is set, since they are matched after it)."""
        if self.stopwords is None:
            return ()
        words = _named_stopwords(self.stopwords) if isinstance(self.stopwords, str) else self.stopwords
        return tuple(w.lower() for w in words) if self.lowercase else tuple(words)

    def to_json(self) -> dict[str, Any]:
        stopwords = list(self.stopwords) if isinstance(self.stopwords, tuple) else self.stopwords
        return {
            "stemmer": self.stemmer,
            "stopwords": stopwords,
            "lowercase": self.lowercase,
            "token_pattern": self.token_pattern,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenizerConfig:
        stopwords = data.get("stopwords")
        return cls(
            stemmer=data.get("stemmer"),
            stopwords=tuple(stopwords) if isinstance(stopwords, list) else stopwords,
            lowercase=bool(data.get("lowercase", True)),
            token_pattern=str(data.get("token_pattern", DEFAULT_TOKEN_PATTERN)),
        )


class Tokenizer:
    """Text to term ids over a vocabulary (stem -> id).

    ``encode_for_index`` grows the vocabulary (building); ``encode_query`` only reads it and drops unknown
    terms. Query encoding is thread-safe (PyStemmer objects are not, so stemming takes a lock).
    """

    def __init__(
        self,
        config: TokenizerConfig,
        *,
        vocab: dict[str, int] | None = None,
        stopwords: tuple[str, ...] | None = None,
    ) -> None:
        self.config = config
        self.vocab: dict[str, int] = vocab if vocab is not None else {}
        self.stopwords = frozenset(config.stopword_list() if stopwords is None else stopwords)
        self._split = re.compile(config.token_pattern).findall
        self._stem_word: Any = None
        if config.stemmer is not None:
            stemmer_module: Any = require("Stemmer", extra="bm25", purpose="BM25 stemming")
            self._stem_word = stemmer_module.Stemmer(config.stemmer).stemWord
        self._stem_lock = threading.Lock()
        self._index_words: dict[str, int] = {}
        self._query_words: dict[str, int] = {}

    def words(self, text: str) -> list[str]:
        """The raw words of ``text`` (after lowercasing), before stopword removal and stemming."""
        words: list[str] = self._split(text.lower() if self.config.lowercase else text)
        return words

    def _stem(self, word: str) -> str:
        if self._stem_word is None:
            return word
        with self._stem_lock:
            stem: str = self._stem_word(word)
        return stem

    def encode_for_index(self, text: str) -> list[int]:
        """Term ids of a passage, adding new terms to the vocabulary."""
        ids: list[int] = []
        cache = self._index_words
        for word in self.words(text):
            tid = cache.get(word)
            if tid is None:
                if word in self.stopwords:
                    tid = _STOPWORD
                else:
                    stem = self._stem(word)
                    tid = self.vocab.get(stem)
                    if tid is None:
                        tid = len(self.vocab)
                        self.vocab[stem] = tid
                cache[word] = tid
            if tid >= 0:
                ids.append(tid)
        return ids

    def encode_query(self, text: str) -> list[int]:
        """Term ids of a query; words that are stopwords or absent from the vocabulary are dropped."""
        ids: list[int] = []
        cache = self._query_words
        for word in self.words(text):
            tid = cache.get(word)
            if tid is None:
                tid = _STOPWORD if word in self.stopwords else self.vocab.get(self._stem(word), _UNKNOWN)
                if len(cache) >= _QUERY_CACHE_LIMIT:
                    cache.clear()
                cache[word] = tid
            if tid >= 0:
                ids.append(tid)
        return ids

    def terms(self, text: str) -> list[str]:
        """The index terms (stems) of ``text``, for inspection and tests."""
        return [self._stem(w) for w in self.words(text) if w not in self.stopwords]
