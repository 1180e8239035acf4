"""The tiny-model builder: loadable Qwen2 + ChatML tokenizer with protocol tags as tokens, cached by parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from hopgym.errors import ConfigError  # noqa: E402
from hopgym.testing.tiny_model import PROTOCOL_TAGS, build_tiny_model, default_corpus_texts  # noqa: E402

_SMALL = {"vocab_size": 600, "hidden_size": 32, "layers": 1, "heads": 2, "max_position_embeddings": 512}


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return default_corpus_texts()[:400]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory, corpus: list[str]) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("m") / "tiny", corpus_texts=corpus, **_SMALL)


def test_loads_with_auto_classes_as_qwen2(small_model: Path) -> None:
    tok = transformers.AutoTokenizer.from_pretrained(small_model)
    model = transformers.AutoModelForCausalLM.from_pretrained(small_model)
    assert model.config.model_type == "qwen2" and model.config.architectures == ["Qwen2ForCausalLM"]
    assert model.config.vocab_size == len(tok) <= 600
    assert next(model.parameters()).dtype == torch.bfloat16
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert model.config.eos_token_id == tok.eos_token_id
    out = model(torch.tensor([tok.encode("hello world", add_special_tokens=False)]))
    assert out.logits.shape[-1] == len(tok)


def test_tags_are_single_tokens_and_text_round_trips(small_model: Path) -> None:
    tok = transformers.AutoTokenizer.from_pretrained(small_model)
    for tag in PROTOCOL_TAGS:
        assert len(tok.encode(tag, add_special_tokens=False)) == 1, tag
    text = "<think>hmm</think>\n<search> Who founded Xy? </search>\n<information>Doc 1</information>"
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert len(tok.encode("<|im_start|>", add_special_tokens=False)) == 1


def test_chat_template_is_chatml_with_tools(small_model: Path) -> None:
    tok = transformers.AutoTokenizer.from_pretrained(small_model)
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    plain = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert plain == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    call = {"id": "c1", "type": "function", "function": {"name": "search", "arguments": '{"query": "x"}'}}
    convo = [
        *messages,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "R"},
    ]
    tools = [{"type": "function", "function": {"name": "search"}}]
    text = tok.apply_chat_template(convo, tools=tools, tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nS\n\nTools:\n")
    assert '<tool_call>\n{"name": "search", "arguments": {"query": "x"}}\n</tool_call><|im_end|>' in text
    assert "<|im_start|>user\n<tool_response>\nR\n</tool_response><|im_end|>\n" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_cached_by_parameters(small_model: Path, corpus: list[str]) -> None:
    marker = small_model / "hopgym-tiny-model.json"
    stamp = marker.stat().st_mtime_ns
    assert build_tiny_model(small_model, corpus_texts=corpus, **_SMALL) == small_model
    assert marker.stat().st_mtime_ns == stamp  # reused, not rebuilt
    weights = (small_model / "model.safetensors").read_bytes()
    build_tiny_model(small_model, corpus_texts=corpus, **{**_SMALL, "seed": 1})  # other params: rebuilt
    assert (small_model / "model.safetensors").read_bytes() != weights


def test_refuses_foreign_directories_and_bad_params(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a hopgym tiny model"):
        build_tiny_model(tmp_path, corpus_texts=["a b c"], **_SMALL)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    with pytest.raises(ConfigError, match="vocab_size"):
        build_tiny_model(tmp_path / "x", vocab_size=100)
    with pytest.raises(ConfigError, match="multiple of heads"):
        build_tiny_model(tmp_path / "x", hidden_size=30, heads=4)


@pytest.fixture(scope="module")
def pooled_model(tmp_path_factory: pytest.TempPathFactory, corpus: list[str]) -> Path:
    from hopgym.envs.hopworld import name_pool

    out = tmp_path_factory.mktemp("w") / "tiny"
    return build_tiny_model(out, corpus_texts=corpus, whole_words=name_pool(300), **_SMALL)


def test_whole_words_are_one_token_each_in_a_pooled_world(pooled_model: Path) -> None:
    from hopgym.envs.hopworld import HopWorldConfig, generate_world, name_pool

    tok = transformers.AutoTokenizer.from_pretrained(pooled_model)
    pool = set(name_pool(300))
    world = generate_world(HopWorldConfig(seed=3, num_entities=60, num_questions=20, name_pool=300))
    passage = world.passages[0].contents
    stems = [w for w in passage.replace('"', " ").split() if w in pool]
    assert stems, passage
    for stem in stems:
        assert tok.tokenize(f" {stem}") == ["Ġ", stem]
    assert tok.decode(tok.encode(passage, add_special_tokens=False)) == passage
    # Not matched inside a longer word.
    stem = stems[0]
    assert stem not in tok.tokenize(f" {stem}s")


def test_whole_words_are_part_of_the_cache_key(pooled_model: Path, corpus: list[str]) -> None:
    assert (
        build_tiny_model(pooled_model, corpus_texts=corpus, whole_words=_pool(300), **_SMALL) == pooled_model
    )
    build_tiny_model(pooled_model, corpus_texts=corpus, whole_words=["Zorblat"], **_SMALL)  # rebuilt in place
    tok = transformers.AutoTokenizer.from_pretrained(pooled_model)
    assert tok.tokenize(" Zorblat") == ["Ġ", "Zorblat"] and _pool(300)[0] not in tok.get_vocab()
    with pytest.raises(ConfigError, match="whole_words must be non-empty"):
        build_tiny_model(pooled_model, corpus_texts=corpus, whole_words=[" "], **_SMALL)


def _pool(size: int) -> tuple[str, ...]:
    from hopgym.envs.hopworld import name_pool

    return name_pool(size)
