"""Shared chains (issue 13): Blender's tree IK beside the add-on's shared chains, on the same rigs.

    .venv/bin/python scripts/bench/tree_cases.py [--frames 48] [--passes 5] [--numpy-every 4] [--json OUT]
                                                 [--rigs R,..] [--repo PATH]

Blender solves IK constraints whose chains share bones *and the same root bone* jointly, as one
tree (``iksolver_plugin``: trees are keyed by the root bone). The add-on groups chains that share
bones and solves them together, each with a ``weight`` (Blender's Weight Position). This script
builds three rigs in code (Euler ``XYZ`` bones, limits as the bones' IK settings, a few Limit
Rotation constraints in local space), gives each chain one Blender IK constraint and one add-on
chain (same tip bone, chain length, target Empty and weight; Standard solver, ``use_tail``), and
plays the same frames with each solver alone acting on the same object in the same process (the
other muted or disabled; every frame starts from the rest pose, the bones have no keys):

* ``character``: metarig-like hips and ``spine1..3``, per side a clavicle on ``spine3`` and a T-posed
  arm (upper_arm, forearm, hand). One chain per arm, tip ``forearm`` (the wrist, as Rigify's IK
  limbs end), 5 bones: forearm, upper_arm, clavicle, spine3, spine2, so both arms share the two top
  spine bones (root ``spine2``). Elbows are hinges (y, z IK-locked); Limit Rotation on ``spine3``
  (shared) and on ``forearm.L``, narrower than their IK limits, below the IK constraint in the stack.
* ``legs``: a hips bone, per side thigh, shin, foot; one chain per leg, tip ``shin`` (the ankle),
  3 bones: shin, thigh, hips (shared, the root). Knees are hinges; Limit Rotation on ``hips`` and
  ``shin.L``.
* ``tentacle``: a trunk of 3 bones up +Z splitting into 3 branches of 4 bones each (every bone
  y-locked, x and z ±30°); one chain per branch, 7 bones each, through the whole trunk. Limit
  Rotation on the trunk's top bone and on one branch bone.

Targets (one keyed Empty per chain, a key on every frame): each frame's targets are the tips of a
pose of the rig set by forward kinematics from smooth sinusoids inside every limit (IK limits and
Limit Rotation ranges, Euler ``XYZ``; each multi-axis joint within 60 % of its ranges, so also
inside the ellipse Blender's IK reads two swing limits as; hinges within 10-65 % of theirs), so
every frame's set of targets is jointly reachable within the limits by construction. (As Blender's
IK reads a y lock, the twist of a swing, these poses leave it by up to 1° on the clavicles and 2.3°
on the tentacle: the JSON's ``targets_pose_ik_blender_excess_deg``; the chains have spare degrees of
freedom to reach the same tips without.) Rows "pulled apart" move two of those targets apart along
the line between them until their distance is ``PULL_MARGIN`` beyond the sum of their chains'
reaches from the shared root (so no pose reaches both): what each solver makes of an unreachable
pair (the compromise; one row with unequal weights).

Per case and solver:

* reach: the share of frames where *every* chain's tip (its tip bone's evaluated tail, in world
  space) is within ``REACH_TOLERANCE`` of its target (the Empty's evaluated location);
* worst tip error, and per chain the mean and worst over the frames;
* limit violations, on the final evaluated pose (what the user sees and renders, whatever the stack
  order): every chain bone's evaluated local rotation (its pose matrix relative to its parent's pose
  and its rest offset, i.e. what its rotation channels would have to hold) against the limits as
  authored, read four ways: (1) *IK ranges*, the bone's IK limits on its Euler ``XYZ`` angles (the
  add-on's reading, and what the channels show); (2) *IK locks*, the Euler angles of IK-locked axes;
  (3) *Blender's reading* of the IK limits and locks (:func:`blender_excess`: a hinge's angle, a
  swing-twist split with elliptic swing limits); (4) *Limit Rotation*, each constraint's ranges on
  the Euler angles (the constraint's own reading). A cell gives the frames with a bone outside by
  more than ``VIOLATION_TOLERANCE_DEG``, the worst excess in degrees and where. Limit Rotation does
  not clamp Blender's IK result, not even on the tip bone below the IK constraint (measured on
  Blender 5.0.1: a 2-bone chain, the elbow at 84.6° against a Limit Rotation of ±20° on it, above or
  below the IK constraint alike; the solver applies its rotation on top of the bones' evaluated
  constraints);
* pops: per-frame step = the largest rotation of any chain bone between consecutive frames (on
  rotation matrices); a pop is a step above ``POP_RATIO`` x the case's median step and above
  ``POP_FLOOR_DEG`` (``scripts/bench/motion.py``'s rule); beside the largest step, in brackets, the
  largest step of the pose the targets were made from;
* ms per frame: the median time of ``scene.frame_set`` with that solver acting minus the same with
  neither, ``--passes`` interleaved passes over the frames (as ``scripts/bench/addon.py`` measures
  the live overhead). "ours (numpy)": the same for ours with ``IK_CHAINS_NUMBA=0`` (the add-on's
  numpy solvers; set in-process around that timing), on every ``--numpy-every``-th frame only (it
  is slow; live solving starts each frame afresh, so a subset costs what it costs in a row), against
  the same frames with neither solver. The second table gives the ratios to Blender.

Two more rows per case measure the add-on's bake (``bake_chains(obj, None, 1, frames,
disable_live=True, continuous=...)``, Blender's IK muted, the keys written on the chain bones, then
played back frame by frame with live solving off, the same figures read on what Blender plays):
"baked (per frame)" (``continuous=False``: each frame's nearest pose, what live solving shows) and
"baked (Continuous)" (each frame from the previous one's pose). Their ms per frame is the bake's
wall time (``BakeReport.seconds``) / frames. The second table also gives each bake's
``BakeReport.switches`` (frames where a chain's baked pose jumps although its target glides) beside
live solving's pops. The keys are removed after each bake.

While the add-on refuses chains that share bones, its rows say ``error`` and each chain's status
message is printed under the table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

REPO = Path(__file__).resolve().parents[2]
REACH_TOLERANCE = 1e-3
"""A tip counts as on its target within this distance (world units; the character is ~1.6 tall)."""
VIOLATION_TOLERANCE_DEG = 0.01
"""A rotation outside a range by more than this counts as a violation (float32 noise is ~1e-4°)."""
PULL_MARGIN = 0.1
"""Pulled-apart targets: their distance exceeds the sum of their chains' reaches by this much."""
MULTI_AXIS_SHARE = 0.6  # targets' pose: a joint with several free axes stays within this share of each range
HINGE_SPAN = (0.1, 0.65)  # ... a hinge (one free axis) between these fractions of its range
AXES = "xyz"
FORWARD, BACK, UP = (0.0, -1.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)

