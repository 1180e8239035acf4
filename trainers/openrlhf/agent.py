"""The hopgym agent file for OpenRLHF (>= 0.10.2): ``--train.agent_func_path`` takes this file's path.

OpenRLHF loads it by path (``importlib.util.spec_from_file_location``) in each vLLM Ray actor and builds its
``AgentExecutor`` with no arguments; the executor reads its settings from the JSON file named by
``$HOPGYM_AGENT_CONFIG`` (:mod:`hopgym.trainers.openrlhf.config`) and plays one hopgym episode per sample
(:mod:`hopgym.trainers.openrlhf.executor`). The path: ``hopgym.trainers.openrlhf.AGENT_FILE``.
"""

from __future__ import annotations

from typing import Any

from hopgym.errors import require
from hopgym.trainers.openrlhf.executor import HopgymEpisodes

__all__ = ["AgentExecutor"]

_agent: Any = require("openrlhf.utils.agent", extra="openrlhf", purpose="the OpenRLHF agent executor")


class AgentExecutor(_agent.AgentExecutorBase):  # type: ignore[misc]
    """OpenRLHF's ``AgentExecutorBase``: ``execute`` plays the labelled task as one hopgym episode."""

    def __init__(self) -> None:
        super().__init__()
        self.episodes = HopgymEpisodes()

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
        return await self.episodes.execute(
            prompt, label, sampling_params, max_length, hf_tokenizer, llm_engine, images=images
        )
