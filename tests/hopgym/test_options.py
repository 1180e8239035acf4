"""hopgym.options: KEY=VALUE text into frozen config dataclasses, with errors naming the field and a fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from hopgym.errors import ConfigError
from hopgym.options import check_fields, config_from_options, parse_key_values, split_options


@dataclass(frozen=True)
class Demo:
    n_threads: int = 1
    k1: float = 0.9
    mmap: bool = True
    method: Literal["lucene", "robertson"] = "lucene"
    stemmer: str | None = "english"
    stopwords: str | tuple[str, ...] | None = "en"
    fields: tuple[str, ...] = ("contents",)
    corpus: Path | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        if self.n_threads < 1:
            raise ConfigError(f"n_threads must be >= 1, got {self.n_threads}")


@dataclass(frozen=True)
class Other:
    verify: bool = False


def test_parse_key_values_reads_json_and_keeps_text() -> None:
    values = parse_key_values(
        ["k1=1.2", "stemmer=null", "name=wiki", 'fields=["a","b"]', "x="], flag="--option", example="k1=1.2"
    )
    assert values == {"k1": 1.2, "stemmer": None, "name": "wiki", "fields": ["a", "b"], "x": ""}
    with pytest.raises(ConfigError, match=r"--option 'k1': expected KEY=VALUE, e.g. --option k1=1.2"):
        parse_key_values(["k1"], flag="--option", example="k1=1.2")


def test_text_values_become_the_field_types() -> None:
    demo = config_from_options(
        Demo,
        {
            "n_threads": "2",
            "k1": "1",
            "mmap": "false",
            "stemmer": "null",
            "fields": "title, text",
            "corpus": "c.jsonl",
        },
        what="demo",
    )
    assert demo == Demo(
        n_threads=2, k1=1.0, mmap=False, stemmer=None, fields=("title", "text"), corpus=Path("c.jsonl")
    )
    assert isinstance(demo.k1, float)


def test_python_values_are_normalized() -> None:
    demo = Demo(k1=2, fields=["a", "b"], stopwords=["the", "a"], n_threads=3.0)  # type: ignore[arg-type]
    assert (demo.k1, demo.fields, demo.stopwords, demo.n_threads) == (2.0, ("a", "b"), ("the", "a"), 3)
    assert Demo(stopwords="en").stopwords == "en"  # the exact type wins in a union


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_threads": True}, r"Demo\.n_threads must be an integer, got True; e.g. n_threads=4"),
        ({"n_threads": 1.5}, r"Demo\.n_threads must be an integer, got 1\.5"),
        ({"n_threads": "many"}, r"Demo\.n_threads must be an integer, got 'many'"),
        ({"k1": float("nan")}, r"Demo\.k1 must be a finite number, got nan; e.g. k1=0\.5"),
        ({"k1": "1,2"}, r"Demo\.k1 must be a finite number"),
        ({"mmap": "maybe"}, r"Demo\.mmap must be true or false, got 'maybe'; e.g. mmap=true"),
        ({"mmap": 1}, r"Demo\.mmap must be true or false"),
        (
            {"method": "bm42"},
            r"Demo\.method must be one of lucene, robertson, got 'bm42'; e.g. method=lucene",
        ),
        ({"stemmer": 3}, r"Demo\.stemmer must be a string or null, got 3"),
        ({"fields": 3}, r"Demo\.fields must be a list of a string"),
        ({"corpus": 3}, r"Demo\.corpus must be a path or null"),
        ({"n_threads": 0}, r"n_threads must be >= 1"),  # the class's own range check runs after the types
    ],
)
def test_bad_values_name_the_field_and_an_example(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Demo(**kwargs)  # type: ignore[arg-type]


def test_option_errors_name_the_option() -> None:
    with pytest.raises(ConfigError, match=r"demo option n_threads must be an integer, got 'x'"):
        config_from_options(Demo, {"n_threads": "x"}, what="demo")


def test_config_from_options_over_a_base() -> None:
    base = Demo(n_threads=4)
    assert config_from_options(Demo, {"k1": "1.5"}, what="demo", base=base) == Demo(n_threads=4, k1=1.5)


def test_split_routes_keys_and_lists_valid_ones() -> None:
    demo_kw, other_kw = split_options({"k1": 1.0, "verify": True}, Demo, Other, what="demo")
    assert (demo_kw, other_kw) == ({"k1": 1.0}, {"verify": True})
    with pytest.raises(
        ConfigError, match=r"unknown demo option\(s\) colour; valid options: corpus, fields, k1"
    ):
        split_options({"colour": 1}, Demo, Other, what="demo")
    with pytest.raises(ConfigError, match=r"^b cannot change when opening: rebuild$"):
        split_options({"b": 0.3}, Other, what="demo", fixed={"b"}, fixed_hint="when opening: rebuild")


def test_parse_key_values_refuses_huge_integers_and_keeps_deep_nesting_as_text() -> None:
    with pytest.raises(ConfigError, match=r"--option 'k1=1111.*too large"):
        parse_key_values(["k1=" + "1" * 5000], flag="--option", example="k1=1.2")
    deep = "[" * 100_000 + "]" * 100_000
    assert parse_key_values([f"x={deep}"], flag="--option", example="k1=1.2") == {"x": deep}
