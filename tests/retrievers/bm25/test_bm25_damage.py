"""A bm25 index damaged without changing any file's size: refused at open with the file named, never a crash.

Each test damages one structure of a freshly built index the way a bad disk or a stray write would (bytes
changed in place, same size) and checks what :mod:`hopgym.retrievers.bm25.integrity` promises: structural files
and out-of-range postings are refused at every open; a finite score changed in place is only found with
``verify=True``; a damaged passage row is refused when it is read.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hopgym.errors import DataError
from hopgym.retrievers.manifest import MANIFEST_NAME, build_index, open_index, read_manifest, write_manifest

pytest.importorskip("bm25s")
pytest.importorskip("numba")

from hopgym.retrievers.bm25.backend import BM25Retriever
from hopgym.retrievers.bm25.integrity import CHECKSUMS_FILE, check_postings

N_PASSAGES = 300


def _corpus_lines() -> list[str]:
    return [
        json.dumps(
            {"id": f"p{i}", "title": f"Topic {i % 11}", "text": f"alpha word{i % 7} beta number{i} gamma"}
        )
        for i in range(N_PASSAGES)
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bm25-damage")
    corpus = root / "corpus.jsonl"
    corpus.write_text("\n".join(_corpus_lines()) + "\n", encoding="utf-8")
    build_index("bm25", corpus, root / "index")
    return root / "index"


@pytest.fixture
def index(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "index"))


def _edit_array(path: Path, edit: object) -> None:
    """Change a .npy file's values in place (same size, same header)."""
    array = np.load(path, mmap_mode="r+")
    edit(array)  # type: ignore[operator]
    array.flush()
    del array


