"""IK Stretch in the adapter: which bones stretch, and the scale channels they are written and keyed.

A chain's Stretch switch (``ChainSpec.use_stretch``) and each bone's own ``ik_stretch`` (Bone
properties > Inverse Kinematics), as Blender's IK constraint reads them: a bone **stretches** when
the switch is on and its ``ik_stretch`` is above 0. The core gives it a length factor
(:mod:`..core.stretch`).

What is written: Blender's IK scales a stretched bone's pose matrix uniformly (measured, see
``scripts/bench/stretch_cases.py``), so a stretching bone's three ``scale`` channels get one value,
its length factor divided by the scale it inherits (:meth:`..core.Chain.channel_scales`). Only
stretching bones' scale channels are written and keyed; every other bone and channel is left alone.
A bone that does not stretch, below one that does, inherits its scale as Blender plays it (Inherit
Scale Full, Fix Shear, Aligned or Average; None is refused): Blender's own IK scales it back to 1,
which would mean writing a bone that does not stretch.

With the switch off (or a bone's ``ik_stretch`` at 0) nothing about scale is written: a scale a
live pass left on a bone stays until cleared (Alt+S), and the chain says so rather than solve with
it (:func:`require_unscaled`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Chain
from ..core.types import FloatArray
from .errors import RigSetupError
from .keys import ensure_fcurve, fcurve_collection, write_channel_keys

PATH = "scale"
"""The pose bone channel a length factor is written to (all three indices, one value)."""

NOOP_SCALE = 1e-6
"""A scale that changes by less is not written (as ``write.NOOP_TOLERANCE`` for rotations)."""

_NOT_INHERITED = ("NONE", "NONE_LEGACY")


def stretches(chain: Chain) -> bool:
    """Whether the chain has a bone that stretches."""
    return chain.n_stretch > 0


def bone_stretch(pbone: Any, use_stretch: bool) -> float:
    """The ``ik_stretch`` a chain bone is read with: its own with the chain's switch on, else 0."""
    return float(pbone.ik_stretch) if use_stretch else 0.0


def require_inherited_scale(pose_bones: list[Any], stretch: list[float]) -> None:
    """Raise :class:`RigSetupError` if a chain bone below a stretching bone does not inherit its
    scale (Inherit Scale None): the keys would play another pose than the one solved."""
    stretched = None
    for pbone, amount in zip(pose_bones, stretch, strict=True):
        if stretched is not None and pbone.bone.inherit_scale in _NOT_INHERITED:
            raise RigSetupError(
                f"bone {pbone.name!r}: Inherit Scale {pbone.bone.inherit_scale.replace('_', ' ').title()!r} below "
                f"the stretching bone {stretched!r} is not supported with Stretch; use Full (or Fix Shear, Aligned, "
                "Average), or set the bones' IK Stretch to 0")
        if amount > 0:
            stretched = pbone.name


def require_unscaled(pbone: Any) -> None:
    """Raise :class:`RigSetupError` for a chain bone that does not stretch and is not the tip, unless
    its pose scale is 1 (what the chain model allows such a bone)."""
    if np.allclose(tuple(pbone.scale), 1.0, atol=1e-6):
        return
    scale = tuple(round(s, 4) for s in pbone.scale)
    uniform = np.allclose(tuple(pbone.scale), pbone.scale[0], atol=1e-6)
    hint = (" (left by Stretch? turn the chain's Stretch back on, or clear the scale with Alt+S)" if uniform
            else "")
    raise RigSetupError(f"bone {pbone.name!r}: pose scale {scale} is not 1; only the chain's tip bone, or a bone "
                        f"that stretches, may be scaled{hint}")


def channel_values(chain: Chain, angles: FloatArray, factors: FloatArray) -> FloatArray:
    """``(F, n)`` each joint's scale channel value for joint angles ``(F, n, 3)`` and length factors
    ``(F, n)`` (``SolveResult.scales``)."""
    return chain.channel_scales(chain.compress(angles, factors))


def stretching_bones(binding: Any) -> list[str]:
    """The names of the binding's stretching bones (none for most chains: a cheap test)."""
    if not binding.chain.n_stretch:
        return []
    return [name for _, name in _stretching(binding)]


def _stretching(binding: Any) -> list[tuple[int, str]]:
    """``(joint index, bone name)`` of the binding's stretching bones."""
    return [(j, bone.name) for j, (bone, joint) in enumerate(zip(binding.bones, binding.chain.joints, strict=True))
            if joint.stretch > 0]


def put_live(pose: Any, binding: Any, solution: Any) -> bool:
    """Put the stretching bones' scale into the live pass's rig pose (``rig_pose.RigPose``); True if
    any changed by :data:`NOOP_SCALE` or more. ``solution``: a ``FrameSolution`` of one frame."""
    if solution.scales is None or not stretches(binding.chain):
        return False
    values = channel_values(binding.chain, solution.angles[:1], solution.scales[:1])[0]
    changed = False
    for j, name in _stretching(binding):
        value = float(values[j])
        current = pose.channel(PATH, name)
        if max(abs(float(v) - value) for v in current) < NOOP_SCALE:
            continue
        pose.put(PATH, name, (value, value, value))
        changed = True
    return changed


def write(obj: Any, binding: Any, angles: FloatArray, factors: FloatArray) -> bool:
    """Write the stretching bones' scale for one pose (angles ``(n, 3)``, factors ``(n,)``); True
    if any changed."""
    if not stretches(binding.chain):
        return False
    values = channel_values(binding.chain, angles[None], factors[None])[0]
    changed = False
    for j, name in _stretching(binding):
        pbone, value = obj.pose.bones[name], float(values[j])
        if max(abs(float(v) - value) for v in pbone.scale) < NOOP_SCALE:
            continue
        pbone.scale = (value, value, value)
        changed = True
    return changed


def key_current(obj: Any, binding: Any, time: float) -> None:
    """Key the stretching bones' scale channels as they stand in the pose, at action time ``time``
    (with :func:`.write.key_pose`, which keys the rotations)."""
    stretching = _stretching(binding)
    if not stretching:
        return
    fcurves = fcurve_collection(obj, create=True)
    for _, name in stretching:
        pbone = obj.pose.bones[name]
        full_path = pbone.path_from_id(PATH)
        for index, value in enumerate(pbone.scale):
            ensure_fcurve(fcurves, full_path, index, name).keyframe_points.insert(time, value)


def key_range(obj: Any, binding: Any, solution: Any, order: Any, keyed_times: FloatArray, start: float,
              end: float) -> dict[str, FloatArray]:
    """Key the stretching bones' scale channels for a bake (the frames in ``order``, keyed at
    ``keyed_times`` ascending, replacing the keys inside ``[start, end]``).

    Returns:
        Bone name -> ``(F, 3)`` values keyed, in scene-frame order.
    """
    stretching = _stretching(binding)
    if not stretching or solution.scales is None:
        return {}
    values = channel_values(binding.chain, solution.angles, solution.scales)
    keyed = {}
    for j, name in stretching:
        column = np.repeat(values[:, j, None], 3, axis=1)
        write_channel_keys(obj, name, PATH, keyed_times, np.ascontiguousarray(column[order]), start, end)
        keyed[name] = column
    return keyed
