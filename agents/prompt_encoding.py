"""One prompt encoding for every token-level backend, so an episode starts from the same ids on each of them.

The rules are those a vLLM server applies to the same request, so a token-level run and a text-level run of the
same model see the same ids:

- a completion prompt (``chat_template=False``, the default everywhere) is ``context.prompt`` encoded *with* the
  tokenizer's special tokens: a tokenizer that adds a BOS token adds it, as ``/v1/completions`` does for a
  text prompt and as base models were trained;
- a chat prompt (``chat_template=True``) is the chat template applied to ``context.messages`` (and
  ``context.tools``) with the generation prompt, rendered to text and encoded *without* special tokens: the
  template writes its own (a template that starts with ``{{ bos_token }}`` gives exactly one BOS), as
  ``/v1/chat/completions`` does;
- everything appended later (observations) is encoded on its own without special tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from hopgym.agents.errors import PolicyError
from hopgym.agents.policy import Context
from hopgym.errors import ConfigError

__all__ = ["PromptEncoder", "PromptEncoding", "PromptTokenizer"]


class PromptTokenizer(Protocol):
    """The part of a Hugging Face (or vLLM) tokenizer that prompt encoding needs."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, token_ids: list[int], skip_special_tokens: bool = ...) -> str: ...

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


class PromptEncoder:
    """Encodes first prompts and observations for a token-level backend (see the module docstring).

    ``chat_template=True`` needs a tokenizer with a chat template (a tokenizer whose ``chat_template``
    attribute is empty is refused here, not at the first episode).
    """

    def __init__(self, tokenizer: PromptTokenizer, *, chat_template: bool = False, source: str = "") -> None:
        if not isinstance(chat_template, bool):
            raise ConfigError(
                f"chat_template={chat_template!r}: use True (chat models) or False (a plain prompt)"
            )
        if chat_template and not getattr(tokenizer, "chat_template", True):
            where = f"{source}: " if source else ""
            raise ConfigError(
                f"{where}chat_template=True but the tokenizer has no chat template; set chat_template=False "
                "to encode the protocol's completion prompt, or use a tokenizer with a template"
            )
        self.tokenizer = tokenizer
        self.chat_template = chat_template

    def encode_prompt(self, context: Context) -> list[int]:
        """Token ids of the episode's first prompt."""
        if not self.chat_template:
            return _ints(self.tokenizer.encode(context.prompt, add_special_tokens=True))
        text = self.tokenizer.apply_chat_template(
            context.messages, tools=context.tools, tokenize=False, add_generation_prompt=True
        )
        if not isinstance(text, str):
            raise ConfigError(
                f"the tokenizer's apply_chat_template returned {type(text).__name__}, not text, with "
                "tokenize=False; use a Hugging Face tokenizer"
            )
        return _ints(self.tokenizer.encode(text, add_special_tokens=False))

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` on its own (no special tokens): what is appended after the prompt."""
        return _ints(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, token_ids: Sequence[int]) -> str:
        """The text of ``token_ids`` as backends report it (special tokens skipped)."""
        return str(self.tokenizer.decode(list(token_ids), skip_special_tokens=True))


class PromptEncoding:
    """The :class:`~hopgym.agents.policy.TokenPolicy` encoding methods of a backend, delegated to its
    :class:`PromptEncoder` (``self.prompts``; None while the backend is not token-level)."""

    tokenizer: Any
    prompts: PromptEncoder | None

    @property
    def chat_template(self) -> bool:
        """Whether first prompts are the chat template applied to the messages (settable)."""
        return self.prompts is not None and self.prompts.chat_template

    @chat_template.setter
    def chat_template(self, value: bool) -> None:
        self.prompts = PromptEncoder(self._prompt_encoder().tokenizer, chat_template=value)

    def encode_prompt(self, context: Context) -> list[int]:
        return self._prompt_encoder().encode_prompt(context)

    def encode(self, text: str) -> list[int]:
        return self._prompt_encoder().encode(text)

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of ``token_ids`` as ``generate`` reports it (special tokens skipped)."""
        return self._prompt_encoder().decode(token_ids)

    def _prompt_encoder(self) -> PromptEncoder:
        if self.prompts is None:
            raise PolicyError(f"{type(self).__name__} is not token-level: it has no tokenizer to encode with")
        return self.prompts


def _ints(ids: Any) -> list[int]:
    return [int(i) for i in ids]
