"""Capping observation length, in characters or in tokens, without breaking the protocol's wrapper tags."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ObservationCap", "TokenCounter"]

#: Counts the tokens of a text, e.g. ``lambda s: len(tokenizer.encode(s, add_special_tokens=False))``.
TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class ObservationCap:
    """Limits on an observation body (the passages text inside the wrapper tags).

    The body is cut, never the wrapper, so the policy always sees balanced tags.
    """

    max_chars: int | None = None
    max_tokens: int | None = None
    count_tokens: TokenCounter | None = None

    def apply(self, body: str) -> tuple[str, bool]:
        """Return (possibly shortened body, whether it was shortened)."""
        cut = False
        if self.max_chars is not None and len(body) > self.max_chars:
            body, cut = body[: self.max_chars], True
        if (
            self.max_tokens is not None
            and self.count_tokens is not None
            and self.count_tokens(body) > self.max_tokens
        ):
            body, cut = self._cut_tokens(body, self.count_tokens, self.max_tokens), True
        return body, cut

    @staticmethod
    def _cut_tokens(body: str, count: TokenCounter, limit: int) -> str:
        # Binary search on the character prefix: O(log n) tokenizer calls and tokenizer-agnostic.
        lo, hi = 0, len(body)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(body[:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        return body[:lo]