Vector = tuple[float, float, float]
Range = tuple[float, float]  # (min, max): degrees in the rig specs, radians when read from Blender


# -- rigs -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bone:
    """One bone: rest head and tail (armature space), roll reference, parent, IK locks and limits
    (``{"x": (min, max)}`` degrees), Limit Rotation ranges (empty: no constraint)."""

    name: str
    head: Vector
    tail: Vector
    z_axis: Vector
    parent: str | None = None
    connect: bool = False
    locks: str = ""
    limits: dict[str, Range] = field(default_factory=dict)
    limit_rotation: dict[str, Range] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """One row pair of the table: a rig, its chains ``(tip, length)``, their weights, and which two
    chains' targets are pulled apart (None: the reachable targets)."""

    name: str
    rig: str
    chains: tuple[tuple[str, int], ...]
    weights: tuple[float, ...]
    pulled: tuple[int, int] | None = None


def _add(a: Sequence[float], b: Sequence[float], scale: float = 1.0) -> Vector:
    return (float(a[0] + scale * b[0]), float(a[1] + scale * b[1]), float(a[2] + scale * b[2]))


def character_bones() -> list[Bone]:
    """Hips, spine1..3 (a slight S curve, as Blender's metarig), clavicles, T-posed arms."""
    spine = {"x": (-30.0, 45.0), "y": (-20.0, 20.0), "z": (-25.0, 25.0)}
    bones = [Bone("hips", (0.0, 0.0, 0.95), (0.0, 0.0, 1.05), FORWARD, limits=spine)]
    joints = [(0.0, 0.0, 1.05), (0.0, 0.02, 1.20), (0.0, 0.025, 1.35), (0.0, 0.0, 1.50)]
    parent = "hips"
    for i in (1, 2, 3):
        lr = {"x": (-20.0, 30.0), "y": (-10.0, 10.0), "z": (-15.0, 15.0)} if i == 3 else {}
        bones.append(Bone(f"spine{i}", joints[i - 1], joints[i], FORWARD, parent, True, limits=spine,
                          limit_rotation=lr))
        parent = f"spine{i}"
    for suffix, side in ((".L", 1.0), (".R", -1.0)):
        shoulder = (side * 0.18, 0.0, 1.45)
        bones.append(Bone(f"clavicle{suffix}", (side * 0.03, -0.03, 1.46), shoulder, FORWARD, "spine3",
                          locks="y", limits={"x": (-20.0, 20.0), "z": (-20.0, 20.0)}))
        elbow = _add(shoulder, (side * 0.30, 0.0, 0.0))
        bent = (side * math.cos(math.radians(10.0)), -math.sin(math.radians(10.0)), 0.0)  # elbow bent 10° at rest
        wrist = _add(elbow, bent, 0.27)
        # Local X is +-Z world: z > 0 raises the left arm and lowers the right one.
        raise_z = (-90.0, 30.0) if side > 0 else (-30.0, 90.0)
        bones += [
            Bone(f"upper_arm{suffix}", shoulder, elbow, FORWARD, f"clavicle{suffix}", True,
                 limits={"x": (-90.0, 90.0), "y": (-60.0, 60.0), "z": raise_z}),
            Bone(f"forearm{suffix}", elbow, wrist, FORWARD, f"upper_arm{suffix}", True, locks="yz",
                 limits={"x": (0.0, 150.0)}, limit_rotation={"x": (0.0, 120.0)} if side > 0 else {}),
            Bone(f"hand{suffix}", wrist, _add(wrist, bent, 0.08), FORWARD, f"forearm{suffix}", True),
        ]
    return bones


def legs_bones() -> list[Bone]:
    """A hips bone (the root; turning it moves both hip joints) and per side thigh, shin, foot."""
    bones = [Bone("hips", (0.0, 0.0, 0.95), (0.0, 0.0, 1.05), FORWARD,
                  limits={"x": (-25.0, 25.0), "y": (-25.0, 25.0), "z": (-20.0, 20.0)},
                  limit_rotation={"z": (-10.0, 10.0)})]
    for suffix, side in ((".L", 1.0), (".R", -1.0)):
        # Local X is +X world (Y down, Z back): x > 0 bends the knee backwards; z > 0 swings toward -X.
        outward = (-40.0, 15.0) if side > 0 else (-15.0, 40.0)
        hip, knee, ankle = (side * 0.1, 0.0, 0.95), (side * 0.1, -0.02, 0.52), (side * 0.1, 0.0, 0.10)
        bones += [
            Bone(f"thigh{suffix}", hip, knee, BACK, "hips", limits={"x": (-100.0, 30.0), "y": (-30.0, 30.0),
                                                                    "z": outward}),
            Bone(f"shin{suffix}", knee, ankle, BACK, f"thigh{suffix}", True, locks="yz", limits={"x": (0.0, 150.0)},
                 limit_rotation={"x": (0.0, 130.0)} if side > 0 else {}),
            Bone(f"foot{suffix}", ankle, (side * 0.1, -0.14, 0.03), UP, f"shin{suffix}", True),
        ]
    return bones


