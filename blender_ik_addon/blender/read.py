"""Armature bone chain -> core :class:`Chain`, plus what is needed to write the answer back.

Conventions (checked against Blender's own evaluation by ``tests/blender/test_read.py``):

* Chain space is the space of the chain root's parent, "unposed": a bone's pose matrix is
  ``parent_pose @ parent_rest^-1 @ rest @ basis`` (armature space, ``rest = bone.matrix_local``),
  so ``world = obj.matrix_world @ parent_pose @ parent_rest^-1 @ (chain FK)``. That product in
  front of the chain is the chain's *base*; it is read per frame (:func:`chain_base`) because the
  armature or the root's parent may be animated. The core chain itself has an identity base.
* Joint ``j``'s rest is ``parent_rest^-1 @ rest_j @ T(location_j)``: a non-connected bone's pose
  location is folded in (connected bones ignore their location, as Blender does). The chain
  root's location goes into the base instead (``rest_root @ T(loc) @ rest_root^-1`` on its right),
  so a root (hips) whose location is animated is read per frame like the rest of the base.
* Read from the *evaluated* object (the depsgraph's copy, also during renders) when one is at hand;
  write to the original.
* Each joint rotates in its *parameter order*: the Euler order its Limit Rotation constraint uses
  (the constraint's ``euler_order``; AUTO means the bone's Euler order, or XYZ for quaternion and
  axis-angle bones), else the bone's own Euler order, else XYZ. Limits are angles in that order.
* Locked axes (``lock_rotation``, ``lock_ik_*``) keep their current value.
* With Stretch (``read_chain(..., stretch=True)``) each bone's ``ik_stretch`` becomes its joint's
  stretch (:mod:`.stretch`): a stretching bone's pose scale is the solver's to write, not read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from mathutils import Euler, Matrix, Quaternion

from ..core import Chain, Joint
from ..core.types import FloatArray
from .errors import RigSetupError
from .limits import EulerOrder, free_axes, limits, parameter_order
from .stretch import bone_stretch, require_inherited_scale, require_unscaled

_AXES = "XYZ"
_OVERRIDING = ("IK", "SPLINE_IK")  # Blender solvers that rotate bones above their owner


@dataclass(frozen=True)
class BoneBinding:
    """How one chain bone maps to a joint.

    Attributes:
        name: Bone name.
        rotation_mode: The bone's own rotation mode (written back in it, never changed).
        order: The joint's parameter Euler order (see module docstring).
    """

    name: str
    rotation_mode: str
    order: EulerOrder


@dataclass(frozen=True)
class ChainBinding:
    """A chain read from an armature.

    Attributes:
        object_name: The armature object's name.
        bones: The chain's bones, root first.
        root_parent: Name of the chain root's parent bone, or None.
        root_connected: The chain root is connected to its parent (its location is ignored).
        locations: ``(bone, location)`` of the non-root, non-connected bones, as folded into
            their rests (a bake checks they do not change over the range).
        ancestors: Names of every bone above the chain root (root's parent first).
        chain: The core chain in chain space (identity base; see module docstring).
    """

    object_name: str
    bones: tuple[BoneBinding, ...]
    root_parent: str | None
    ancestors: tuple[str, ...]
    chain: Chain
    root_connected: bool = False
    locations: tuple[tuple[str, tuple[float, float, float]], ...] = ()

    @property
    def bone_names(self) -> tuple[str, ...]:
        """Bone names, root first."""
        return tuple(b.name for b in self.bones)


def require_armature(obj: Any) -> None:
    """Raise :class:`RigSetupError` unless ``obj`` is an armature object."""
    if obj is None:
        raise RigSetupError("no object given (expected an armature)")
    if getattr(obj, "type", None) != "ARMATURE":
        raise RigSetupError(f"object {obj.name!r} is a {obj.type.lower()}, not an armature")


def chain_bone_names(obj: Any, tip_bone: str, length: int) -> list[str]:
    """Bone names root -> tip of the chain ending at ``tip_bone`` (``length`` 0 = up to the root)."""
    require_armature(obj)
    if not tip_bone:
        raise RigSetupError(f"armature {obj.name!r}: the chain has no tip bone")
    bone = obj.data.bones.get(tip_bone)
    if bone is None:
        raise RigSetupError(f"armature {obj.name!r} has no bone {tip_bone!r} (renamed or deleted?)")
    if length < 0:
        raise RigSetupError(f"chain length must be >= 0, got {length}")
    names: list[str] = []
    while bone is not None and (length == 0 or len(names) < length):
        names.append(bone.name)
        bone = bone.parent
    if length and len(names) < length:
        raise RigSetupError(f"chain length {length} is longer than the hierarchy: bone {tip_bone!r} has only "
                            f"{len(names)} bone(s) up to the root {names[-1]!r}")
    return names[::-1]


def read_chain(obj: Any, tip_bone: str, length: int, *, stretch: bool = False) -> ChainBinding:
    """Read the chain ending at ``tip_bone`` from the armature object ``obj``; with ``stretch`` (the
    chain's Stretch switch) its bones' ``ik_stretch`` too.

    Raises:
        RigSetupError: The bone is missing, the chain is longer than the hierarchy, a bone has an
            unsupported constraint, setting or scale, or its limits leave no allowed angle.
    """
    names = chain_bone_names(obj, tip_bone, length)
    _refuse_blender_ik(obj, names)
    pose_bones = [obj.pose.bones[name] for name in names]
    amounts = [bone_stretch(pbone, stretch) for pbone in pose_bones]
    require_inherited_scale(pose_bones, amounts)
    joints = []
    for index, pbone in enumerate(pose_bones):
        is_tip = index == len(pose_bones) - 1
        _check_bone(pbone, is_tip=is_tip, stretches=amounts[index] > 0)
        joints.append(_joint(pbone, is_root=index == 0, stretch=amounts[index]))
    tip = pose_bones[-1]
    # The tail; basis = T @ R @ S scales it (a stretching tip's scale is its length factor's).
    tip_offset = (0.0, tip.bone.length * (1.0 if amounts[-1] > 0 else tip.scale[1]), 0.0)
    root_parent = pose_bones[0].parent
    ancestors = []
    walker = root_parent
    while walker is not None:
        ancestors.append(walker.name)
        walker = walker.parent
    bindings = tuple(BoneBinding(p.name, p.rotation_mode, parameter_order(p)) for p in pose_bones)  # = joint orders
    locations = tuple((p.name, tuple(p.location)) for p in pose_bones[1:] if not p.bone.use_connect)
    return ChainBinding(obj.name, bindings, root_parent.name if root_parent else None, tuple(ancestors),
                        Chain(tuple(joints), np.asarray(tip_offset)), pose_bones[0].bone.use_connect, locations)


def chain_base(obj_eval: Any, binding: ChainBinding, shared: dict[tuple[Any, ...], FloatArray] | None = None
               ) -> FloatArray:
    """The chain's world base ``(4, 4)``: ``matrix_world @ parent_pose @ parent_rest^-1``.

    Args:
        obj_eval: The armature object as evaluated by the depsgraph in use (for renders, the
            render depsgraph's), so an animated armature or root parent is read at that frame.
        binding: The chain.
        shared: Bases already read this frame (chains that start at the same bone share their
            base: both arms of a group): filled and used. Not for a base under a scaled parent,
            which checks each chain's bones.
    """
    key = (binding.bones[0].name, binding.root_parent, binding.root_connected)
    if shared is not None:
        kept = shared.get(key)
        if kept is not None:
            return kept
    base, checked = _chain_base(obj_eval, binding)
    if shared is not None and not checked:
        shared[key] = base
    return base


def _chain_base(obj_eval: Any, binding: ChainBinding) -> tuple[FloatArray, bool]:
    """:func:`chain_base`, and whether it checked the chain's bones (a scaled root parent)."""
    base = np.array(obj_eval.matrix_world, dtype=np.float64)
    root = obj_eval.pose.bones[binding.bones[0].name]
    shift: FloatArray | None = None
    if not binding.root_connected and any(root.location):
        rest = np.array(root.bone.matrix_local, dtype=np.float64)
        shift = rest @ np.array(Matrix.Translation(root.location), dtype=np.float64) @ np.linalg.inv(rest)
    if binding.root_parent is None:
        return (base if shift is None else base @ shift), False
    parent = obj_eval.pose.bones[binding.root_parent]
    local = np.array(parent.matrix, dtype=np.float64) @ inverse_of(np.array(parent.bone.matrix_local, dtype=np.float64))
    (a, b, c, _), (d, e, f, _), (g, h, i, _), _ = local.tolist()
    scale = (math.sqrt(a * a + d * d + g * g), math.sqrt(b * b + e * e + h * h), math.sqrt(c * c + f * f + i * i))
    checked = not all(abs(s - 1.0) <= 2e-5 for s in scale)  # np.allclose(scale, 1, atol=1e-5), in floats
    if checked:
        for name in binding.bone_names:
            bone = obj_eval.data.bones[name]
            if bone.inherit_scale != "FULL":
                raise RigSetupError(f"bone {name!r}: inherit scale {bone.inherit_scale!r} under a scaled parent "
                                    f"{binding.root_parent!r} is not supported in a chain; use 'Full'")
    return (base @ local if shift is None else base @ local @ shift), checked


_INVERSES: dict[bytes, FloatArray] = {}


def inverse_of(matrix: FloatArray) -> FloatArray:
    """``np.linalg.inv(matrix)``, remembered for the last few matrices: rest matrices, and the base
    of a chain whose armature stands still, are the same frame after frame (the same LAPACK
    result, so a live frame and a bake agree)."""
    key = matrix.tobytes()
    inverse = _INVERSES.get(key)
    if inverse is None:
        if len(_INVERSES) >= 256:
            _INVERSES.clear()
        inverse = _INVERSES[key] = np.linalg.inv(matrix)
    return inverse


def check_locations(obj_eval: Any, binding: ChainBinding) -> None:
    """Raise if a non-root chain bone's location differs from the one folded into its rest."""
    for name, location in binding.locations:
        now = tuple(obj_eval.pose.bones[name].location)
        if not np.allclose(now, location, atol=1e-6):
            raise RigSetupError(f"bone {name!r}: its pose location changes over the frames; only the chain "
                                "root's location may be animated (connect the bone, or key it constant)")


def current_angles(pbone: Any, order: EulerOrder) -> FloatArray:
    """The bone's current pose rotation as Euler angles ``(3,)`` in ``order`` (radians)."""
    mode = pbone.rotation_mode
    if mode == order:
        return np.array(pbone.rotation_euler, dtype=np.float64)  # exact, even outside [-pi, pi]
    return np.array(rotation_quaternion(pbone).to_euler(order), dtype=np.float64)


def rotation_quaternion(pbone: Any) -> Quaternion:
    """The bone's pose rotation as a unit quaternion, whatever its rotation mode."""
    mode = pbone.rotation_mode
    if mode == "QUATERNION":
        quat = Quaternion(pbone.rotation_quaternion)
        return quat.normalized() if quat.magnitude > 0 else Quaternion()
    if mode == "AXIS_ANGLE":
        angle, *axis = pbone.rotation_axis_angle
        return Quaternion(axis, angle) if any(axis) else Quaternion()
    euler: Euler = pbone.rotation_euler
    return euler.to_quaternion()


def _check_bone(pbone: Any, *, is_tip: bool, stretches: bool = False) -> None:
    name, bone = pbone.name, pbone.bone
    for con in pbone.constraints:
        if con.mute or con.influence <= 0 or not con.is_valid or con.type == "LIMIT_ROTATION":
            continue
        raise RigSetupError(f"bone {name!r}: constraint {con.name!r} ({con.type.replace('_', ' ').title()}) "
                            "would change the solved pose; mute or remove it")
    if bone.parent is not None and not bone.use_inherit_rotation:
        raise RigSetupError(f"bone {name!r}: 'Inherit Rotation' is off; chain bones must inherit rotation")
    if not is_tip and not stretches:
        require_unscaled(pbone)
    if not bone.use_connect and not bone.use_local_location and any(pbone.location):
        raise RigSetupError(f"bone {name!r}: a pose location with 'Local Location' off is not supported")


def subtree(obj: Any, root: str) -> list[Any]:
    """Pose bones of ``root`` and everything below it (where IK constraints reaching it live)."""
    bones = obj.pose.bones
    return [bones[root], *(bones[b.name] for b in obj.data.bones[root].children_recursive)]


def _refuse_blender_ik(obj: Any, names: list[str]) -> None:
    """Blender's own IK constraints rotate every bone of their chain after us: refuse overlap."""
    ours = set(names)
    for pbone in subtree(obj, names[0]):
        for con in pbone.constraints:
            if con.type not in _OVERRIDING or con.mute or con.influence <= 0 or not con.is_valid:
                continue
            covered = chain_bone_names(obj, pbone.name, 0)[::-1]
            if con.type == "IK" and not con.use_tail:
                covered = covered[1:]
            count = con.chain_count
            covered = covered[:count] if count else covered
            shared = ours.intersection(covered)
            if shared:
                kind = con.type.replace("_", " ")
                raise RigSetupError(f"bone {sorted(shared)[0]!r} is also moved by Blender's {kind} constraint "
                                    f"{con.name!r} on bone {pbone.name!r}; mute or remove it")


def _joint(pbone: Any, *, is_root: bool, stretch: float = 0.0) -> Joint:
    name, bone = pbone.name, pbone.bone
    rest = np.array(bone.matrix_local, dtype=np.float64)
    if not is_root:  # the root's parent and location are in the base: its rest is armature space
        rest = np.linalg.inv(np.array(bone.parent.matrix_local, dtype=np.float64)) @ rest
    if not bone.use_connect and not is_root:
        rest = rest @ np.array(Matrix.Translation(pbone.location), dtype=np.float64)
    rest[:3, :3] = _orthonormal(rest[:3, :3])  # float32 storage: re-square it for the core's rigid check
    order = parameter_order(pbone)
    free, lock_order = free_axes(pbone)
    if lock_order is not None and lock_order != order and 0 < sum(not f for f in free) < 3:
        raise RigSetupError(
            f"bone {name!r}: its rotation locks refer to {lock_order} Euler angles, but its Limit Rotation "
            f"constraint uses {order}; a partial lock cannot be honoured in another order. Set the constraint's "
            f"order to {lock_order} (or Default), or unlock the axes")
    free_x, free_y, free_z = (f and not getattr(pbone, f"lock_ik_{a.lower()}")
                              for f, a in zip(free, _AXES, strict=False))
    free = (free_x, free_y, free_z)
    lower, upper = limits(pbone)
    fixed = current_angles(pbone, order)
    for i, axis in enumerate(_AXES):
        if free[i] and lower[i] > upper[i]:
            raise RigSetupError(f"bone {name!r}, axis {axis}: the limits leave no allowed angle "
                                f"(min {math.degrees(lower[i]):.6g}° > max {math.degrees(upper[i]):.6g}°)")
        if lower[i] <= upper[i]:  # a locked axis outside its limits is clamped, as the constraint would
            fixed[i] = min(max(fixed[i], lower[i]), upper[i])
    return Joint(name, rest, order, free, lower, upper, fixed, stretch)


def _orthonormal(rotation: FloatArray) -> FloatArray:
    u, _, vt = np.linalg.svd(rotation)
    return np.asarray(u @ vt)
