"""QA dataset readers: each known format into FlashRAG-style tasks, plus a deduplicated corpus when the rows
carry their own paragraphs (HotpotQA, MuSiQue, 2Wiki).

``read_dataset(path)`` sniffs the format (``sniff_format``) or takes ``fmt=``; ``prepare_dataset(path, out)``
writes ``tasks.jsonl`` and ``corpus.jsonl``; ``load_dataset_tasks(path)`` gives the Tasks (``hopgym eval
--data``); ``read_hf_dataset(name, config=, split=)`` reads a Hugging Face hub split.
"""

from __future__ import annotations

from hopgym.benchmarks.datasets.formats import FORMATS, DatasetFormat, format_names, sniff_format, sniff_row
from hopgym.benchmarks.datasets.prepare import (
    CORPUS_FILE,
    TASKS_FILE,
    PreparedDataset,
    PrepareOptions,
    convert_rows,
    load_dataset_tasks,
    prepare_dataset,
    read_dataset,
    read_hf_dataset,
    write_prepared,
)
from hopgym.benchmarks.datasets.qa_rows import FieldNames
from hopgym.benchmarks.datasets.records import CorpusBuilder, Where, passage_contents, passage_id

__all__ = [
    "CORPUS_FILE",
    "FORMATS",
    "TASKS_FILE",
    "CorpusBuilder",
    "DatasetFormat",
    "FieldNames",
    "PrepareOptions",
    "PreparedDataset",
    "Where",
    "convert_rows",
    "format_names",
    "load_dataset_tasks",
    "passage_contents",
    "passage_id",
    "prepare_dataset",
    "read_dataset",
    "read_hf_dataset",
    "sniff_format",
    "sniff_row",
    "write_prepared",
]
