"""Action protocols: pure, I/O-free conventions for how a policy searches and answers.

Each protocol parses ONE turn of generated text (the policy keeps the stop string, so a search turn ends in
e.g. ``</search>``) into a ``ParsedAction``: ``search`` (non-empty query of at most ``MAX_QUERY_CHARS``
characters; longer ones are truncated with a note), ``answer``, or ``invalid`` with a reason. ``parse`` never
raises. Rules shared by the tag protocols (``search_r1``, ``research``, ``r1_searcher``):

- the first complete action wins: the one whose closing tag comes first, which is where generation stops
  under the protocol's stop strings; later actions are ignored and noted in ``ParsedAction.notes``;
- when several openers of the same kind precede that closing tag, the last one starts the content (noted);
- complete ``<think>...</think>`` blocks are ignored (not for ``r1_searcher``, whose queries live inside the
  reasoning); an unclosed ``<think>`` is kept, because a stop string may cut the turn inside it;
- invalid: no action, an unclosed opening tag, an empty query, or a protocol tag nested inside the action (or
  the action inside another kind's unclosed tag); an empty answer is still an answer, as in the seed projects;
- ``research`` answers are the content of the last ``\\boxed{...}`` when there is one.

``tool_call`` parses OpenAI-style assistant messages, Hermes ``<tool_call>`` text, or plain-text answers
(see ``ToolCallProtocol``). ``wrap_observation(format_passages(passages))`` reproduces each seed project's
observation bytes; ``render_search``/``render_answer`` give text that ``parse`` maps back.
"""

from __future__ import annotations

from hopgym.envs.protocols.base import MAX_QUERY_CHARS, ActionProtocol, ChatMessage
from hopgym.envs.protocols.prompt_templates import TemplatedProtocol, builtin_template, load_template
from hopgym.envs.protocols.r1_searcher import R1SearcherProtocol
from hopgym.envs.protocols.registry import (
    PROTOCOL_NAMES,
    ProtocolFactory,
    available_protocols,
    get_protocol,
    register_protocol,
)
from hopgym.envs.protocols.research import ReSearchProtocol
from hopgym.envs.protocols.search_r1 import SearchR1Protocol
from hopgym.envs.protocols.tool_call import ANSWER_TOOL, SEARCH_TOOL, ToolCallProtocol

__all__ = [
    "ANSWER_TOOL",
    "MAX_QUERY_CHARS",
    "PROTOCOL_NAMES",
    "SEARCH_TOOL",
    "ActionProtocol",
    "ChatMessage",
    "ProtocolFactory",
    "R1SearcherProtocol",
    "ReSearchProtocol",
    "SearchR1Protocol",
    "TemplatedProtocol",
    "ToolCallProtocol",
    "available_protocols",
    "builtin_template",
    "get_protocol",
    "load_template",
    "register_protocol",
]
