"""Bulk F-curve keying that works with both animation data models.

* Blender 4.4+ (layered/slotted actions): F-curves live in the channel bag of the object's action
  slot (:func:`action_ensure_channelbag_for_slot`). 5.0 removed ``Action.fcurves``; in 4.4-4.5 it
  is a legacy view of the first slot (not necessarily the object's), so the slotted path is used there too.
* Blender 4.2: only ``action.fcurves`` exists.

Keys are written like Blender's own bake (``anim_utils.KeyframesCo``): ``keyframe_points.add`` +
``foreach_set("co")`` + ``fcurve.update()``, with LINEAR interpolation on the new keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import bpy
import numpy as np

from ..core.types import AnyArray, BoolArray, FloatArray
from .errors import RigSetupError

_FRAME_EPS = 1e-4  # frames closer than this to the range ends count as inside it
_INTERPOLATION = bpy.types.Keyframe.bl_rna.properties["interpolation"]
assert isinstance(_INTERPOLATION, bpy.types.EnumProperty)  # narrows the stubs' Property
_LINEAR = _INTERPOLATION.enum_items["LINEAR"].value
_LAYERED = hasattr(bpy.types, "ActionSlot")  # 4.4+: every action has slots and channel bags


def action_ensure_channelbag_for_slot(action: Any, slot: Any) -> Any:
    """The channel bag of ``slot`` in ``action``'s first keyframe strip, created as needed (4.4+).

    What ``bpy_extras.anim_utils.action_ensure_channelbag_for_slot`` does in 5.0. 4.4-4.5 lack it,
    and their legacy ``action.fcurves`` keys a new "Legacy Slot" the object does not use: keys that
    never play.
    """
    layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
    strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
    return strip.channelbag(slot, ensure=True)


def action_get_channelbag_for_slot(action: Any, slot: Any) -> Any | None:
    """The first channel bag of ``slot`` in ``action``, or None (``bpy_extras.anim_utils``' in 4.4+)."""
    for layer in action.layers:
        for strip in layer.strips:
            bag = strip.channelbag(slot)
            if bag:
                return bag
    return None


def require_local(obj: Any) -> None:
    """Raise :class:`RigSetupError` if ``obj`` is linked from a library: it is read-only, and a pose
    or keys written to it from Python would be lost on save (library overrides are local: fine)."""
    library = getattr(obj, "library", None)
    if library is not None:
        raise RigSetupError(f"armature {obj.name!r} is linked from library {library.name!r} and is read-only: a pose "
                            "or keys written to it would be lost; make a library override to solve or bake it")


def require_keyable(obj: Any) -> None:
    """Raise :class:`RigSetupError` unless keys written into ``obj``'s action are kept and stay its own:
    ``obj`` is local, its action is not linked from a library and no other object plays it (in the
    same slot, 4.4+)."""
    require_local(obj)
    anim = obj.animation_data
    action = anim.action if anim is not None else None
    if action is None:
        return
    if action.library is not None:
        raise RigSetupError(f"action {action.name!r} of {obj.name!r} is linked from library {action.library.name!r}: "
                            f"keys written into it would be lost on save; give {obj.name!r} a local action first "
                            "(make the action local)")
    slot = getattr(anim, "action_slot", None)
    for other in bpy.data.objects:
        other_anim = other.animation_data
        if other == obj or other_anim is None:
            continue
        how = ""
        if other_anim.action == action and (slot is None or other_anim.action_slot == slot):
            how = "also played by"
        else:  # an NLA strip of another object playing the same action (and slot) changes with it
            strip = next((s for t in other_anim.nla_tracks for s in t.strips if s.action == action
                          and (slot is None or getattr(s, "action_slot", None) == slot)), None)
            if strip is not None:
                how = f"also played by NLA strip {strip.name!r} of"
        if how:
            raise RigSetupError(f"action {action.name!r} is {how} {other.name!r}: keys baked for {obj.name!r} "
                                f"would change {other.name!r} too; make the action single-user first")


def fcurve_collection(id_data: Any, *, create: bool) -> Any | None:
    """The collection holding ``id_data``'s action F-curves (``.find``/``.new``), or None.

    With ``create`` the animation data, action and (4.4+) slot and channel bag are created as
    needed; without it, None is returned when any of them is missing.
    """
    anim = id_data.animation_data
    if anim is None:
        if not create:
            return None
        anim = id_data.animation_data_create()
    action = anim.action
    if action is None:
        if not create:
            return None
        action = bpy.data.actions.new(f"{id_data.name}Action")
        anim.action = action
    if not _LAYERED:
        return action.fcurves
    slot = anim.action_slot
    if slot is None:
        if not create:
            return None
        slot = action.slots.new(id_type=id_data.id_type, name=id_data.name)
        anim.action_slot = slot
    if create:
        return action_ensure_channelbag_for_slot(action, slot).fcurves
    bag = action_get_channelbag_for_slot(action, slot)
    return bag.fcurves if bag is not None else None


def action_fcurves(action: Any) -> list[Any]:
    """Every F-curve of ``action``: all its slots (4.4+), not only the one an ID plays (the NLA
    plays strips of other actions and slots)."""
    if not _LAYERED:
        return list(action.fcurves)
    return [f for layer in action.layers for strip in layer.strips for bag in strip.channelbags for f in bag.fcurves]


def action_paths(action: Any) -> set[str]:
    """The data paths of every F-curve of ``action`` (:func:`action_fcurves`)."""
    return {f.data_path for f in action_fcurves(action)}


def iter_fcurves(id_data: Any) -> list[Any]:
    """F-curves of the action (and slot) assigned to ``id_data``; empty if none."""
    fcurves = fcurve_collection(id_data, create=False)
    return list(fcurves) if fcurves is not None else []


def ensure_fcurve(fcurves: Any, data_path: str, index: int, group: str) -> Any:
    """Find or create the F-curve ``data_path[index]`` in ``fcurves``, grouped under ``group``."""
    fcurve = fcurves.find(data_path, index=index)
    if fcurve is not None:
        return fcurve
    if not _LAYERED:
        return fcurves.new(data_path, index=index, action_group=group)
    try:
        return fcurves.new(data_path, index=index, group_name=group)
    except TypeError:  # 4.4-4.5: no group_name; group through the channel bag that owns the F-curves
        fcurve = fcurves.new(data_path, index=index)
        groups = fcurves.data.groups
        fcurve.group = groups.get(group) or groups.new(group)
        return fcurve


def replace_keys(fcurve: Any, frames: FloatArray, values: FloatArray, start: float, end: float) -> None:
    """Replace ``fcurve``'s keys inside ``[start, end]`` by ``values`` at ``frames`` (ascending).

    Keys outside the range are not touched (their handles and interpolation are kept).
    """
    points = fcurve.keyframe_points
    count = len(points)
    if count:
        co = np.empty(2 * count, dtype=np.float32)
        points.foreach_get("co", co)
        inside = _inside(co[0::2], start, end)
        if inside.all():
            points.clear()
        else:
            for i in np.flatnonzero(inside)[::-1]:
                points.remove(points[int(i)], fast=True)
    kept = len(points)
    points.add(len(frames))
    co = np.empty(2 * (kept + len(frames)), dtype=np.float32)
    ipo = np.empty(kept + len(frames), dtype=np.int32)
    if kept:
        points.foreach_get("co", co)
        points.foreach_get("interpolation", ipo)
    co[2 * kept::2] = frames
    co[2 * kept + 1::2] = values
    ipo[kept:] = _LINEAR
    points.foreach_set("co", co)
    points.foreach_set("interpolation", ipo)
    # Sort the new keys among the kept ones and recompute handles. A curve of new keys only is
    # already sorted, and LINEAR keys do not use handles: skipped, as Blender's own bake does.
    if kept:
        fcurve.update()


def write_channel_keys(obj: Any, bone: str, data_path: str, frames: FloatArray, values: FloatArray,
                       start: float, end: float) -> None:
    """Key every array index of a pose bone channel: ``values`` is ``(F, k)``."""
    fcurves = fcurve_collection(obj, create=True)
    full_path = bone_path(bone, data_path)
    for index in range(values.shape[1]):
        replace_keys(ensure_fcurve(fcurves, full_path, index, bone), frames, values[:, index], start, end)


def kept_neighbours(obj: Any, bone: str, data_path: str, size: int, start: float,
                    end: float) -> tuple[FloatArray, FloatArray]:
    """The keys of a pose bone channel that a bake of ``[start, end]`` keeps, nearest the range.

    Returns ``(before, after)``, each ``(size,)``: per array index, the value of the last key before
    ``start`` and of the first key after ``end`` (keys :func:`replace_keys` leaves alone), NaN where
    the F-curve is missing or has no such key. Only the stored keys are read: nothing is evaluated,
    so the answer does not depend on the current frame nor on the keys the bake replaces.
    """
    before = np.full(size, np.nan)
    after = np.full(size, np.nan)
    fcurves = fcurve_collection(obj, create=False)
    if fcurves is None:
        return before, after
    full_path = bone_path(bone, data_path)
    for index in range(size):
        fcurve = fcurves.find(full_path, index=index)
        count = len(fcurve.keyframe_points) if fcurve is not None else 0
        if not count:
            continue
        co = np.empty(2 * count, dtype=np.float32)  # as replace_keys reads them: the same keys count as kept
        fcurve.keyframe_points.foreach_get("co", co)
        frames, values = co[0::2], co[1::2].astype(np.float64)
        kept = ~_inside(frames, start, end)
        earlier = np.flatnonzero(kept & (frames < start))
        later = np.flatnonzero(kept & (frames > end))
        if len(earlier):  # keys may be unsorted until fcurve.update(): pick by frame, not position
            before[index] = values[earlier[np.argmax(frames[earlier])]]
        if len(later):
            after[index] = values[later[np.argmin(frames[later])]]
    return before, after


def _inside(frames: AnyArray, start: float, end: float) -> BoolArray:
    """Which ``frames`` a bake of ``[start, end]`` replaces (the ends count, give or take :data:`_FRAME_EPS`)."""
    return (frames >= start - _FRAME_EPS) & (frames <= end + _FRAME_EPS)


def keys_fingerprint(obj: Any, bones: Sequence[str]) -> tuple[Any, ...]:
    """The keys of ``bones``' channels in the action ``obj`` plays, as a value that changes when any
    is added, removed or moved (undo puts a bake's keys back: findings about them no longer hold)."""
    fcurves = fcurve_collection(obj, create=False)
    if fcurves is None:
        return ()
    prefixes = tuple(bone_path(bone) for bone in bones)
    return tuple((f.data_path, f.array_index, tuple(tuple(point.co) for point in f.keyframe_points))
                 for f in fcurves if f.data_path.startswith(prefixes))


def bone_path(bone: str, data_path: str = "") -> str:
    """``pose.bones["<bone>"].<data_path>``, the name escaped as Blender writes data paths (the
    prefix of every path of that bone when ``data_path`` is empty)."""
    return f'pose.bones["{bpy.utils.escape_identifier(bone)}"].{data_path}'
