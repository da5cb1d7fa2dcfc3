"""What Blender plays after the add-on wrote keys: the tip measured against the target, in world space.

The solver's residual is its own model's answer. What the animator sees is Blender's evaluation of
the keys: after a bake or Key Current Frame, :func:`played_errors` steps the frames with live solving
suspended (the keys alone, as they play with live solving off or after a bake with Disable Live),
and measures the distance from each chain's evaluated tip (its tip bone's tail) to its target's
evaluated location, and the tip bone's rotation against the target's when the chain follows
orientation. A frame counts as converged only when that holds (:func:`played_ok`).

Long bakes are checked on a sample (:data:`VERIFY_LIMIT` evenly spaced frames, first and last
included): stepping frames costs about as much as solving them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np

from ..core import SolverOptions
from ..core.types import BoolArray, FloatArray
from .goals import Goal
from .guard import suspended
from .sampling import goal_matrix

VERIFY_LIMIT = 1000
"""Bakes of more frames are verified on this many evenly spaced frames (first and last included)."""

ORIENTATION_TOLERANCE = SolverOptions().orientation_tolerance
"""Radians: the solver's own threshold for a matched orientation."""

_FLOAT32_EPS = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class PlayedChain:
    """One chain to measure.

    Attributes:
        name: The chain.
        tip_bone: Its last bone (the tip is that bone's tail).
        bones: Number of bones (for the float32 slack).
        target: The target (:class:`.goals.Goal`: the object or bone itself, never looked up by name again).
        tolerance: World units counted as reached.
        orientation: Also compare the tip bone's rotation with the target's.
        goals: Scene frame -> ``(4, 4)`` world matrix the tip is meant to reach there instead of the
            target's: the tip of the pose blended with the bones' own keys (an influence below 1,
            :mod:`.influence`), so a blended frame is measured against what was written.
    """

    name: str
    tip_bone: str
    bones: int
    target: Goal
    tolerance: float
    orientation: bool = False
    goals: dict[float, FloatArray] = field(default_factory=dict)


@dataclass(frozen=True)
class Played:
    """One chain's playback: per verified frame, how far the tip is from the target.

    Attributes:
        frames: ``(V,)`` scene frames verified.
        distance: ``(V,)`` tip-to-target distance, world units.
        angle: ``(V,)`` tip rotation error, radians (0 unless following orientation).
        target: ``(V, 3)`` where the target was, world space.
        ok: ``(V,)`` within tolerance (see :func:`played_ok`).
    """

    frames: FloatArray
    distance: FloatArray
    angle: FloatArray
    target: FloatArray
    ok: BoolArray

    def misses(self) -> FloatArray:
        """The verified frames where playback misses the target."""
        return np.asarray(self.frames[~self.ok])


def verify_frames(frames: FloatArray, limit: int = VERIFY_LIMIT) -> FloatArray:
    """The frames to verify: all of ``frames`` up to ``limit``, else ``limit`` evenly spaced ones."""
    if len(frames) <= limit:
        return np.asarray(frames, dtype=np.float64)
    picks = np.unique(np.round(np.linspace(0, len(frames) - 1, limit)).astype(np.int64))
    return np.asarray(frames[picks], dtype=np.float64)


def slack(chain: PlayedChain, target: FloatArray, reach: float) -> float:
    """World units of float32 rounding to allow on top of the tolerance: Blender stores rotations
    and evaluates poses in float32, a few ulps per bone of the chain's size and the target's place."""
    return 8.0 * _FLOAT32_EPS * (chain.bones + 1) * (reach + float(np.linalg.norm(target)) + 1.0)


