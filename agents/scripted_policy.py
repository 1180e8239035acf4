"""The HopWorld oracle as a :class:`~hopgym.agents.policy.Policy`: a fast, deterministic stand-in for a model.

It finds the episode's task by its question in the first prompt, replays the oracle over the observations in
``context.messages`` (the engine appends one message per observation) and writes the next action in the
protocol's own format, ending with the protocol's stop string as a model would.
:class:`TokenScriptedOraclePolicy`, given an ``encode`` function (e.g. a tokenizer's), is token-level, so engine
mechanics (masks, spans) can be tested without a model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence

from hopgym.agents.hopworld_oracle import HopWorldOracle
from hopgym.agents.policy import Context, Generation, SamplingParams
from hopgym.envs.protocols.base import ActionProtocol
from hopgym.errors import ConfigError
from hopgym.types import Task

__all__ = ["ScriptedOraclePolicy", "TokenScriptedOraclePolicy"]


class ScriptedOraclePolicy:
    """Play the HopWorld oracle for ``tasks`` in ``protocol`` (a text-level policy).

    ``delay_s`` sleeps before each turn (to simulate generation time in tests).
    """

    name = "scripted-oracle"

    def __init__(
        self,
        tasks: Iterable[Task],
        protocol: ActionProtocol,
        *,
        delay_s: float = 0.0,
    ) -> None:
        self._protocol = protocol
        self._by_question: dict[str, Task] = {}
        for task in tasks:
            self._by_question.setdefault(task.question, task)
        if not self._by_question:
            raise ConfigError("ScriptedOraclePolicy needs the HopWorld tasks it will play (got none)")
        self._delay_s = delay_s
        self.calls = 0

    def _task(self, context: Context) -> Task:
        # The longest match wins, in case one question is a substring of another.
        matches = [q for q in self._by_question if q in context.prompt]
        if matches:
            return self._by_question[max(matches, key=len)]
        raise ConfigError("ScriptedOraclePolicy: the prompt contains none of the questions it was given")

    def next_text(self, context: Context) -> str:
        """The next action text for ``context`` (pure: replays the oracle from the start)."""
        task = self._task(context)
        oracle = HopWorldOracle(task)
        first = len(self._protocol.messages(task))
        later = context.messages[first:]
        observations = [str(m.get("content") or "") for m in later if m.get("role") != "assistant"]
        kind, text = oracle.next_action(None)
        for observation in observations:
            kind, text = oracle.next_action(observation)
        return self._protocol.render_search(text) if kind == "search" else self._protocol.render_answer(text)

    async def generate(self, context: Context, params: SamplingParams) -> Generation:
        self.calls += 1
        if self._delay_s:
            await asyncio.sleep(self._delay_s)
        text = self.next_text(context)
        stop_reason = next((s for s in params.stop if text.endswith(s)), None)
        return Generation(text=text, finish_reason="stop", stop_reason=stop_reason)

    async def aclose(self) -> None:
        return None


class TokenScriptedOraclePolicy(ScriptedOraclePolicy):
    """The scripted oracle as a :class:`~hopgym.agents.policy.TokenPolicy`: ``encode`` tokenizes the prompt
    (as is), each action and each observation; logprobs are reported as 0.0 (the script is certain)."""

    token_level = True

    def __init__(
        self,
        tasks: Iterable[Task],
        protocol: ActionProtocol,
        encode: Callable[[str], Sequence[int]],
        *,
        delay_s: float = 0.0,
    ) -> None:
        if not callable(encode):
            raise ConfigError("TokenScriptedOraclePolicy needs encode=, a function from text to token ids")
        super().__init__(tasks, protocol, delay_s=delay_s)
        self._encode = encode

    async def generate(self, context: Context, params: SamplingParams) -> Generation:
        text = (await super().generate(context, params)).text
        ids = tuple(self._encode(text))
        stop_reason = next((s for s in params.stop if text.endswith(s)), None)
        return Generation(
            text=text,
            finish_reason="stop",
            token_ids=ids,
            logprobs=(0.0,) * len(ids),
            stop_reason=stop_reason,
        )

    def encode_prompt(self, context: Context) -> list[int]:
        return list(self._encode(context.prompt))

    def encode(self, text: str) -> list[int]:
        return list(self._encode(text))
