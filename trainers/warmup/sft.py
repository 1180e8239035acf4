"""Masked supervised fine-tuning of the from-scratch model on encoded traces (AdamW, next-token loss).

Only positions whose loss mask is 1 (the agent's own action tokens) are predicted; prompt and observation
tokens are context. Batches are drawn by length bucket (traces sorted by length, consecutive slices shuffled)
so padding stays small, which matters on a 2-core CPU.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hopgym.trainers.warmup.traces import EncodedTrace

__all__ = ["SftStats", "masked_lm_loss", "train_sft"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SftStats:
    """Loss of the first and last ``window`` steps, steps done, wall seconds and tokens seen."""

    first_loss: float
    last_loss: float
    losses: tuple[float, ...]
    steps: int
    wall_s: float
    tokens: int


def masked_lm_loss(model: Any, input_ids: Any, attention: Any, loss_mask: Any) -> Any:
    """Mean next-token cross-entropy over positions whose *target* token has loss mask 1."""
    import torch

    logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1, :]
    targets = input_ids[:, 1:]
    weights = loss_mask[:, 1:].to(logits.dtype)
    losses = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="none"
    ).view_as(weights)
    return (losses * weights).sum() / weights.sum().clamp(min=1.0)


def _batches(traces: Sequence[EncodedTrace], batch_size: int, rng: random.Random) -> list[list[int]]:
    order = sorted(range(len(traces)), key=lambda i: len(traces[i].token_ids))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(chunks)
    return chunks


def train_sft(
    model: Any,
    traces: Sequence[EncodedTrace],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    pad_id: int,
    seed: int = 0,
    observation_weight: float = 0.0,
    max_seconds: float = 0.0,
    log_every: int = 25,
    on_step: Callable[[int, float], None] | None = None,
) -> SftStats:
    """Train ``model`` in place for ``steps`` AdamW steps (linear decay to 10% of ``lr`` after 5% warm-up),
    or until ``max_seconds`` of wall time (0: no limit) have passed."""
    import torch

    if not traces:
        raise ValueError("train_sft needs at least one trace")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    warm = max(1, steps // 20)

    def schedule(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.1, 1.0 - 0.9 * (step - warm) / max(1, steps - warm))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    losses: list[float] = []
    tokens = 0
    queue: list[list[int]] = []
    started = time.perf_counter()
    done = 0
    for step in range(steps):
        if max_seconds and time.perf_counter() - started > max_seconds:
            logger.info("sft: time budget of %.0f s reached after %d steps", max_seconds, step)
            break
        done = step + 1
        if not queue:
            queue = _batches(traces, batch_size, rng)
        batch = [traces[i] for i in queue.pop()]
        width = max(len(t.token_ids) for t in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.float32)
        for row, trace in enumerate(batch):
            n = len(trace.token_ids)
            ids[row, :n] = torch.tensor(trace.token_ids)
            attention[row, :n] = 1
            mask[row, :n] = torch.tensor(trace.loss_mask, dtype=torch.float32)
            if observation_weight:
                mask[row, trace.prompt_len : n] += observation_weight * (1 - mask[row, trace.prompt_len : n])
        loss = masked_lm_loss(model, ids, attention, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        tokens += int(attention.sum())
        if on_step is not None:
            on_step(step, losses[-1])
        if log_every and (step + 1) % log_every == 0:
            logger.info("sft step %d/%d loss %.4f", step + 1, steps, sum(losses[-log_every:]) / log_every)
    model.eval()
    window = max(1, min(10, done // 5))
    return SftStats(
        first_loss=sum(losses[:window]) / window,
        last_loss=sum(losses[-window:]) / window,
        losses=tuple(losses),
        steps=done,
        wall_s=time.perf_counter() - started,
        tokens=tokens,
    )
