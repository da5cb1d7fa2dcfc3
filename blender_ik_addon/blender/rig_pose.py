"""The rig's pose channels as the live pass reads and writes them: one ``foreach_get`` per channel
kind, one ``foreach_set`` per kind that changed.

Values are float32, as Blender stores them, so bones no chain solves are written back bit for bit.
Used by the full pass (:mod:`.live`) and its fast lane (:mod:`.replay`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.types import AnyArray, FloatArray
from .read import ChainBinding
from .stretch import PATH as STRETCH_PATH
from .stretch import stretching_bones
from .write import NOOP_TOLERANCE, angles_to_channels, channel, unlimited_axes

_EULER_ROWS: dict[tuple[int, int], tuple[ChainBinding, dict[str, int], AnyArray | None]] = {}
_CHANNEL_SIZES = {"rotation_euler": 3, "rotation_quaternion": 4, "rotation_axis_angle": 4, "scale": 3}


class RigPose:
    """The rig's rotation channels, read with one ``foreach_get`` per channel kind and written back
    with one ``foreach_set`` per kind that changed (then :func:`tag_pose`: ``foreach_set`` does
    not tag the object). Values are float32, as Blender stores them, so bones we do not solve are
    written back bit for bit."""

    def __init__(self, obj: Any, index: dict[str, int]) -> None:
        self.obj, self.index = obj, index
        self._values: dict[str, AnyArray] = {}
        self._dirty: set[str] = set()

    def _array(self, path: str) -> AnyArray:
        values = self._values.get(path)
        if values is None:
            values = np.empty(len(self.index) * _CHANNEL_SIZES[path], dtype=np.float32)
            self.obj.pose.bones.foreach_get(path, values)
            self._values[path] = values.reshape(len(self.index), _CHANNEL_SIZES[path])
            values = self._values[path]
        return values

    def current(self, binding: ChainBinding) -> FloatArray:
        """The chain's channel values, bone after bone (float64 of the stored float32): its rotations,
        then the scale of its stretching bones (a scale key may put those back on a frame change)."""
        rows = self.euler_rows(binding)
        if rows is not None:
            values = np.asarray(self._array("rotation_euler")[rows], dtype=np.float64).ravel()
        else:
            values = np.concatenate([self._array(channel(b.rotation_mode)[0])[self.index[b.name]]
                                     for b in binding.bones], dtype=np.float64)
        stretching = stretching_bones(binding)
        if not stretching:
            return values
        scales = self._array(STRETCH_PATH)[[self.index[name] for name in stretching]]
        return np.concatenate([values, np.asarray(scales, dtype=np.float64).ravel()])

    def euler_rows(self, binding: ChainBinding) -> AnyArray | None:
        """``(n,)`` the chain's bones' rows in the rig's arrays when every bone is in Euler mode in
        its joint's own order with no unlimited axis, so its channels are the solved angles as they
        are (the usual bone); else None."""
        key = (id(binding), id(self.index))
        kept = _EULER_ROWS.get(key)
        if kept is None or kept[0] is not binding or kept[1] is not self.index:
            simple = all(b.rotation_mode == b.order and unlimited_axes(j) is None
                         for b, j in zip(binding.bones, binding.chain.joints, strict=True))
            rows = np.array([self.index[b.name] for b in binding.bones], dtype=np.int64) if simple else None
            if len(_EULER_ROWS) > 1024:
                _EULER_ROWS.clear()
            kept = _EULER_ROWS[key] = (binding, self.index, rows)
        return kept[2]

    def put_euler(self, rows: AnyArray, angles: FloatArray) -> bool:
        """Write Euler angles ``(n, 3)`` into ``rows``, bones that move by less than
        ``NOOP_TOLERANCE`` left alone; True if any moved."""
        euler = self._array("rotation_euler")
        moved = np.abs(angles - euler[rows]).max(axis=1) >= NOOP_TOLERANCE
        if not moved.any():
            return False
        euler[rows[moved]] = angles[moved]
        self._dirty.add("rotation_euler")
        return True

    def put_euler_values(self, rows: list[int], values: list[float]) -> bool:
        """:meth:`put_euler` with the angles given flat, three a bone, as Python floats: the same
        rule and the same float32 values, without numpy's per-call cost (a few bones)."""
        return any(self.put_euler_moved(rows, values))

    def put_euler_moved(self, rows: list[int], values: list[float]) -> list[bool]:
        """:meth:`put_euler_values`, telling which of ``rows`` moved."""
        euler = self._array("rotation_euler")
        moved = []
        for j, (row, now) in enumerate(zip(rows, euler[rows].tolist(), strict=True)):
            x, y, z = values[3 * j], values[3 * j + 1], values[3 * j + 2]
            move = max(abs(x - now[0]), abs(y - now[1]), abs(z - now[2])) >= NOOP_TOLERANCE
            if move:
                euler[row] = (x, y, z)
            moved.append(move)
        if any(moved):
            self._dirty.add("rotation_euler")
        return moved

    def euler_values(self, rows: list[int]) -> FloatArray:
        """``(len(rows), 3)`` the Euler channels of ``rows`` as they stand (float64 of the stored
        float32: what :meth:`current` gives a chain of plain Euler bones, bone by bone)."""
        return np.asarray(self._array("rotation_euler")[rows], dtype=np.float64)

    def bone(self, name: str, mode: str) -> FloatArray:
        return np.asarray(self._array(channel(mode)[0])[self.index[name]], dtype=np.float64)

    def set(self, name: str, mode: str, values: FloatArray) -> None:
        self.put(channel(mode)[0], name, values)

    def channel(self, path: str, name: str) -> AnyArray:
        """A bone's values of the channel ``path`` (float32, as stored)."""
        return np.asarray(self._array(path)[self.index[name]])

    def put(self, path: str, name: str, values: Any) -> None:
        """Set a bone's values of the channel ``path`` (written back by :meth:`write`)."""
        self._array(path)[self.index[name]] = values
        self._dirty.add(path)

    def write(self) -> bool:
        """Write the changed channel kinds back; True if any."""
        for path in self._dirty:
            self.obj.pose.bones.foreach_set(path, self._values[path].ravel())
        if self._dirty:
            tag_pose(self.obj)
        return bool(self._dirty)


