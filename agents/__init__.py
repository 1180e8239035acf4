"""Agents: the policy contracts, the policy backends and the rollout engine.

``from hopgym.agents import ...`` gives the contracts (:class:`Policy`, :class:`TokenPolicy`, :class:`Context`,
:class:`Generation`, :class:`SamplingParams`) at once; the backends (``OpenAIPolicy``, ``VLLMPolicy``,
``TransformersPolicy``, the scripted oracles) and the rollout API (``run_episodes``, ``collect_episodes``,
``run_episodes_sync``, ``RolloutConfig``, ``Trajectory``, ``TrajectoryStore``, ...) load on first use, so
``import hopgym.agents`` never imports torch, vLLM or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hopgym.agents.policy import (
    Context,
    FinishReason,
    Generation,
    Policy,
    SamplingParams,
    TokenPolicy,
    WeightSync,
)
from hopgym.lazy import lazy_exports

if TYPE_CHECKING:
    from hopgym.agents.hopworld_oracle import HopWorldOracle
    from hopgym.agents.openai_policy import OpenAIPolicy, OpenAIPolicyConfig, ToolsNotSupported
    from hopgym.agents.prompt_encoding import PromptEncoder
    from hopgym.agents.rollout.config import RolloutConfig
    from hopgym.agents.rollout.engine import (
        EpisodeRun,
        RunResult,
        RunSummary,
        collect_episodes,
        run_episodes,
        run_episodes_sync,
    )
    from hopgym.agents.rollout.episode import run_episode
    from hopgym.agents.rollout.ledger import TokenLedger
    from hopgym.agents.rollout.store import TrajectoryStore
    from hopgym.agents.rollout.trajectory import Trajectory, Turn, verify_trajectory
    from hopgym.agents.scripted_policy import ScriptedOraclePolicy, TokenScriptedOraclePolicy
    from hopgym.agents.transformers_policy import TransformersPolicy
    from hopgym.agents.vllm_policy import VLLMPolicy

_LAZY = {
    "OpenAIPolicy": "hopgym.agents.openai_policy",
    "OpenAIPolicyConfig": "hopgym.agents.openai_policy",
    "ToolsNotSupported": "hopgym.agents.openai_policy",
    "VLLMPolicy": "hopgym.agents.vllm_policy",
    "TransformersPolicy": "hopgym.agents.transformers_policy",
    "ScriptedOraclePolicy": "hopgym.agents.scripted_policy",
    "TokenScriptedOraclePolicy": "hopgym.agents.scripted_policy",
    "HopWorldOracle": "hopgym.agents.hopworld_oracle",
    "PromptEncoder": "hopgym.agents.prompt_encoding",
    "RolloutConfig": "hopgym.agents.rollout.config",
    "EpisodeRun": "hopgym.agents.rollout.engine",
    "RunResult": "hopgym.agents.rollout.engine",
    "RunSummary": "hopgym.agents.rollout.engine",
    "collect_episodes": "hopgym.agents.rollout.engine",
    "run_episodes": "hopgym.agents.rollout.engine",
    "run_episodes_sync": "hopgym.agents.rollout.engine",
    "run_episode": "hopgym.agents.rollout.episode",
    "TokenLedger": "hopgym.agents.rollout.ledger",
    "TrajectoryStore": "hopgym.agents.rollout.store",
    "Trajectory": "hopgym.agents.rollout.trajectory",
    "Turn": "hopgym.agents.rollout.trajectory",
    "verify_trajectory": "hopgym.agents.rollout.trajectory",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "Context",
    "EpisodeRun",
    "FinishReason",
    "Generation",
    "HopWorldOracle",
    "OpenAIPolicy",
    "OpenAIPolicyConfig",
    "Policy",
    "PromptEncoder",
    "RolloutConfig",
    "RunResult",
    "RunSummary",
    "SamplingParams",
    "ScriptedOraclePolicy",
    "TokenLedger",
    "TokenPolicy",
    "TokenScriptedOraclePolicy",
    "ToolsNotSupported",
    "Trajectory",
    "TrajectoryStore",
    "TransformersPolicy",
    "Turn",
    "VLLMPolicy",
    "WeightSync",
    "collect_episodes",
    "run_episode",
    "run_episodes",
    "run_episodes_sync",
    "verify_trajectory",
]
