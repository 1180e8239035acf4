"""The on-disk passage store: rows read back exactly, by row number, and damage is reported by row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hopgym.errors import DataError
from hopgym.retrievers.passage_store import (
    CRC_FILE,
    PASSAGES_FILE,
    DiskPassageStore,
    is_complete,
    write_passages,
)
from hopgym.types import Passage

PASSAGES = [
    Passage(id="p0", title="Plain", text="An ordinary passage."),
    Passage(id="p1", title='Quotes "and" \\ slashes', text="Line one\nline two\ttabbed"),
    Passage(
        id="p2", title="Ünïcödé — 東京", text="Emoji 🚀 and combining e\u0301; a NUL-free control \u0007."
    ),
    Passage(id="p3", title="", text=""),
]


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    assert write_passages(PASSAGES, tmp_path) == len(PASSAGES)
    return tmp_path


def test_rows_read_back_exactly_with_the_score_given(store_dir: Path) -> None:
    store = DiskPassageStore(store_dir, expected_count=len(PASSAGES))
    try:
        assert len(store) == len(PASSAGES)
        for row, passage in enumerate(PASSAGES):
            assert store.get(row) == passage
            got = store.get(row, 2.5)
            assert (got.id, got.title, got.text, got.score) == (passage.id, passage.title, passage.text, 2.5)
        assert type(store.get(0).id) is str
    finally:
        store.close()


@pytest.mark.parametrize("row", [-1, len(PASSAGES), 10**9])
def test_a_row_out_of_range_is_an_index_error(store_dir: Path, row: int) -> None:
    store = DiskPassageStore(store_dir)
    with pytest.raises(IndexError, match="out of range"):
        store.get(row)
    store.close()


def test_a_damaged_row_is_a_data_error_naming_the_row(store_dir: Path) -> None:
    data = store_dir / PASSAGES_FILE
    raw = bytearray(data.read_bytes())
    second = raw.index(b"\n") + 1
    raw[second] = ord("{")  # same size, so the offsets still match: only reading the row finds it
    data.write_bytes(bytes(raw))
    assert is_complete(store_dir)
    store = DiskPassageStore(store_dir)
    assert store.row_checksums
    assert store.get(0) == PASSAGES[0]
    with pytest.raises(DataError, match=rf"{PASSAGES_FILE}: passage row 1 does not match its checksum"):
        store.get(1)
    store.close()
    # A store written before rows had checksums still finds a row that no longer parses.
    (store_dir / CRC_FILE).unlink()
    store = DiskPassageStore(store_dir)
    assert not store.row_checksums
    with pytest.raises(DataError, match="passage row 1 is corrupt"):
        store.get(1)
    store.close()


def test_a_changed_letter_that_still_parses_is_found_by_the_row_checksum(store_dir: Path) -> None:
    data = store_dir / PASSAGES_FILE
    raw = data.read_bytes()
    at = raw.index(b"ordinary")
    data.write_bytes(raw[:at] + b"Ordinary" + raw[at + 8 :])
    store = DiskPassageStore(store_dir)
    try:
        assert store.get(1) == PASSAGES[1]
        with pytest.raises(DataError, match="passage row 0 does not match its checksum"):
            store.get(0)
    finally:
        store.close()


def test_checksums_of_another_length_are_refused(store_dir: Path) -> None:
    np.save(store_dir / CRC_FILE, np.zeros(len(PASSAGES) + 1, dtype=np.uint32))
    with pytest.raises(DataError, match=r"passages\.crc32\.npy: passage checksums do not match"):
        DiskPassageStore(store_dir)


def test_reading_a_closed_store_raises(store_dir: Path) -> None:
    store = DiskPassageStore(store_dir)
    store.close()
    with pytest.raises(ValueError):
        store.get(0)


def test_a_store_of_another_size_is_refused(store_dir: Path) -> None:
    with pytest.raises(DataError, match="manifest says 5"):
        DiskPassageStore(store_dir, expected_count=5)
