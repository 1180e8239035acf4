"""``warm_up(config, out_dir)``: traces -> from-scratch tokenizer and Qwen2 model -> masked SFT -> held-out figures.

The model directory loads with ``AutoTokenizer``/``AutoModelForCausalLM.from_pretrained`` (and vLLM: Qwen2,
ChatML template, protocol tags as whole tokens; built by :func:`hopgym.testing.tiny_model.build_tiny_model`
from the warm-up worlds' text). A directory holding ``warmup.json`` with the same model key is reused as is,
so the README quickstart and CI pay for the warm-up once.

What the warm-up has to teach a from-scratch model is copying: a name out of the question into the first
query, and the fact's object out of each observation into the next query or the answer. Measured here
(2026-12-03, 2 cores, one torch thread per process, two such processes at once), teacher-forced on held-out
oracle traces, with the agent's noise at wrong_entity 0.1, early_answer 0.5, wrong_copy 0.1 unless said:

- Fresh names split into BPE pieces (the earlier default; 197k-parameter model, 3 passages per search):
  nothing copied out of observations after 1,400 SFT steps; a run of about 6,000 steps copied them only
  approximately (``Vornor`` for ``Vonnor``), so held-out pass@8 was 0.03 and RL found no reward.
- Pooled names (each stem one token), 3 passages per search: 2% of names copied out of the observation
  after 2,800 steps (78% out of the question); the model had to pick the asked fact out of three.
- Pooled names, one passage per search (the defaults now), ``observation_weight`` 0.5 vs 0.1 at 1,000
  steps: 8% vs 22% copied out of observations; 0.1 reached 72% at 2,500 steps.
- The defaults (hidden 128, 500 worlds x 60 questions, 6,000 steps, wrong_entity and wrong_copy 0.02):
  SFT 2,809 s, loss 7.9 -> 0.18; 36% of the traces are correct. Greedy success 0 (with early_answer 0.5,
  answering after one hop is the greedy mode), sampled 0.23 (2-hop) / 0.05 (3-hop), pass@8 0.77 / 0.30:
  well below the RL target, with correct episodes in reach of sampling. The earlier candidates (hidden 64,
  100 worlds, copy noise 0.1) and what RL reached from each are in ``benchmarks/results/learning/notes.md``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hopgym.errors import ConfigError, require
from hopgym.trainers.warmup.config import WarmupConfig
from hopgym.trainers.warmup.traces import Trace, corpus_texts, encode_trace, world_traces

__all__ = ["WarmupResult", "default_warmup_dir", "warm_up", "warm_up_for_trainer"]

logger = logging.getLogger(__name__)

_REPORT = "warmup.json"


@dataclass(frozen=True)
class WarmupResult:
    """Where the model is and what it scored. ``held_out``: figures per hop count (see ``evaluate``)."""

    model_dir: Path
    report: dict[str, Any]
    reused: bool

    @property
    def held_out(self) -> list[dict[str, Any]]:
        return list(self.report.get("held_out", []))


def default_warmup_dir(config: WarmupConfig) -> Path:
    """``$HOPGYM_CACHE_DIR`` (default ``~/.cache/hopgym``) ``/warmup/<model key>``."""
    root = os.environ.get("HOPGYM_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "hopgym"
    return Path(base / "warmup" / config.model_key())


def _cached(out: Path, key: str) -> dict[str, Any] | None:
    try:
        report = json.loads((out / _REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and report.get("model_key") == key else None


def make_traces(config: WarmupConfig) -> list[Trace]:
    """The noisy agent's traces on every warm-up world."""
    traces: list[Trace] = []
    for world_seed in range(config.world_seed_start, config.world_seed_start + config.num_worlds):
        traces += world_traces(
            world_seed,
            num_questions=config.questions_per_world,
            hops=config.hops,
            noise=config.noise,
            seed=config.seed,
            name_pool=config.name_pool,
            top_k=config.top_k,
        )
    return traces


