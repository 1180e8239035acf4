"""Named rewards, the registry and composition."""

from __future__ import annotations

import pytest

from hopgym.envs.rewards import (
    PREDICTION_REWARDS,
    REWARD_NAMES,
    RewardFn,
    available_rewards,
    compose,
    em_reward,
    get_reward,
    register_reward,
    research_format_reward,
)
from hopgym.envs.rewards import registry as registry_module
from hopgym.errors import ConfigError
from hopgym.types import RewardInput, RewardResult

_EPISODE = (
    "<think> Where is the tower? </think>\n<search> Eiffel Tower </search>\n"
    "<result>\nThe Eiffel Tower is in Paris.\n</result>\n"
    "<think> Paris. </think>\n<answer> \\boxed{Paris} </answer>"
)


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module.REWARDS, "_entries", dict(registry_module.REWARDS._entries))


def test_builtin_names() -> None:
    assert REWARD_NAMES == (
        "em",
        "f1",
        "sub_em",
        "cover_em",
        "search_r1",
        "search_r1_sub",
        "research",
        "r1_searcher",
        "r1_searcher_stage1",
    )
    assert set(REWARD_NAMES) > PREDICTION_REWARDS
    for name in REWARD_NAMES:
        assert isinstance(get_reward(name), RewardFn)


@pytest.mark.parametrize(
    ("name", "prediction", "expected"),
    [
        ("em", "the Paris", 1.0),
        ("f1", "Paris France", 2 / 3),
        ("sub_em", "Paris, France", 1.0),
        ("cover_em", "France_Paris", 1.0),
        ("em", None, 0.0),
        ("f1", None, 0.0),
        ("sub_em", None, 0.0),
        ("cover_em", None, 0.0),
    ],
)
def test_prediction_rewards_score_the_prediction(name: str, prediction: str | None, expected: float) -> None:
    # The response says London: prediction rewards must not look at it.
    inp = RewardInput(response="<answer> London </answer>", golden_answers=("Paris",), prediction=prediction)
    result = get_reward(name)(inp)
    assert result.score == pytest.approx(expected)
    assert dict(result.reward_components) == {name: pytest.approx(expected)}


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown reward 'exact'.*em, f1, sub_em"):
        get_reward("exact")


@pytest.mark.usefixtures("clean_registry")
def test_register_reward() -> None:
    def always_half(inp: RewardInput, /) -> RewardResult:
        return RewardResult(0.5)

    register_reward("always_half", always_half)
    assert get_reward("always_half") is always_half
    assert available_rewards()[-1] == "always_half"
    assert "always_half" not in REWARD_NAMES
    with pytest.raises(ConfigError, match="already registered"):
        register_reward("always_half", always_half)
    register_reward("always_half", em_reward, replace=True)
    assert get_reward("always_half") is em_reward
    with pytest.warns(DeprecationWarning, match="replace"):
        register_reward("always_half", always_half, overwrite=True)
    assert get_reward("always_half") is always_half
    with pytest.raises(ConfigError, match="built in"):
        register_reward("em", always_half, replace=True)
    with pytest.raises(ConfigError, match="identifier"):
        register_reward("my reward", always_half)
    with pytest.raises(ConfigError, match="not callable"):
        register_reward("broken", 3)  # type: ignore[arg-type]


@pytest.mark.usefixtures("clean_registry")
def test_register_reward_by_reference_imports_on_first_use() -> None:
    register_reward("lazy_em", "hopgym.envs.rewards.prediction:em_reward")
    assert get_reward("lazy_em") is em_reward
    register_reward("missing", "no_such_module_xyz:reward")
    with pytest.raises(ConfigError, match=r"no_such_module_xyz.*not found"):
        get_reward("missing")


def test_compose_weights_parts_and_keeps_components() -> None:
    reward = compose({"format": (research_format_reward, 0.2), "answer": (get_reward("em"), 1.0)})
    good = reward(RewardInput(_EPISODE, ("Paris",), prediction="Paris"))
    assert good.score == pytest.approx(1.2)
    assert dict(good.reward_components) == {
        "format": 1.0,
        "format.format_ok": 1.0,
        "answer": 1.0,
        "answer.em": 1.0,
    }
    wrong = reward(RewardInput(_EPISODE, ("Lyon",), prediction="Paris"))
    assert wrong.score == pytest.approx(0.2)
    unformatted = reward(RewardInput("<answer> Paris </answer>", ("Paris",), prediction="Paris"))
    assert unformatted.score == pytest.approx(1.0)
    assert isinstance(reward, RewardFn)


def test_compose_can_nest_and_use_negative_weights() -> None:
    inner = compose({"em": (get_reward("em"), 1.0)})
    outer = compose({"inner": (inner, 2.0), "penalty": (research_format_reward, -0.5)})
    result = outer(RewardInput("no tags", ("Paris",), prediction="Paris"))
    assert result.score == pytest.approx(2.0)
    assert result.reward_components["inner.em.em"] == 1.0


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ({}, "no parts"),
        ({"a.b": (em_reward, 1.0)}, "contain no '.'"),
        ({"a": (em_reward, float("nan"))}, "finite number"),
        ({"a": (em_reward, True)}, "finite number"),
        ({"a": (em_reward, "1")}, "finite number"),
        ({"a": ("em", 1.0)}, "not a reward function"),
    ],
)
def test_compose_rejects_bad_parts(parts: dict[str, tuple[object, object]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compose(parts)  # type: ignore[arg-type]
