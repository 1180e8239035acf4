"""Errors of policy backends: an episode whose policy fails is marked failed with the reason, never scored 0."""

from __future__ import annotations

from hopgym.errors import HopgymError

__all__ = ["PolicyError", "PolicyRequestError", "PolicyTimeout", "PolicyUnavailable"]


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
