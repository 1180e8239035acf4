"""Corpus readers: the three on-disk forms, streaming, and errors naming file:line and the field."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from hopgym.errors import DataError
from hopgym.retrievers.corpus import corpus_fingerprint, iter_passages, split_contents
from hopgym.retrievers.manifest import IndexManifest, open_index, read_manifest, write_manifest


@pytest.mark.parametrize(
    ("contents", "expected"),
    [
        ('"Velmora Works"\nA company.', ("Velmora Works", "A company.")),
        ("Plain Title\nbody\nmore", ("Plain Title", "body\nmore")),
        ("no title line", ("", "no title line")),
        ('"Quoted "inner" title"\ntext', ('Quoted "inner" title', "text")),
    ],
)
def test_split_contents(contents: str, expected: tuple[str, str]) -> None:
    assert split_contents(contents) == expected


def test_search_r1_sample_corpus_reads(shared_data) -> None:
    path = shared_data("corpus_samples", "search_r1_corpus_sample.jsonl")
    passages = list(iter_passages(path))
    assert len(passages) == 10
    assert all(p.title and p.text and not p.text.startswith('"') for p in passages)


def test_title_text_jsonl_and_int_ids(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(
        json.dumps({"id": 7, "title": "Brill", "text": "Brill is a town."})
        + "\n\n"
        + json.dumps({"id": "x", "title": None, "text": "untitled"})
        + "\n"
    )
    passages = list(iter_passages(path))
    assert [(p.id, p.title, p.text) for p in passages] == [
        ("7", "Brill", "Brill is a town."),
        ("x", "", "untitled"),
    ]


def test_reader_is_lazy(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "1", "contents": "\\"A\\"\\nfirst"}\n{"broken json\n')
    stream = iter_passages(path)
    assert isinstance(stream, types.GeneratorType)
    assert next(stream).title == "A"  # the first record arrives before the bad line is read
    with pytest.raises(DataError, match=r"c\.jsonl:2: invalid JSON"):
        next(stream)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"contents": "x"}', ":1: missing field 'id'"),
        ('{"id": "1"}', ":1: missing field 'contents'"),
        ('{"id": "1", "contents": 5}', ":1: field 'contents' must be a string"),
        ('{"id": "1", "title": 3, "text": "t"}', ":1: field 'title' must be a string"),
        ('{"id": [1], "contents": "x"}', ":1: field 'id' must be a string or integer"),
        ("[1]", ":1: each line must be a JSON object"),
    ],
)
def test_malformed_lines_name_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(DataError) as excinfo:
        list(iter_passages(path))
    assert f"{path}{message}" in str(excinfo.value)


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        list(iter_passages(tmp_path / "nope.jsonl"))
    odd = tmp_path / "corpus.csv"
    odd.write_text("id,contents\n")
    with pytest.raises(DataError, match=r"\.jsonl or \.parquet"):
        list(iter_passages(odd))


def test_parquet_both_column_sets(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    contents = tmp_path / "contents.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "contents": ['"T1"\nbody one', '"T2"\nbody two']}), contents)
    assert [(p.id, p.title, p.text) for p in iter_passages(contents)] == [
        ("a", "T1", "body one"),
        ("b", "T2", "body two"),
    ]
    title_text = tmp_path / "tt.parquet"
    pq.write_table(pa.table({"id": [1], "title": ["T"], "text": ["x"]}), title_text)
    assert [(p.id, p.title) for p in iter_passages(title_text)] == [("1", "T")]
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"doc": ["a"]}), wrong)
    with pytest.raises(DataError, match="lack 'id'"):
        list(iter_passages(wrong))


def test_fingerprint_tracks_content(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "1", "contents": "a"}\n')
    first = corpus_fingerprint(path)
    assert first == corpus_fingerprint(path) and len(first) == 64
    path.write_text('{"id": "1", "contents": "b"}\n')
    assert corpus_fingerprint(path) != first


def test_manifest_round_trip_and_errors(tmp_path: Path) -> None:
    manifest = IndexManifest(backend="bm25", passage_count=3, corpus_sha256="ab" * 32, params={"k1": 0.9})
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    with pytest.raises(DataError, match="not a hopgym index directory"):
        read_manifest(tmp_path / "elsewhere")
    (tmp_path / "hopgym-index.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable index manifest"):
        read_manifest(tmp_path)
    (tmp_path / "hopgym-index.json").write_text(json.dumps({**manifest.to_json(), "format_version": 99}))
    with pytest.raises(DataError, match="format_version"):
        read_manifest(tmp_path)
    write_manifest(tmp_path, manifest)
    path = tmp_path / "hopgym-index.json"
    path.write_text(path.read_text().replace('"passage_count": 3', '"passage_count": 4'))
    with pytest.raises(DataError, match="does not match its checksum"):
        read_manifest(tmp_path)
    # Format 1 manifests (from before the checksum) still read.
    path.write_text(json.dumps({**manifest.to_json(), "format_version": 1}))
    assert read_manifest(tmp_path).passage_count == 3
    write_manifest(tmp_path, {**manifest.to_json(), "backend": "nosuch"})
    with pytest.raises(Exception, match="unknown index backend 'nosuch'"):
        open_index(tmp_path)


# -- repeated passage ids (issue 10 C9) -----------------------------------------------------------------------


def _jsonl(path: Path, ids: list[object]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "contents": f"text of {i}"}) + "\n" for i in ids))
    return path


def test_a_repeated_id_names_both_lines(tmp_path: Path) -> None:
    corpus = _jsonl(tmp_path / "c.jsonl", ["a", "b", "c", "b"])
    with pytest.raises(DataError, match=r"c\.jsonl:4: id 'b' duplicates line 2: .*unique.*--dedupe"):
        list(iter_passages(corpus))


def test_line_numbers_count_blank_lines_and_ids_compare_as_text(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        '{"id": 7, "contents": "x"}\n\n{"id": "8", "contents": "y"}\n{"id": "7", "contents": "z"}\n'
    )
    with pytest.raises(DataError, match=r"c\.jsonl:4: id '7' duplicates line 1"):
        list(iter_passages(corpus))


def test_many_repeats_are_listed_up_to_a_limit(tmp_path: Path) -> None:
    corpus = _jsonl(tmp_path / "c.jsonl", ["x", *["y"] * 8])
    with pytest.raises(DataError) as info:
        list(iter_passages(corpus))
    message = str(info.value)
    assert message.startswith(f"{corpus}:3: id 'y' duplicates line 2")
    assert "line 6: id 'y' duplicates line 2" in message and "and 2 more" in message


def test_the_passages_before_the_end_still_stream(tmp_path: Path) -> None:
    # The check runs when the file has been read: a caller sees every passage, then the error, so an index
    # build fails before it publishes anything.
    corpus = _jsonl(tmp_path / "c.jsonl", ["a", "b", "a"])
    seen = []
    with pytest.raises(DataError, match="duplicates"):
        for passage in iter_passages(corpus):
            seen.append(passage.id)
    assert seen == ["a", "b", "a"]


def test_dedupe_keeps_the_first_passage_of_each_id(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    corpus = _jsonl(tmp_path / "c.jsonl", ["a", "b", "a", "c", "b"])
    passages = list(iter_passages(corpus, dedupe=True))
    assert [(p.id, p.text) for p in passages] == [("a", "text of a"), ("b", "text of b"), ("c", "text of c")]
    assert "dropped 2 passages whose id repeats an earlier one (lines 3, 5)" in caplog.text


def test_a_repeated_id_in_parquet_names_the_rows(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    corpus = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "a"], "contents": ["1", "2", "3"]}), corpus)
    with pytest.raises(DataError, match=r"c\.parquet:3: id 'a' duplicates line 1"):
        list(iter_passages(corpus))


def test_unique_ids_pass(tmp_path: Path) -> None:
    corpus = _jsonl(tmp_path / "c.jsonl", [f"p{i}" for i in range(2000)] + [1, 2])
    assert len(list(iter_passages(corpus))) == 2002