TRUNK, BRANCHES, BRANCH_BONES = 3, 3, 4
TRUNK_LENGTH, BRANCH_LENGTH, BRANCH_TILT = 0.2, 0.15, math.radians(35.0)


def tentacle_bones() -> list[Bone]:
    """A trunk ``t0..t2`` up +Z, then 3 branches ``b{k}_0..b{k}_3`` tilted 35° outward, 120° apart;
    every bone y-locked, x and z within ±30°."""
    free = {"x": (-30.0, 30.0), "z": (-30.0, 30.0)}
    bones, parent = [], None
    for i in range(TRUNK):
        name = f"t{i}"
        bones.append(Bone(name, (0.0, 0.0, i * TRUNK_LENGTH), (0.0, 0.0, (i + 1) * TRUNK_LENGTH), FORWARD, parent,
                          parent is not None, "y", free,
                          {"x": (-15.0, 15.0), "z": (-15.0, 15.0)} if i == TRUNK - 1 else {}))
        parent = name
    top = (0.0, 0.0, TRUNK * TRUNK_LENGTH)
    for k in range(BRANCHES):
        turn = 2.0 * math.pi * k / BRANCHES
        direction = (math.sin(BRANCH_TILT) * math.cos(turn), math.sin(BRANCH_TILT) * math.sin(turn),
                     math.cos(BRANCH_TILT))
        roll = (-math.sin(turn), math.cos(turn), 0.0)  # perpendicular to the branch
        previous = f"t{TRUNK - 1}"
        for i in range(BRANCH_BONES):
            name = f"b{k}_{i}"
            head, tail = _add(top, direction, i * BRANCH_LENGTH), _add(top, direction, (i + 1) * BRANCH_LENGTH)
            bones.append(Bone(name, head, tail, roll, previous, True, "y", free,
                              {"x": (-20.0, 20.0)} if (k, i) == (0, 1) else {}))
            previous = name
    return bones


RIGS: dict[str, Callable[[], list[Bone]]] = {"character": character_bones, "legs": legs_bones,
                                              "tentacle": tentacle_bones}
ARMS = (("forearm.L", 5), ("forearm.R", 5))
LEGS = (("shin.L", 3), ("shin.R", 3))
TENTACLES = tuple((f"b{k}_{BRANCH_BONES - 1}", BRANCH_BONES + TRUNK) for k in range(BRANCHES))
CASES = (
    Case("character", "character", ARMS, (1.0, 1.0)),
    Case("character, hands pulled apart", "character", ARMS, (1.0, 1.0), (0, 1)),
    Case("legs", "legs", LEGS, (1.0, 1.0)),
    Case("legs, feet pulled apart", "legs", LEGS, (1.0, 1.0), (0, 1)),
    Case("legs, feet pulled apart, weights 1 / 0.2", "legs", LEGS, (1.0, 0.2), (0, 1)),
    Case("tentacle", "tentacle", TENTACLES, (1.0, 1.0, 1.0)),
    Case("tentacle, two tips pulled apart", "tentacle", TENTACLES, (1.0, 1.0, 1.0), (0, 1)),
)


# -- building -------------------------------------------------------------------------------------
def add_limit_rotations(obj: Any, bones: list[Bone]) -> None:
    """A Limit Rotation constraint (local space, the bone's Euler order) per bone that has ranges
    (:func:`run_case` moves the IK constraint of a tip bone above it)."""
    for spec in bones:
        if not spec.limit_rotation:
            continue
        con = obj.pose.bones[spec.name].constraints.new("LIMIT_ROTATION")
        con.name, con.owner_space = "bench_limit", "LOCAL"
        for axis, (low, high) in spec.limit_rotation.items():
            setattr(con, f"use_limit_{axis}", True)
            setattr(con, f"min_{axis}", math.radians(low))
            setattr(con, f"max_{axis}", math.radians(high))


def chain_bones(obj: Any, tip: str, length: int) -> list[str]:
    """The chain's bones, root first."""
    names, bone = [], obj.data.bones[tip]
    for _ in range(length):
        names.append(bone.name)
        bone = bone.parent
    return names[::-1]


def chain_reach(obj: Any, tip: str, length: int) -> float:
    """An upper bound of the tip's distance from the chain root's head: the rest distances from
    head to head down the chain, and the tip bone's length."""
    bones = [obj.data.bones[name] for name in chain_bones(obj, tip, length)]
    heads = [np.array(b.head_local) for b in bones] + [np.array(bones[-1].tail_local)]
    return float(sum(np.linalg.norm(b - a) for a, b in itertools.pairwise(heads)))


def pose_ranges(obj: Any, names: Sequence[str]) -> dict[str, dict[str, Range]]:
    """Per bone, per free axis: the range (degrees) the targets' pose stays in (see the module doc)."""
    out: dict[str, dict[str, Range]] = {}
    for name in names:
        pbone = obj.pose.bones[name]
        full: dict[str, Range] = {}
        for axis in AXES:
            if getattr(pbone, f"lock_ik_{axis}"):
                continue
            low, high = (-30.0, 30.0)
            if getattr(pbone, f"use_ik_limit_{axis}"):
                low = math.degrees(getattr(pbone, f"ik_min_{axis}"))
                high = math.degrees(getattr(pbone, f"ik_max_{axis}"))
            for con in pbone.constraints:
                if con.type == "LIMIT_ROTATION" and getattr(con, f"use_limit_{axis}"):
                    low = max(low, math.degrees(getattr(con, f"min_{axis}")))
                    high = min(high, math.degrees(getattr(con, f"max_{axis}")))
            full[axis] = (low, high)
        if len(full) == 1:
            ((axis, (low, high)),) = full.items()
            out[name] = {axis: (low + HINGE_SPAN[0] * (high - low), low + HINGE_SPAN[1] * (high - low))}
        else:
            if not all(low <= 0.0 <= high for low, high in full.values()):
                raise ValueError(f"bone {name!r}: a range without the rest angle; the targets' pose needs one")
            out[name] = {axis: (MULTI_AXIS_SHARE * low, MULTI_AXIS_SHARE * high) for axis, (low, high) in full.items()}
    return out


