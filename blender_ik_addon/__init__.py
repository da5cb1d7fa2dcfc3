"""IK Chains: gradient-based inverse kinematics for Blender bone chains, baked to keyframes.

This module must stay importable without bpy (``import blender_ik_addon.core`` runs it first),
so Blender-facing code is imported lazily inside ``register``/``unregister``.
"""

from __future__ import annotations


def register() -> None:
    """Register the add-on's classes, properties and handlers with Blender."""
    from . import registration

    registration.register()


def unregister() -> None:
    """Undo exactly what :func:`register` did."""
    from . import registration

    registration.unregister()
