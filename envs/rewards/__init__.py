"""Reward functions: pure scores of an episode's text against golden answers, matching the seed projects.

Text-level metrics (``em_score``, ``f1_score``, ...) compare an answer string with golden answers; protocol
scorers (``search_r1_score``, ``research_score``, ``r1_searcher_score``, ...) take the whole response text.
Named rewards (``get_reward("em")``) wrap them as ``RewardFn`` objects; ``compose`` adds them with weights.
"""

from __future__ import annotations

from .base import RewardFn
from .compose import ComposedReward, compose
from .extract import (
    extract_boxed,
    extract_first_answer,
    extract_last_answer,
    extract_r1_searcher_answer,
)
from .normalize import normalize_answer, normalize_cover
from .prediction import cover_em_reward, em_reward, f1_reward, sub_em_reward
from .qa import cover_em_score, cover_f1_score, em_score, f1_score, sub_em_score, token_f1
from .r1_searcher import (
    r1_searcher_format_errors,
    r1_searcher_format_reward,
    r1_searcher_reward,
    r1_searcher_score,
    r1_searcher_stage1_reward,
    r1_searcher_stage1_score,
)
from .registry import (
    PREDICTION_REWARDS,
    REWARD_NAMES,
    available_rewards,
    get_reward,
    register_reward,
)
from .research import (
    research_format_error,
    research_format_reward,
    research_reward,
    research_score,
)
from .search_r1 import search_r1_reward, search_r1_score, search_r1_sub_reward

__all__ = [
    "PREDICTION_REWARDS",
    "REWARD_NAMES",
    "ComposedReward",
    "RewardFn",
    "available_rewards",
    "compose",
    "cover_em_reward",
    "cover_em_score",
    "cover_f1_score",
    "em_reward",
    "em_score",
    "extract_boxed",
    "extract_first_answer",
    "extract_last_answer",
    "extract_r1_searcher_answer",
    "f1_reward",
    "f1_score",
    "get_reward",
    "normalize_answer",
    "normalize_cover",
    "r1_searcher_format_errors",
    "r1_searcher_format_reward",
    "r1_searcher_reward",
    "r1_searcher_score",
    "r1_searcher_stage1_reward",
    "r1_searcher_stage1_score",
    "register_reward",
    "research_format_error",
    "research_format_reward",
    "research_reward",
    "research_score",
    "search_r1_reward",
    "search_r1_score",
    "search_r1_sub_reward",
    "sub_em_reward",
    "sub_em_score",
    "token_f1",
]
