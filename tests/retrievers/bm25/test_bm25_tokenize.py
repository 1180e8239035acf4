"""Tokenizer settings: stemming and stopwords on/off, query-time vocabulary lookups, validation."""

from __future__ import annotations

import pytest

from hopgym.errors import ConfigError
from hopgym.retrievers.bm25.analyzer import Tokenizer, TokenizerConfig

pytest.importorskip("Stemmer")
pytest.importorskip("bm25s")


def test_default_stems_lowercases_and_drops_stopwords():
    tok = Tokenizer(TokenizerConfig())
    assert tok.terms("The Running Dogs of Paris") == ["run", "dog", "pari"]


def test_no_stemming_keeps_words():
    tok = Tokenizer(TokenizerConfig(stemmer=None))
    assert tok.terms("The Running Dogs of Paris") == ["running", "dogs", "paris"]


def test_no_stopwords_keeps_function_words():
    tok = Tokenizer(TokenizerConfig(stemmer=None, stopwords=None))
    assert tok.terms("the cat and a hat") == ["the", "cat", "and", "hat"]  # single letters never are terms


def test_explicit_stopword_list_and_case_sensitivity():
    tok = Tokenizer(TokenizerConfig(stemmer=None, stopwords=("Cat",)))
    assert tok.terms("cat hat") == ["hat"]
    cased = Tokenizer(TokenizerConfig(stemmer=None, stopwords=None, lowercase=False))
    assert cased.terms("Cat cat") == ["Cat", "cat"]


def test_en_plus_is_longer_than_en():
    assert (
        len(TokenizerConfig(stopwords="en_plus").stopword_list())
        > len(TokenizerConfig().stopword_list())
        == 33
    )


def test_index_and_query_encoding_share_the_vocabulary():
    tok = Tokenizer(TokenizerConfig())
    ids = tok.encode_for_index("Runners run; the runner runs")
    # "runners", "run", "runner", "runs" -> stems run/runner: repeated terms keep their repeats.
    assert len(ids) == 4
    assert len(set(ids)) == len({tok.terms(w)[0] for w in ("runners", "run", "runner", "runs")})
    assert tok.encode_query("RUNNING and unknownword") == [tok.vocab["run"]]
    assert tok.encode_query("the of") == []
    # Querying never grows the vocabulary.
    size = len(tok.vocab)
    tok.encode_query("completely novel vocabulary")
    assert len(tok.vocab) == size


def test_unicode_words_are_terms():
    tok = Tokenizer(TokenizerConfig(stemmer=None))
    assert tok.terms("Zürich 東京 の 人口") == ["zürich", "東京", "人口"]


def test_config_round_trips_through_json():
    config = TokenizerConfig(stemmer="porter", stopwords=("foo", "bar"), lowercase=False)
    assert TokenizerConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stemmer": "klingon"}, "PyStemmer algorithm"),
        ({"stopwords": "xx"}, "not a known list"),
        ({"stopwords": (1, 2)}, "list of strings"),
        ({"token_pattern": "("}, "regular expression"),
        ({"lowercase": "yes"}, "lowercase"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TokenizerConfig(**kwargs)
