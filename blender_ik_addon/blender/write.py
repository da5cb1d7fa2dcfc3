"""Solved joint angles -> pose bone rotation channels, in each bone's own rotation mode.

The rotation mode is never changed. Values are made continuous with the previous ones (the bone's
current value, or the previous frame in a bake) so keys do not jump by 360° or flip a quaternion's
sign, which Blender would interpolate the long way round:

* Euler, same order as the joint: the solver's angles as they are (they satisfy the limits exactly);
  only axes without limits are unwrapped by whole turns toward the previous value.
* Euler, another order: ``Matrix.to_euler(order, compat)`` per frame (mathutils' compatible Euler).
* QUATERNION: ``w, x, y, z`` with the sign chosen closest to the previous quaternion.
* AXIS_ANGLE: ``angle, x, y, z`` from that continuous quaternion, the axis kept on the previous side.

A bone that stretches (:mod:`.stretch`) also gets its ``scale`` channels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mathutils import Euler, Matrix, Quaternion

from ..core import Joint
from ..core.rotations import euler_to_matrix, matrix_to_quaternion
from ..core.types import AnyArray, FloatArray
from .keys import ensure_fcurve, fcurve_collection, require_keyable, require_local
from .limits import is_euler_order
from .read import BoneBinding, ChainBinding
from .stretch import key_current as key_stretch
from .stretch import write as write_stretch

NOOP_TOLERANCE = 1e-6  # radians (or quaternion units): a smaller change is not written


def channel(rotation_mode: str) -> tuple[str, int]:
    """``(data path, size)`` of the rotation channel a bone uses in ``rotation_mode``."""
    if rotation_mode == "QUATERNION":
        return "rotation_quaternion", 4
    if rotation_mode == "AXIS_ANGLE":
        return "rotation_axis_angle", 4
    return "rotation_euler", 3


def read_channel(pbone: Any) -> FloatArray:
    """The bone's current rotation channel values ``(k,)``."""
    path, _ = channel(pbone.rotation_mode)
    return np.array(getattr(pbone, path), dtype=np.float64)


def angles_to_channels(bone: BoneBinding, joint: Joint, angles: FloatArray, previous: FloatArray) -> FloatArray:
    """Channel values ``(F, k)`` for joint angles ``(F, 3)`` (parameter order), continuous from ``previous``."""
    mode = bone.rotation_mode
    if mode == bone.order:
        return _unwrap_unlimited(joint, angles, previous)
    if len(angles) == 1:  # live solving: mathutils is ~20x faster than numpy for one rotation
        return _single(bone, angles[0], previous)[None]
    matrices = euler_to_matrix(angles, bone.order)
    if is_euler_order(mode):  # not QUATERNION or AXIS_ANGLE
        out = np.empty_like(angles)
        compat = Euler(previous.tolist(), mode)
        for f, matrix in enumerate(matrices):
            compat = Matrix(matrix).to_euler(mode, compat)
            out[f] = compat
        return out
    quats = _continuous_quaternions(matrix_to_quaternion(matrices), _previous_quaternion(mode, previous))
    if mode == "QUATERNION":
        return quats
    return _axis_angles(quats, previous)


def _single(bone: BoneBinding, angles: FloatArray, previous: FloatArray) -> FloatArray:
    """:func:`angles_to_channels` for one frame in another mode (same rules, via mathutils)."""
    mode = bone.rotation_mode
    euler = Euler(angles.tolist(), bone.order)
    if is_euler_order(mode):  # not QUATERNION or AXIS_ANGLE
        return np.array(euler.to_matrix().to_euler(mode, Euler(previous.tolist(), mode)))
    quat = euler.to_quaternion()
    if quat.dot(Quaternion(_previous_quaternion(mode, previous).tolist())) < 0:
        quat.negate()
    if mode == "QUATERNION":
        return np.array(quat)
    axis_angle: FloatArray = _axis_angles(np.array(quat)[None], previous)[0]
    return axis_angle


def _unwrap_unlimited(joint: Joint, angles: FloatArray, previous: FloatArray) -> FloatArray:
    out = np.array(angles, dtype=np.float64)
    unlimited = unlimited_axes(joint)
    if unlimited is not None:
        # Whole turns that bring each value within half a turn of the one before (np.unwrap, lean).
        series = np.concatenate([previous[None, unlimited], out[:, unlimited]], axis=0)
        turns = np.cumsum(np.round(np.diff(series, axis=0) / (2 * np.pi)), axis=0)
        out[:, unlimited] -= 2 * np.pi * turns
    return out


_UNLIMITED: dict[int, tuple[Joint, AnyArray | None]] = {}