def _flip_byte(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


def _open(index: Path, **options: object) -> BM25Retriever:
    retriever = open_index(index, warmup=False, **options)
    assert isinstance(retriever, BM25Retriever)
    return retriever


def _row_out_of_range(a: np.ndarray) -> None:
    a[len(a) // 2] = 2_000_000_000


def _rows_out_of_order(a: np.ndarray) -> None:
    # The first column with two postings gets them swapped: in range, but no longer ascending.
    a[0], a[1] = a[1], a[0]


def _negative_row(a: np.ndarray) -> None:
    a[-1] = -5


def _nan_score(a: np.ndarray) -> None:
    a[len(a) // 3] = np.nan


def _infinite_score(a: np.ndarray) -> None:
    a[0] = np.inf


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("indices", _row_out_of_range, "row is out of range or out of order"),
        ("indices", _rows_out_of_order, "row is out of range or out of order"),
        ("indices", _negative_row, "row is out of range or out of order"),
        ("data", _nan_score, "not a finite number"),
        ("data", _infinite_score, "not a finite number"),
    ],
)
def test_postings_the_kernels_cannot_survive_are_refused_at_open(
    index: Path, name: str, edit: object, message: str
) -> None:
    path = index / "bm25s" / f"{name}.csc.index.npy"
    size = path.stat().st_size
    _edit_array(path, edit)
    assert path.stat().st_size == size
    with pytest.raises(DataError, match=rf"{name}\.csc\.index\.npy: .*{message}"):
        _open(index)


@pytest.mark.parametrize(
    "relative",
    [
        "bm25s/indptr.csc.index.npy",
        "bm25s/vocab.index.json",
        "bm25s/params.index.json",
        "tokenizer.json",
        "passages.offsets.npy",
    ],
)
def test_a_changed_byte_in_a_structural_file_is_refused_at_open(index: Path, relative: str) -> None:
    path = index / relative
    _flip_byte(path, path.stat().st_size - 3)  # past any .npy header: the values themselves
    with pytest.raises(DataError, match=rf"{relative.split('/')[-1]}: index file checksum does not match"):
        _open(index)


def test_a_changed_vocabulary_id_is_refused_even_without_checksums(index: Path) -> None:
    # Drop the vocabulary's checksum record's effect by recording the damaged file's own checksum: the id
    # check still refuses an id past the score columns (the kernels would read outside the pointers).
    vocab_path = index / "bm25s" / "vocab.index.json"
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    term = next(iter(vocab))
    vocab[term] = len(vocab) + 5
    vocab_path.write_text(json.dumps(vocab), encoding="utf-8")
    _rerecord_checksums(index)
    with pytest.raises(DataError, match=r"vocab\.index\.json: vocabulary ids are not the distinct columns"):
        _open(index)


def _rerecord_checksums(index: Path) -> None:
    from hopgym.retrievers.bm25.integrity import file_checksums

    checksums = json.loads((index / CHECKSUMS_FILE).read_text(encoding="utf-8"))
    fresh = file_checksums(index, [index / name for name in checksums])
    (index / CHECKSUMS_FILE).write_text(json.dumps(fresh), encoding="utf-8")


def test_a_changed_manifest_is_refused(index: Path) -> None:
    path = index / MANIFEST_NAME
    text = path.read_text(encoding="utf-8")
    damaged = text.replace('"b": 0.4', '"b": 0.5')
    assert damaged != text and len(damaged) == len(text)
    path.write_text(damaged, encoding="utf-8")
    with pytest.raises(DataError, match=r"hopgym-index\.json: index manifest does not match its checksum"):
        _open(index)


async def test_a_damaged_passage_row_is_refused_when_read(index: Path) -> None:
    passages = index / "passages.jsonl"
    raw = passages.read_bytes()
    row = 7
    start = sum(len(line) for line in raw.splitlines(keepends=True)[:row])
    # A letter of the text changes: the row still parses, so only its checksum can tell.
    offset = raw.index(b"alpha", start) + 1
    _flip_byte(passages, offset)
    retriever = _open(index)  # the passage text is not read at open
    try:
        (hits,) = await retriever.search(["number1"], 3)  # rows other than 7 still read
        assert hits and all(p.id != "p7" for p in hits)
        with pytest.raises(
            DataError, match=rf"passages\.jsonl: passage row {row} does not match its checksum"
        ):
            await retriever.search(["number7"], 1)
    finally:
        await retriever.aclose()
    with pytest.raises(DataError, match=r"passages\.jsonl: index file checksum does not match"):
        _open(index, verify=True)


async def test_a_finite_score_changed_in_place_needs_verify(index: Path) -> None:
    # Documented limit: a score that stays finite keeps the kernels safe, so only the full checksum sees it.
    _edit_array(index / "bm25s" / "data.csc.index.npy", lambda a: a.__setitem__(0, a[0] + 1.0))
    retriever = _open(index)
    await retriever.aclose()
    with pytest.raises(DataError, match=r"data\.csc\.index\.npy: index file checksum does not match"):
        _open(index, verify=True)


async def test_a_row_changed_in_place_but_still_in_order_needs_verify(index: Path) -> None:
    # The other documented limit: a row moved up within the gap before its column's next row stays in range
    # and ascending.
    indices = np.load(index / "bm25s" / "indices.csc.index.npy")
    indptr = np.load(index / "bm25s" / "indptr.csc.index.npy")
    ends = set(indptr[1:].tolist())
    position = next(
        p
        for p in range(len(indices))
        if (p + 1 in ends and indices[p] + 1 < N_PASSAGES)
        or (p + 1 not in ends and indices[p + 1] > indices[p] + 1)
    )
    _edit_array(index / "bm25s" / "indices.csc.index.npy", lambda a: a.__setitem__(position, a[position] + 1))
    retriever = _open(index)
    await retriever.aclose()
    with pytest.raises(DataError, match=r"indices\.csc\.index\.npy: index file checksum does not match"):
        _open(index, verify=True)


async def test_an_index_from_before_the_checks_still_opens(
    built: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # What older builds lack: per-row passage checksums and the manifest's own checksum (format 1).
    index = Path(shutil.copytree(built, tmp_path / "old"))
    (index / "passages.crc32.npy").unlink()
    checksums = json.loads((index / CHECKSUMS_FILE).read_text(encoding="utf-8"))
    del checksums["passages.crc32.npy"]
    (index / CHECKSUMS_FILE).write_text(json.dumps(checksums), encoding="utf-8")
    data = read_manifest(index).to_json()
    data["format_version"] = 1
    (index / MANIFEST_NAME).write_text(json.dumps(data), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        retriever = _open(index, verify=True)
    try:
        (hits,) = await retriever.search(["number12"], 1)
        assert hits[0].id == "p12"
    finally:
        await retriever.aclose()
    assert "built before passage rows had checksums" in caplog.text
    # The structural checks apply to old indexes too: their checksums.json always covered every file.
    _flip_byte(
        index / "bm25s" / "indptr.csc.index.npy",
        (index / "bm25s" / "indptr.csc.index.npy").stat().st_size - 3,
    )
    with pytest.raises(DataError, match="indptr"):
        _open(index)


def test_a_manifest_rewritten_on_purpose_gets_a_fresh_checksum(index: Path) -> None:
    data = json.loads((index / MANIFEST_NAME).read_text(encoding="utf-8"))
    data["corpus_path"] = "/elsewhere/corpus.jsonl"
    write_manifest(index, data)
    assert read_manifest(index).corpus_path == "/elsewhere/corpus.jsonl"


# -- the bounds check alone, on arrays no checksum vouches for ----------------------------------------------


def _matrix() -> dict[str, np.ndarray]:
    # Three columns over four rows: [0, 2], [], [1, 2, 3].
    return {
        "indptr": np.array([0, 2, 2, 5], dtype=np.int64),
        "indices": np.array([0, 2, 1, 2, 3], dtype=np.int32),
        "data": np.array([0.5, 1.0, 0.25, 0.75, 2.0], dtype=np.float32),
    }


@pytest.mark.parametrize(
    ("key", "position", "value", "file"),
    [
        ("indptr", 1, 6, "indptr"),  # past the postings
        ("indptr", 2, 1, "indptr"),  # decreasing
        ("indptr", 0, 1, "indptr"),  # not starting at 0
        ("indptr", 3, 4, "indptr"),  # not ending at the postings' length
        ("indices", 1, 4, "indices"),  # row == passage count
        ("indices", 3, 1, "indices"),  # repeated row in a column
        ("indices", 2, -1, "indices"),  # negative row
        ("data", 4, np.nan, "data"),
        ("data", 2, -np.inf, "data"),
    ],
)
def test_the_bounds_check_finds_each_kind_of_damage(key: str, position: int, value: float, file: str) -> None:
    matrix = _matrix()
    check_postings(matrix, 4, Path("/idx"))  # the undamaged matrix passes
    matrix[key][position] = value
    with pytest.raises(DataError, match=rf"/idx/{file}\.csc\.index\.npy"):
        check_postings(matrix, 4, Path("/idx"))


def test_the_bounds_check_refuses_other_dtypes() -> None:
    matrix = _matrix()
    matrix["data"] = matrix["data"].astype(">f4")  # a flipped byte-order mark in the .npy header
    with pytest.raises(DataError, match=r"data\.csc\.index\.npy: expected a 1-d float32 array"):
        check_postings(matrix, 4, Path("/idx"))


# -- from outside ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["indptr", "indices"])
def test_hopgym_search_on_a_damaged_index_exits_2_with_the_file_named(index: Path, damage: str) -> None:
    # Before the checks, the indptr damage killed the process with SIGBUS/SIGSEGV (a negative return code).
    if damage == "indptr":
        _edit_array(index / "bm25s" / "indptr.csc.index.npy", lambda a: a.__setitem__(len(a) // 2, 10**12))
    else:
        _edit_array(index / "bm25s" / "indices.csc.index.npy", _row_out_of_range)
    result = subprocess.run(
        [sys.executable, "-m", "hopgym", "search", "--index", str(index), "alpha gamma number5", "-k", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert f"{damage}.csc.index.npy" in result.stderr and "rebuild the index" in result.stderr
    assert result.stdout == ""


async def test_a_server_over_a_damaged_row_answers_an_error_logs_it_and_keeps_serving(
    index: Path, caplog: pytest.LogCaptureFixture
) -> None:
    httpx = pytest.importorskip("httpx")
    from hopgym.retrievers.server.app import ServerConfig, create_app, running_server

    passages = index / "passages.jsonl"
    raw = passages.read_bytes()
    _flip_byte(passages, raw.index(b"number7") + 1)
    app = create_app(_open(index), ServerConfig(batching=False), close_retriever=True)
    async with running_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        bad = await http.post("/retrieve", json={"queries": ["number7"], "topk": 1})
        assert bad.status_code == 500
        assert "passage row 7 does not match its checksum" in bad.text and "passages.jsonl" in bad.text
        good = await http.post("/retrieve", json={"queries": ["number8"], "topk": 1})
        assert good.status_code == 200 and "p8" in good.text
    assert "passage row 7 does not match its checksum" in caplog.text
