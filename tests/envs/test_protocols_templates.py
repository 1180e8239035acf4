"""Prompt templates (built-in, text and file overrides) and the protocol registry."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from hopgym.envs.protocols import (
    PROTOCOL_NAMES,
    ActionProtocol,
    R1SearcherProtocol,
    ReSearchProtocol,
    SearchR1Protocol,
    ToolCallProtocol,
    available_protocols,
    builtin_template,
    get_protocol,
    load_template,
    register_protocol,
    registry,
)
from hopgym.errors import ConfigError
from hopgym.types import ParsedAction, Task

CLASSES = {
    "search_r1": SearchR1Protocol,
    "research": ReSearchProtocol,
    "r1_searcher": R1SearcherProtocol,
    "tool_call": ToolCallProtocol,
}
TASK = Task(id="t1", question="Who wrote {Hamlet}?", golden_answers=("Shakespeare",))


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry.PROTOCOLS, "_entries", dict(registry.PROTOCOLS._entries))


def test_names_and_classes() -> None:
    assert PROTOCOL_NAMES == ("search_r1", "research", "r1_searcher", "tool_call")
    assert available_protocols()[:4] == PROTOCOL_NAMES
    for name in PROTOCOL_NAMES:
        protocol = get_protocol(name)
        assert isinstance(protocol, CLASSES[name])
        assert protocol.name == name
        assert isinstance(protocol, ActionProtocol)


def test_unknown_protocol_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown protocol 'searchr1'; valid names: search_r1, research"):
        get_protocol("searchr1")


def test_unknown_override_lists_valid_options() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown option\(s\) answer_tool for SearchR1Protocol; valid options:"
    ):
        get_protocol("search_r1", answer_tool=False)
    assert get_protocol("tool_call", answer_tool=False).tools() is not None


@pytest.mark.parametrize("name", PROTOCOL_NAMES)
def test_builtin_prompt_templates(name: str) -> None:
    template = builtin_template(f"{name}.txt")
    assert template.count("{question}") == 1
    prompt = get_protocol(name).prompt(TASK)
    assert "Who wrote {Hamlet}?" in prompt
    assert "{question}" not in prompt


def test_builtin_prompt_endings_are_exact() -> None:
    assert get_protocol("search_r1").prompt(TASK).endswith("Question: Who wrote {Hamlet}?\n")
    assert get_protocol("research").prompt(TASK).endswith("User: Who wrote {Hamlet}?\nAssistant:")
    assert get_protocol("r1_searcher").prompt(TASK).endswith("User: Who wrote {Hamlet}?\nAssistant: <think>")
    assert get_protocol("tool_call").prompt(TASK).endswith("Question: Who wrote {Hamlet}?\n")


def test_missing_builtin_template_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"no built-in template 'nope\.txt'"):
        builtin_template("nope.txt")


@pytest.mark.parametrize("name", PROTOCOL_NAMES)
def test_prompt_override_substitutes_only_question(name: str) -> None:
    template = "Q={question} | keep \\boxed{} and {reason} and {0} | again {question}"
    protocol = get_protocol(name, prompt_template=template)
    assert protocol.prompt(TASK) == (
        "Q=Who wrote {Hamlet}? | keep \\boxed{} and {reason} and {0} | again Who wrote {Hamlet}?"
    )


@pytest.mark.parametrize("name", PROTOCOL_NAMES)
def test_prompt_override_without_placeholder_is_rejected(name: str) -> None:
    with pytest.raises(ConfigError, match=r"prompt_template has no \{question\} placeholder"):
        get_protocol(name, prompt_template="Answer the question.")


def test_template_must_be_text() -> None:
    with pytest.raises(ConfigError, match="system_prompt must be a string or None, got int"):
        SearchR1Protocol(system_prompt=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["research", "r1_searcher", "tool_call"])
def test_system_prompt_override(name: str) -> None:
    protocol = get_protocol(name, system_prompt="Be brief. {not a placeholder}")
    assert protocol.messages(TASK) == [
        {"role": "system", "content": "Be brief. {not a placeholder}"},
        {"role": "user", "content": TASK.question},
    ]


def test_invalid_template_override_fills_reason() -> None:
    protocol = get_protocol("search_r1", invalid_template="Bad ({reason}); \\boxed{} stays.")
    action = ParsedAction.invalid("empty query")
    assert protocol.invalid_message(action) == "Bad (empty query); \\boxed{} stays."


def test_templates_from_files(tmp_path: Path) -> None:
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("Solve {question}\nAssistant: <think>\n", encoding="utf-8")
    system_file = tmp_path / "system.txt"
    system_file.write_text("Sys ünïcode", encoding="utf-8")
    invalid_file = tmp_path / "invalid.txt"
    invalid_file.write_text("[{reason}]", encoding="utf-8")
    protocol = get_protocol(
        "r1_searcher", prompt_file=prompt_file, system_file=str(system_file), invalid_file=invalid_file
    )
    assert (
        protocol.prompt(TASK) == "Solve Who wrote {Hamlet}?\nAssistant: <think>\n"
    )  # verbatim, newline kept
    assert protocol.messages(TASK)[0] == {"role": "system", "content": "Sys ünïcode"}
    assert protocol.invalid_message(ParsedAction.invalid("x")) == "[x]"
    assert ToolCallProtocol.from_files(prompt_file=prompt_file, answer_tool=False).answer_tool is False


def test_load_template_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "prompt.txt"
    with pytest.raises(ConfigError, match=r"template file '.*nowhere/prompt\.txt' does not exist"):
        load_template(missing)
    with pytest.raises(ConfigError, match="does not exist"):
        get_protocol("search_r1", prompt_file=missing)


def test_load_template_placeholder_check_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "no_placeholder.txt"
    path.write_text("Answer: {answer}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no_placeholder\.txt' has no \{question\} placeholder"):
        load_template(path)
    assert load_template(path, require_question=False) == "Answer: {answer}"


def test_load_template_directory_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_template(tmp_path)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("Frage: {question} é".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.txt' is not valid UTF-8"):
        load_template(latin)


def test_text_and_file_for_the_same_template_conflict(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text("{question}", encoding="utf-8")
    with pytest.raises(ConfigError, match="not both"):
        get_protocol("search_r1", prompt_template="{question}", prompt_file=path)


def test_protocols_are_frozen() -> None:
    protocol = SearchR1Protocol()
    with pytest.raises(dataclasses.FrozenInstanceError):
        protocol.prompt_template = "{question}"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        protocol.name = "other"


@pytest.mark.usefixtures("clean_registry")
def test_register_protocol() -> None:
    def factory(**overrides: Any) -> SearchR1Protocol:
        return SearchR1Protocol(**overrides)

    register_protocol("my_tags", factory)
    assert "my_tags" in available_protocols()
    protocol = get_protocol("my_tags", system_prompt="S")
    assert isinstance(protocol, SearchR1Protocol) and protocol.system_prompt == "S"
    with pytest.raises(ConfigError, match="already registered; pass replace=True"):
        register_protocol("my_tags", factory)
    register_protocol("my_tags", ToolCallProtocol, replace=True)
    assert isinstance(get_protocol("my_tags"), ToolCallProtocol)


@pytest.mark.usefixtures("clean_registry")
def test_register_protocol_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="non-empty string"):
        register_protocol(" ", SearchR1Protocol)
    with pytest.raises(ConfigError, match="must be callable"):
        register_protocol("x", 3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"not a 'package\.module:attribute' reference"):
        register_protocol("x", "not callable")
    register_protocol("broken", lambda **_: object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="returned object, not an ActionProtocol"):
        get_protocol("broken")
