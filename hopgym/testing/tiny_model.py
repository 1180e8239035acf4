"""A tiny, randomly initialised Qwen2 chat model with a locally trained tokenizer, for tests and benchmarks.

Random weights produce gibberish, which is all the mechanics tests need (turns, stop strings, token ids,
logprobs, masks). The tokenizer is a byte-level BPE trained on HopWorld passages and the protocols' prompts, with
the protocols' tags as added tokens (so ``</search>`` is one token) and ChatML special tokens. The result loads
with ``AutoTokenizer``/``AutoModelForCausalLM.from_pretrained(dir)`` and with vLLM (Qwen2 architecture).

``bos_token="<s>"`` builds a variant whose tokenizer adds that BOS token when asked for special tokens (as
Llama-style tokenizers do) and whose chat template starts with it, to test that every backend encodes
prompts alike on such tokenizers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hopgym.errors import ConfigError, require

__all__ = ["CHAT_TEMPLATE", "PROTOCOL_TAGS", "SPECIAL_TOKENS", "build_tiny_model", "default_corpus_texts"]

logger = logging.getLogger(__name__)

_MARKER = "hopgym-tiny-model.json"
_FORMAT_VERSION = 2

#: Special tokens: end of text (pad), and the ChatML turn delimiters (``<|im_end|>`` is the eos).
SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

#: Every protocol's tags, added as whole tokens so that stop strings end on a token boundary.
PROTOCOL_TAGS: tuple[str, ...] = (
    "<think>", "</think>", "<search>", "</search>", "<information>", "</information>", "<answer>", "</answer>",
    "<result>", "</result>", "<|begin_of_query|>", "<|end_of_query|>", "<|begin_of_documents|>",
    "<|end_of_documents|>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",
)  # fmt: skip

#: ChatML (Jinja runs with trim_blocks, hence the explicit newlines); tools are listed in a system block and tool calls/results use Hermes-style tags.
CHAT_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n"
    "{% if messages and messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}\n\n{% endif %}"
    "Tools:{% for tool in tools %}{{ '\\n' }}{{ tool | tojson }}{% endfor %}{{ '\\n' }}"
    'Call a tool as <tool_call>{"name": ..., "arguments": {...}}</tool_call><|im_end|>\n'
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' and tools and loop.first %}"
    "{% elif message['role'] == 'tool' %}"
    "<|im_start|>user\n<tool_response>\n{{ message['content'] }}\n</tool_response><|im_end|>\n"
    "{% else %}<|im_start|>{{ message['role'] }}\n{{ message['content'] or '' }}"
    "{% if message['tool_calls'] is defined and message['tool_calls'] %}"
    "{% for call in message['tool_calls'] %}"
    '<tool_call>\n{"name": "{{ call[\'function\'][\'name\'] }}", "arguments": '
    "{{ call['function']['arguments'] if call['function']['arguments'] is string "
    "else call['function']['arguments'] | tojson }}}\n</tool_call>"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def default_corpus_texts(*, world_seed: int = 0) -> list[str]:
    """Text to train the tokenizer on: a HopWorld's passages and questions, and every protocol's prompt."""
    from hopgym.envs.hopworld import HopWorldConfig, generate_world
    from hopgym.envs.protocols import PROTOCOL_NAMES, get_protocol

    world = generate_world(HopWorldConfig(seed=world_seed))
    texts = [f"{p.title}\n{p.text}" for p in world.passages]
    for name in PROTOCOL_NAMES:
        protocol = get_protocol(name)
        for task in world.tasks[:20]:
            texts.append(protocol.prompt(task))
            texts.append(protocol.render_search(task.question))
            texts.append(protocol.render_answer(task.golden_answers[0]))
    return texts


def _cache_key(params: dict[str, Any], corpus_texts: Sequence[str] | None) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    if corpus_texts is not None:
        for text in corpus_texts:
            digest.update(text.encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
    return digest.hexdigest()[:16]


def _default_root() -> Path:
    root = os.environ.get("HOPGYM_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "hopgym"


def build_tiny_model(
    out_dir: str | Path | None = None,
    *,
    vocab_size: int = 4096,
    hidden_size: int = 128,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int | None = None,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 4096,
    dtype: str = "bfloat16",
    seed: int = 0,
    corpus_texts: Iterable[str] | None = None,
    bos_token: str | None = None,
    whole_words: Sequence[str] = (),
) -> Path:
    """Build (or reuse) a tiny Qwen2 model directory and return its path.

    With ``out_dir=None`` the model goes to ``$HOPGYM_CACHE_DIR`` (default ``~/.cache/hopgym``)
    ``/tiny-models/<key>``, keyed by every parameter, so separate test sessions and processes share it. A
    directory whose marker file matches the parameters is reused as is. The build happens in a temporary
    sibling directory that is renamed into place, so concurrent builders never see half a model.
    Weights are stored in ``dtype`` (``bfloat16`` suits vLLM on CPU; transformers can upcast them exactly).
    ``bos_token`` (e.g. ``"<s>"``) adds a BOS special token that ``encode(..., add_special_tokens=True)``
    prepends and the chat template writes first; default: none, as in Qwen2. ``whole_words`` become one token
    each (e.g. a HopWorld name pool, :func:`hopgym.envs.hopworld.name_pool`), on top of ``vocab_size``.
    """
    if vocab_size < 512:
        raise ConfigError(f"vocab_size={vocab_size}: use at least 512 (256 byte tokens plus merges and tags)")
    if hidden_size % heads:
        raise ConfigError(f"hidden_size={hidden_size} is not a multiple of heads={heads}; change either")
    kv = kv_heads if kv_heads is not None else max(1, heads // 2)
    if heads % kv:
        raise ConfigError(f"heads={heads} is not a multiple of kv_heads={kv}; change either")
    if dtype not in ("bfloat16", "float32", "float16"):
        raise ConfigError(f"dtype={dtype!r}: use 'bfloat16', 'float32' or 'float16'")
    if bos_token is not None and (not bos_token or bos_token in SPECIAL_TOKENS + PROTOCOL_TAGS):
        raise ConfigError(f"bos_token={bos_token!r}: use a new, non-empty token such as '<s>'")
    texts = list(corpus_texts) if corpus_texts is not None else None
    params: dict[str, Any] = {
        "version": _FORMAT_VERSION,
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "layers": layers,
        "heads": heads,
        "kv_heads": kv,
        "intermediate_size": intermediate_size or 2 * hidden_size,
        "max_position_embeddings": max_position_embeddings,
        "dtype": dtype,
        "seed": seed,
        "corpus": "default" if texts is None else "custom",
        # The template and tags are part of the artefact: editing them must invalidate cached models.
        "template": hashlib.sha256(
            "\0".join((CHAT_TEMPLATE, *SPECIAL_TOKENS, *PROTOCOL_TAGS)).encode()
        ).hexdigest()[:12],
    }
    if bos_token is not None:  # only when set, so that existing cached models keep their key
        params["bos_token"] = bos_token
    words = list(dict.fromkeys(whole_words))
    if any(not w or w.isspace() for w in words):
        raise ConfigError("whole_words must be non-empty words")
    if words:  # likewise only when set
        params["whole_words"] = hashlib.sha256("\0".join(words).encode()).hexdigest()[:12]
        params["whole_word_count"] = len(words)
    key = _cache_key(params, texts)
    target = Path(out_dir) if out_dir is not None else _default_root() / "tiny-models" / key
    marker = target / _MARKER
    if _marker_matches(marker, key):
        return target
    if target.exists() and any(target.iterdir()) and not marker.exists():
        raise ConfigError(f"{target} exists and is not a hopgym tiny model; choose an empty or new out_dir")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _build(staging, params, texts if texts is not None else default_corpus_texts(), words)
        (staging / _MARKER).write_text(json.dumps({"key": key, **params}, indent=1), encoding="utf-8")
        if _marker_matches(marker, key):  # another process finished first
            return target
        if target.exists():
            shutil.rmtree(target)
        try:
            os.rename(staging, target)
        except OSError:
            if not _marker_matches(marker, key):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("built tiny model in %s", target)
    return target


def _marker_matches(marker: Path, key: str) -> bool:
    try:
        return bool(json.loads(marker.read_text(encoding="utf-8")).get("key") == key)
    except (OSError, ValueError):
        return False


def _build(out: Path, params: dict[str, Any], texts: Sequence[str], whole_words: Sequence[str] = ()) -> None:
    require("tokenizers", extra="hf", purpose="training the tiny model's tokenizer")
    require("transformers", extra="hf", purpose="building the tiny model")
    torch = require("torch", extra="hf", purpose="building the tiny model")
    import transformers
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    # transformers' stubs are partial (untyped constructors): use the classes as Any.
    hf: Any = transformers

    bos: str | None = params.get("bos_token")
    specials = [*SPECIAL_TOKENS, *([bos] if bos else [])]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=params["vocab_size"] - len(PROTOCOL_TAGS),
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.add_tokens(list(PROTOCOL_TAGS))
    # Added after training, so BPE spends no merges on them; single_word keeps them from matching inside
    # longer words. The space before such a word stays a token of its own.
    tokenizer.add_tokens([AddedToken(w, single_word=True) for w in whole_words])
    bos_kwargs: dict[str, Any] = {}
    if bos:
        bos_id = tokenizer.token_to_id(bos)
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
        bos_kwargs["bos_token"] = bos
    fast = hf.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        clean_up_tokenization_spaces=False,
        model_max_length=params["max_position_embeddings"],
        **bos_kwargs,
    )
    fast.chat_template = ("{{ bos_token }}" if bos else "") + CHAT_TEMPLATE
    fast.save_pretrained(out)

    torch.manual_seed(params["seed"])  # type: ignore[attr-defined]
    config = hf.Qwen2Config(
        vocab_size=len(fast),
        hidden_size=params["hidden_size"],
        intermediate_size=params["intermediate_size"],
        num_hidden_layers=params["layers"],
        num_attention_heads=params["heads"],
        num_key_value_heads=params["kv_heads"],
        max_position_embeddings=params["max_position_embeddings"],
        tie_word_embeddings=True,
        bos_token_id=fast.convert_tokens_to_ids(bos or "<|endoftext|>"),
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    model = hf.Qwen2ForCausalLM(config)
    torch_dtype = getattr(torch, params["dtype"])
    model.to(torch_dtype)
    model.generation_config.eos_token_id = fast.eos_token_id
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(out)
