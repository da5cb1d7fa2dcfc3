"""A metarig's arms and legs with Blender IK constraints, as a rigger sets them up: for adoption.

:func:`metarig_limbs` builds Rigify's human metarig when Rigify can be enabled (``bpy`` has
``armature_human_metarig_add`` only with it), else the same arm and leg bones by hand (heads, tails,
rolls and parents copied from Rigify's metarig of Blender 5.0.1). It adds what a user adds for IK:
per limb an IK control bone at the wrist or ankle and a pole bone off the elbow or knee (both
unparented), and an IK constraint on the forearm or shin (chain of 2, the control as subtarget, the
pole bone as pole subtarget) whose pole angle follows Rigify's own rule for its generated IK limbs
(``limb_rigs.compute_pole_angle``: -90 or +90 degrees by the side the elbow bends to). The right
limbs are hinges as Rigify's generated IK bones are (``lock_ik_y``/``lock_ik_z`` on the forearm
and shin); the left limbs' joints are free, as the metarig has them.

:func:`animate_controls` keys the controls over a range: the wrist and ankle targets sweep inside
the limbs' reach, the poles drift around their place.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import bpy
import numpy as np
from mathutils import Vector

LIMBS = {  # constraint owner -> (chain root, control, pole bone)
    "forearm.L": ("upper_arm.L", "hand_ik.L", "elbow_pole.L"),
    "forearm.R": ("upper_arm.R", "hand_ik.R", "elbow_pole.R"),
    "shin.L": ("thigh.L", "foot_ik.L", "knee_pole.L"),
    "shin.R": ("thigh.R", "foot_ik.R", "knee_pole.R"),
}
HINGES = ("forearm.R", "shin.R")

# Rigify's human metarig (Blender 5.0.1): name, head, tail, roll, parent, connected.
_BY_HAND = (
    ("spine", (0.0, 0.0552, 1.0099), (0.0, 0.0172, 1.1573), 0.0, None, False),
    ("shoulder.L", (0.0183, -0.0684, 1.6051), (0.1694, 0.0205, 1.605), 0.0004, "spine", False),
    ("upper_arm.L", (0.1953, 0.0267, 1.5846), (0.4424, 0.0885, 1.4491), 2.0724, "shoulder.L", False),
    ("forearm.L", (0.4424, 0.0885, 1.4491), (0.6594, 0.0492, 1.3061), 2.1535, "upper_arm.L", True),
    ("hand.L", (0.6594, 0.0492, 1.3061), (0.7234, 0.0412, 1.2585), 2.2103, "forearm.L", True),
    ("shoulder.R", (-0.0183, -0.0684, 1.6051), (-0.1694, 0.0205, 1.605), -0.0004, "spine", False),
    ("upper_arm.R", (-0.1953, 0.0267, 1.5846), (-0.4424, 0.0885, 1.4491), -2.0724, "shoulder.R", False),
    ("forearm.R", (-0.4424, 0.0885, 1.4491), (-0.6594, 0.0492, 1.3061), -2.1535, "upper_arm.R", True),
    ("hand.R", (-0.6594, 0.0492, 1.3061), (-0.7234, 0.0412, 1.2585), -2.2103, "forearm.R", True),
    ("thigh.L", (0.098, 0.0124, 1.072), (0.098, -0.0286, 0.5372), 0.0, "spine", False),
    ("shin.L", (0.098, -0.0286, 0.5372), (0.098, 0.0162, 0.0852), 0.0, "thigh.L", True),
    ("foot.L", (0.098, 0.0162, 0.0852), (0.098, -0.0934, 0.0167), 0.0, "shin.L", True),
    ("thigh.R", (-0.098, 0.0124, 1.072), (-0.098, -0.0286, 0.5372), 0.0, "spine", False),
    ("shin.R", (-0.098, -0.0286, 0.5372), (-0.098, 0.0162, 0.0852), 0.0, "thigh.R", True),
    ("foot.R", (-0.098, 0.0162, 0.0852), (-0.098, -0.0934, 0.0167), 0.0, "shin.R", True),
)


def metarig_limbs(*, rigify: bool = True, roll: float = 0.0) -> tuple[Any, str]:
    """The rig (active, Object mode) and how it was built (``"Rigify's human metarig"`` or ``"by
    hand"``). ``roll`` (radians) is added to the left limbs' chain bones and taken from the right
    ones (mirrored), before the constraints are set up."""
    rig = _rigify_metarig() if rigify else None
    how = "Rigify's human metarig"
    if rig is None:
        rig, how = _by_hand(), "by hand (Rigify's metarig arm and leg bones)"
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    bones = rig.data.edit_bones
    if roll:
        for owner, (root, _, _) in LIMBS.items():
            for name in (root, owner):
                bones[name].roll += roll if name.endswith(".L") else -roll
    for owner, (root, control, pole) in LIMBS.items():
        start, joint, end = bones[root].head.copy(), bones[owner].head.copy(), bones[owner].tail.copy()
        bend = _elbow_vector(start, joint, end)
        made = bones.new(control)
        made.head, made.tail = end, end + (end - joint).normalized() * 0.1
        made = bones.new(pole)
        made.head = joint + bend
        made.tail = made.head + Vector((0.0, 0.0, 0.05))
    bpy.ops.object.mode_set(mode="OBJECT")
    for owner, (root, control, pole) in LIMBS.items():
        pbone = rig.pose.bones[owner]
        if owner in HINGES:
            pbone.lock_ik_y = pbone.lock_ik_z = True
        con = pbone.constraints.new("IK")
        con.target, con.subtarget, con.chain_count = rig, control, 2
        con.pole_target, con.pole_subtarget = rig, pole
        con.pole_angle = _rigify_pole_angle(rig, root, owner)
    bpy.context.view_layer.update()
    return rig, how


def animate_controls(rig: Any, frames: int = 24, start: int = 1) -> None:
    """Key the controls over ``frames`` frames from ``start``: each IK control sweeps a loop from its
    rest place toward the front and up (arms) or forward and up (legs), kept within 0.95 of the
    limb's reach from its root's head (the shoulder or hip stays at rest); each pole drifts by a
    tenth of the limb's length."""
    bones = rig.data.bones
    for owner, (root, control, pole) in LIMBS.items():
        length = bones[root].length + bones[owner].length
        side = 1.0 if owner.endswith(".L") else -1.0
        arm = owner.startswith("forearm")
        for index in range(frames):
            s = 2.0 * math.pi * index / frames
            if arm:
                offset = Vector((0.2 * side * math.sin(s), -0.35 * (1.0 - math.cos(s)), 0.3 * math.sin(2.0 * s)))
            else:
                offset = Vector((0.1 * side * math.sin(s), -0.3 * (1.0 - math.cos(s)), 0.25 * (1.0 - math.cos(s))))
            goal = bones[owner].tail_local + offset * length  # kept within 0.95 of the reach
            reach = goal - bones[root].head_local
            goal = bones[root].head_local + reach * min(1.0, 0.95 * length / reach.length)
            rig.pose.bones[control].location = _local(rig, control, goal - bones[control].head_local)
            rig.pose.bones[control].keyframe_insert("location", frame=start + index)
            drift = Vector((0.1 * math.sin(3.0 * s), 0.1 * math.cos(2.0 * s) - 0.1, 0.05 * math.sin(s))) * length
            rig.pose.bones[pole].location = _local(rig, pole, drift)
            rig.pose.bones[pole].keyframe_insert("location", frame=start + index)


def chain_matrices(rig: Any, bones: Sequence[str]) -> np.ndarray:
    """``(len(bones), 3, 3)`` the bones' evaluated armature-space rotations (normalised columns)."""
    out = np.array([np.array(rig.pose.bones[name].matrix, dtype=np.float64)[:3, :3] for name in bones])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def angles_between(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Degrees between rotations ``(..., 3, 3)`` pairwise."""
    relative = np.swapaxes(first, -1, -2) @ second
    cosine = (np.trace(relative, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def _local(rig: Any, bone: str, offset: Vector) -> Vector:
    """An armature-space offset as the pose location of an unparented bone."""
    return rig.data.bones[bone].matrix_local.to_3x3().inverted() @ offset


def _elbow_vector(start: Vector, joint: Vector, end: Vector) -> Vector:
    """Rigify's ``compute_elbow_vector``: from the root -> tip line toward the joint, the line's length."""
    lower, total = end - joint, end - start
    return (lower.project(total) - lower).normalized() * total.length


def _rigify_pole_angle(rig: Any, root: str, owner: str) -> float:
    """Rigify's ``compute_pole_angle`` for an X rotation axis: -90° if the elbow bends away from the
    bones' Z axes, else +90°."""
    bones = rig.data.bones
    start, joint, end = bones[root].head_local, bones[owner].head_local, bones[owner].tail_local
    z_axes = bones[root].matrix_local.col[2].to_3d() + bones[owner].matrix_local.col[2].to_3d()
    return -math.pi / 2 if _elbow_vector(start, joint, end).angle(z_axes) > math.pi / 2 else math.pi / 2


def _rigify_metarig() -> Any | None:
    """Rigify's human metarig, or None if Rigify cannot be enabled here. Rigify is disabled again and
    the handler it leaves behind on 5.0 (``load_post``) removed, so the session is as it was."""
    handlers = bpy.app.handlers
    before = {name: list(getattr(handlers, name)) for name in dir(handlers) if not name.startswith("_")
              and isinstance(getattr(handlers, name), list)}
    try:
        if bpy.ops.preferences.addon_enable(module="rigify") != {"FINISHED"}:
            return None
        bpy.ops.object.armature_human_metarig_add()
        return bpy.context.object
    except (RuntimeError, AttributeError):
        return None
    finally:
        with contextlib.suppress(RuntimeError):
            bpy.ops.preferences.addon_disable(module="rigify")
        for name, kept in before.items():
            current = getattr(handlers, name)
            for handler in [h for h in current if h not in kept]:
                current.remove(handler)


def _by_hand() -> Any:
    data = bpy.data.armatures.new("metarig")
    rig = bpy.data.objects.new("metarig", data)
    bpy.context.scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    for name, head, tail, roll, parent, connected in _BY_HAND:
        bone = data.edit_bones.new(name)
        bone.head, bone.tail, bone.roll = head, tail, roll
        if parent is not None:
            bone.parent = data.edit_bones[parent]
            bone.use_connect = connected
    bpy.ops.object.mode_set(mode="OBJECT")
    for pbone in rig.pose.bones:
        pbone.rotation_mode = "QUATERNION"
    return rig