def tag_pose(obj: Any) -> None:
    """Have Blender evaluate ``obj``'s pose again (its channels were written without a tag, as
    ``foreach_set`` writes them: until tagged, the evaluated bones keep the matrices of the pose
    before, though their channels read the new values).

    The ``DATA`` tag is the one Blender's own pose edits use (an armature object's geometry tag
    is its pose evaluation); what depends on the pose (bone children, deform modifiers, drivers)
    follows from it. A bare ``update_tag()`` also tags the object's transform, shading and
    parameters, which the pose does not change. Either way Blender evaluates the rig again inside
    ``frame_set``, about 0.1 ms on the live benchmark's rigs (``scripts/bench/write_floor.py``:
    the two tags within each other's run-to-run scatter there)."""
    obj.update_tag(refresh={"DATA"})



def put_bone_by_bone(binding: ChainBinding, angles: FloatArray, pose: RigPose) -> bool:
    """:func:`.write.angles_to_channels` bone by bone (other rotation modes, unlimited axes)."""
    changed = False
    for bone, joint, joint_angles in zip(binding.bones, binding.chain.joints, angles, strict=True):
        previous = pose.bone(bone.name, bone.rotation_mode)
        values = angles_to_channels(bone, joint, joint_angles[None], previous)[0]
        if max(abs(a - b) for a, b in zip(values.tolist(), previous.tolist(), strict=True)) < NOOP_TOLERANCE:
            continue
        pose.set(bone.name, bone.rotation_mode, values)
        changed = True
    return changed



def forget() -> None:
    """Drop the kept Euler rows (file load, unregister)."""
    _EULER_ROWS.clear()


__all__ = ["RigPose", "forget", "put_bone_by_bone"]