def warm_up(
    config: WarmupConfig, out_dir: str | Path | None = None, *, evaluate: bool = True
) -> WarmupResult:
    """Build and SFT the model into ``out_dir`` (default :func:`default_warmup_dir`), or reuse it."""
    torch: Any = require("torch", extra="train", purpose="the HopWorld warm-up")
    require("transformers", extra="train", purpose="the HopWorld warm-up")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hopgym.envs.hopworld import name_pool
    from hopgym.testing.tiny_model import build_tiny_model
    from hopgym.trainers.warmup.sft import train_sft

    out = Path(out_dir) if out_dir is not None else default_warmup_dir(config)
    key = config.model_key()
    cached = _cached(out, key)
    if cached is not None:
        logger.info("warm-up: reusing %s", out)
        return WarmupResult(out, cached, reused=True)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(
            f"{out} exists and holds no warm-up model of this config; choose an empty or new dir"
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    started = time.perf_counter()
    try:
        traces = make_traces(config)
        traces_s = time.perf_counter() - started
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            build_tiny_model(
                staging / "model",
                vocab_size=config.vocab_size,
                hidden_size=config.hidden_size,
                layers=config.layers,
                heads=config.heads,
                kv_heads=config.heads,
                intermediate_size=4 * config.hidden_size,
                max_position_embeddings=config.max_positions,
                dtype="float32",
                seed=config.seed,
                corpus_texts=corpus_texts(traces),
                whole_words=name_pool(config.name_pool) if config.name_pool else (),
            )
            build_s = time.perf_counter() - started - traces_s
            loader: Any = AutoModelForCausalLM
            tokenizer: Any = AutoTokenizer.from_pretrained(str(staging / "model"))
            model: Any = loader.from_pretrained(str(staging / "model"), dtype=torch.float32)
            encoded = [encode_trace(tokenizer, t) for t in traces]
            too_long = sum(len(e.token_ids) > config.max_positions for e in encoded)
            encoded = [e for e in encoded if len(e.token_ids) <= config.max_positions]
            stats = train_sft(
                model,
                encoded,
                steps=config.steps,
                batch_size=config.batch_size,
                lr=config.lr,
                pad_id=int(tokenizer.pad_token_id),
                seed=config.seed,
                observation_weight=config.observation_weight,
                max_seconds=60.0 * config.max_minutes,
            )
            model.save_pretrained(str(staging / "model"))
            for leftover in ("hopgym-tiny-model.json",):  # the random-init marker no longer describes it
                (staging / "model" / leftover).unlink(missing_ok=True)
            for entry in (staging / "model").iterdir():
                shutil.move(str(entry), str(staging / entry.name))
            (staging / "model").rmdir()
            report: dict[str, Any] = {
                "model_key": key,
                "config": config.to_dict(),
                "traces": len(traces),
                "traces_too_long": too_long,
                "trace_success": sum(t.reward >= 1.0 for t in traces) / max(1, len(traces)),
                "parameters": sum(p.numel() for p in model.parameters()),
                "sft": {k: v for k, v in asdict(stats).items() if k != "losses"},
                "loss_curve": [round(x, 4) for x in stats.losses[:: max(1, len(stats.losses) // 50)]],
                "wall_s": {
                    "traces": traces_s,
                    "tokenizer_and_init": build_s,
                    "sft": stats.wall_s,
                    "total": time.perf_counter() - started,
                },
            }
            if evaluate and config.eval_tasks:
                report["held_out"] = _evaluate(model, tokenizer, config)
            (staging / _REPORT).write_text(json.dumps(report, indent=1), encoding="utf-8")
            if out.exists():
                out.rmdir()
            os.rename(staging, out)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    finally:
        torch.set_num_threads(threads)
    logger.info("warm-up: %s in %.1f s", out, report["wall_s"]["total"])
    return WarmupResult(out, report, reused=False)


def _evaluate(model: Any, tokenizer: Any, config: WarmupConfig) -> list[dict[str, Any]]:
    from hopgym.agents.transformers_policy import TransformersPolicy
    from hopgym.trainers.warmup.evaluate import measure_held_out

    policy = TransformersPolicy.from_model(model, tokenizer, max_batch_size=64)
    figures = measure_held_out(
        policy,
        world_seed=config.eval_world_seed,
        hops=config.hops,
        tasks=config.eval_tasks,
        samples=config.eval_samples,
        seed=config.seed,
        name_pool=config.name_pool,
        top_k=config.top_k,
    )
    return [f.to_dict() for f in figures]


def warm_up_for_trainer(options: dict[str, Any], *, seed: int) -> tuple[str, dict[str, Any]]:
    """The trainer's hook (``model.warmup = "hopworld-tiny"``): ``options`` are :class:`WarmupConfig` fields
    (``model.warmup_options``; ``out_dir`` picks the directory); ``seed`` is the run's seed unless
    ``options`` set one. Returns ``(model_dir, report)``."""
    values = dict(options)
    out_dir = values.pop("out_dir", None)
    values.setdefault("seed", seed)
    result = warm_up(WarmupConfig.from_dict(values), out_dir)
    return str(result.model_dir), {
        **result.report,
        "model_dir": str(result.model_dir),
        "reused": result.reused,
    }
