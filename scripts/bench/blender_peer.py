"""Blender's built-in IK constraint (Standard solver) through bpy, on an armature built from the chain.

Each joint is a bone whose rest matrix is the joint's rest frame, so a pose bone's rotation is the
joint's rotation: ``pose = parent_pose @ (parent_rest^-1 @ rest) @ basis`` is the chain's
``parent @ rest @ R(angles)``. Locked axes set ``lock_ik_*``; limits set ``ik_min_*``/``ik_max_*``,
which Blender requires to satisfy ``ik_min <= 0 <= ik_max``: a range excluding zero is widened to
include it, and the violations that allows are counted like any other.

The effector of Blender's IK is always a bone's tail. When the tip lies on the last joint's +Y
axis, that bone's tail is the tip; otherwise (the KUKA's tip is the last joint's origin) a rigid,
fully IK-locked "tip" bone is added whose tail is the tip.

Blender's IK limits a bone with several free axes by swing and twist, not by Euler angles, and
a bone locked about Y turns by a "swing" whose Euler Y angle is not zero. The evaluated pose is
read back as Euler angles in the joint's order (the triple that best fits the limits), and both
effects show up as limit violations and locked-axis drift against the chain's own limits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from typing import Any

import numpy as np

from blender_ik_addon.core import Chain, Joint, matrix_to_euler
from blender_ik_addon.core.rotations import FloatArray, order_indices

from .peer import Answer, Peer, PeerUnavailableError, stack_fk_error

_TIP_BONE_LENGTH = 0.05  # length of the extra tip bone, as a fraction of the chain's length
_bpy: Any = None
_TURNS = 2 * np.pi * np.array([0, -1, 1])  # whole turns tried on each angle; no turn wins a tie


def fit_euler(rotation: FloatArray, joint: Joint) -> FloatArray:
    """The Euler angles of ``rotation`` in the joint's order that best fit its limits.

    Blender hands back a matrix, not angles, so it gets the benefit of the doubt: a rotation has
    two Euler triples, ``(a, b, c)`` and ``(a + pi, pi - b, c + pi)`` (``a`` applied first), each
    angle up to whole turns. ``matrix_to_euler`` returns the one whose middle angle is within
    +-90 degrees, which a joint allowing more (the human shoulder's X, -60..170 degrees) rejects.
    """
    canonical = matrix_to_euler(rotation, joint.order)
    first, middle, last = order_indices(joint.order)
    other = canonical.copy()
    other[[first, last]] += np.pi
    other[middle] = np.pi - canonical[middle]
    lower = np.where(joint.free, joint.lower, joint.fixed)  # a locked axis should sit at its value
    upper = np.where(joint.free, joint.upper, joint.fixed)
    best, best_violation = canonical, np.inf
    for angles in (canonical, other):
        shifted = angles + _TURNS[:, None]  # (turn, axis)
        violation = np.maximum(np.maximum(lower - shifted, shifted - upper), 0.0)
        pick = np.argmin(violation, axis=0)
        axes = np.arange(3)
        if violation[pick, axes].max() < best_violation:
            best, best_violation = shifted[pick, axes], violation[pick, axes].max()
    return best


def _import_bpy() -> Any:
    """Import bpy once, with a throwaway user folder so the machine's Blender config is untouched."""
    global _bpy
    if _bpy is None:
        if "BLENDER_USER_RESOURCES" not in os.environ:
            folder = tempfile.mkdtemp(prefix="bench_blender_")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            os.environ["BLENDER_USER_RESOURCES"] = folder
        try:
            import bpy
        except ImportError as err:
            raise PeerUnavailableError(f"bpy is not installed ({err})") from err
        _bpy = bpy
    return _bpy


class BlenderPeer(Peer):
    """One armature per chain in an empty scene; a solve moves the target Empty and updates the
    view layer (timed), then reads the evaluated pose (untimed). Blender's IK starts from the
    pose bones' basis rotations: zero for a cold solve, the previous answer for a warm one."""

    name = "blender"
    float32 = True

    def __init__(self, chain: Chain) -> None:
        super().__init__(chain)
        self._bpy = _import_bpy()
        self._mathutils = __import__("mathutils")
        self._bpy.ops.wm.read_homefile(use_empty=True)
        self._obj, self._tip_bone = self._build_armature()
        self._target = self._bpy.data.objects.new("ik_target", None)
        self._bpy.context.scene.collection.objects.link(self._target)
        self._constraint = self._add_constraint()
        self._bones = [self._obj.pose.bones[joint.name] for joint in chain.joints]
        self._configure_bones()

    # -- building --------------------------------------------------------------------------
    def _build_armature(self) -> tuple[Any, str]:
        bpy = self._bpy
        armature = bpy.data.armatures.new("bench_rig")
        obj = bpy.data.objects.new("bench_rig", armature)
        bpy.context.scene.collection.objects.link(obj)
        obj.matrix_world = self._mathutils.Matrix(self.chain.base.tolist())
        bpy.context.view_layer.objects.active = obj
        bpy.ops.object.mode_set(mode="EDIT")
        frame, parent = np.eye(4), None  # parent: the previous EditBone
        default_length = 0.1 * self.chain.length / self.chain.n_joints  # only the last bone's length matters
        for joint in self.chain.joints:
            frame = frame @ joint.rest
            parent = self._edit_bone(armature, joint.name, frame, default_length, parent)
        assert parent is not None  # a chain has at least one joint
        tip = self.chain.tip_offset
        along_y = tip[1] > 0 and np.allclose(tip[[0, 2]], 0.0, atol=1e-12)
        if along_y:
            parent.length = float(tip[1])
            tip_bone = parent.name
        else:
            length = _TIP_BONE_LENGTH * self.chain.length
            tip_frame = frame.copy()
            tip_frame[:3, 3] = frame[:3, :3] @ (tip - (0.0, length, 0.0)) + frame[:3, 3]
            tip_bone = self._edit_bone(armature, "ik_tip", tip_frame, length, parent).name
        bpy.ops.object.mode_set(mode="OBJECT")
        return obj, tip_bone

    def _edit_bone(self, armature: Any, name: str, frame: FloatArray, length: float, parent: Any) -> Any:
        bone = armature.edit_bones.new(name)
        bone.head, bone.tail = (0.0, 0.0, 0.0), (0.0, length, 0.0)
        bone.matrix = self._mathutils.Matrix(frame.tolist())  # keeps the length, sets head, axis and roll
        bone.parent = parent  # not connected: a child's head sits wherever its rest frame says
        return bone

    def _add_constraint(self) -> Any:
        owner = self._obj.pose.bones[self._tip_bone]
        constraint = owner.constraints.new("IK")
        constraint.target = self._target
        extra = 0 if self._tip_bone == self.chain.joints[-1].name else 1
        constraint.chain_count = self.chain.n_joints + extra
        self._obj.pose.ik_solver = "LEGACY"  # "Standard" in the UI
        if extra:
            tip = self._obj.pose.bones[self._tip_bone]
            tip.lock_ik_x = tip.lock_ik_y = tip.lock_ik_z = True
        return constraint

    def _configure_bones(self) -> None:
        for joint, bone in zip(self.chain.joints, self._bones, strict=True):
            bone.rotation_mode = joint.order
            for index, axis in enumerate("xyz"):
                if not joint.free[index]:
                    setattr(bone, f"lock_ik_{axis}", True)
                elif np.isfinite(joint.lower[index]) or np.isfinite(joint.upper[index]):
                    setattr(bone, f"use_ik_limit_{axis}", True)
                    setattr(bone, f"ik_min_{axis}", float(np.clip(joint.lower[index], -np.pi, 0.0)))
                    setattr(bone, f"ik_max_{axis}", float(np.clip(joint.upper[index], 0.0, np.pi)))

    # -- reading and writing ---------------------------------------------------------------
    def _set_basis(self, q: FloatArray) -> None:
        for bone, angles in zip(self._bones, self.chain.expand(q), strict=True):
            bone.rotation_euler = angles.tolist()
        self._obj.update_tag()

    def _read(self) -> tuple[FloatArray, FloatArray]:
        """``(angles (n, 3), world tip (3,))`` of the evaluated pose."""
        parent, angles = np.eye(4), []
        for joint, bone in zip(self.chain.joints, self._bones, strict=True):
            pose = np.array(bone.matrix, dtype=np.float64)
            local = np.linalg.solve(parent @ joint.rest, pose)
            angles.append(fit_euler(local[:3, :3], joint))
            parent = pose
        tail = np.append(np.array(self._obj.pose.bones[self._tip_bone].tail, dtype=np.float64), 1.0)
        return np.stack(angles), (np.array(self._obj.matrix_world, dtype=np.float64) @ tail)[:3]

    def fk_error(self, poses: FloatArray) -> float:
        self._constraint.enabled = False
        tips = []
        for q in poses:
            self._set_basis(q)
            self._bpy.context.view_layer.update()
            tips.append(self._read()[1])
        self._constraint.enabled = True
        self._set_basis(np.zeros(self.chain.n_dofs))
        return stack_fk_error(np.stack(tips), self.chain, poses)

    def solve(self, target: FloatArray, start: FloatArray) -> Answer:
        self._set_basis(start)
        view_layer = self._bpy.context.view_layer
        began = time.perf_counter()
        self._target.location = target.tolist()
        view_layer.update()
        seconds = time.perf_counter() - began
        angles, tip = self._read()
        return Answer(angles, tip, seconds)

    def close(self) -> None:
        self._bpy.ops.wm.read_homefile(use_empty=True)
