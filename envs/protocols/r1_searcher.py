"""The R1-Searcher protocol: ``<|begin_of_query|>...<|end_of_query|>``, numbered documents, ``<answer>``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hopgym.envs.protocols.tag_parsing import (
    THINK_CLOSE,
    THINK_OPEN,
    ActionTags,
    clean_query,
)
from hopgym.envs.protocols.tag_protocol import TagProtocol
from hopgym.types import ParsedAction, Passage

__all__ = ["R1SearcherProtocol"]

BEGIN_OF_QUERY = "<|begin_of_query|>"
END_OF_QUERY = "<|end_of_query|>"
BEGIN_OF_DOCUMENTS = "<|begin_of_documents|>"
END_OF_DOCUMENTS = "<|end_of_documents|>"

_TAGS = (ActionTags("search", BEGIN_OF_QUERY, END_OF_QUERY), ActionTags("answer", "<answer>", "</answer>"))
# R1-Searcher's evaluation stops on <|end_of_query|> and </answer> (plus EOS); its training rollout on
# <|end_of_query|> alone (RUCAIBox/R1-Searcher evaluation/eval_search_loacl.py,
# OpenRLHF-RAG/openrlhf/trainer/ppo_utils/experience_maker.py).
_STOP: tuple[str, ...] = (END_OF_QUERY, "</answer>")


@dataclass(frozen=True)
class R1SearcherProtocol(TagProtocol):
    """R1-Searcher (RUCAIBox/R1-Searcher) markers.

    The prompt ends with ``<think>`` and queries are issued *inside* the reasoning, so ``parse`` does not
    drop reasoning; it takes the first complete action (query or ``<answer>``) and ignores later ones with a
    note. When several ``<|begin_of_query|>`` precede the first ``<|end_of_query|>`` the last one starts the
    query, as R1-Searcher's ``split(...)[-1]`` does. Queries are cleaned like R1-Searcher's rollout: double
    quotes removed and whitespace collapsed. Invalid: no action, an unclosed marker, an empty query, or
    markers nested inside the action.
    """

    name = "r1_searcher"
    stop = _STOP
    default_reward = "r1_searcher"
    action_tags = _TAGS
    forbidden_inside = (BEGIN_OF_DOCUMENTS, END_OF_DOCUMENTS, THINK_OPEN, THINK_CLOSE)
    # R1-Searcher writes its queries inside the reasoning, so nothing is dropped.
    drop_think = False
    default_invalid_template = (
        "\n[Invalid action: {reason}. Search with <|begin_of_query|> keywords <|end_of_query|> or answer with"
        " <answer> answer </answer>.]\n"
    )

    def interpret_search(self, content: str, notes: tuple[str, ...]) -> ParsedAction:
        return clean_query(" ".join(content.replace('"', "").split()), notes)

    def format_passages(self, passages: Sequence[Passage]) -> str:
        """``({i}){title}   {text}`` lines, ``None`` when empty.

        R1-Searcher numbers corpus rows as ``f"({j+1}){doc}\\n"`` (evaluation/eval_search_loacl.py), and its
        KILT rows are ``title``, three spaces, 100 words of text
        (wiki_corpus_index_bulid/split_kilt_to_100.py).
        """
        if not passages:
            return "None"
        lines = []
        for i, passage in enumerate(passages, start=1):
            doc = f"{passage.title}   {passage.text}" if passage.title else passage.text
            lines.append(f"({i}){doc}\n")
        return "".join(lines)

    def wrap_observation(self, body: str) -> str:
        """``\\n\\n<|begin_of_documents|>\\n{body}<|end_of_documents|>\\n\\n`` (follows ``<|end_of_query|>``).

        As R1-Searcher's rollout builds it (experience_maker.py; "None" as body when nothing was found).
        """
        return f"\n\n{BEGIN_OF_DOCUMENTS}\n{body}{END_OF_DOCUMENTS}\n\n"

    def render_search(self, query: str) -> str:
        """``<|begin_of_query|> query<|end_of_query|>`` (R1-Searcher models put no space before the end)."""
        return f"{BEGIN_OF_QUERY} {query}{END_OF_QUERY}"
