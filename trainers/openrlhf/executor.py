"""One OpenRLHF sample = one hopgym episode, played through the vLLM engine OpenRLHF hands the agent.

OpenRLHF 0.11.2 (``openrlhf/trainer/ray/vllm_engine.py``) builds the agent executor once per vLLM Ray actor and
calls ``execute(prompt, label, sampling_params, max_length, hf_tokenizer, llm_engine, images)`` for each
sample, with ``llm_engine`` the actor itself: its ``generate(prompt_token_ids, sampling_params)`` returns the
final ``vllm.RequestOutput``. :class:`HopgymEpisodes` plays the task named by the label with hopgym's own
episode loop (:func:`~hopgym.agents.rollout.episode.run_episode`), the policy being a
:class:`~hopgym.agents.vllm_policy.VLLMPolicy` over that engine, so the token ids OpenRLHF trains on are the
ids that were sampled plus each observation encoded on its own, exactly as in every hopgym rollout.

The result has the keys OpenRLHF's ``SamplesGenerator._process_response_into_experience`` reads (the ones its
``MultiTurnAgentExecutor`` returns): ``observation_tokens`` (the whole sequence), ``action_ranges`` (one
``[start, end)`` per generated turn: the tokens OpenRLHF trains on; prompt and retrieved documents are outside
them), ``rollout_log_probs`` (aligned with the sequence, 0.0 outside actions; None unless OpenRLHF asked for
log-probs), ``reward`` and ``scores`` (hopgym's reward), ``truncated``, and numeric ``extra_logs``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from hopgym.agents.policy import SamplingParams
from hopgym.agents.rollout.config import RolloutConfig
from hopgym.agents.rollout.episode import run_episode
from hopgym.agents.rollout.trajectory import Trajectory
from hopgym.envs.pool import EnvPool
from hopgym.errors import ConfigError, EpisodesFailed
from hopgym.trainers.openrlhf.config import AgentConfig, load_agent_config
from hopgym.trainers.openrlhf.data import decode_label
from hopgym.trainers.rollouts import collect_groups

__all__ = ["EpisodesFailed", "HopgymEpisodes", "episode_output", "hopgym_sampling"]


def hopgym_sampling(sampling_params: Any, max_tokens: int) -> SamplingParams:
    """hopgym's per-turn sampling from OpenRLHF's ``vllm.SamplingParams`` (temperature, top-p/top-k, seed,
    stop strings; its ``max_tokens``, when set, lowers the turn budget ``max_tokens``). Log-probs are always
    sampled: they cost nothing and the episode records them."""
    limit = getattr(sampling_params, "max_tokens", None)
    turn = max_tokens if limit is None else max(1, min(max_tokens, int(limit)))
    extra: dict[str, Any] = {}
    top_k = getattr(sampling_params, "top_k", None)
    if top_k is not None and int(top_k) > 0:
        extra["top_k"] = int(top_k)
    if int(getattr(sampling_params, "min_tokens", 0) or 0) >= 1:
        # Every turn gets at least one token of room (run_episode ends the episode otherwise); more than one
        # could exceed a nearly full episode's room, which vLLM refuses.
        extra["min_tokens"] = 1
    return SamplingParams(
        max_tokens=turn,
        temperature=float(sampling_params.temperature),
        top_p=float(sampling_params.top_p),
        stop=tuple(getattr(sampling_params, "stop", None) or ()),
        seed=getattr(sampling_params, "seed", None),
        logprobs=True,
        extra=extra,
    )


def episode_output(
    traj: Trajectory, *, prompt: str, label: str, images: Any = None, want_logprobs: bool = True
) -> dict[str, Any]:
    """The dict OpenRLHF expects from ``execute`` for a finished (not failed) token-level episode."""
    if traj.failed or traj.reward is None:
        raise ValueError(
            f"episode {traj.task_id}/{traj.sample_index} failed ({traj.error}): it has no output"
        )
    if traj.token_ids is None or traj.action_spans is None or traj.logprobs is None:
        raise ValueError(f"episode {traj.task_id} has no token view: it needs a token-level policy")
    rollout_log_probs = [0.0 if lp is None else float(lp) for lp in traj.logprobs] if want_logprobs else None
    last_finish = traj.turns[-1].finish_reason if traj.turns else None
    reward = float(traj.reward)
    extra_logs = {
        "hopgym_searches": float(traj.num_searches),
        "hopgym_turns": float(len(traj.turns)),
        "hopgym_answered": float(traj.termination == "answered"),
        "hopgym_invalid_actions": float(sum(t.action_kind == "invalid" for t in traj.turns)),
        "hopgym_generated_tokens": float(traj.generated_tokens),
    }
    return {
        "prompt": prompt,
        "label": label,
        "images": images,
        "mm_train_inputs": None,
        "reward": reward,
        "scores": reward,
        "observation_tokens": list(traj.token_ids),
        "action_ranges": [(int(start), int(end)) for start, end in traj.action_spans],
        "rollout_log_probs": rollout_log_probs,
        "truncated": traj.termination == "length" or last_finish == "length",
        "extra_logs": extra_logs,
    }


class _RolloutEngine:
    """OpenRLHF's ``llm_engine`` seen through the ``vllm.AsyncLLM`` calls :class:`VLLMPolicy` makes."""

    def __init__(self, llm_engine: Any, tokenizer: Any) -> None:
        self._engine = llm_engine
        self._tokenizer = tokenizer

    def get_tokenizer(self) -> Any:
        return self._tokenizer

    async def generate(self, prompt: Mapping[str, Any], params: Any, request_id: str) -> AsyncIterator[Any]:
        # OpenRLHF's generate makes its own request id and returns the final output only.
        yield await self._engine.generate(list(prompt["prompt_token_ids"]), params)


