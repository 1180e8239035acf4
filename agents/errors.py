"""Errors of policy backends (defined in :mod:`hopgym.errors`, where the whole tree is drawn).

An episode whose policy fails is marked failed with the reason, never scored 0.
"""

from __future__ import annotations

from hopgym.errors import PolicyError, PolicyRequestError, PolicyTimeout, PolicyUnavailable

__all__ = ["PolicyError", "PolicyRequestError", "PolicyTimeout", "PolicyUnavailable"]