def pose_at(ranges: dict[str, dict[str, Range]], frame: int, frames: int) -> dict[str, Vector]:
    """Euler angles (radians) per bone at ``frame``: each free axis sweeps its range once per
    ``frames`` frames (plus a smaller second harmonic), phases spread over bones and axes."""
    out = {}
    turn = 2.0 * math.pi * (frame - 1) / frames
    for i, (name, axes) in enumerate(ranges.items()):
        angles = [0.0, 0.0, 0.0]
        for axis, (low, high) in axes.items():
            k = AXES.index(axis)
            phase = 1.3 * i + 2.1 * k
            share = 0.5 + 0.35 * math.sin(turn + phase) + 0.15 * math.sin(2.0 * turn + 0.7 * phase)
            angles[k] = math.radians(low + share * (high - low))
        out[name] = (angles[0], angles[1], angles[2])
    return out


def pull_apart(targets: FloatArray, first: int, second: int, distance: float) -> FloatArray:
    """``targets`` ``(F, chains, 3)`` with chains ``first`` and ``second`` moved apart along their
    line (each by half) until they are ``distance`` apart."""
    out = targets.copy()
    for frame in range(len(out)):
        gap = out[frame, second] - out[frame, first]
        length = float(np.linalg.norm(gap))
        if length >= distance:
            continue
        unit = gap / length
        out[frame, first] -= unit * (distance - length) / 2.0
        out[frame, second] += unit * (distance - length) / 2.0
    return out


def add_target(bpy: Any, name: str, path: FloatArray) -> Any:
    """An Empty keyed at ``path[f - 1]`` on every frame ``f``."""
    obj = bpy.data.objects.new(name, None)
    obj.empty_display_size = 0.05
    bpy.context.scene.collection.objects.link(obj)
    for frame, location in enumerate(path, start=1):
        obj.location = location.tolist()
        obj.keyframe_insert("location", frame=frame)
    return obj