def played_errors(scene: Any, obj: Any, chains: Sequence[PlayedChain], frames: FloatArray) -> dict[str, Played]:
    """Step ``frames`` (live solving suspended) and measure each chain's evaluated tip against its
    evaluated target; the scene is put back on the frame it was on (live chains solve it again)."""
    original = (scene.frame_current, scene.frame_subframe)
    count = len(frames)
    distance = {c.name: np.zeros(count) for c in chains}
    angle = {c.name: np.zeros(count) for c in chains}
    where = {c.name: np.zeros((count, 3)) for c in chains}
    reach = {c.name: _reach(obj, c) for c in chains}
    try:
        with suspended():
            for i, frame in enumerate(frames):
                whole = math.floor(float(frame))
                scene.frame_set(int(whole), subframe=float(frame) - whole)
                depsgraph = bpy.context.evaluated_depsgraph_get()
                rig = obj.evaluated_get(depsgraph)
                world = np.array(rig.matrix_world, dtype=np.float64)
                for chain in chains:
                    pbone = rig.pose.bones[chain.tip_bone]
                    tip = world[:3, :3] @ np.array(pbone.tail, dtype=np.float64) + world[:3, 3]
                    target = chain.goals.get(float(frame))
                    if target is None:
                        target = goal_matrix(chain.target, depsgraph)[0]
                    distance[chain.name][i] = float(np.linalg.norm(tip - target[:3, 3]))
                    where[chain.name][i] = target[:3, 3]
                    if chain.orientation:
                        bone_rotation = world[:3, :3] @ np.array(pbone.matrix, dtype=np.float64)[:3, :3]
                        angle[chain.name][i] = _rotation_angle(bone_rotation, target[:3, :3])
    finally:  # outside the suspension: live chains solve the frame again, as it was shown
        scene.frame_set(original[0], subframe=original[1])
    out = {}
    for chain in chains:
        ok = np.array([distance[chain.name][i] <= chain.tolerance + slack(chain, where[chain.name][i],
                                                                          reach[chain.name])
                       for i in range(count)], dtype=bool)
        if chain.orientation:
            ok &= angle[chain.name] <= ORIENTATION_TOLERANCE + 1e-5
        out[chain.name] = Played(np.asarray(frames, dtype=np.float64), distance[chain.name], angle[chain.name],
                                 where[chain.name], ok)
    return out


def _reach(obj: Any, chain: PlayedChain) -> float:
    """Rough size of the chain in world units (its bones' lengths), for :func:`slack`."""
    bone = obj.data.bones.get(chain.tip_bone)
    total = 0.0
    for _ in range(chain.bones):
        if bone is None:
            break
        total += bone.length
        bone = bone.parent
    scale = max(abs(v) for v in obj.matrix_world.to_scale())
    return float(total * scale)


def _rotation_angle(a: FloatArray, b: FloatArray) -> float:
    """Angle of ``a @ b^T`` for two rotation(-and-scale) matrices, scale removed."""
    a = a / np.linalg.norm(a, axis=0)
    b = b / np.linalg.norm(b, axis=0)
    cosine = (float(np.trace(a @ b.T)) - 1.0) / 2.0
    return math.acos(min(1.0, max(-1.0, cosine)))


def diagnose(scene: Any, obj: Any, chain: PlayedChain, frame: float, solved_target: FloatArray | None,
             keyed: dict[str, tuple[str, FloatArray]]) -> str:
    """Why the chain plays off target at ``frame`` although its solve reached it, where it can be told.

    Args:
        solved_target: ``(3,)`` where the target was when the chain was solved for that frame
            (None: not known, not compared).
        keyed: Bone name -> ``(rotation data path, values keyed for that frame)``.
    """
    original = (scene.frame_current, scene.frame_subframe)
    try:
        with suspended():
            whole = math.floor(float(frame))
            scene.frame_set(int(whole), subframe=float(frame) - whole)
            depsgraph = bpy.context.evaluated_depsgraph_get()
            target = goal_matrix(chain.target, depsgraph)[0][:3, 3]
            moved = 0.0 if solved_target is None else float(np.linalg.norm(target - solved_target))
            if moved > chain.tolerance:
                return (f"target {chain.target.label} plays {moved:.3g} away from where it was when the chain was "
                        "solved: it moves with something the keys changed")
            rig = obj.evaluated_get(depsgraph)
            for bone, (path, values) in keyed.items():
                played = np.array(getattr(rig.pose.bones[bone], path), dtype=np.float64)
                if float(np.max(np.abs(played - values))) > 1e-4:
                    shown = ", ".join(f"{v:.4g}" for v in played)
                    wanted = ", ".join(f"{v:.4g}" for v in values)
                    return (f"bone {bone!r} plays {path} ({shown}) where ({wanted}) was keyed: something overrides "
                            "its keys (an NLA track or strip, the action's influence or blending, a driver)")
            movers = [f"{con.type.replace('_', ' ').title()} constraint {con.name!r} on bone {bone!r}"
                      for bone in keyed for con in obj.pose.bones[bone].constraints
                      if not con.mute and con.influence > 0 and con.type != "LIMIT_ROTATION"]
            if movers:
                return f"the bones play as keyed, but {movers[0]} moves them after their keys"
            return "the bones play as keyed, yet the tip is elsewhere: something moves the chain after its keys"
    finally:
        scene.frame_set(original[0], subframe=original[1])
