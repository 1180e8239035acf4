"""Made-up, pronounceable name stems built from syllables, and their similar-sounding variants."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from hopgym.errors import ConfigError

__all__ = ["NameForge"]

_ONSETS = (
    "b",
    "d",
    "f",
    "g",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "br",
    "dr",
    "gr",
    "kr",
    "tr",
)
# Repeats weight the draw (open syllables and plain vowels are the most common); variants pick among the
# distinct values.
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai")
_CODAS = ("", "", "", "", "n", "r", "l", "s", "m", "th")
_DISTINCT_CODAS = tuple(dict.fromkeys(_CODAS))
_DISTINCT_VOWELS = tuple(dict.fromkeys(_VOWELS))
# Stems shorter than this read like English words or initials.
_MIN_LEN = 4


class NameForge:
    """Hands out unique title-case stems and one-syllable variants of them, from one ``random.Random``.

    A stem, once handed out (as a name or as a variant), is never handed out again, and stems never collide
    with a word in ``banned``, so every name is a token of its own.
    """

    def __init__(self, rng: random.Random, banned: frozenset[str], pool: Sequence[str] | None = None) -> None:
        self._rng = rng
        self._banned = banned
        self._used: set[str] = set()
        # The syllables of each stem, so that a variant can change exactly one of them.
        self._syllables: dict[str, tuple[str, ...]] = {}
        # With a pool, stems are handed out from it in an order of this forge's own (popped from the end).
        self._pool: list[str] | None = None if pool is None else rng.sample(list(pool), len(pool))

    def _syllable(self) -> str:
        rng = self._rng
        return rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)

    def _claim(self, syllables: tuple[str, ...]) -> str | None:
        word = "".join(syllables)
        if len(word) < _MIN_LEN or word in self._banned or word in self._used:
            return None
        self._used.add(word)
        stem = word.capitalize()
        self._syllables[stem] = syllables
        return stem

    def stem(self) -> str:
        """A fresh stem of two or three syllables (with a pool: the next unused stem of the pool)."""
        if self._pool is not None:
            return self._from_pool()
        return self._retry(
            lambda: self._claim(tuple(self._syllable() for _ in range(self._rng.choice((2, 2, 3)))))
        )

    def variant(self, stem: str) -> str:
        """A fresh stem that differs from ``stem`` in one syllable's onset, vowel or coda (with a pool: another
        unused stem of the pool)."""
        if self._pool is not None:
            return self._from_pool()
        syllables = self._syllables[stem]

        def attempt() -> str | None:
            i = self._rng.randrange(len(syllables))
            changed = list(syllables)
            changed[i] = self._mutate(syllables[i])
            return self._claim(tuple(changed))

        return self._retry(attempt)

    def _from_pool(self) -> str:
        assert self._pool is not None
        while self._pool:
            stem = self._pool.pop()
            if stem not in self._used:
                self._used.add(stem)
                return stem
        raise ConfigError(
            "the name pool is used up: this world needs more stems than name_pool holds; raise name_pool or "
            "lower num_entities/num_questions"
        )

    def _mutate(self, syllable: str) -> str:
        rng = self._rng
        onset = next(o for o in sorted(_ONSETS, key=len, reverse=True) if syllable.startswith(o))
        rest = syllable[len(onset) :]
        vowel = next(v for v in sorted(_VOWELS, key=len, reverse=True) if rest.startswith(v))
        coda = rest[len(vowel) :]
        part = rng.randrange(3)
        if part == 0:
            onset = rng.choice([o for o in _ONSETS if o != onset])
        elif part == 1:
            vowel = rng.choice([v for v in _DISTINCT_VOWELS if v != vowel])
        else:
            coda = rng.choice([c for c in _DISTINCT_CODAS if c != coda])
        return onset + vowel + coda

    @staticmethod
    def _retry(attempt: Callable[[], str | None]) -> str:
        # The name space (hundreds of thousands of stems) dwarfs any world size, so failures are rare.
        for _ in range(1000):
            name = attempt()
            if name is not None:
                return name
        raise RuntimeError(
            "NameForge ran out of fresh names; this world is far larger than HopWorld supports"
        )