class HopgymEpisodes:
    """The work behind the agent file's ``AgentExecutor`` (one per vLLM actor; see the module docstring).

    ``config``: default, the file ``$HOPGYM_AGENT_CONFIG`` names. Envs come from one pool per event loop
    (one env per episode, one shared micro-batching retriever); the policy is one ``VLLMPolicy`` per engine.
    """

    def __init__(self, config: AgentConfig | None = None) -> None:
        self.config = config if config is not None else load_agent_config()
        self.config.check_env()
        self._pool: EnvPool | None = None
        self._policies: dict[int, Any] = {}

    def _policy(self, llm_engine: Any, tokenizer: Any) -> Any:
        key = id(llm_engine)
        if key not in self._policies:
            from hopgym.agents.vllm_policy import VLLMPolicy

            self._policies[key] = VLLMPolicy(
                engine=_RolloutEngine(llm_engine, tokenizer), chat_template=self.config.chat_template
            )
        return self._policies[key]

    def _envs(self) -> EnvPool:
        if self._pool is None:
            self._pool = EnvPool(
                self.config.env,
                env_kwargs=dict(self.config.env_kwargs),
                retriever_batching=self.config.retriever_batching,
            )
        return self._pool

    async def play(self, task_id: str, sampling: SamplingParams, max_length: int, policy: Any) -> Trajectory:
        """One finished episode of ``task_id`` (failed tries are played again, then raise EpisodesFailed)."""

        async def episodes(task_ids: list[str], config: RolloutConfig) -> list[Trajectory]:
            # run_episode itself rather than the episode engine: the episode is recorded as the "openrlhf"
            # policy's, and an env that cannot be built raises at once instead of becoming a failed episode.
            played = []
            for tid in task_ids:
                for sample_index in range(config.samples_per_task):
                    env = await self._envs().new_env()
                    try:
                        played.append(
                            await run_episode(
                                env,
                                policy,
                                tid,
                                sample_index=sample_index,
                                sampling=config.sampling,
                                max_episode_tokens=config.max_episode_tokens,
                                policy_name="openrlhf",
                            )
                        )
                    finally:
                        await env.aclose()
            return played

        played = await collect_groups(
            self._envs(),
            policy,
            [task_id],
            samples=1,
            sampling=sampling,
            max_episode_tokens=max_length,
            concurrency=1,
            retries=self.config.max_episode_retries,
            runner=episodes,
            fix_hint="a failed episode is not trained on: fix the retriever/engine, or raise max_episode_retries "
            "in the agent config",
        )
        (traj,) = played.trajectories
        return traj

    async def execute(
        self,
        prompt: str,
        label: str,
        sampling_params: Any,
        max_length: int,
        hf_tokenizer: Any,
        llm_engine: Any,
        images: Any = None,
    ) -> dict[str, Any]:
        """OpenRLHF's ``AgentExecutorBase.execute``: one episode for this prompt, in OpenRLHF's output format."""
        if images:
            raise ConfigError("hopgym episodes are text-only: the prompt file must not carry images")
        task_id = decode_label(label, env_id=self.config.env)
        sampling = hopgym_sampling(sampling_params, self.config.max_tokens)
        traj = await self.play(task_id, sampling, int(max_length), self._policy(llm_engine, hf_tokenizer))
        if traj.prompt != prompt:
            raise ConfigError(
                f"the prompt OpenRLHF passed for task {task_id!r} is not the prompt {self.config.env} gives it: "
                "prepare the prompt file and the agent config together (prepare_openrlhf_data), and do not pass "
                "--data.apply_chat_template or --data.input_template (set chat_template in the agent config)"
            )
        if not traj.turns:
            raise ConfigError(
                f"the prompt of task {task_id!r} is {traj.prompt_token_count} tokens, which fills "
                f"--data.max_len={max_length}: raise --data.max_len"
            )
        return episode_output(
            traj,
            prompt=prompt,
            label=label,
            images=images,
            want_logprobs=sampling_params.logprobs is not None,
        )
