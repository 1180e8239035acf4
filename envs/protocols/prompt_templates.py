"""Prompt templates: built-in ones (package data under ``templates/``), user overrides, a shared base class.

Templates are plain text used verbatim (a trailing newline in a file is part of the prompt). Only the
``{question}`` placeholder is substituted, by plain string replacement: templates contain literal braces such
as ``\\boxed{}`` or JSON, so ``str.format`` is never applied to them. Invalid-action templates may use
``{reason}`` the same way.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, TypeVar

from hopgym.envs.protocols.base import ChatMessage
from hopgym.errors import ConfigError
from hopgym.types import ParsedAction, Task

__all__ = [
    "QUESTION_PLACEHOLDER",
    "REASON_PLACEHOLDER",
    "TemplatedProtocol",
    "builtin_template",
    "fill_placeholder",
    "load_template",
]

QUESTION_PLACEHOLDER = "{question}"
REASON_PLACEHOLDER = "{reason}"

_T = TypeVar("_T", bound="TemplatedProtocol")


def fill_placeholder(template: str, placeholder: str, value: str) -> str:
    """Replace every ``placeholder`` in ``template`` with ``value``; nothing else is interpreted."""
    return template.replace(placeholder, value)


def load_template(path: str | os.PathLike[str], *, require_question: bool = True) -> str:
    """Read a UTF-8 template file verbatim.

    Raises ConfigError naming the file when it is missing, unreadable, not UTF-8, or (with
    ``require_question``) lacks the ``{question}`` placeholder.
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"template file {name!r} does not exist; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"template file {name!r} is a directory; pass the path of a text file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"template file {name!r} is not valid UTF-8 ({exc.reason}); re-save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"template file {name!r} cannot be read ({exc.strerror}); check its permissions"
        ) from None
    if require_question and QUESTION_PLACEHOLDER not in text:
        raise ConfigError(
            f"template file {name!r} has no {QUESTION_PLACEHOLDER} placeholder; "
            "add it where the question goes"
        )
    return text


@cache
def builtin_template(filename: str) -> str:
    """A template shipped in ``hopgym/envs/protocols/templates/`` (read once, then cached)."""
    package = __name__.rpartition(".")[0]
    resource = resources.files(package).joinpath("templates", filename)
    try:
        return resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no built-in template {filename!r}; pass your own template text instead") from None


def _check_optional_text(owner: str, field_name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{owner}.{field_name} must be a string or None, got {type(value).__name__}")


@dataclass(frozen=True)
class TemplatedProtocol:
    """Prompt, chat and invalid-action text shared by every built-in protocol; None means the built-in text.

    ``prompt_template`` (completion models) must contain ``{question}``. ``system_prompt`` is the system
    message of the chat variant. ``invalid_template`` is the observation for an invalid action and may use
    ``{reason}``.
    """

    prompt_template: str | None = None
    system_prompt: str | None = None
    invalid_template: str | None = None

    # Subclasses set ``name`` and ``stop`` as plain class attributes, not fields: a frozen field is read-only
    # to mypy and would not satisfy ActionProtocol's attributes. They may also replace these defaults.
    default_invalid_template = "\n[Invalid action: {reason}.]\n"
    default_reward = "em"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for field in ("prompt_template", "system_prompt", "invalid_template"):
            _check_optional_text(owner, field, getattr(self, field))
        if self.prompt_template is not None and QUESTION_PLACEHOLDER not in self.prompt_template:
            raise ConfigError(
                f"{owner}.prompt_template has no {QUESTION_PLACEHOLDER} placeholder; "
                "add it where the question goes"
            )

    @classmethod
    def from_files(
        cls: type[_T],
        *,
        prompt_file: str | os.PathLike[str] | None = None,
        system_file: str | os.PathLike[str] | None = None,
        invalid_file: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> _T:
        """Build the protocol, reading any of its templates from files (see ``load_template``)."""
        valid = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(options) - valid)
        if unknown:
            allowed = ", ".join(sorted(valid | {"prompt_file", "system_file", "invalid_file"}))
            raise ConfigError(
                f"unknown option(s) {', '.join(unknown)} for {cls.__name__}; valid options: {allowed}"
            )
        files = {
            "prompt_template": prompt_file,
            "system_prompt": system_file,
            "invalid_template": invalid_file,
        }
        for field, path in files.items():
            if path is None:
                continue
            if options.get(field) is not None:
                raise ConfigError(f"{cls.__name__}: give {field} as text or as a file, not both")
            options[field] = load_template(path, require_question=field == "prompt_template")
        return cls(**options)

    @property
    def _stem(self) -> str:
        name = getattr(self, "name", None)
        if not isinstance(name, str):
            raise ConfigError(f"{type(self).__name__} has no protocol name; set the class attribute `name`")
        return name

    def prompt(self, task: Task) -> str:
        """The full first prompt for completion-style (base) models."""
        template = self.prompt_template
        if template is None:
            template = builtin_template(f"{self._stem}.txt")
        return fill_placeholder(template, QUESTION_PLACEHOLDER, task.question)

    def messages(self, task: Task) -> list[ChatMessage]:
        """The system prompt, then the question as the user message."""
        system = self.system_prompt
        if system is None:
            system = builtin_template(f"{self._stem}_system.txt")
        return [{"role": "system", "content": system}, {"role": "user", "content": task.question}]

    def invalid_message(self, action: ParsedAction) -> str:
        """The observation for an invalid action, naming the reason."""
        template = (
            self.invalid_template if self.invalid_template is not None else self.default_invalid_template
        )
        return fill_placeholder(template, REASON_PLACEHOLDER, action.reason or "no valid action")

    def observation_message(self, body: str, call_id: str | None) -> ChatMessage:
        """A user message carrying the observation (``ActionProtocol``'s default; tool-call protocols
        override it)."""
        return {"role": "user", "content": body}
