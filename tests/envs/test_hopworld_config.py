"""HopWorldConfig validation and the generator's own refusal of impossible requests."""

from __future__ import annotations

import dataclasses

import pytest

from hopgym.envs.hopworld import HopWorldConfig, generate_world
from hopgym.errors import ConfigError


def test_defaults_are_valid_and_hops_normalised() -> None:
    config = HopWorldConfig()
    assert config.hop_counts == (2, 3)
    assert HopWorldConfig(hops=3).hop_counts == (3,)
    assert HopWorldConfig(hops=(4, 2, 2)).hops == (2, 4)
    assert HopWorldConfig(hops=[3, 2]).hops == (2, 3)  # type: ignore[arg-type]


def test_config_is_frozen_and_hashable() -> None:
    config = HopWorldConfig(seed=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 4  # type: ignore[misc]
    assert hash(config) == hash(HopWorldConfig(seed=3))


def test_type_counts_add_up() -> None:
    counts = HopWorldConfig(num_entities=300).type_counts()
    assert sum(counts.values()) == 300
    assert counts["country"] >= 20, "few countries would make country answers guessable"
    assert all(n > 0 for n in counts.values())


@pytest.mark.parametrize(
    ("kwargs", "field", "hint"),
    [
        ({"seed": -1}, "seed", ">= 0"),
        ({"seed": 1.5}, "seed", ">= 0"),
        ({"num_entities": 10}, "num_entities", "num_entities >= 40"),
        ({"hops": 1}, "hops", "between 2 and 4"),
        ({"hops": (2, 5)}, "hops", "between 2 and 4"),
        ({"hops": ()}, "hops", "e.g. hops=(2, 3)"),
        ({"hops": True}, "hops", "between 2 and 4"),
        ({"num_questions": 0}, "num_questions", ">= 1"),
        ({"num_entities": 50, "num_questions": 201}, "num_questions", "raise num_entities to at least 51"),
        ({"distractors": -1}, "distractors", "from 0 to 3"),
        ({"distractors": 4}, "distractors", "from 0 to 3"),
        ({"paraphrases": 0}, "paraphrases", "from 1 to 3"),
        ({"paraphrases": 4}, "paraphrases", "from 1 to 3"),
        ({"question_paraphrases": 3}, "question_paraphrases", "from 1 to 2"),
        ({"facts_per_passage": 0}, "facts_per_passage", "from 1 to 3"),
        ({"facts_per_passage": 4}, "facts_per_passage", "from 1 to 3"),
        ({"name_pool": -1}, "name_pool", "0 (fresh stems per world)"),
        ({"name_pool": 99}, "name_pool", "at least 100 stems"),
    ],
)
def test_invalid_values_name_field_and_fix(kwargs: dict[str, object], field: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        HopWorldConfig(**kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert f"{field}=" in message
    assert hint in message


def test_generator_reports_when_it_cannot_find_enough_distinct_questions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Valid configs leave ample room, so starve the search to reach the error path.
    import hopgym.envs.hopworld.generate as generate

    monkeypatch.setattr(generate, "_ATTEMPTS_PER_QUESTION", 0)
    with pytest.raises(ConfigError, match=r"only 0 distinct 2-hop questions .* raise num_entities or lower"):
        generate_world(HopWorldConfig(num_questions=5, hops=2))
