"""Trajectory records: JSON round trip, token assembly, and the consistency checker catching real faults."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hopgym.agents.rollout.trajectory import (
    Trajectory,
    Turn,
    assemble_tokens,
    spans_from_mask,
    verify_trajectory,
)


def _decode(ids: object) -> str:
    return "".join(chr(i) for i in ids)  # type: ignore[attr-defined]


def _enc(text: str) -> tuple[int, ...]:
    return tuple(ord(c) for c in text)


def _turn(text: str, observation: str, kind: str = "search") -> Turn:
    ids = _enc(text)
    return Turn(
        text=text,
        finish_reason="stop",
        stop_reason="</search>" if kind == "search" else "</answer>",
        observation=observation,
        action_kind=kind,
        token_ids=ids,
        logprobs=tuple(-0.5 for _ in ids),
        observation_token_ids=_enc(observation),
        query="q" if kind == "search" else None,
        passage_ids=("p1", "p2") if kind == "search" else (),
        generation_s=0.1,
        step_s=0.01,
    )


def _token_traj() -> Trajectory:
    prompt = "Question: who?\n"
    turns = (
        _turn("<search>a b</search>", "\n<information>Doc 1</information>\n"),
        _turn("<answer>x</answer>", "", kind="answer"),
    )
    ids, mask, logprobs, spans = assemble_tokens(_enc(prompt), turns)
    return Trajectory(
        task_id="t1",
        sample_index=2,
        group_id="t1",
        termination="answered",
        turns=turns,
        reward=1.0,
        reward_components={"em": 1.0},
        answer="x",
        num_searches=1,
        prompt=prompt,
        prompt_token_count=len(prompt),
        token_ids=ids,
        loss_mask=mask,
        logprobs=logprobs,
        action_spans=spans,
        policy="test",
    )


def test_assemble_tokens_masks_prompt_and_observations() -> None:
    traj = _token_traj()
    assert traj.token_ids is not None and traj.loss_mask is not None and traj.action_spans is not None
    p = len(traj.prompt)
    first, second = traj.action_spans
    assert first == (p, p + len("<search>a b</search>"))
    obs_len = len(traj.turns[0].observation)
    assert second == (first[1] + obs_len, first[1] + obs_len + len("<answer>x</answer>"))
    masked_out = _decode(i for i, m in zip(traj.token_ids, traj.loss_mask, strict=True) if not m)
    assert masked_out == traj.prompt + "\n<information>Doc 1</information>\n"
    generated = _decode(i for i, m in zip(traj.token_ids, traj.loss_mask, strict=True) if m)
    assert generated == "<search>a b</search><answer>x</answer>"
    assert traj.logprobs is not None
    assert [lp is not None for lp in traj.logprobs] == [bool(m) for m in traj.loss_mask]
    assert verify_trajectory(traj, _decode) == []


def test_json_round_trip_is_exact() -> None:
    traj = _token_traj()
    again = Trajectory.from_dict(json.loads(json.dumps(traj.to_dict())))
    assert again == traj
    assert again.key == ("t1", 2)
    assert again.generated_tokens == sum(len(t.token_ids or ()) for t in traj.turns)
    assert again.response == traj.turns[0].text + traj.turns[0].observation + traj.turns[1].text


def test_text_only_trajectory_round_trips_and_verifies_trivially() -> None:
    turn = Turn(text="<answer>y</answer>", finish_reason="stop", observation="", action_kind="answer")
    traj = Trajectory(
        task_id="t", sample_index=0, group_id="t", termination="answered", turns=(turn,), reward=0.0
    )
    assert Trajectory.from_dict(json.loads(json.dumps(traj.to_dict()))) == traj
    assert verify_trajectory(traj) == []
    assert traj.generated_tokens == 0


def test_failed_trajectories_carry_an_error_and_no_reward() -> None:
    with pytest.raises(ValueError, match="error"):
        Trajectory(task_id="t", sample_index=0, group_id="t", termination="failed")
    with pytest.raises(ValueError, match="reward"):
        Trajectory(task_id="t", sample_index=0, group_id="t", termination="answered")
    with pytest.raises(ValueError, match="termination"):
        Trajectory(task_id="t", sample_index=0, group_id="t", termination="oops", reward=0.0)
    failed = Trajectory(
        task_id="t", sample_index=0, group_id="t", termination="failed", error="RuntimeError: x"
    )
    assert failed.failed and failed.reward is None


def test_spans_from_mask() -> None:
    assert spans_from_mask([]) == ()
    assert spans_from_mask([0, 1, 1, 0, 0, 1]) == ((1, 3), (5, 6))
    assert spans_from_mask([1, 1]) == ((0, 2),)


def test_assemble_rejects_turns_without_tokens() -> None:
    turn = Turn(text="a", finish_reason="stop", observation="", action_kind="answer")
    with pytest.raises(ValueError, match="no token ids"):
        assemble_tokens([1, 2], [turn])


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (lambda t: dataclasses.replace(t, loss_mask=(1, *t.loss_mask[1:])), "loss_mask"),
        (lambda t: dataclasses.replace(t, loss_mask=t.loss_mask[:-1]), "lengths differ"),
        (lambda t: dataclasses.replace(t, token_ids=(*t.token_ids[:-1], 65)), "token_ids differ"),
        (lambda t: dataclasses.replace(t, logprobs=(-1.0, *t.logprobs[1:])), "logprob set"),
        (lambda t: dataclasses.replace(t, action_spans=t.action_spans[:1]), "action spans"),
        (
            lambda t: dataclasses.replace(
                t, turns=(dataclasses.replace(t.turns[0], text="other"), t.turns[1])
            ),
            "decoded action span",
        ),
    ],
)
def test_verify_catches_corruption(corrupt: object, expected: str) -> None:
    bad = corrupt(_token_traj())  # type: ignore[operator]
    problems = verify_trajectory(bad, _decode)
    assert any(expected in p for p in problems), problems
