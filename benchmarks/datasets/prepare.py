"""Reading a dataset in any known format into tasks (and a corpus), and writing them as a prepared directory.

``prepare_dataset(IN, OUT)`` writes ``OUT/tasks.jsonl`` (FlashRAG style) and, for formats whose rows carry
their own paragraphs, ``OUT/corpus.jsonl`` (``{"id","contents"}``, each paragraph once, stable ids), ready
for ``hopgym index build --corpus OUT/corpus.jsonl`` and ``hopgym eval --data OUT/tasks.jsonl``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hopgym.benchmarks.datasets.formats import get_format, row_converter, sniff_format, sniff_row
from hopgym.benchmarks.datasets.qa_rows import FieldNames
from hopgym.benchmarks.datasets.records import CorpusBuilder
from hopgym.benchmarks.datasets.sources import Row
from hopgym.errors import ConfigError, DataError
from hopgym.types import Task

__all__ = [
    "CORPUS_FILE",
    "TASKS_FILE",
    "PrepareOptions",
    "PreparedDataset",
    "convert_rows",
    "load_dataset_tasks",
    "prepare_dataset",
    "read_dataset",
    "read_hf_dataset",
    "write_prepared",
]

logger = logging.getLogger(__name__)

TASKS_FILE = "tasks.jsonl"
CORPUS_FILE = "corpus.jsonl"


@dataclass(frozen=True)
class PrepareOptions:
    """How to read a dataset. ``dataset`` overrides the name put in each task's ``metadata["dataset"]``;
    ``passage_prefix`` the start of passage ids; ``limit`` keeps the first N questions; ``fields`` names the
    generic format's fields. MuSiQue-Full's unanswerable questions are left out unless
    ``keep_unanswerable``: MuSiQue's official script scores answers on the answerable ones only."""

    dataset: str | None = None
    passage_prefix: str | None = None
    limit: int | None = None
    keep_unanswerable: bool = False
    fields: FieldNames = field(default_factory=FieldNames)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit={self.limit}: keep at least 1 question, or no limit")
        if self.passage_prefix is not None and (not self.passage_prefix or "\n" in self.passage_prefix):
            raise ConfigError("passage_prefix must be a non-empty single-line string, e.g. 'hp'")


@dataclass(frozen=True)
class PreparedDataset:
    format: str
    source: str
    tasks: tuple[Task, ...]
    passages: tuple[dict[str, str], ...] = ()
    # Questions left out, by reason (e.g. {"unanswerable": 1200} for MuSiQue-Full).
    skipped: Mapping[str, int] = field(default_factory=dict)


def convert_rows(rows: Iterable[Row], fmt: str, source: str, options: PrepareOptions) -> PreparedDataset:
    """Tasks (and passages) from rows of format ``fmt``; task ids must be unique."""
    spec = get_format(fmt)
    convert = row_converter(fmt, options.fields)
    corpus = CorpusBuilder(options.passage_prefix or spec.passage_prefix or fmt)
    tasks: list[Task] = []
    first_seen: dict[str, str] = {}
    skipped: dict[str, int] = {}
    for where, row in rows:
        if options.limit is not None and len(tasks) >= options.limit:
            break
        task = convert(row, where, corpus, options.dataset)
        if task.metadata.get("answerable") is False and not options.keep_unanswerable:
            skipped["unanswerable"] = skipped.get("unanswerable", 0) + 1
            continue
        place = f"line {where.line}" if where.line is not None else f"record {where.record}"
        if task.id in first_seen:
            raise where.error(
                "id", f"duplicate task id {task.id!r} (first at {first_seen[task.id]}): ids must be unique"
            )
        first_seen[task.id] = place
        tasks.append(task)
    if skipped:
        logger.info("%s: left out %s", source, ", ".join(f"{n} {why}" for why, n in skipped.items()))
    if not tasks:
        more = " (all unanswerable: keep them with --keep-unanswerable)" if skipped else ""
        raise DataError(f"no questions in the dataset{more}", path=source)
    passages = tuple(corpus.passages()) if spec.passage_prefix is not None else ()
    return PreparedDataset(fmt, source, tuple(tasks), passages, skipped)


def read_dataset(
    path: str | Path, fmt: str | None = None, options: PrepareOptions | None = None
) -> PreparedDataset:
    """Read a dataset file; ``fmt`` None sniffs it (:func:`sniff_format`)."""
    p = Path(path)
    if not p.exists():
        raise DataError("dataset file not found (check the path)", path=str(p))
    name = fmt or sniff_format(p)
    return convert_rows(get_format(name).read(p), name, str(p), options or PrepareOptions())


def read_hf_dataset(
    name: str,
    fmt: str | None = None,
    *,
    config: str | None = None,
    split: str = "validation",
    options: PrepareOptions | None = None,
) -> PreparedDataset:
    """Read one split of a Hugging Face hub dataset (online, or from the local cache with HF_HUB_OFFLINE=1);
    ``fmt`` None tells the format from the first row."""
    from hopgym.benchmarks.datasets.huggingface import hf_source_name, iter_hf_rows

    source = hf_source_name(name, config, split)
    rows = iter_hf_rows(name, config, split)
    first = next(rows, None)
    if first is None:
        raise DataError("the split has no rows", path=source)
    chosen = fmt or sniff_row(first[1])
    if chosen is None:
        fields = ", ".join(sorted(map(str, first[1])))
        raise DataError(f"cannot tell the format from the fields ({fields}): pass --format", path=source)
    return convert_rows(itertools.chain([first], rows), chosen, source, options or PrepareOptions())


def load_dataset_tasks(
    path: str | Path, fmt: str | None = None, options: PrepareOptions | None = None
) -> list[Task]:
    """The tasks of a dataset file in any known format (what ``hopgym eval --data`` takes)."""
    return list(read_dataset(path, fmt, options).tasks)


def _write_jsonl(path: Path, records: Iterable[Mapping[str, object]]) -> None:
    # Written beside the target and renamed, so an interrupted run never leaves half a file under the name.
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(partial, path)


def write_prepared(dataset: PreparedDataset, out_dir: str | Path) -> dict[str, Path]:
    """Write ``tasks.jsonl`` (and ``corpus.jsonl`` when there are passages) into ``out_dir``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a directory to write tasks.jsonl into")
    out.mkdir(parents=True, exist_ok=True)
    written = {"tasks": out / TASKS_FILE}
    _write_jsonl(written["tasks"], (t.to_dict() for t in dataset.tasks))
    stale_corpus = out / CORPUS_FILE
    if dataset.passages:
        written["corpus"] = stale_corpus
        _write_jsonl(stale_corpus, dataset.passages)
    elif stale_corpus.exists():
        # A corpus left from preparing another dataset here would not belong to these tasks.
        stale_corpus.unlink()
        logger.info("removed %s: the new tasks carry no paragraphs", stale_corpus)
    return written


def prepare_dataset(
    path: str | Path, out_dir: str | Path, fmt: str | None = None, options: PrepareOptions | None = None
) -> tuple[PreparedDataset, dict[str, Path]]:
    """Read ``path`` and write its prepared files into ``out_dir``."""
    dataset = read_dataset(path, fmt, options)
    return dataset, write_prepared(dataset, out_dir)
