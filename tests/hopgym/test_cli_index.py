"""``hopgym index build|info`` and ``hopgym search``, driven through their argparse registration."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hopgym.cli import index as cli_index
from hopgym.cli import search as cli_search

pytest.importorskip("bm25s")

PASSAGES = [
    {
        "id": "a",
        "title": "Mount Everest",
        "text": "Mount Everest is Earth's highest mountain above sea level.",
    },
    {"id": "b", "title": "Nile", "text": "The Nile is a major north-flowing river in northeastern Africa."},
    {"id": "c", "title": "Sahara", "text": "The Sahara is a desert spanning North Africa."},
]

# A stand-in for `hopgym` until the lead adds "index" and "search" to hopgym.cli._COMMAND_MODULES.
_RUNNER = """
import argparse, sys
from hopgym.cli import index, search
parser = argparse.ArgumentParser(prog="hopgym")
sub = parser.add_subparsers()
index.register(sub)
search.register(sub)
args = parser.parse_args(sys.argv[1:])
sys.exit(args.handler(args))
"""


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hopgym")
    sub = parser.add_subparsers()
    cli_index.register(sub)
    cli_search.register(sub)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PASSAGES))
    return path


def test_build_info_and_search(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "idx"
    argv = ["index", "build", "--corpus", str(corpus), "--out", str(out), "--k1", "1.2", "--stemmer", "none"]
    assert _run([*argv, "--option", "b=0.75", "--option", 'stopwords="en_plus"']) == 0
    captured = capsys.readouterr()
    manifest = json.loads(captured.out)
    assert manifest["backend"] == "bm25" and manifest["passage_count"] == 3
    assert manifest["params"]["k1"] == 1.2 and manifest["params"]["b"] == 0.75
    assert manifest["encoder"]["stemmer"] is None and manifest["encoder"]["stopwords"] == "en_plus"

    assert _run(["index", "info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["passage_count"] == 3 and info["size_bytes"] > 0

    assert _run(["search", "--index", str(out), "river in Africa", "-k", "2"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [h["id"] for h in hits] == ["b", "c"]
    assert set(hits[0]) == {"id", "title", "text", "score"} and hits[0]["score"] > hits[1]["score"]


def test_build_refuses_to_overwrite_without_force(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["index", "build", "--corpus", str(corpus), "--out", str(tmp_path / "idx"), "--no-progress"]
    assert _run(argv) == 0
    capsys.readouterr()
    assert _run(argv) == 2
    assert "already holds an index" in capsys.readouterr().err
    assert _run([*argv, "--force"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["index", "build", "--corpus", "{corpus}", "--out", "{tmp}/x", "--option", "k1"],
            "expected KEY=VALUE",
        ),
        (
            ["index", "build", "--corpus", "{corpus}", "--out", "{tmp}/x", "--option", "k1=-3"],
            "k1 must be >= 0",
        ),
        (["index", "build", "--corpus", "{tmp}/missing.jsonl", "--out", "{tmp}/x"], "not found"),
        (["index", "info", "{tmp}"], "not a hopgym index directory"),
        (["search", "--index", "{tmp}/nothing", "q"], "does not exist"),
        (["search", "--index", "simple-bm25:{corpus}", "q", "-k", "0"], "passages per query"),
    ],
)
def test_errors_exit_2_with_the_message(
    argv: list[str], message: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    filled = [a.format(corpus=corpus, tmp=tmp_path) for a in argv]
    assert _run(filled) == 2
    assert message in capsys.readouterr().err


def test_index_without_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["index"]) == 2
    assert "build" in capsys.readouterr().out


def test_search_memory_spec(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["search", "--index", f"simple-bm25:{corpus}", "highest mountain", "-k", "1"]) == 0
    assert [h["id"] for h in json.loads(capsys.readouterr().out)] == ["a"]


@pytest.mark.slow
def test_build_and_search_in_a_subprocess(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    build = subprocess.run(
        [sys.executable, "-c", _RUNNER, "index", "build", "--corpus", str(corpus), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr
    assert json.loads(build.stdout)["passage_count"] == 3
    search = subprocess.run(
        [sys.executable, "-c", _RUNNER, "search", "--index", str(out), "desert North Africa", "-k", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert search.returncode == 0, search.stderr
    assert [h["id"] for h in json.loads(search.stdout)] == ["c"]


# -- what `index build` must not overwrite (issue 10 C5) ------------------------------------------------------


def _tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def _build_argv(corpus: Path, out: Path, *extra: str) -> list[str]:
    return ["index", "build", "--corpus", str(corpus), "--out", str(out), "--no-progress", *extra]


@pytest.mark.parametrize("force", [False, True])
def test_out_holding_the_corpus_is_refused(
    corpus: Path, capsys: pytest.CaptureFixture[str], force: bool
) -> None:
    before = _tree(corpus.parent)
    assert _run(_build_argv(corpus, corpus.parent, *(["--force"] if force else []))) == 2
    assert "contains the corpus" in capsys.readouterr().err
    assert _tree(corpus.parent) == before


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_that_is_not_an_index_is_refused(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], force: bool
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "passages.jsonl").write_text("my own notes, not an index\n")  # a name the build writes
    (out / "tokenizer.json").write_text("{}")
    before = _tree(out)
    assert _run(_build_argv(corpus, out, *(["--force"] if force else []))) == 2
    err = capsys.readouterr().err
    assert "is not empty and is not a hopgym index" in err and "choose a new or empty --out" in err
    assert _tree(out) == before
    assert not (tmp_path / "mine.building").exists()


def test_an_empty_folder_is_used(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert _run(_build_argv(corpus, out)) == 0
    assert json.loads(capsys.readouterr().out)["passage_count"] == 3
    assert (out / "hopgym-index.json").is_file() and not (tmp_path / "empty.building").exists()


def test_a_failed_forced_rebuild_keeps_the_previous_index(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "idx"
    assert _run(_build_argv(corpus, out)) == 0
    before = _tree(out)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(PASSAGES[0]) + "\n" + '{"id": "z"}\n')
    capsys.readouterr()
    assert _run(_build_argv(bad, out, "--force")) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "corpus.jsonl", "idx"]
    assert _run(["search", "--index", str(out), "desert", "-k", "1"]) == 0
    assert [h["id"] for h in json.loads(capsys.readouterr().out)] == ["c"]


def test_a_forced_rebuild_replaces_the_index_and_leaves_nothing_behind(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "idx"
    assert _run(_build_argv(corpus, out)) == 0
    capsys.readouterr()
    assert _run(_build_argv(corpus, out, "--force", "--k1", "1.5")) == 0
    assert json.loads(capsys.readouterr().out)["params"]["k1"] == 1.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "idx"]
    assert _run(["index", "info", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["k1"] == 1.5


def test_an_empty_corpus_leaves_no_files(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert _run(_build_argv(empty, tmp_path / "idx")) == 2
    assert "no passages" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "empty.jsonl"]


def test_search_verify_reads_every_checksum(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    out = tmp_path / "idx"
    assert _run(_build_argv(corpus, out)) == 0
    scores = np.load(out / "bm25s" / "data.csc.index.npy", mmap_mode="r+")
    scores[0] += 1.0  # still a finite score: only the full checksum sees it
    scores.flush()
    del scores
    capsys.readouterr()
    assert _run(["search", "--index", str(out), "desert"]) == 0
    capsys.readouterr()
    assert _run(["search", "--index", str(out), "desert", "--verify"]) == 2
    assert "data.csc.index.npy: index file checksum does not match" in capsys.readouterr().err


def test_a_repeated_id_is_refused_unless_dedupe(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with corpus.open("a") as fh:
        fh.write(json.dumps({**PASSAGES[2], "text": "Another text under the id of the Sahara."}) + "\n")
    out = tmp_path / "idx"
    assert _run(_build_argv(corpus, out)) == 2
    assert "corpus.jsonl:4: id 'c' duplicates line 3" in capsys.readouterr().err
    assert not out.exists()
    assert _run(_build_argv(corpus, out, "--dedupe")) == 0
    assert json.loads(capsys.readouterr().out)["passage_count"] == 3
