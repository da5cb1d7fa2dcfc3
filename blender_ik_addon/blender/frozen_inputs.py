"""What a bake reads once: a chain's settings and its bones' limits, refused when they are animated.

Live solving reads every chain setting and every limit again on each frame (a keyed Weight, a keyed
Limit Rotation value: :mod:`.structure`, :mod:`.replay`). A bake prepares each chain once, at the
current frame, and solves the whole range with it; only Influence is read per frame
(:mod:`.influence`). So a setting or a limit that changes inside the range would be baked at the
current frame's value on every frame, and the keys would not show what live solving showed. The bake
refuses that by name (:func:`require_still_inputs`) instead of writing such keys.

What counts:

* a chain setting (``ik_chains.chains[i].<setting>``, by index or by name) other than Influence
  (read per frame) and Live (not read by a bake), animated by an F-curve whose value changes
  inside the range, or by any driver;
* on the chain's own bones: constraints, IK settings and locks (``ik_*``, ``lock_ik_*``,
  ``use_ik_*``, ``lock_rotation``), rotation mode, scale (not of a bone that stretches: the bake
  writes it), and the location of every bone but the root (the root's location is read per frame
  as part of the chain's base), the same way.

F-curves of the active action and of NLA strips count; an F-curve with modifiers counts as
changing. Bones below the chain (fingers under a hand) do not: they do not change the chain.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from .errors import RigSetupError
from .keys import action_fcurves, fcurve_collection

_CHAIN_SETTING = re.compile(r'^ik_chains\.chains\[(\d+|"(?:[^"\\]|\\.)*")\]\.(\w+)')
_READ_PER_FRAME = {"influence", "enabled"}
_BONE_PATH = re.compile(r'^pose\.bones\["((?:[^"\\]|\\.)*)"\](.*)$')
_BONE_INPUTS = (".constraints[", ".ik_", ".lock_ik_", ".use_ik_", ".lock_rotation", ".rotation_mode", ".scale",
                ".location")


def require_still_inputs(obj: Any, chains: Sequence[tuple[str, Sequence[str], Collection[str]]], start: float,
                         end: float, current: float) -> None:
    """Refuse a bake of ``chains`` (name, bone names root first, the bones that stretch: their
    scale is the bake's own output) of ``obj`` over action frames ``start..end`` when an input it
    reads once changes inside that range (module docstring).

    Raises:
        RigSetupError: Naming the chain, the animated setting or bone property, and what to do.
    """
    anim = getattr(obj, "animation_data", None)
    if anim is None:
        return
    settings = getattr(obj, "ik_chains", None)
    index = {c.name: i for i, c in enumerate(settings.chains)} if settings is not None else {}
    # (F-curve, how it plays): the active action's over the baked range, a strip's anywhere (its
    # times are the strip's), a driver always.
    curves = [(fcurve, "active") for fcurve in _active_fcurves(obj)]
    curves += [(fcurve, "strip") for track in anim.nla_tracks for strip in track.strips if strip.action is not None
               for fcurve in action_fcurves(strip.action)]
    curves += [(driver, "driver") for driver in anim.drivers]
    for name, bones, stretching in chains:
        for fcurve, kind in curves:
            what = _frozen_input(fcurve.data_path, name, index.get(name), bones, stretching)
            if what is None or (kind != "driver" and not _changes(fcurve, start, end, whole=kind == "strip")):
                continue
            how = {"driver": "a driver", "strip": "keys of an NLA strip that change",
                   "active": "keys that change inside the baked range"}[kind]
            raise RigSetupError(
                f"chain {name!r}: {what} is animated ({how}: {fcurve.data_path}), but a bake reads it once, at "
                f"the current frame ({current:g}), and would bake every frame with that value: bake a range "
                "where it holds still, or remove its animation; live solving follows it frame by frame")


def _frozen_input(path: str, chain: str, index: int | None, bones: Sequence[str],
                  stretching: Collection[str]) -> str | None:
    """What ``path`` animates that the bake of ``chain`` reads once, or None."""
    setting = _CHAIN_SETTING.match(path)
    if setting is not None:
        key, prop = setting.group(1), setting.group(2)
        names_it = key == str(index) if not key.startswith('"') else key[1:-1].replace('\\"', '"') == chain
        if names_it and prop not in _READ_PER_FRAME:
            return f"its setting {prop!r}"
        return None
    bone_path = _BONE_PATH.match(path)
    if bone_path is None:
        return None
    bone = bone_path.group(1).replace('\\"', '"').replace("\\\\", "\\")
    rest = bone_path.group(2)
    if bone not in bones or not rest.startswith(_BONE_INPUTS):
        return None
    if bone == bones[0] and rest.startswith(".location"):
        return None  # the root's location is part of the chain's base, read per frame
    if bone in stretching and rest.startswith(".scale"):
        return None  # the solve writes a stretching bone's scale
    return f"the {rest.lstrip('.')} of bone {bone!r}"


def _changes(fcurve: Any, start: float, end: float, *, whole: bool = False) -> bool:
    """The F-curve's value is not one constant over ``start..end`` (``whole``: over all its keys;
    modifiers: assumed to change)."""
    if len(fcurve.modifiers):
        return True
    values = {round(float(point.co[1]), 12) for point in fcurve.keyframe_points
              if whole or start <= point.co[0] <= end}
    if not whole:
        values.update(round(float(fcurve.evaluate(frame)), 12) for frame in _frames(start, end))
    return len(values) > 1


def _frames(start: float, end: float) -> Iterable[float]:
    """Every whole frame from ``start`` on, and ``end`` itself."""
    frame = float(start)
    while frame < end:
        yield frame
        frame += 1.0
    yield float(end)


def _active_fcurves(obj: Any) -> list[Any]:
    """F-curves of the action (its slot) that ``obj`` plays."""
    fcurves = fcurve_collection(obj, create=False)
    return list(fcurves) if fcurves is not None else []


__all__ = ["require_still_inputs"]
