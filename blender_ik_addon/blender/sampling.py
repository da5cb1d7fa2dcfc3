"""Per-frame world matrices of targets, poles and chain bases for a bake.

Two ways, same answer (``tests/blender/test_bake.py`` compares them):

* **F-curve path** (fast): when every target and pole is moved only by its own F-curves (no parent,
  constraint, driver, NLA, delta transform or time remapping) and nothing above the chains moves
  (the armature object, the chain roots' ancestors), targets are rebuilt from ``fcurve.evaluate``
  and the bases are read once. No frame is evaluated by Blender at all.
* **Frame path** (general): ``scene.frame_set`` on every frame, reading the evaluated depsgraph.
  The caller suspends the live handler and restores the frame afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np

from ..core.rotations import EULER_ORDERS, euler_to_matrix, quaternion_to_matrix
from ..core.types import FloatArray
from .errors import RigSetupError
from .goals import Goal, GoalKey, bone_goal_matrix
from .keys import iter_fcurves
from .read import ChainBinding, chain_base, check_locations
from .stacking import bone_world

_TRANSFORM_PATHS = ("location", "rotation_euler", "rotation_quaternion", "rotation_axis_angle", "scale")
_BONE_PATH = re.compile(r'^pose\.bones\["((?:[^"\\]|\\.)*)"\]\.?(.*)$')
_ROTATION_PATHS = ("rotation_euler", "rotation_quaternion", "rotation_axis_angle")


@dataclass(frozen=True)
class Samples:
    """World matrices over the baked frames.

    Attributes:
        bases: Chain name -> ``(F, 4, 4)`` chain base.
        objects: Goal key (:attr:`.goals.Goal.key`: the object itself, not its name, since a linked
            library may bring another object of the same name; plus the bone) -> ``(F, 4, 4)`` world
            matrix (targets and poles).
        path: ``"fcurves"`` or ``"frames"``: how they were obtained.
        reason: Why the frame path was needed (empty on the F-curve path).
        bones: Bone name -> ``(F, 4, 4)`` evaluated world pose (bones that chains hang from).
    """

    bases: dict[str, FloatArray]
    objects: dict[GoalKey, FloatArray]
    path: str
    reason: str = ""
    bones: dict[str, FloatArray] = field(default_factory=dict)


def world_matrix_of(obj: Any, depsgraph: Any) -> tuple[FloatArray, bool]:
    """``(4, 4)`` world matrix of ``obj`` as evaluated by ``depsgraph`` (works for render depsgraphs).

    Blender does not evaluate objects disabled in viewports (or renders) or in excluded collections:
    their matrix there is stale. Such an object moved only by its own F-curves is read from them
    (as a bake's F-curve path does); any other raises :class:`RigSetupError` naming it.

    Returns:
        ``(matrix, evaluated)``: ``evaluated`` is False when it was read from the F-curves.
    """
    hidden = unevaluated_reason(obj, depsgraph)
    if not hidden:
        return np.array(obj.evaluated_get(depsgraph).matrix_world, dtype=np.float64), True
    scene = depsgraph.scene
    if _object_blocker(obj) or scene.render.frame_map_old != scene.render.frame_map_new:
        raise RigSetupError(f"object {obj.name!r} is {hidden}, so Blender does not evaluate it here and the chain "
                            f"cannot see where it is; {_enable_advice(depsgraph)}")
    frame = np.array([scene.frame_current + scene.frame_subframe], dtype=np.float64)
    matrix: FloatArray = object_matrices(obj, frame)[0]
    return matrix, False


def goal_matrix(goal: Goal, depsgraph: Any) -> tuple[FloatArray, bool]:
    """``(4, 4)`` world matrix of ``goal`` as ``depsgraph`` evaluates it, and whether Blender
    evaluated it (False: an object goal read from its F-curves, see
    :func:`.sampling.world_matrix_of`). A bone goal's armature must be evaluated: its pose cannot be
    rebuilt from F-curves."""
    if goal.bone is None:
        return world_matrix_of(goal.obj, depsgraph)
    hidden = unevaluated_reason(goal.obj, depsgraph)
    if hidden:  # (measured: it may evaluate the bones something shown hangs from, not a control bone)
        raise RigSetupError(f"armature {goal.obj.name!r} (holding bone {goal.bone!r}) is {hidden}, so Blender "
                            "evaluates at most the bones that something shown depends on, and the chain cannot see "
                            f"where the bone is; {_enable_advice(depsgraph)} (armatures do not show in renders)")
    return bone_goal_matrix(goal.obj.evaluated_get(depsgraph), goal.bone, goal.head_tail), True


def _enable_advice(depsgraph: Any) -> str:
    return "enable it in renders" if depsgraph.mode == "RENDER" else "enable it (hide it with the eye icon instead)"


def unevaluated_reason(obj: Any, depsgraph: Any) -> str:
    """Why ``depsgraph`` does not evaluate ``obj`` ("" if it does, as far as its flags tell)."""
    render = depsgraph.mode == "RENDER"
    if obj.hide_render if render else obj.hide_viewport:
        return "disabled in renders" if render else "disabled in viewports"
    if not _enabled_below(depsgraph.view_layer.layer_collection, obj, render):
        return "only in collections that are excluded or disabled in " + ("renders" if render else "viewports")
    return ""


def _enabled_below(layer: Any, obj: Any, render: bool) -> bool:
    collection = layer.collection
    if layer.exclude or (collection.hide_render if render else collection.hide_viewport):
        return False
    if collection.objects.get(obj.name) == obj:
        return True
    return any(_enabled_below(child, obj, render) for child in layer.children)


def fast_path_blocker(scene: Any, rig: Any, bindings: Iterable[ChainBinding], goals: Iterable[Goal]) -> str:
    """Why the F-curve path cannot be used ("" if it can). A bone target or pole is read by
    evaluating frames: its pose may come from keys, constraints, drivers and the bones above it."""
    if scene.render.frame_map_old != scene.render.frame_map_new:
        return "the scene remaps time"
    foreign = _foreign_frame_handlers()
    if foreign:  # a script's handler may move a target on every frame: only stepping frames sees that
        return f"a frame-change handler of another add-on or script ({foreign}) may move objects"
    for goal in goals:
        if goal.bone is not None:
            return f"{goal.label} is a bone"
        reason = _object_blocker(goal.obj)
        if reason:
            return f"{goal.obj.name!r}: {reason}"
    return _rig_blocker(rig, list(bindings))


def _foreign_frame_handlers() -> str:
    """Names of the frame-change handlers that are not the add-on's own ("" if none)."""
    ours = __name__.rsplit(".", 2)[0]  # the add-on's package, whatever it is installed as
    names = [getattr(h, "__name__", repr(h)) for event in (bpy.app.handlers.frame_change_pre,
                                                           bpy.app.handlers.frame_change_post)
             for h in event if not getattr(h, "__module__", "").startswith(ours)]
    return ", ".join(names)


def _active(constraints: Any) -> bool:
    return any(not c.mute and c.influence > 0 for c in constraints)


def _animation_blocker(anim: Any) -> str:
    if anim is None:
        return ""
    if len(anim.drivers):
        return "has drivers"
    if anim.use_tweak_mode or any(not t.mute for t in anim.nla_tracks):
        return "uses NLA"
    if anim.action is not None and (anim.action_influence < 1.0 or anim.action_blend_type != "REPLACE"):
        return "blends its action"
    return ""


def _object_blocker(obj: Any) -> str:
    if obj.parent is not None:
        return "has a parent"
    if _active(obj.constraints):
        return "has constraints"
    if obj.rigid_body is not None:
        return "is a rigid body"
    if any(obj.delta_location) or any(obj.delta_rotation_euler) or tuple(obj.delta_scale) != (1.0, 1.0, 1.0) \
            or tuple(obj.delta_rotation_quaternion) != (1.0, 0.0, 0.0, 0.0):
        return "has delta transforms"
    reason = _animation_blocker(obj.animation_data)
    if reason:
        return reason
    for fcurve in iter_fcurves(obj):
        if fcurve.data_path.startswith("delta_"):
            return "animates delta transforms"
        if fcurve.data_path in _TRANSFORM_PATHS and (fcurve.mute or (fcurve.group and fcurve.group.mute)):
            return "has muted transform F-curves"
    return ""


def _rig_blocker(rig: Any, bindings: list[ChainBinding]) -> str:
    if rig.parent is not None or _active(rig.constraints):
        return f"armature {rig.name!r} has a parent or constraints"
    reason = _animation_blocker(rig.animation_data) or _animation_blocker(rig.data.animation_data)
    if reason or (rig.data.animation_data is not None and rig.data.animation_data.action is not None):
        return f"armature {rig.name!r} {reason or 'has animated data'}"
    chain_bones = {name for b in bindings for name in b.bone_names}
    above = {name for b in bindings for name in b.ancestors} - chain_bones  # chains below chains: ours
    for name in above:
        if _active(rig.pose.bones[name].constraints):
            return f"bone {name!r} above a chain has constraints"
    for pbone in rig.pose.bones:
        if any(c.type in ("IK", "SPLINE_IK") and not c.mute for c in pbone.constraints):
            return f"bone {pbone.name!r} has an IK constraint"
    for fcurve in iter_fcurves(rig):
        match = _BONE_PATH.match(fcurve.data_path)
        if match is None:
            if fcurve.data_path.split("[")[0].split(".")[0] in (*_TRANSFORM_PATHS, "delta_location",
                                                                 "delta_rotation_euler", "delta_scale",
                                                                 "delta_rotation_quaternion"):
                return f"armature {rig.name!r} is animated"
            continue
        bone, prop = match.group(1).replace('\\"', '"').replace("\\\\", "\\"), match.group(2)
        if bone in above:
            return f"bone {bone!r} above a chain is animated"
        if bone in chain_bones and prop not in _ROTATION_PATHS:
            return f"chain bone {bone!r} has animated {prop or 'properties'}"
    return ""


def sample_fcurves(scene: Any, rig: Any, bindings: dict[str, ChainBinding], goals: list[Goal],
                   frames: FloatArray, bones: Sequence[str] = ()) -> Samples:
    """The F-curve path (call only when :func:`fast_path_blocker` returns "")."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    rig_eval = rig.evaluated_get(depsgraph)
    count = len(frames)
    bases = {name: np.broadcast_to(chain_base(rig_eval, b), (count, 4, 4)) for name, b in bindings.items()}
    worlds = {bone: np.broadcast_to(bone_world(rig_eval, bone), (count, 4, 4)) for bone in bones}
    return Samples(bases, {goal.key: object_matrices(goal.obj, frames) for goal in goals}, "fcurves", "", worlds)


def object_matrices(obj: Any, frames: FloatArray) -> FloatArray:
    """``(F, 4, 4)`` world matrices of a parent-less object from its own F-curves (or its values)."""
    curves = {(fc.data_path, fc.array_index): fc for fc in iter_fcurves(obj)}

    def channel(path: str, size: int) -> FloatArray:
        static = np.array(getattr(obj, path), dtype=np.float64)
        out = np.empty((len(frames), size))
        for i in range(size):
            fcurve = curves.get((path, i))
            out[:, i] = static[i] if fcurve is None else [fcurve.evaluate(f) for f in frames]
        return out

    location, scale = channel("location", 3), channel("scale", 3)
    mode = obj.rotation_mode
    if mode in EULER_ORDERS:
        rotation = euler_to_matrix(channel("rotation_euler", 3), mode)
    elif mode == "QUATERNION":
        rotation = quaternion_to_matrix(_normalized(channel("rotation_quaternion", 4)))
    else:  # AXIS_ANGLE: (angle, x, y, z), axis normalised as Blender does
        values = channel("rotation_axis_angle", 4)
        axis = values[:, 1:] / np.maximum(np.linalg.norm(values[:, 1:], axis=1, keepdims=True), 1e-30)
        half = values[:, :1] / 2
        rotation = quaternion_to_matrix(np.concatenate([np.cos(half), np.sin(half) * axis], axis=1))
    out = np.zeros((len(frames), 4, 4))
    out[:, :3, :3] = rotation * scale[:, None, :]
    out[:, :3, 3] = location
    out[:, 3, 3] = 1.0
    return out


def _normalized(quats: FloatArray) -> FloatArray:
    norm = np.linalg.norm(quats, axis=1, keepdims=True)
    return np.where(norm > 1e-30, quats / np.maximum(norm, 1e-30), np.array([1.0, 0.0, 0.0, 0.0]))


def sample_frames(scene: Any, rig: Any, bindings: dict[str, ChainBinding], goals: list[Goal], frames: FloatArray,
                  progress: Callable[[int], None] | None = None, reason: str = "",
                  bones: Sequence[str] = ()) -> Samples:
    """The frame path: evaluate every frame with ``scene.frame_set``. Leaves the scene on the last frame."""
    count = len(frames)
    bases = {name: np.empty((count, 4, 4)) for name in bindings}
    matrices = {goal.key: np.empty((count, 4, 4)) for goal in goals}
    worlds = {bone: np.empty((count, 4, 4)) for bone in bones}
    for i, frame in enumerate(frames):
        whole = int(np.floor(frame))
        scene.frame_set(whole, subframe=float(frame - whole))
        depsgraph = bpy.context.evaluated_depsgraph_get()
        rig_eval = rig.evaluated_get(depsgraph)
        for name, binding in bindings.items():
            check_locations(rig_eval, binding)
            bases[name][i] = chain_base(rig_eval, binding)
        for goal in goals:
            matrices[goal.key][i] = goal_matrix(goal, depsgraph)[0]
        for bone in bones:
            worlds[bone][i] = bone_world(rig_eval, bone)
        if progress is not None:
            progress(i)
    return Samples(bases, matrices, "frames", reason, worlds)
