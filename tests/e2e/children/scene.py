"""Scene pieces for the end-to-end child processes (run with the bpy module's Python, never by pytest).

The children import this module as a sibling (a script's folder is first on ``sys.path``). They
report to the parent by printing one line ``E2E_RESULT {json}`` (Blender prints its own chatter
to stdout too).

The rig: armature object ``Rig`` at the origin with three connected bones ``b1``-``b3`` along +Z,
one unit each, in the default QUATERNION rotation mode. The target path stays inside the
three-unit reach, so every frame is reachable.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import bpy

RESULT_PREFIX = "E2E_RESULT "
RIG = "Rig"
BONES = ("b1", "b2", "b3")
CHAIN = "arm"
FRAMES = (1, 24)
TARGET_KEYS = ((1, (1.2, 0.6, 1.8)), (12, (-0.8, 1.3, 1.2)), (24, (0.3, -1.5, 2.2)))
GLIDE_FRAMES = (1, 120)  # a longer shot, for farm chunks
GLIDE_KEYS = ((1, (1.2, 0.6, 1.8)), (40, (-0.8, 1.3, 1.2)), (80, (0.3, -1.5, 2.2)), (120, (1.0, 0.4, 2.5)))


def emit(result: dict[str, Any]) -> None:
    """Hand ``result`` to the parent test, on a line of its own, and end the process (exit 0).

    Blender writes to the same stdout from C without always ending its lines, hence the flush
    and the leading newline. The bpy module of Blender 4.2 segfaults at interpreter exit once an
    add-on was registered, and 4.5 hangs while a handler is installed, hence ``os._exit``.
    """
    sys.stdout.flush()
    print("\n" + RESULT_PREFIX + json.dumps(result), flush=True)
    sys.stderr.flush()
    os._exit(0)


def build_rig() -> Any:
    """The armature ``Rig`` (see the module docstring), active and selected, in Object mode."""
    data = bpy.data.armatures.new(RIG)
    rig = bpy.data.objects.new(RIG, data)
    bpy.context.scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    rig.select_set(True)
    bpy.ops.object.mode_set(mode="EDIT")
    parent = None
    for index, name in enumerate(BONES):
        bone = data.edit_bones.new(name)
        bone.head, bone.tail = (0.0, 0.0, float(index)), (0.0, 0.0, float(index + 1))
        if parent is not None:
            bone.parent, bone.use_connect = parent, True
        parent = bone
    bpy.ops.object.mode_set(mode="OBJECT")
    return rig


def animate_location(obj: Any, keys: Iterable[tuple[int, Sequence[float]]]) -> None:
    """Key ``obj.location`` at each ``(frame, xyz)``."""
    for frame, location in keys:
        obj.location = location
        obj.keyframe_insert("location", frame=frame)


def set_scene_range(start: int, end: int) -> None:
    """The scene's frame range (bakes default to it)."""
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = start, end


def fcurves_of(obj: Any) -> list[Any]:
    """The F-curves of ``obj``'s action: the slot's channel bag in 5.0, ``action.fcurves`` in 4.2."""
    anim = obj.animation_data
    if anim is None or anim.action is None:
        return []
    if getattr(anim, "action_slot", None) is not None:
        from bpy_extras import anim_utils

        bag = anim_utils.action_get_channelbag_for_slot(anim.action, anim.action_slot)
        return list(bag.fcurves) if bag is not None else []
    return list(anim.action.fcurves)


def keyed_channels(obj: Any) -> dict[str, list[float]]:
    """``"data_path[index]"`` -> sorted key frames, for every F-curve of ``obj``."""
    return {f"{fc.data_path}[{fc.array_index}]": sorted(k.co[0] for k in fc.keyframe_points)
            for fc in fcurves_of(obj)}


def key_values(obj: Any) -> dict[str, list[list[float]]]:
    """``"data_path[index]"`` -> ``[[frame, value], ...]`` sorted by frame, for every F-curve of ``obj``."""
    return {f"{fc.data_path}[{fc.array_index}]": sorted([k.co[0], k.co[1]] for k in fc.keyframe_points)
            for fc in fcurves_of(obj)}


def tip_errors(rig: Any, tip_bone: str, target: Any, frames: Iterable[int]) -> dict[int, float]:
    """Frame -> distance from the evaluated tip bone's tail to the evaluated target, world units."""
    scene = bpy.context.scene
    errors = {}
    for frame in frames:
        scene.frame_set(frame)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        rig_eval, target_eval = rig.evaluated_get(depsgraph), target.evaluated_get(depsgraph)
        tip = rig_eval.matrix_world @ rig_eval.pose.bones[tip_bone].tail
        errors[frame] = (tip - target_eval.matrix_world.translation).length
    return errors
