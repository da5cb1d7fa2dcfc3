"""The one place that reads the add-on's settings from Blender data (``Object.ik_chains``).

Everything else asks here: the live pass and the bake for :class:`.spec.ChainSpec` values, the
handlers for which rigs are live, the UI (``ui.properties``) for the PropertyGroup itself.
"""

from __future__ import annotations

import re
from typing import Any

from .keys import fcurve_collection
from .spec import ChainSpec, spec_from_settings

# A chain setting's animation path: Blender keys a slider of the chain list by index
# (``ik_chains.chains[2].influence``); a script may use the name (``ik_chains.chains["arm"]``).
_CHAIN_PATH = re.compile(r'^ik_chains\.chains\[(\d+|"(?:[^"\\]|\\.)*")\]')


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


def remove_chain(obj: Any, index: int) -> None:
    """Remove chain ``index`` of ``obj`` with the animation of its own settings (a keyed or driven
    Influence), and renumber the index paths of the chains after it: keys stay with their chain.

    Blender keys a chain's slider by its index in the list, so removing a chain would otherwise hand
    its keys to the next chain. Covered: the active action's F-curves and the drivers (not actions
    in NLA strips, which are not renumbered).
    """
    settings = rig_settings(obj)
    if settings is None:
        return
    name = settings.chains[index].name
    anim = obj.animation_data
    if anim is not None:
        for curves in (fcurve_collection(obj, create=False), anim.drivers):
            if curves is None:
                continue
            for fcurve in list(curves):
                match = _CHAIN_PATH.match(fcurve.data_path)
                if match is None:
                    continue
                key = match.group(1)
                at = None if key.startswith('"') else int(key)
                if at == index or (at is None and key[1:-1].replace('\\"', '"') == name):
                    curves.remove(fcurve)
                elif at is not None and at > index:
                    fcurve.data_path = f"ik_chains.chains[{at - 1}]{fcurve.data_path[match.end():]}"
    settings.chains.remove(index)
    settings.active_index = max(0, min(settings.active_index, len(settings.chains) - 1))


def unique_name(existing: set[str], wanted: str) -> str:
    """``wanted``, or Blender's next free ``wanted.001``-style name if it is taken."""
    if wanted not in existing:
        return wanted
    index = 1
    while f"{wanted}.{index:03d}" in existing:
        index += 1
    return f"{wanted}.{index:03d}"
