"""Checkpoints of a training run: model, tokenizer, optimizer, scheduler, RNG states and the data cursor.

Each checkpoint is written into a temporary directory and renamed into place (``checkpoints/step-000010``),
then ``checkpoints/latest`` is replaced atomically, so a kill at any moment leaves the previous checkpoint
intact. Only the last ``keep`` checkpoints are kept. Tensors are saved with ``torch.save`` and read back
with ``weights_only=True``: loading a checkpoint never unpickles arbitrary objects.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from hopgym.errors import DataError

__all__ = ["TrainerState", "latest_checkpoint", "load_checkpoint", "save_checkpoint"]

_LATEST = "latest"


@dataclass(frozen=True)
class TrainerState:
    """Where the run is: steps done, tasks consumed from the data order, and elapsed training seconds."""

    step: int
    tasks_consumed: int
    elapsed_s: float


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_checkpoint(
    root: Path,
    state: TrainerState,
    *,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator,
    keep: int,
) -> Path:
    """Write ``root/step-NNNNNN`` atomically, point ``root/latest`` at it, drop all but the last ``keep``."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{state.step:06d}"
    tmp = root / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model.save_pretrained(tmp / "model")
    tokenizer.save_pretrained(tmp / "model")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(
        {
            "python": _python_state(),
            "torch": torch.get_rng_state(),
            "generator": generator.get_state(),
        },
        tmp / "rng.pt",
    )
    (tmp / "state.json").write_text(json.dumps(asdict(state)), encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _atomic_write_text(root / _LATEST, final.name)
    kept = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in kept[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    """The checkpoint ``root/latest`` names (None when the run has none yet)."""
    pointer = root / _LATEST
    if not pointer.exists():
        return None
    path = root / pointer.read_text(encoding="utf-8").strip()
    if not (path / "state.json").exists():
        raise DataError(
            f"{pointer} names {path.name}, which is missing or incomplete; delete {pointer} to restart"
        )
    return path


def load_checkpoint(
    path: Path, *, optimizer: torch.optim.Optimizer, scheduler: Any, generator: torch.Generator
) -> TrainerState:
    """Restore optimizer, scheduler and RNG states from ``path`` (the model is loaded from ``path/model``)."""
    try:
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
        rng = torch.load(path / "rng.pt", weights_only=True)
        state = TrainerState(**json.loads((path / "state.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise DataError(
            f"checkpoint {path} cannot be loaded ({exc}); resume from an older one or restart"
        ) from exc
    random.setstate(_python_state_from(rng["python"]))
    torch.set_rng_state(rng["torch"])
    generator.set_state(rng["generator"])
    return state


def _python_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _python_state_from(data: list[Any]) -> Any:
    version, internal, gauss = data
    return (int(version), tuple(int(x) for x in internal), gauss)
