"""The token ledger alone: what it records is exactly what verify_trajectory and assemble_tokens expect."""

from __future__ import annotations

import random

import pytest

from hopgym.agents.policy import Context
from hopgym.agents.rollout.ledger import TokenLedger
from hopgym.agents.rollout.trajectory import Trajectory, Turn, assemble_tokens, verify_trajectory


def _decode(ids: object) -> str:
    return "".join(chr(0x100 + i) for i in ids)  # type: ignore[attr-defined]


def _play(
    rng: random.Random, turns_n: int, *, with_logprobs: bool
) -> tuple[TokenLedger, list[int], list[Turn]]:
    prompt = [rng.randrange(50) for _ in range(rng.randrange(1, 8))]
    ledger = TokenLedger(prompt)
    turns = []
    for _ in range(turns_n):
        ids = tuple(rng.randrange(50) for _ in range(rng.randrange(0, 6)))  # empty generations happen
        logprobs = tuple(-rng.random() for _ in ids) if with_logprobs else None
        obs = tuple(rng.randrange(50) for _ in range(rng.randrange(0, 5)))
        ledger.add_generation(ids, logprobs)
        ledger.add_observation(obs)
        turns.append(
            Turn(text=_decode(ids), finish_reason="stop", observation=_decode(obs), action_kind="search",
                 token_ids=ids, logprobs=logprobs, observation_token_ids=obs)
        )  # fmt: skip
    return ledger, prompt, turns


def _trajectory(ledger: TokenLedger, turns: list[Turn]) -> Trajectory:
    return Trajectory(task_id="t", sample_index=0, group_id="t", termination="answered", reward=1.0,
                      turns=tuple(turns), **ledger.trajectory_fields())  # fmt: skip


@pytest.mark.parametrize("with_logprobs", [True, False])
def test_random_episodes_verify_and_match_assemble_tokens(with_logprobs: bool) -> None:
    rng = random.Random(7)
    for case in range(200):
        ledger, prompt, turns = _play(rng, rng.randrange(0, 6), with_logprobs=with_logprobs)
        traj = _trajectory(ledger, turns)
        assert verify_trajectory(traj, _decode) == [], case
        ids, mask, logprobs, spans = assemble_tokens(prompt, turns)
        assert (traj.token_ids, traj.loss_mask, traj.logprobs, traj.action_spans) == (
            ids,
            mask,
            logprobs,
            spans,
        )
        assert traj.prompt_token_count == len(prompt) and len(ledger) == len(ids)


def test_spans_mask_and_logprobs_of_a_known_episode() -> None:
    ledger = TokenLedger([1, 2, 3])
    assert ledger.add_generation([4, 5], [-0.5, -0.25]) == (3, 5)
    ledger.add_observation([6, 7])
    assert ledger.add_generation([8], [-1.0]) == (7, 8)
    fields = ledger.trajectory_fields()
    assert fields == {
        "prompt_token_count": 3,
        "token_ids": (1, 2, 3, 4, 5, 6, 7, 8),
        "loss_mask": (0, 0, 0, 1, 1, 0, 0, 1),
        "logprobs": (None, None, None, -0.5, -0.25, None, None, -1.0),
        "action_spans": ((3, 5), (7, 8)),
    }


def test_a_context_views_the_ledger_without_copies() -> None:
    ledger = TokenLedger([1, 2])
    context = Context(prompt="p", messages=[], token_ids=ledger.token_ids, loss_mask=ledger.loss_mask)
    ledger.add_generation([3], None)
    ledger.add_observation([4])
    assert context.token_ids == [1, 2, 3, 4] and context.loss_mask == [0, 0, 1, 0]
    frozen = ledger.trajectory_fields()
    ledger.add_observation([5])
    assert frozen["token_ids"] == (1, 2, 3, 4)  # a finished record does not move with the ledger


def test_mismatched_logprobs_are_refused() -> None:
    ledger = TokenLedger([])
    with pytest.raises(ValueError, match="2 token ids but 1 logprobs"):
        ledger.add_generation([1, 2], [-0.1])
    assert len(ledger) == 0 and ledger.action_spans == []


def test_verify_catches_a_ledger_that_disagrees_with_its_turns() -> None:
    ledger, _, turns = _play(random.Random(3), 3, with_logprobs=True)
    ledger.add_observation([1])  # an observation token the turns do not know about
    problems = verify_trajectory(_trajectory(ledger, turns), _decode)
    assert any("token_ids differ" in p for p in problems)
