"""The hopgym exception tree: catch ``HopgymError`` for everything the library raises on purpose.

Every class lives here (other modules re-export them), and each also derives from the built-in exception a
caller would catch without knowing hopgym (shown in brackets)::

    HopgymError
    ├── ConfigError [ValueError]               a setting is wrong: the message names the field and the fix
    ├── DataError [ValueError]                 an input file is malformed: file:line: field: reason
    ├── DependencyNotInstalledError [ImportError]   an optional extra is missing: names the pip command
    ├── EnvError                               an environment was used out of order (Gymnasium's errors too)
    │   ├── ResetNeeded [gymnasium ResetNeeded]    step()/truncate() before reset() or after the episode ended
    │   ├── EnvClosedError [gymnasium ClosedEnvironmentError]   reset()/step() after close()/aclose()
    │   └── ActionTypeError [gymnasium InvalidAction, TypeError]   the action is not the generated text (str)
    ├── EpisodesFailed                         episodes kept failing after the bounded re-runs (never scored 0)
    │   └── RunStopped                             an eval run stopped early (failures in a row); it resumes
    ├── RetrieverError                         a retriever failed, not the agent's fault
    │   ├── RetrieverTimeout [TimeoutError]        no answer in time (after the bounded retries)
    │   └── RetrieverUnavailable [ConnectionError] unreachable (after the bounded retries)
    └── PolicyError                            a policy backend could not produce a turn
        ├── PolicyTimeout [TimeoutError]           a generation ran past the client's limit
        ├── PolicyUnavailable [ConnectionError]    the model server is unreachable or keeps failing
        ├── PolicyRequestError [ValueError]        the model server rejected the request (HTTP 4xx)
        │   └── ToolsNotSupported                      the server refuses `tools`: use a tag protocol
        ├── JudgeError                             the LLM judge could not be asked
        └── VLLMServerError                        a local vLLM server exited or never became healthy

An episode whose retriever or policy fails is marked failed with the reason, never scored 0.
"""

from __future__ import annotations

import gymnasium.error

__all__ = [
    "ActionTypeError",
    "ConfigError",
    "DataError",
    "DependencyNotInstalledError",
    "EnvClosedError",
    "EnvError",
    "EpisodesFailed",
    "HopgymError",
    "JudgeError",
    "PolicyError",
    "PolicyRequestError",
    "PolicyTimeout",
    "PolicyUnavailable",
    "ResetNeeded",
    "RetrieverError",
    "RetrieverTimeout",
    "RetrieverUnavailable",
    "RunStopped",
    "ToolsNotSupported",
    "VLLMServerError",
]


class HopgymError(Exception):
    """Base class of every error hopgym raises deliberately."""


class ConfigError(HopgymError, ValueError):
    """A configuration value is wrong. The message states the field, the cause and the fix."""


class DataError(HopgymError, ValueError):
    """Input data is malformed. The message names the file, the line and the field when it knows them."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path is not None and line is not None else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")


class EnvError(HopgymError):
    """An environment was used out of order. Malformed action *text* is never an error: it is an outcome."""


class ResetNeeded(EnvError, gymnasium.error.ResetNeeded):
    """``step()``/``truncate()`` was called before ``reset()`` or after the episode ended."""


class EnvClosedError(EnvError, gymnasium.error.ClosedEnvironmentError):
    """The environment was closed; build (or ``clone()``) a new one instead of reusing it."""


class ActionTypeError(EnvError, gymnasium.error.InvalidAction, TypeError):
    """``step()`` got something other than the text the policy generated (a ``str``)."""


class RetrieverError(HopgymError):
    """A retriever failed in a way that is not the agent's fault."""


class RetrieverTimeout(RetrieverError, TimeoutError):
    """A retriever call did not finish within its time limit (after the bounded retries)."""


class RetrieverUnavailable(RetrieverError, ConnectionError):
    """A retriever could not be reached (after the bounded retries)."""


class PolicyError(HopgymError):
    """A policy backend could not produce a turn."""


class PolicyTimeout(PolicyError, TimeoutError):
    """A generation did not finish within the client's time limit."""


class PolicyUnavailable(PolicyError, ConnectionError):
    """The model server could not be reached or kept failing (after the bounded retries)."""


class PolicyRequestError(PolicyError, ValueError):
    """The server rejected the request itself (HTTP 4xx other than 429): retrying cannot help.

    ``status`` is the HTTP status; a prompt longer than the model's context is the usual cause of a 400.
    """

    def __init__(self, message: str, *, status: int) -> None:
        self.status = status
        super().__init__(message)


class VLLMServerError(PolicyError):
    """The vLLM server process exited or did not become healthy in time; the message holds its log tail."""


class DependencyNotInstalledError(HopgymError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, *, purpose: str = "") -> None:
        self.package = package
        self.extra = extra
        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"{package} is needed{what} but is not installed. Install it with: pip install 'hopgym[{extra}]'"
        )


def require(module: str, *, extra: str, purpose: str = "") -> object:
    """Import an optional dependency or raise DependencyNotInstalledError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyNotInstalledError(module.split(".")[0], extra, purpose=purpose) from exc


class EpisodesFailed(HopgymError):
    """Episodes kept failing (retriever or backend down) after the bounded re-runs: an infrastructure
    problem, reported instead of being scored or trained on as a 0 reward."""


class RunStopped(EpisodesFailed):
    """An eval run stopped early (too many failures in a row); what finished is stored and it resumes."""


class ToolsNotSupported(PolicyRequestError):
    """The server refused a chat request because of its ``tools`` (no native tool calls there)."""


class JudgeError(PolicyError):
    """The judge model could not be asked (down after retries, rejected the request, timed out)."""
