"""Exceptions raised by the IK core.

Non-convergence is *not* an error: it is reported in :class:`SolveResult`. These exceptions are
for setup and input mistakes, and their messages name the joint, field or argument at fault.
"""

from __future__ import annotations


class IKError(Exception):
    """Base class of every error raised by the IK core."""


class ChainDefinitionError(IKError, ValueError):
    """A chain (joints, limits, transforms) is malformed; the message names the joint and field."""


class IKInputError(IKError, ValueError):
    """A solve input (target, initial pose, comfort pose, options) is malformed or not finite."""
