"""Train hopgym agents with OpenRLHF on a Ray cluster (OpenRLHF >= 0.10.2 dotted flags; checked with 0.11.2).

- :mod:`.agent`: the file for ``--train.agent_func_path`` (its path: :func:`agent_file`); its
  ``AgentExecutor`` plays one hopgym episode per OpenRLHF sample through OpenRLHF's vLLM engine.
- :mod:`.config`: the agent's JSON settings, named by ``$HOPGYM_AGENT_CONFIG``.
- :mod:`.data`: :func:`prepare_openrlhf_data` writes the prompt file (labels name the tasks) and the agent
  config.
- :mod:`.launch`: :func:`openrlhf_command` maps an ``AlgorithmConfig`` and an :class:`OpenRLHFLaunch` to the
  ``python -m openrlhf.cli.train_ppo_ray`` command.

Nothing here imports OpenRLHF, torch or vLLM except the agent file itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hopgym.lazy import lazy_exports

if TYPE_CHECKING:
    from hopgym.trainers.openrlhf.config import CONFIG_ENV, AgentConfig, load_agent_config, write_agent_config
    from hopgym.trainers.openrlhf.data import OpenRLHFData, prepare_openrlhf_data
    from hopgym.trainers.openrlhf.executor import EpisodesFailed, HopgymEpisodes, episode_output
    from hopgym.trainers.openrlhf.launch import OpenRLHFLaunch, agent_file, openrlhf_command, openrlhf_flags

__all__ = [
    "CONFIG_ENV",
    "AgentConfig",
    "EpisodesFailed",
    "HopgymEpisodes",
    "OpenRLHFData",
    "OpenRLHFLaunch",
    "agent_file",
    "episode_output",
    "load_agent_config",
    "openrlhf_command",
    "openrlhf_flags",
    "prepare_openrlhf_data",
    "write_agent_config",
]

_LAZY = {
    "CONFIG_ENV": ".config",
    "AgentConfig": ".config",
    "load_agent_config": ".config",
    "write_agent_config": ".config",
    "OpenRLHFData": ".data",
    "prepare_openrlhf_data": ".data",
    "EpisodesFailed": ".executor",
    "HopgymEpisodes": ".executor",
    "episode_output": ".executor",
    "OpenRLHFLaunch": ".launch",
    "agent_file": ".launch",
    "openrlhf_command": ".launch",
    "openrlhf_flags": ".launch",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