# -- reading the evaluated rig ----------------------------------------------------------------------
@dataclass
class Reader:
    """Reads the evaluated pose of the group's bones: local rotations, tips, limit ranges."""

    obj: Any
    bones: list[str]
    tips: list[str]
    rest: dict[str, Any] = field(default_factory=dict)  # bone -> parent-relative rest matrix (mathutils)
    ik_ranges: dict[str, dict[str, Range]] = field(default_factory=dict)  # radians
    lr_ranges: dict[str, dict[str, Range]] = field(default_factory=dict)
    locks: dict[str, list[str]] = field(default_factory=dict)  # bone -> IK-locked axes

    def __post_init__(self) -> None:
        for name in self.bones:
            bone, pbone = self.obj.data.bones[name], self.obj.pose.bones[name]
            parent = bone.parent
            self.rest[name] = (bone.matrix_local if parent is None
                               else parent.matrix_local.inverted() @ bone.matrix_local)
            ik: dict[str, Range] = {}
            lr: dict[str, Range] = {}
            for axis in AXES:
                if getattr(pbone, f"lock_ik_{axis}"):
                    self.locks.setdefault(name, []).append(axis)
                elif getattr(pbone, f"use_ik_limit_{axis}"):
                    ik[axis] = (getattr(pbone, f"ik_min_{axis}"), getattr(pbone, f"ik_max_{axis}"))
                for con in pbone.constraints:
                    if con.type == "LIMIT_ROTATION" and getattr(con, f"use_limit_{axis}"):
                        lr[axis] = (getattr(con, f"min_{axis}"), getattr(con, f"max_{axis}"))
            self.ik_ranges[name], self.lr_ranges[name] = ik, lr

    def read(self, bpy: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(tips (chains, 3), local rotations (bones, 3, 3), Euler XYZ (bones, 3))`` of the evaluated rig
        (local: relative to the parent's pose and the bone's rest offset, what its channels would hold)."""
        depsgraph = bpy.context.evaluated_depsgraph_get()
        rig = self.obj.evaluated_get(depsgraph)
        world = rig.matrix_world
        tips = np.array([np.array(world @ rig.pose.bones[tip].tail) for tip in self.tips])
        rotations, eulers = [], []
        for name in self.bones:
            pbone = rig.pose.bones[name]
            matrix = pbone.matrix if pbone.parent is None else pbone.parent.matrix.inverted() @ pbone.matrix
            basis = (self.rest[name].inverted() @ matrix).to_3x3().normalized()
            rotations.append(np.array(basis))
            eulers.append(np.array(basis.to_euler("XYZ")))
        return tips, np.array(rotations), np.array(eulers)

    def violations(self, rotations: FloatArray, eulers: FloatArray) -> dict[str, FloatArray]:
        """Per kind, ``(bones, 3)`` the excess of each axis over its range, degrees (0 inside):

        * ``ik_range``: the IK limits of the free axes, on the Euler ``XYZ`` angles (the add-on's
          reading, and what the rotation channels show);
        * ``ik_lock``: the IK-locked axes' Euler ``XYZ`` angles (their range is 0);
        * ``ik_blender``: the IK limits and locks as Blender's IK reads them (:func:`blender_excess`);
        * ``limit_rotation``: the Limit Rotation ranges, on the Euler ``XYZ`` angles (the
          constraint's own reading).
        """
        out = {kind: np.zeros((len(self.bones), 3)) for kind in ("ik_range", "ik_lock", "ik_blender", "limit_rotation")}
        for b, name in enumerate(self.bones):
            for kind, ranges in (("ik_range", self.ik_ranges[name]), ("limit_rotation", self.lr_ranges[name])):
                for axis, (low, high) in ranges.items():
                    value = eulers[b, AXES.index(axis)]
                    out[kind][b, AXES.index(axis)] = max(0.0, low - value, value - high)
            for axis in self.locks.get(name, []):
                out["ik_lock"][b, AXES.index(axis)] = abs(eulers[b, AXES.index(axis)])
            out["ik_blender"][b] = blender_excess(rotations[b], self.locks.get(name, []), self.ik_ranges[name])
        return {kind: np.degrees(values) for kind, values in out.items()}


def _twist(m: FloatArray) -> float:
    """The twist about Y of the swing-twist split ``m = swing @ twist`` (Blender's ``ComputeTwist``)."""
    return 2.0 * math.atan2(m[0, 2] - m[2, 0], m[0, 0] + m[1, 1] + m[2, 2] + 1.0)


def _outside(value: float, low: float, high: float) -> float:
    return max(0.0, low - value, value - high)


BLENDER_PARTS = ("swing", "twist", "off-axis")
"""The parts of :func:`blender_excess`'s answer (a revolute joint's angle counts as its swing)."""


def blender_excess(m: FloatArray, locks: Sequence[str], limits: dict[str, Range]) -> FloatArray:
    """``(3,)`` radians, :data:`BLENDER_PARTS`: how far rotation ``m`` lies outside the IK limits and
    locks as Blender's IK (``intern/iksolver``, ``IK_QSegment.cpp``) models the joint, by its free axes:

    * one free axis (x or z), a revolute joint: the angle about it (read as Blender reads it) beyond
      its range ("swing"), and the rotation off that axis ("off-axis": the locks);
    * x and z free (y locked), a swing joint; or all three free: the swing-twist split ``m =
      swing @ twist(y)``. The twist must be 0 (y locked) or inside the y range ("twist"); the swing
      must lie inside the quarter-ellipses through the x and z limits in Blender's ``sin(angle / 2)``
      parameters (``EllipseClamp``; one limited axis: its interval); "swing" is the swing angle
      beyond that, along the swing's direction.

    Other joints (an elbow segment: y free with x or z) are not modelled (zeros).
    """
    free = [axis for axis in AXES if axis not in locks]
    out = np.zeros(3)
    if len(free) == 1 and free[0] != "y":
        x_axis = free[0] == "x"
        angle = math.atan2(m[2, 1], m[1, 1]) if x_axis else math.atan2(m[1, 0], m[0, 0])
        c, s = math.cos(angle), math.sin(angle)
        about = np.array([[1, 0, 0], [0, c, -s], [0, s, c]]) if x_axis else np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        if free[0] in limits:
            out[0] = _outside(angle, *limits[free[0]])
        out[2] = float(rotation_angles(about.T @ m))
        return out
    if free not in (["x", "z"], ["x", "y", "z"]):
        return out
    tau = _twist(m)
    out[1] = abs(tau) if "y" in locks else (_outside(tau, *limits["y"]) if "y" in limits else 0.0)
    num = 2.0 * (1.0 + m[1, 1])
    if num < 1e-12:
        return out
    ax, az = -m[2, 1] / math.sqrt(num), m[0, 1] / math.sqrt(num)  # sin(swing / 2) x the swing axis' x, z
    # Blender's parameters of a limit: min = -sin(max / 2), max = -sin(min / 2).
    interval = {axis: (-math.sin(limits[axis][1] / 2.0), -math.sin(limits[axis][0] / 2.0))
                for axis in ("x", "z") if axis in limits}
    cx, cz = ax, az
    if len(interval) == 2:
        # EllipseClamp: per quadrant, the ellipse through the limits on that side, clamped along the ray.
        xlim = -interval["x"][0] if ax < 0.0 else interval["x"][1]
        zlim = -interval["z"][0] if az < 0.0 else interval["z"][1]
        if xlim < 1e-12 or zlim < 1e-12:
            cx = math.copysign(min(abs(ax), max(xlim, 0.0)), ax)
            cz = math.copysign(min(abs(az), max(zlim, 0.0)), az)
        else:
            scale = math.hypot(ax / xlim, az / zlim)
            if scale > 1.0:
                cx, cz = ax / scale, az / scale
    elif "x" in interval:
        cx = min(max(ax, interval["x"][0]), interval["x"][1])
    elif "z" in interval:
        cz = min(max(az, interval["z"][0]), interval["z"][1])
    swing = 2.0 * math.asin(min(1.0, math.hypot(ax, az)))
    out[0] = max(0.0, swing - 2.0 * math.asin(min(1.0, math.hypot(cx, cz))))
    return out


def rotation_angles(m: FloatArray) -> FloatArray:
    """The rotation angle of each rotation matrix ``(..., 3, 3)``, radians (``atan2`` of the sine and
    cosine parts: accurate near 0 too, where ``arccos`` of the trace turns float32 noise into 0.02°)."""
    sine = 0.5 * np.linalg.norm(np.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                                          m[..., 1, 0] - m[..., 0, 1]], axis=-1), axis=-1)
    return np.asarray(np.arctan2(sine, 0.5 * (np.trace(m, axis1=-2, axis2=-1) - 1.0)))


def steps_deg(rotations: FloatArray) -> FloatArray:
    """``(F - 1,)`` the largest rotation of any bone between consecutive frames of ``(F, bones, 3, 3)``."""
    relative = np.einsum("fbji,fbjk->fbik", rotations[:-1], rotations[1:])  # previous^T @ next
    return np.asarray(np.degrees(rotation_angles(relative)).max(axis=1))


def step_bones(rotations: FloatArray) -> list[int]:
    """Per step of :func:`steps_deg`, the index of the bone that rotates most."""
    relative = np.einsum("fbji,fbjk->fbik", rotations[:-1], rotations[1:])
    return [int(b) for b in np.argmax(rotation_angles(relative), axis=1)]


# -- one case -------------------------------------------------------------------------------------
NUMPY = "ours (numpy)"
BAKED_NEAREST = "baked"  # bake_chains(continuous=False): each frame solved on its own
BAKED = "baked_continuous"  # bake_chains(continuous=True)
SOLVER_LABELS = {"blender": "Blender tree IK", "ours": "ours", BAKED: "ours, baked (Continuous)",
                 BAKED_NEAREST: "ours, baked (per frame)"}


def run_case(bpy: Any, bench: Any, case: Case, frames: int, passes: int, numpy_every: int) -> dict[str, Any]:
    """Build ``case`` in an empty file, then measure both solvers on it (ours live, and baked)."""
    from bench.addon import numpy_backend  # IK_CHAINS_NUMBA=0 meanwhile
    from blender_ik_addon.blender import bake_chains, get_status

    live_rigs, motion = bench
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, frames
    specs = RIGS[case.rig]()
    obj = live_rigs.build_armature(bpy, case.rig, specs)
    add_limit_rotations(obj, specs)  # before the targets' pose is made: it stays inside their ranges
    tips = [tip for tip, _ in case.chains]
    group = list(dict.fromkeys(name for tip, length in case.chains for name in chain_bones(obj, tip, length)))
    reader = Reader(obj, group, tips)

    # The targets: the tips of a smooth pose inside every limit, frame by frame.
    ranges = pose_ranges(obj, group)
    made, made_rotations, made_blender = [], [], 0.0
    for frame in range(1, frames + 1):
        for name, angles in pose_at(ranges, frame, frames).items():
            obj.pose.bones[name].rotation_euler = angles
        bpy.context.view_layer.update()
        tips_now, rotations, eulers = reader.read(bpy)
        made.append(tips_now)
        made_rotations.append(rotations)
        excess = reader.violations(rotations, eulers)
        worst = max(float(excess[kind].max()) for kind in ("ik_range", "ik_lock", "limit_rotation"))
        if worst > VIOLATION_TOLERANCE_DEG:
            raise RuntimeError(f"{case.name}: the targets' pose leaves a limit by {worst:.3g}° at frame {frame}")
        made_blender = max(made_blender, float(excess["ik_blender"].max()))
    for pbone in obj.pose.bones:
        pbone.rotation_euler = (0.0, 0.0, 0.0)
    targets = np.array(made)
    info: dict[str, Any] = {"reachable": case.pulled is None}
    if case.pulled is not None:
        first, second = case.pulled
        reaches = [chain_reach(obj, *case.chains[i]) for i in (first, second)]
        distance = sum(reaches) + PULL_MARGIN
        targets = pull_apart(targets, first, second, distance)
        info.update({"pulled": [tips[first], tips[second]], "reaches": reaches, "distance": distance})

    # Both solvers on the same object: an add-on chain and a Blender IK constraint per chain.
    chains = []
    for c, tip in enumerate(tips):
        target = add_target(bpy, f"target_{tip}", targets[:, c])
        chains.append(live_rigs.LiveChain(obj.name, tip, case.chains[c][1], target.name))
    live_rigs.add_ours(bpy, chains)
    live_rigs.add_blender_ik(bpy, chains)
    notes = []
    for chain, weight in zip(chains, case.weights, strict=True):
        obj.pose.bones[chain.tip].constraints["bench_ik"].weight = weight
        item = obj.ik_chains.chains[chain.tip]
        if hasattr(item, "weight"):
            item.weight = weight
        elif weight != 1.0:
            notes.append(f"chain {chain.tip!r}: this add-on has no chain weight (wanted {weight:g})")
    for chain in chains:  # each IK constraint to the top: a Limit Rotation on its bone below it, meant to clamp it
        constraints = obj.pose.bones[chain.tip].constraints
        constraints.move(constraints.find("bench_ik"), 0)
    live_rigs.use(bpy, chains, "none")

    def play(check: bool) -> dict[str, Any]:
        """Play frames 1..``frames`` as set up now and read what Blender shows; ``check``: collect
        the add-on chains' error statuses (live solving)."""
        scene.frame_set(0)
        tips_seen, rotations_seen, eulers_seen = [], [], []
        errors: dict[str, str] = {}
        for frame in range(1, frames + 1):
            scene.frame_set(frame)
            bpy.context.view_layer.update()
            tips_now, rotations, eulers = reader.read(bpy)
            tips_seen.append(tips_now)
            rotations_seen.append(rotations)
            eulers_seen.append(eulers)
            for chain in chains if check else ():
                status = get_status(obj.name, chain.tip)
                if status is None:
                    errors.setdefault(chain.tip, f"no status (the chain was not solved), frame {frame}")
                elif not status.solved:
                    errors.setdefault(chain.tip, f"frame {frame}: {status.message}")
        out = _figures(reader, motion, targets, np.array(tips_seen), np.array(rotations_seen), np.array(eulers_seen))
        out["errors"] = errors
        return out

    solvers: dict[str, Any] = {}
    for solver in ("blender", "ours"):
        live_rigs.use(bpy, chains, solver)
        solvers[solver] = play(solver == "ours")
    live_rigs.use(bpy, chains, "none")

    # Timing: interleaved passes; "ours (numpy)" is ours with IK_CHAINS_NUMBA=0 (read at every solve),
    # over every ``numpy_every``-th frame only (1, 1 + numpy_every, ...; see --numpy-every: live
    # solving starts each frame afresh, so a subset of the frames costs what they cost in a row).
    seconds: dict[str, list[float]] = {"none": [], "blender": [], "ours": [], NUMPY: []}
    numpy_frames = range(1, frames + 1, numpy_every)
    for _ in range(passes):
        for timed in seconds:
            live_rigs.use(bpy, chains, "ours" if timed == NUMPY else timed)
            with numpy_backend() if timed == NUMPY else nullcontext():
                scene.frame_set(0)  # untimed: the first timed frame moves the targets too
                for frame in numpy_frames if timed == NUMPY else range(1, frames + 1):
                    began = time.perf_counter()
                    scene.frame_set(frame)
                    seconds[timed].append(time.perf_counter() - began)
    live_rigs.use(bpy, chains, "none")
    ms = {timed: 1e3 * statistics.median(values) for timed, values in seconds.items()}
    none_same = 1e3 * statistics.median([value for k, value in enumerate(seconds["none"])
                                         if k % frames % numpy_every == 0])
    for solver in ("blender", "ours"):
        solvers[solver]["ms_per_frame"] = ms[solver] - ms["none"]
    numpy_ms = ms[NUMPY] - none_same  # against the same frames with neither solver

    # Baked: Blender's IK muted, the add-on's chains baked to keys (live off), the keys played back;
    # first each frame on its own (the pose live solving picks), then Continuous.
    for solver, continuous in ((BAKED_NEAREST, False), (BAKED, True)):
        live_rigs.use(bpy, chains, "none")
        report = bake_chains(obj, None, 1, frames, disable_live=True, continuous=continuous)
        if any(obj.ik_chains.chains[chain.tip].enabled for chain in chains):
            raise RuntimeError(f"{case.name}: a chain still solves live after bake_chains(disable_live=True)")
        solvers[solver] = play(False)
        solvers[solver]["ms_per_frame"] = 1e3 * report.seconds / frames
        solvers[solver]["bake"] = {
            "seconds": report.seconds, "frames": report.frames, "not_converged": report.not_converged,
            "worst_error": report.worst_error, "path": report.path, "switches": report.switches,
            "switch_frames": {c.name: list(c.findings.switches) if c.findings else [] for c in report.chains},
            "summary": report.summary()}
        obj.animation_data_clear()  # the bones had no keys before: the next bake (and case) starts clean
        live_rigs.use(bpy, chains, "none")
    made_steps = steps_deg(np.array(made_rotations))
    return {"case": case.name, "rig": case.rig, "chains": [{"tip": c.tip, "length": c.length, "weight": w}
                                                           for c, w in zip(chains, case.weights, strict=True)],
            "bones": group, "targets": info, "targets_pose_max_step_deg": float(made_steps.max()),
            "targets_max_move": np.linalg.norm(np.diff(targets, axis=0), axis=2).max(axis=1).tolist(),
            "targets_pose_ik_blender_excess_deg": made_blender,
            "ms_none": ms["none"], "ours_numpy_ms_per_frame": numpy_ms,
            "ours_numpy_frames_per_pass": len(numpy_frames), "notes": notes, "solvers": solvers}


def _figures(reader: Reader, motion: Any, targets: FloatArray, tips: FloatArray, rotations: FloatArray,
             eulers: FloatArray) -> dict[str, Any]:
    error = np.linalg.norm(tips - targets, axis=2)  # (F, chains)
    reached = (error <= REACH_TOLERANCE).all(axis=1)
    steps = steps_deg(rotations)
    median = float(np.median(steps))
    pops = np.flatnonzero((steps > motion.POP_RATIO * median) & (steps > motion.POP_FLOOR_DEG)) + 1
    out: dict[str, Any] = {
        "reach_rate": float(reached.mean()),
        "missed_frames": (np.flatnonzero(~reached) + 1).tolist(),
        "max_error": float(error.max()),
        "tip_errors": error.tolist(),  # per frame, per chain
        "max_error_per_chain": {tip: float(error[:, c].max()) for c, tip in enumerate(reader.tips)},
        "mean_error_per_chain": {tip: float(error[:, c].mean()) for c, tip in enumerate(reader.tips)},
        "max_step_deg": float(steps.max()),
        "median_step_deg": median,
        "pops": len(pops),
        "pop_frames": (pops + 1).tolist(),  # scene frames popped into (frame 1 is index 0)
        "steps_deg": steps.tolist(),  # step into frame 2, 3, ...
        "step_bones": [reader.bones[b] for b in step_bones(rotations)],  # the bone making each step
    }
    excess = [reader.violations(r, e) for r, e in zip(rotations, eulers, strict=True)]
    for kind in ("ik_range", "ik_lock", "ik_blender", "limit_rotation"):
        parts = BLENDER_PARTS if kind == "ik_blender" else AXES
        per = np.array([e[kind] for e in excess])  # (F, bones, 3)
        outside = per > VIOLATION_TOLERANCE_DEG
        worst = np.unravel_index(int(np.argmax(per)), per.shape)
        out[f"{kind}_violation"] = {
            "frames": int(outside.any(axis=(1, 2)).sum()),
            "bone_frames": int(outside.any(axis=2).sum()),
            "max_deg": float(per.max()),
            "worst": f"{reader.bones[worst[1]]} {parts[worst[2]]}" if outside.any() else None,
            "by_bone_axis_max_deg": {f"{name} {part}": float(per[:, b, k].max()) for b, name in enumerate(reader.bones)
                                     for k, part in enumerate(parts) if outside[:, b, k].any()},
        }
    return out


# -- report ---------------------------------------------------------------------------------------
def _violation_cell(figures: dict[str, Any], frames: int) -> str:
    if figures["frames"] == 0:
        return "0"
    return f"{figures['frames']}/{frames}, {figures['max_deg']:.2g} ({figures['worst']})"


def markdown(results: list[dict[str, Any]], frames: int) -> list[str]:
    """The table (one row per case and solver), the add-on's error messages and notes under it, then
    the timing table (ratios to Blender) with the bakes' flagged switches."""
    lines = [
        "| case | solver | reach | worst tip error | per chain: mean / worst error | IK ranges (Euler) | "
        "IK locks (Euler) | IK limits, Blender's reading | Limit Rotation | max step ° (targets' pose) | pops | "
        "ms per frame |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for solver in ("blender", "ours", BAKED_NEAREST, BAKED):
            figures = result["solvers"][solver]
            head = f"| {result['case']} | {SOLVER_LABELS[solver]} |"
            if figures["errors"]:
                lines.append(f"{head} error (see below) |{' — |' * 10}")
                continue
            per_chain = ", ".join(f"{tip} {figures['mean_error_per_chain'][tip]:.2g} / {value:.2g}"
                                  for tip, value in figures["max_error_per_chain"].items())
            cells = [_violation_cell(figures[f"{kind}_violation"], frames)
                     for kind in ("ik_range", "ik_lock", "ik_blender", "limit_rotation")]
            mark = "¹" if solver in (BAKED, BAKED_NEAREST) else ""
            lines.append(
                f"{head} {100 * figures['reach_rate']:.1f} % | {figures['max_error']:.2g} | {per_chain} | "
                f"{' | '.join(cells)} | {figures['max_step_deg']:.3g} ({result['targets_pose_max_step_deg']:.3g}) | "
                f"{_pops_cell(figures)} | {figures['ms_per_frame']:.3f}{mark} |")
    notes = []
    for result in results:
        for tip, message in result["solvers"]["ours"]["errors"].items():
            notes.append(f"- ours, {result['case']}: chain {tip!r}: error: {message}")
        notes += [f"- {result['case']}: {note}" for note in result["notes"]]
    lines += ["", "¹ Baked rows: the bake's wall time (`BakeReport.seconds`: sampling, solving, keying, its own "
              "playback check) / frames; the row's other figures are measured on the keys as Blender plays them."]
    lines += ["", *notes] if notes else []
    numpy_frames = {result["ours_numpy_frames_per_pass"] for result in results}
    every = math.ceil(frames / max(numpy_frames))
    lines += [
        "",
        "| case | Blender ms/frame | ours ms/frame | ours / Blender | ours (numpy) ms/frame"
        f"{'' if numpy_frames == {frames} else ' ²'} | numpy / Blender | bake, Continuous, ms/frame | "
        "bake / Blender | live pops (frames) | switches flagged by the per-frame bake (frames) | "
        "switches flagged by the Continuous bake |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        solvers = result["solvers"]
        blender = solvers["blender"]["ms_per_frame"]

        def ratio(value: float, blender: float = blender) -> str:
            return f"{value / blender:.2f}" if blender > 0.0 else "—"

        ours, numpy_ms, bake = (solvers["ours"]["ms_per_frame"], result["ours_numpy_ms_per_frame"],
                                solvers[BAKED]["ms_per_frame"])
        lines.append(f"| {result['case']} | {blender:.3f} | {ours:.3f} | {ratio(ours)} | {numpy_ms:.3f} | "
                     f"{ratio(numpy_ms)} | {bake:.3f} | {ratio(bake)} | {_pops_cell(solvers['ours'])} | "
                     f"{_switch_cell(solvers[BAKED_NEAREST]['bake'])} | {_switch_cell(solvers[BAKED]['bake'])} |")
    if numpy_frames != {frames}:
        lines += ["", f"² ours (numpy): every {every}th frame ({', '.join(map(str, sorted(numpy_frames)))} frames) of "
                  "each pass, against the same frames with neither solver (too slow for all)."]
    return lines


def _pops_cell(figures: dict[str, Any]) -> str:
    return f"{figures['pops']}" + (f" ({', '.join(map(str, figures['pop_frames']))})" if figures["pops"] else "")


def _switch_cell(bake: dict[str, Any]) -> str:
    if not bake["switches"]:
        return "0"
    where = "; ".join(f"{tip}: {', '.join(map(str, frames))}"
                      for tip, frames in bake["switch_frames"].items() if frames)
    return f"{bake['switches']} ({where})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose add-on is measured")
    parser.add_argument("--frames", type=int, default=48, help="animated range, frames")
    parser.add_argument("--passes", type=int, default=5, help="interleaved timing passes over the range")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--rigs", default="", help=f"comma-separated, of {', '.join(RIGS)} (default: all)")
    parser.add_argument("--numpy-every", type=int, default=4,
                        help="time ours (numpy) on every Nth frame of each pass only (1: all; it is slow)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "scripts"))
    import bench  # noqa: F401  # puts this checkout on sys.path; --repo goes before it below

    sys.path.insert(0, str(args.repo.resolve()))
    import bpy

    import blender_ik_addon
    from bench import live_rigs, motion
    from blender_ik_addon.blender.spec import ChainSpec

    wanted = [name.strip() for name in args.rigs.split(",") if name.strip()]
    cases = [case for case in CASES if not wanted or case.rig in wanted]
    from blender_ik_addon.core import compiled

    compiled.warm_up()  # load (or compile) the kernel now, not in the add-on's thread during the timing
    blender_ik_addon.register()
    began = time.perf_counter()
    results = []
    for case in cases:
        print(f"[tree] {case.name} ...", file=sys.stderr, flush=True)
        results.append(run_case(bpy, (live_rigs, motion), case, args.frames, args.passes,
                                max(1, args.numpy_every)))
    bpy.ops.wm.read_homefile(use_empty=True)
    print(f"{args.frames} frames, timing: median of {args.passes} interleaved passes; Blender "
          f"{bpy.app.version_string}; add-on from {args.repo.resolve()}; solver: {ChainSpec('x', 'x').backend_note()}; "
          f"{time.perf_counter() - began:.0f} s")
    print()
    print("\n".join(markdown(results, args.frames)))
    if args.json is not None:
        args.json.write_text(json.dumps({"frames": args.frames, "passes": args.passes,
                                         "blender": bpy.app.version_string, "reach_tolerance": REACH_TOLERANCE,
                                         "violation_tolerance_deg": VIOLATION_TOLERANCE_DEG,
                                         "pop_ratio": motion.POP_RATIO, "pop_floor_deg": motion.POP_FLOOR_DEG,
                                         "pull_margin": PULL_MARGIN, "cases": results}, indent=1))
    sys.stdout.flush()
    os._exit(0)  # the 4.x bpy modules may crash at exit once an add-on was registered


if __name__ == "__main__":
    raise SystemExit(main())
