"""The one place that reads the add-on's settings from Blender data (``Object.ik_chains``).

Everything else asks here: the live pass and the bake for :class:`.spec.ChainSpec` values, the
handlers for which rigs are live, the UI (``ui.properties``) for the PropertyGroup itself.
"""

from __future__ import annotations

from typing import Any

from .spec import ChainSpec, spec_from_settings


def rig_settings(obj: Any) -> Any | None:
    """The add-on's settings of an object (``obj.ik_chains``), or None if it has none (the add-on
    is not registered, or ``obj`` is None)."""
    return getattr(obj, "ik_chains", None)


def chain_specs(obj: Any, names: set[str] | None = None, *, enabled_only: bool = False) -> list[ChainSpec]:
    """Specs of ``obj``'s chains (all, or those named), optionally only the live ones."""
    settings = rig_settings(obj)
    if settings is None:
        return []
    return [spec_from_settings(c) for c in settings.chains
            if (names is None or c.name in names) and (c.enabled or not enabled_only)]


def has_live_chain(obj: Any) -> bool:
    """True if ``obj`` is an armature with at least one enabled chain (cheap)."""
    if obj.type != "ARMATURE":
        return False
    settings = rig_settings(obj)
    return settings is not None and any(c.enabled for c in settings.chains)


def live_rigs(scene: Any) -> list[Any]:
    """Armature objects of ``scene`` with at least one live chain."""
    return [obj for obj in scene.objects if obj.type == "ARMATURE" and has_live_chain(obj)]


def disable_chains(obj: Any, names: list[str]) -> None:
    """Turn live solving off for the named chains of ``obj`` (names it does not have are skipped)."""
    settings = rig_settings(obj)
    if settings is None:
        return
    for name in names:
        stored = settings.chains.get(name)
        if stored is not None:
            stored.enabled = False
