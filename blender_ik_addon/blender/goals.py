"""What a chain reaches for and bends toward: an object, or a bone of an armature object.

A chain's target and pole are :class:`Goal` values, as Blender's IK constraint has them: an object
(``bone`` None), or an armature object plus one of its bones (the constraint's *subtarget*). That
armature may be the chain's own: the hand and foot control bones of a production rig.

Conventions, as Blender's constraints read a bone target:

* A bone goal is the bone's evaluated pose matrix in world space, ``matrix_world @ pose_bone.matrix``:
  its rotation (and scale) are the bone's, for Follow Orientation.
* Its location is on the bone's axis, from head (``head_tail`` 0) to tail (1), as a constraint's
  Head/Tail setting places it. A pole bone's is its head.
* Goals are compared by the object itself (``as_pointer()``) plus the bone name, never by the object's
  name alone: a linked library may bring another object of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.types import FloatArray
from .errors import RigSetupError

GoalKey = tuple[int, str | None, float]
"""A goal's identity within a session: (object pointer, bone name or None, head/tail)."""


@dataclass(frozen=True)
class Goal:
    """A chain's target or pole.

    Attributes:
        obj: The object (for a bone goal, the armature object holding the bone).
        bone: The bone's name, or None for the object itself.
        head_tail: Where on the bone: 0 its head, 1 its tail (ignored without a bone).
    """

    obj: Any
    bone: str | None = None
    head_tail: float = 0.0

    @property
    def key(self) -> GoalKey:
        """Identity for dictionaries of sampled matrices and walks (see the module doc)."""
        return (self.obj.as_pointer(), self.bone, self.head_tail if self.bone is not None else 0.0)

    @property
    def label(self) -> str:
        """How messages name it: ``'Target'`` or ``bone 'hand.ik' of 'Rig'``."""
        if self.bone is None:
            return repr(self.obj.name)
        return f"bone {self.bone!r} of {self.obj.name!r}"

    @property
    def name(self) -> str:
        """The object's name: what Blender's depsgraph updates report when the goal moves."""
        return str(self.obj.name)


def bone_goal_matrix(rig_eval: Any, bone: str, head_tail: float = 0.0) -> FloatArray:
    """``(4, 4)`` world matrix of ``bone`` of the evaluated armature ``rig_eval``, its location moved
    from the head toward the tail by ``head_tail``."""
    pose_bone = rig_eval.pose.bones.get(bone)
    if pose_bone is None:
        raise RigSetupError(f"bone {bone!r} is not in armature {rig_eval.name!r} (renamed or deleted?)")
    pose = np.array(pose_bone.matrix, dtype=np.float64)
    if head_tail:
        pose[:3, 3] += head_tail * (np.array(pose_bone.tail, dtype=np.float64) - pose[:3, 3])
    return np.asarray(np.array(rig_eval.matrix_world, dtype=np.float64) @ pose)


__all__ = ["Goal", "GoalKey", "bone_goal_matrix"]