def unlimited_axes(joint: Joint) -> AnyArray | None:
    """``(3,)`` True for the joint's free axes without limits, or None if it has none (remembered
    per joint: the live pass asks every frame)."""
    kept = _UNLIMITED.get(id(joint))
    if kept is not None and kept[0] is joint:
        return kept[1]
    unlimited = np.array(joint.free) & np.isinf(joint.lower) & np.isinf(joint.upper)
    if len(_UNLIMITED) > 4096:
        _UNLIMITED.clear()
    _UNLIMITED[id(joint)] = (joint, unlimited if unlimited.any() else None)
    return _UNLIMITED[id(joint)][1]


def forget_write_caches() -> None:
    """Drop what this module remembers of joints (file load, unregister)."""
    _UNLIMITED.clear()


def _previous_quaternion(mode: str, previous: FloatArray) -> FloatArray:
    if mode == "QUATERNION":
        return previous
    angle, axis = previous[0], previous[1:]
    norm = np.linalg.norm(axis)
    if norm == 0:
        return np.array([1.0, 0.0, 0.0, 0.0])
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis / norm])


def _continuous_quaternions(quats: FloatArray, previous: FloatArray) -> FloatArray:
    # Each quaternion takes the sign closest to the one before it: a running product of signs.
    chain = np.concatenate([previous[None], quats], axis=0)
    dots = np.einsum("fi,fi->f", chain[1:], chain[:-1])
    signs = np.cumprod(np.where(dots < 0, -1.0, 1.0))
    return np.asarray(quats * signs[:, None])


def _axis_angles(quats: FloatArray, previous: FloatArray) -> FloatArray:
    vec = quats[:, 1:]
    sin_half = np.linalg.norm(vec, axis=1)
    angle = 2.0 * np.arctan2(sin_half, quats[:, 0])
    axis = np.where(sin_half[:, None] > 1e-12, vec / np.maximum(sin_half, 1e-300)[:, None], np.nan)
    # A zero rotation has no axis: keep the previous one (Blender's default axis is +Y).
    prev_axis = previous[1:] if np.linalg.norm(previous[1:]) > 0 else np.array([0.0, 1.0, 0.0])
    for f in range(len(axis)):
        if np.isnan(axis[f, 0]):
            axis[f] = prev_axis
        elif np.dot(axis[f], prev_axis) < 0:  # (axis, angle) == (-axis, -angle): stay on the same side
            axis[f], angle[f] = -axis[f], -angle[f]
        prev_axis = axis[f]
    return np.concatenate([angle[:, None], axis], axis=1)


def write_pose(obj: Any, binding: ChainBinding, angles: FloatArray, factors: FloatArray | None = None) -> bool:
    """Write joint angles ``(n, 3)`` to the chain's pose bones, and the length factors ``(n,)``
    (``SolveResult.scales``) to the scale of those that stretch; returns True if anything changed.

    Bones whose rotation would change by less than :data:`NOOP_TOLERANCE` are not written, so a
    chain already in place does not trigger a depsgraph update (nor a handler feedback loop).
    Raises :class:`.errors.RigSetupError` for an armature linked from a library (read-only).
    """
    require_local(obj)
    changed = False
    for bone, joint, joint_angles in zip(binding.bones, binding.chain.joints, angles, strict=False):
        pbone = obj.pose.bones[bone.name]
        if pbone.rotation_mode != bone.rotation_mode:
            raise ValueError(f"bone {bone.name!r} changed rotation mode since the chain was read")
        previous = read_channel(pbone)
        values = angles_to_channels(bone, joint, np.asarray(joint_angles)[None], previous)[0]
        if np.max(np.abs(values - previous)) < NOOP_TOLERANCE:
            continue
        setattr(pbone, channel(bone.rotation_mode)[0], values.tolist())
        changed = True
    if factors is not None:
        changed = write_stretch(obj, binding, np.asarray(angles), np.asarray(factors)) or changed
    return changed


def key_pose(obj: Any, binding: ChainBinding, time: float) -> None:
    """Key the chain's rotation channels, and the scale channels of its bones that stretch, as they
    stand in the pose, at action time ``time`` (:func:`.action_time.action_time` of the scene frame:
    the key plays at that frame).

    The keys go straight into the F-curves: ``keyframe_insert`` would remap an NLA-tweaked action's
    time a second time. An existing key at that time is replaced; new keys take the user's default
    interpolation, as Blender's own keying does.

    Raises :class:`.errors.RigSetupError` when the keys would be lost or land on another object too
    (:func:`.keys.require_keyable`).
    """
    require_keyable(obj)
    fcurves = fcurve_collection(obj, create=True)
    for bone in binding.bones:
        pbone = obj.pose.bones[bone.name]
        path = channel(bone.rotation_mode)[0]
        full_path = pbone.path_from_id(path)
        for index, value in enumerate(getattr(pbone, path)):
            ensure_fcurve(fcurves, full_path, index, bone.name).keyframe_points.insert(time, value)
    key_stretch(obj, binding, time)
