"""The dataset formats hopgym reads, and telling which one a file is (:func:`sniff_format`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from hopgym.benchmarks.datasets.paragraph_rows import hotpotqa_task, musique_task, two_wiki_task
from hopgym.benchmarks.datasets.qa_rows import (
    FieldNames,
    bamboogle_task,
    flashrag_task,
    generic_task,
    nq_open_task,
    search_r1_task,
)
from hopgym.benchmarks.datasets.records import CorpusBuilder, Where
from hopgym.benchmarks.datasets.sources import (
    Row,
    first_char,
    iter_csv,
    iter_json_list,
    iter_json_or_jsonl,
    iter_jsonl,
    iter_parquet,
)
from hopgym.errors import DataError
from hopgym.jsonl_read import iter_json_objects
from hopgym.types import Task

__all__ = [
    "FORMATS",
    "DatasetFormat",
    "format_names",
    "get_format",
    "row_converter",
    "sniff_format",
    "sniff_row",
]

# (row, where, corpus, dataset name or None) -> Task
RowConverter = Callable[[Mapping[str, Any], Where, CorpusBuilder, str | None], Task]


@dataclass(frozen=True)
class DatasetFormat:
    name: str
    describe: str
    read: Callable[[Path], Iterator[Row]]
    # Rows with paragraphs give a corpus; the prefix starts their passage ids.
    passage_prefix: str | None = None


def _flat(convert: Callable[[Mapping[str, Any], Where, str | None], Task]) -> RowConverter:
    def converter(row: Mapping[str, Any], where: Where, corpus: CorpusBuilder, dataset: str | None) -> Task:
        return convert(row, where, dataset)

    return converter


FORMATS: dict[str, DatasetFormat] = {
    f.name: f
    for f in (
        DatasetFormat(
            "flashrag", 'FlashRAG jsonl: {"id","question","golden_answers","metadata"?}', iter_jsonl
        ),
        DatasetFormat("nq_open", 'NQ-open jsonl: {"question","answer":[...]}', iter_jsonl),
        DatasetFormat(
            "search_r1_parquet",
            "Search-R1 parquet: prompt, reward_model.ground_truth.target, data_source",
            iter_parquet,
        ),
        DatasetFormat(
            "hotpotqa",
            "HotpotQA official JSON list, or Hugging Face rows (jsonl) with context.title/sentences",
            iter_json_or_jsonl,
            "hp",
        ),
        DatasetFormat(
            "musique",
            "MuSiQue jsonl: paragraphs, answer, answer_aliases, question_decomposition",
            iter_jsonl,
            "mq",
        ),
        DatasetFormat(
            "2wiki",
            "2WikiMultiHopQA JSON list: _id, type, question, context, supporting_facts, answer",
            iter_json_or_jsonl,
            "2w",
        ),
        DatasetFormat("bamboogle", "Bamboogle CSV with columns Question,Answer", iter_csv),
        DatasetFormat(
            "generic",
            "any jsonl: name the fields with --question-field/--answer-field/--id-field",
            iter_jsonl,
        ),
    )
}

_CONVERTERS: dict[str, RowConverter] = {
    "flashrag": _flat(flashrag_task),
    "nq_open": _flat(nq_open_task),
    "search_r1_parquet": _flat(search_r1_task),
    "hotpotqa": hotpotqa_task,
    "musique": musique_task,
    "2wiki": two_wiki_task,
    "bamboogle": _flat(bamboogle_task),
}


def format_names() -> list[str]:
    return list(FORMATS)


def get_format(name: str) -> DatasetFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise DataError(f"unknown dataset format {name!r}: use one of {', '.join(FORMATS)}") from None


def row_converter(name: str, fields: FieldNames | None = None) -> RowConverter:
    """The function turning one row of format ``name`` into a Task."""
    get_format(name)
    if name == "generic":
        generic = partial(generic_task, fields=fields or FieldNames())
        return _flat(generic)
    return _CONVERTERS[name]


def sniff_row(row: Mapping[str, Any]) -> str | None:
    """The format one decoded row looks like, or None."""
    if "paragraphs" in row and "question_decomposition" in row:
        return "musique"
    if "context" in row and "question" in row:
        return "2wiki" if "evidences" in row else "hotpotqa"
    if "reward_model" in row and "prompt" in row:
        return "search_r1_parquet"
    if "golden_answers" in row and "question" in row:
        return "flashrag"
    if "question" in row and isinstance(row.get("answer"), list):
        return "nq_open"
    return None


def _first_json_row(path: Path) -> Mapping[str, Any] | None:
    if first_char(path) == "[":
        for _, row in iter_json_list(path):
            return row
        return None
    for _, row in iter_json_objects(path, what="dataset file"):
        return row
    return None


def sniff_format(path: str | Path) -> str:
    """The format of a dataset file, from its suffix and its first row; DataError when it cannot tell."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        return "search_r1_parquet"
    if suffix == ".csv":
        return "bamboogle"
    row = _first_json_row(p)
    if row is None:
        raise DataError("no rows to tell the format from (the file is empty)", path=str(p))
    name = sniff_row(row)
    if name is None and "contents" in row and "question" not in row:
        raise DataError(
            "this is a corpus (passages with 'contents'), not a question file: index it with hopgym index "
            "build --corpus FILE, and give the questions' file here",
            path=str(p),
        )
    if name is None:
        fields = ", ".join(sorted(map(str, row)))
        raise DataError(
            f"cannot tell the dataset format from the first row's fields ({fields}): pass --format "
            f"({', '.join(FORMATS)}); for other jsonl use --format generic --question-field F --answer-field F",
            path=str(p),
        )
    return name
