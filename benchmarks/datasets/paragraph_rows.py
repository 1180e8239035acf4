"""Rows that carry their own paragraphs: HotpotQA, MuSiQue and 2WikiMultiHopQA in their original layouts.

Each paragraph goes into the shared :class:`CorpusBuilder` (so a paragraph shown with many questions is one
passage) and each task's metadata lists its supporting passages' ids (``supporting_passage_ids``) for
retrieval recall. A paragraph's text is its sentences joined with one space, as in the HotpotQA corpus of
the project's shared data (HotpotQA's sentences keep their leading spaces, so the join can leave
two); with prefix ``hp`` the ids equal that corpus's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hopgym.benchmarks.datasets.records import CorpusBuilder, Where, answers_of, id_of, require, require_text
from hopgym.jsonl_read import json_type
from hopgym.types import Task

__all__ = ["hotpotqa_task", "musique_task", "two_wiki_task"]


def _sentences_text(sentences: Any, field_name: str, where: Where) -> str:
    if isinstance(sentences, str):
        return sentences
    if not isinstance(sentences, Sequence) or not all(isinstance(s, str) for s in sentences):
        raise where.error(field_name, f"must be a list of sentence strings, got {json_type(sentences)}")
    return " ".join(sentences)


def _context_pairs(context: Any, where: Where) -> list[tuple[str, str]]:
    """``[(title, text)]`` from the original ``[[title, [sentences]]]`` or Hugging Face's
    ``{"title": [...], "sentences": [[...]]}``."""
    if isinstance(context, Mapping):
        titles, sentences = context.get("title"), context.get("sentences")
        if not isinstance(titles, list) or not isinstance(sentences, list) or len(titles) != len(sentences):
            raise where.error(
                "context", "must hold lists 'title' and 'sentences' of the same length (Hugging Face layout)"
            )
        raw = list(zip(titles, sentences, strict=True))
    elif isinstance(context, list):
        raw = []
        for index, pair in enumerate(context):
            if not isinstance(pair, list) or len(pair) != 2:
                raise where.error(f"context[{index}]", "must be a [title, [sentences]] pair")
            raw.append((pair[0], pair[1]))
    else:
        raise where.error("context", f"must be a list of [title, sentences] pairs, got {json_type(context)}")
    pairs = []
    for index, (title, sentences) in enumerate(raw):
        if not isinstance(title, str):
            raise where.error(f"context[{index}] title", f"must be a string, got {json_type(title)}")
        pairs.append((title, _sentences_text(sentences, f"context[{index}] sentences", where)))
    return pairs


def _supporting_titles(facts: Any, where: Where) -> list[str]:
    """The titles of ``[[title, sent_id]]`` or ``{"title": [...], "sent_id": [...]}``, each once."""
    if isinstance(facts, Mapping):
        titles = facts.get("title")
        if not isinstance(titles, list):
            raise where.error("supporting_facts", "must hold a list 'title' (Hugging Face layout)")
    elif isinstance(facts, list):
        titles = []
        for index, fact in enumerate(facts):
            if not isinstance(fact, list) or not fact:
                raise where.error(f"supporting_facts[{index}]", "must be a [title, sentence index] pair")
            titles.append(fact[0])
    else:
        raise where.error(
            "supporting_facts", f"must be a list of [title, sentence index], got {json_type(facts)}"
        )
    for index, title in enumerate(titles):
        if not isinstance(title, str):
            raise where.error(f"supporting_facts[{index}]", f"title must be a string, got {json_type(title)}")
    return list(dict.fromkeys(titles))


def _context_task(
    row: Mapping[str, Any], where: Where, corpus: CorpusBuilder, dataset: str, extras: Sequence[str]
) -> Task:
    raw_id = row.get("_id", row.get("id"))
    if raw_id is None:
        raise where.error("_id", "missing: every question needs its id")
    task_id = id_of(raw_id, "_id" if "_id" in row else "id", where)
    question = require_text(row, "question", where)
    if "answer" not in row:
        raise where.error(
            "answer", "missing (a test split without answers cannot be scored: use a dev split)"
        )
    golds = answers_of(row["answer"], "answer", where)
    pairs = _context_pairs(require(row, "context", (list, dict), where, "a list of paragraphs"), where)
    ids_by_title: dict[str, str] = {}
    for title, text in pairs:
        pid = corpus.add(title, text)
        ids_by_title.setdefault(title, pid)  # 2Wiki repeats a title now and then; its first paragraph counts
    supporting = []
    for title in _supporting_titles(row.get("supporting_facts", []), where):
        if title not in ids_by_title:
            raise where.error("supporting_facts", f"title {title!r} is not among the row's context titles")
        supporting.append(ids_by_title[title])
    # Supporting passages in context order, as the shared HotpotQA task file lists them.
    order = {pid: i for i, pid in enumerate(dict.fromkeys(ids_by_title.values()))}
    metadata: dict[str, Any] = {
        "dataset": dataset,
        "supporting_passage_ids": sorted(supporting, key=lambda pid: order[pid]),
    }
    for extra in extras:
        if row.get(extra) is not None:
            metadata[extra] = row[extra]
    return Task(task_id, question, golds, metadata)


def hotpotqa_task(row: Mapping[str, Any], where: Where, corpus: CorpusBuilder, dataset: str | None) -> Task:
    """HotpotQA: the official JSON (``_id``, ``context`` as ``[[title, [sentences]]]``, ``supporting_facts``
    as ``[[title, i]]``) or Hugging Face rows (``id``, ``context.title/sentences``,
    ``supporting_facts.title/sent_id``); ``type`` and ``level`` go into the metadata."""
    return _context_task(row, where, corpus, dataset or "hotpotqa", ("type", "level"))


def two_wiki_task(row: Mapping[str, Any], where: Where, corpus: CorpusBuilder, dataset: str | None) -> Task:
    """2WikiMultiHopQA's original JSON: HotpotQA's layout plus ``type`` (comparison, inference,
    compositional, bridge_comparison) and ``evidences`` (the (subject, relation, object) chain)."""
    return _context_task(row, where, corpus, dataset or "2wiki", ("type", "evidences"))


def musique_task(row: Mapping[str, Any], where: Where, corpus: CorpusBuilder, dataset: str | None) -> Task:
    """MuSiQue's original jsonl: ``paragraphs`` (``idx, title, paragraph_text, is_supporting``), ``answer``
    plus ``answer_aliases`` (all golden), ``question_decomposition`` (one entry per hop)."""
    task_id = id_of(require(row, "id", (str, int), where, "a string"), "id", where)
    question = require_text(row, "question", where)
    answer = answers_of(require(row, "answer", str, where, "a string"), "answer", where)
    aliases_value = row.get("answer_aliases") or []
    aliases = answers_of(aliases_value, "answer_aliases", where) if aliases_value else ()
    golds = tuple(dict.fromkeys(answer + aliases))
    paragraphs = require(row, "paragraphs", list, where, "a list of paragraph objects")
    supporting = []
    for index, paragraph in enumerate(paragraphs):
        name = f"paragraphs[{index}]"
        if not isinstance(paragraph, Mapping):
            raise where.error(name, f"must be an object, got {json_type(paragraph)}")
        title = require(paragraph, "title", str, where, "a string", label=f"{name}.title")
        text = require(paragraph, "paragraph_text", str, where, "a string", label=f"{name}.paragraph_text")
        pid = corpus.add(title, text)
        if paragraph.get("is_supporting") is True and pid not in supporting:
            supporting.append(pid)
    decomposition = require(row, "question_decomposition", list, where, "a list of sub-questions")
    if not decomposition:
        raise where.error("question_decomposition", "is empty: it has one entry per hop")
    metadata: dict[str, Any] = {
        "dataset": dataset or "musique",
        "hops": len(decomposition),
        "supporting_passage_ids": supporting,
    }
    # MuSiQue's ids start with the composition's shape: 2hop, 3hop1, 3hop2, 4hop1, 4hop2, 4hop3.
    shape, sep, _ = task_id.partition("__")
    if sep:
        metadata["type"] = shape
    if isinstance(row.get("answerable"), bool):
        metadata["answerable"] = row["answerable"]
    return Task(task_id, question, golds, metadata)
