"""Errors raised by the Blender adapter.

They subclass the core's :class:`IKError` so operators catch one family (``except IKError``) and
turn it into a report; anything else is a bug and propagates.
"""

from __future__ import annotations

from ..core import IKError


class RigSetupError(IKError, ValueError):
    """The scene cannot be solved as set up: a missing bone or target, an unsupported constraint,
    limits that leave no allowed angle... The message names the object, bone, constraint or axis."""
