"""Realistic rigs for the live-handler measurement (:mod:`.addon`), built headless with bpy.

Every rig is one armature object whose bones rotate in 'XYZ' Euler mode and carry their limits as
the bones' IK settings (``lock_ik_*``, ``use_ik_limit_*``, ``ik_min_*``/``ik_max_*``), which
Blender's IK constraint and the add-on both read. Each chain has an Empty target keyed every
``KEY_STEP`` frames (Bezier) on a smooth path inside its reach, or left still. Each chain can be
solved two ways, set up side by side: the add-on's chain (``obj.ik_chains``) and Blender's IK
constraint on the tip bone (same chain length, Standard solver, ``use_tail``); :func:`use` makes
one of them (or neither) act, the other being disabled (ours) or muted (Blender's).

Rigs (lengths in metres; bone axes: Y along the bone, Z set by ``align_roll``, so that a positive
X rotation bends the bone toward its Z axis):

* ``arm``: upper_arm 0.30, forearm 0.27, hand 0.08 along +X (a T-posed left arm), the elbow bent
  10° forward in the rest pose, every Z axis forward (-Y). Shoulder x -90..90°, y -60..60°,
  z -90..30° (z > 0 raises the arm); forearm a hinge (y and z locked, x 0..150°: it bends forward
  only); hand x ±40°, z ±20°, y (twist) locked. One chain of 3 ending at the hand's tail. The
  target stays between 40 % and 80 % of the reach from the shoulder, 10..80° forward of the
  arm's rest direction and 45° below to 5° above the shoulder's height.
* ``tentacle``: 20 bones of 0.1 along +Z, each y locked and x, z within ±30°; one chain of 20.
  The target stays between 33 % and 83 % of the reach from the root.
* ``character`` (metarig-like, facing -Y): root ``hips``; ``spine1..3`` above it in a slight S
  curve (0.45 long; x -30..45°, y ±20°, z ±25°; one chain of 3, its target a few cm around the
  chest, 83..90 % of the reach; a straight spine would be a singular start for Blender's IK); per
  side a ``clavicle`` (in no chain) on ``spine3`` and the arm above, mirrored (one chain of 3 per
  arm, the target as for ``arm``); per side a leg under the hips: ``thigh`` 0.43 (x -100..30°,
  y ±30°, z 15° inward to 40° outward), ``shin`` 0.42 (a knee hinge: y and z locked, x 0..150°,
  bending backwards), ``foot`` (in no chain). The leg chains are 2 bones long and end at the
  ankle (the shin's tail), as rigs usually do: the foot follows the shin. The ankle targets
  walk on an ellipse, ±18 cm forward and back, 73..85 % of the leg's reach from the hip.
  5 chains, 5 targets.
* ``8_arms`` / ``8_tentacles``: 8 of those side by side in one armature (distinct roots, no
  shared bones, bones prefixed ``a0_``... / ``t0_``...).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

KEY_STEP = 10  # frames between the targets' keys
STILL_FRAME = 37  # a still target sits where the moving one is at this frame
RIGS = ("arm", "8_arms", "tentacle", "8_tentacles", "character")
Solver = Literal["none", "blender", "ours"]
Vector = tuple[float, float, float]
Path = Callable[[float], Vector]  # frame -> world location of a target

ARM_LENGTHS = (0.30, 0.27, 0.08)
ARM_REACH = sum(ARM_LENGTHS)
ELBOW_REST_BEND = math.radians(10.0)
TENTACLE_BONES = 20
TENTACLE_BONE_LENGTH = 0.1
TENTACLE_REACH = TENTACLE_BONES * TENTACLE_BONE_LENGTH
ARM_SPACING = 1.5  # between the shoulders of 8_arms (more than twice an arm's reach)
TENTACLE_SPACING = 4.5  # between the roots of 8_tentacles
FORWARD, BACK = (0.0, -1.0, 0.0), (0.0, 1.0, 0.0)


@dataclass(frozen=True)
class BoneSpec:
    """One bone: rest head and tail (armature space), roll reference, parent and IK settings.

    ``limits`` maps an axis ("x", "y", "z") to ``(min, max)`` degrees (0 within); ``locks`` names
    the IK-locked axes.
    """

    name: str
    head: Vector
    tail: Vector
    z_axis: Vector
    parent: str | None = None
    connect: bool = False
    locks: str = ""
    limits: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveChain:
    """One chain of a built rig, by name (references to Blender data do not survive a new file)."""

    armature: str
    tip: str
    length: int
    target: str


@dataclass(frozen=True)
class ChainPlan:
    """A chain to build: its tip bone, length, target's name and the target's path."""

    tip: str
    length: int
    target: str
    path: Path


# -- paths ----------------------------------------------------------------------------------------
def _add(a: Sequence[float], b: Sequence[float]) -> Vector:
    return (float(a[0] + b[0]), float(a[1] + b[1]), float(a[2] + b[2]))


def arm_path(shoulder: Vector, side: float, phase: float) -> Path:
    """The hand's target: 0.4..0.8 of the arm's reach from the shoulder, 10..80° forward of the arm's
    rest direction (+X for side 1, -X for side -1), from 45° below to 5° above the shoulder."""

    def path(frame: float) -> Vector:
        s = 0.05 * frame + phase
        radius = ARM_REACH * (0.6 + 0.2 * math.sin(s))
        forward = math.radians(45.0 + 35.0 * math.sin(0.7 * s + 1.0))
        up = math.radians(-20.0 + 25.0 * math.sin(1.3 * s + 0.5))
        direction = (side * math.cos(up) * math.cos(forward), -math.cos(up) * math.sin(forward), math.sin(up))
        return _add(shoulder, tuple(radius * d for d in direction))

    return path


def tentacle_path(root: Vector, phase: float) -> Path:
    """0.3..0.84 of the tentacle's reach from its root, above it."""

    def path(frame: float) -> Vector:
        s = 0.05 * frame + phase
        offset = (0.35 * math.sin(s), 0.3 * math.sin(0.7 * s + 1.0), 0.5 + 0.2 * math.cos(1.3 * s))
        return _add(root, tuple(TENTACLE_REACH * o for o in offset))

    return path


def chest_path(phase: float) -> Path:
    """A few cm around the chest, slightly forward of and below its rest place (spine reach 0.45)."""

    def path(frame: float) -> Vector:
        s = 0.05 * frame + phase
        return (0.05 * math.sin(s), -0.06 + 0.03 * math.sin(0.8 * s), 1.435 + 0.01 * math.cos(1.1 * s))

    return path


def ankle_path(side: float, phase: float) -> Path:
    """A walking ellipse under the hip (hip at z 0.95, leg reach 0.85)."""

    def path(frame: float) -> Vector:
        s = 0.05 * frame + phase
        return (side * (0.1 + 0.03 * math.sin(0.7 * s)), -0.18 * math.sin(s), 0.28 + 0.05 * math.cos(s))

    return path


# -- bone layouts ---------------------------------------------------------------------------------
def arm_bones(prefix: str, shoulder: Vector, side: float, parent: str | None = None) -> list[BoneSpec]:
    """A T-posed arm from ``shoulder`` along ``side`` * X (1: left, -1: right), bones
    ``{prefix}upper_arm``, ``{prefix}forearm``, ``{prefix}hand``; mirrored limits for side -1."""
    upper, fore, hand = ARM_LENGTHS
    elbow = _add(shoulder, (side * upper, 0.0, 0.0))
    bent = (side * math.cos(ELBOW_REST_BEND), -math.sin(ELBOW_REST_BEND), 0.0)
    wrist = _add(elbow, tuple(fore * d for d in bent))
    tip = _add(wrist, tuple(hand * d for d in bent))
    # Local X is +-Z world (Y x Z): z > 0 raises the left arm and lowers the right one.
    raise_z = (-90.0, 30.0) if side > 0 else (-30.0, 90.0)
    return [
        BoneSpec(f"{prefix}upper_arm", shoulder, elbow, FORWARD, parent, parent is not None,
                 limits={"x": (-90.0, 90.0), "y": (-60.0, 60.0), "z": raise_z}),
        BoneSpec(f"{prefix}forearm", elbow, wrist, FORWARD, f"{prefix}upper_arm", True, locks="yz",
                 limits={"x": (0.0, 150.0)}),
        BoneSpec(f"{prefix}hand", wrist, tip, FORWARD, f"{prefix}forearm", True, locks="y",
                 limits={"x": (-40.0, 40.0), "z": (-20.0, 20.0)}),
    ]


def tentacle_bones(prefix: str, root: Vector) -> list[BoneSpec]:
    """20 connected bones ``{prefix}b0..b19`` up +Z from ``root``."""
    bones, parent = [], None
    for i in range(TENTACLE_BONES):
        head = _add(root, (0.0, 0.0, i * TENTACLE_BONE_LENGTH))
        tail = _add(root, (0.0, 0.0, (i + 1) * TENTACLE_BONE_LENGTH))
        name = f"{prefix}b{i}"
        bones.append(BoneSpec(name, head, tail, FORWARD, parent, parent is not None, locks="y",
                              limits={"x": (-30.0, 30.0), "z": (-30.0, 30.0)}))
        parent = name
    return bones


def character_bones() -> list[BoneSpec]:
    """Hips, a 3-bone spine, clavicles and arms, legs (see the module docstring)."""
    spine_limits = {"x": (-30.0, 45.0), "y": (-20.0, 20.0), "z": (-25.0, 25.0)}
    bones = [BoneSpec("hips", (0.0, 0.0, 0.95), (0.0, 0.0, 1.05), FORWARD)]
    # A slight S curve, as in Blender's metarig (and a straight chain is singular for Jacobian IK).
    joints = [(0.0, 0.0, 1.05), (0.0, 0.02, 1.20), (0.0, 0.025, 1.35), (0.0, 0.0, 1.50)]
    parent = "hips"
    for i in (1, 2, 3):
        bones.append(BoneSpec(f"spine{i}", joints[i - 1], joints[i], FORWARD, parent, True, limits=spine_limits))
        parent = f"spine{i}"
    for suffix, side in ((".L", 1.0), (".R", -1.0)):
        shoulder = (side * 0.18, 0.0, 1.45)
        bones.append(BoneSpec(f"clavicle{suffix}", (side * 0.03, -0.03, 1.46), shoulder, FORWARD, "spine3"))
        bones += [BoneSpec(b.name + suffix, b.head, b.tail, b.z_axis,
                           None if b.parent is None else b.parent + suffix, b.connect, b.locks, b.limits)
                  for b in arm_bones("", shoulder, side, parent="clavicle")]
        # Local X is +X world for both legs (Y down, Z back): z > 0 swings the foot toward -X.
        outward = (-40.0, 15.0) if side > 0 else (-15.0, 40.0)
        hip, knee, ankle = (side * 0.1, 0.0, 0.95), (side * 0.1, -0.02, 0.52), (side * 0.1, 0.0, 0.10)
        bones += [
            BoneSpec(f"thigh{suffix}", hip, knee, BACK, "hips",
                     limits={"x": (-100.0, 30.0), "y": (-30.0, 30.0), "z": outward}),
            BoneSpec(f"shin{suffix}", knee, ankle, BACK, f"thigh{suffix}", True, locks="yz",
                     limits={"x": (0.0, 150.0)}),
            BoneSpec(f"foot{suffix}", ankle, (side * 0.1, -0.14, 0.03), (0.0, 0.0, 1.0), f"shin{suffix}", True),
        ]
    return bones


def _plans(rig: str) -> tuple[list[BoneSpec], list[ChainPlan]]:
    """The bones and chains of ``rig`` (one of :data:`RIGS`)."""
    if rig in ("arm", "8_arms"):
        count = 1 if rig == "arm" else 8
        bones, plans = [], []
        for i in range(count):
            prefix, shoulder = f"a{i}_", (i * ARM_SPACING, 0.0, 0.0)
            bones += arm_bones(prefix, shoulder, 1.0)
            plans.append(ChainPlan(f"{prefix}hand", 3, f"target_{prefix}hand", arm_path(shoulder, 1.0, 0.7 * i)))
        return bones, plans
    if rig in ("tentacle", "8_tentacles"):
        count = 1 if rig == "tentacle" else 8
        bones, plans = [], []
        for i in range(count):
            prefix, root = f"t{i}_", (i * TENTACLE_SPACING, 0.0, 0.0)
            bones += tentacle_bones(prefix, root)
            plans.append(ChainPlan(f"{prefix}b{TENTACLE_BONES - 1}", TENTACLE_BONES, f"target_{prefix}tip",
                                   tentacle_path(root, 0.7 * i)))
        return bones, plans
    if rig == "character":
        plans = [ChainPlan("spine3", 3, "target_chest", chest_path(0.0))]
        for suffix, side, phase in ((".L", 1.0, 0.0), (".R", -1.0, math.pi)):
            plans += [ChainPlan(f"hand{suffix}", 3, f"target_hand{suffix}",
                                arm_path((side * 0.18, 0.0, 1.45), side, 1.0 + phase)),
                      ChainPlan(f"shin{suffix}", 2, f"target_ankle{suffix}", ankle_path(side, phase))]
        return character_bones(), plans
    raise ValueError(f"unknown rig {rig!r}; choose from {', '.join(RIGS)}")


# -- building -------------------------------------------------------------------------------------
def build(bpy: Any, rig: str, frames: int | None) -> list[LiveChain]:
    """Build ``rig`` in the current (empty) file with one target per chain, keyed over frames
    1..``frames`` (None: still targets), and both solvers set up, neither acting."""
    bones, plans = _plans(rig)
    obj = build_armature(bpy, rig, bones)
    chains = []
    for plan in plans:
        target = _target(bpy, plan.target, plan.path, frames)
        chains.append(LiveChain(obj.name, plan.tip, plan.length, target.name))
    add_ours(bpy, chains)
    add_blender_ik(bpy, chains)
    use(bpy, chains, "none")
    return chains


def build_armature(bpy: Any, name: str, bones: Sequence[BoneSpec]) -> Any:
    """The armature object of ``bones`` (Euler XYZ, IK locks and limits set), without constraints.
    Any bone with :class:`BoneSpec`'s fields will do (``tree_cases.Bone`` adds Limit Rotation ranges)."""
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for spec in bones:
        bone = data.edit_bones.new(spec.name)
        bone.head, bone.tail = spec.head, spec.tail
        bone.align_roll(spec.z_axis)
        if spec.parent is not None:
            bone.parent, bone.use_connect = data.edit_bones[spec.parent], spec.connect
    bpy.ops.object.mode_set(mode="OBJECT")
    for spec in bones:
        pbone = obj.pose.bones[spec.name]
        pbone.rotation_mode = "XYZ"
        for axis in "xyz":
            setattr(pbone, f"lock_ik_{axis}", axis in spec.locks)
            if axis in spec.limits:
                low, high = spec.limits[axis]
                setattr(pbone, f"use_ik_limit_{axis}", True)
                setattr(pbone, f"ik_min_{axis}", math.radians(low))
                setattr(pbone, f"ik_max_{axis}", math.radians(high))
    return obj


def _target(bpy: Any, name: str, path: Path, frames: int | None) -> Any:
    """An Empty keyed along ``path`` every KEY_STEP frames over 1..``frames`` (None: still)."""
    obj = bpy.data.objects.new(name, None)
    obj.empty_display_size = 0.05
    bpy.context.scene.collection.objects.link(obj)
    if frames is None:
        obj.location = path(STILL_FRAME)
        return obj
    for frame in [*range(1, frames, KEY_STEP), frames]:
        obj.location = path(frame)
        obj.keyframe_insert("location", frame=frame)
    return obj


def add_ours(bpy: Any, chains: list[LiveChain]) -> None:
    """The add-on's chains, disabled (settings before the target, so that nothing solves yet)."""
    for chain in chains:
        item = bpy.data.objects[chain.armature].ik_chains.chains.add()
        item.name, item.enabled, item.tip_bone, item.chain_length = chain.tip, False, chain.tip, chain.length
        item.target = bpy.data.objects[chain.target]


def add_blender_ik(bpy: Any, chains: list[LiveChain]) -> None:
    """Blender's IK constraint on each tip bone (same chain length, default Standard solver), muted."""
    for chain in chains:
        constraint = bpy.data.objects[chain.armature].pose.bones[chain.tip].constraints.new("IK")
        constraint.name, constraint.mute = "bench_ik", True
        constraint.target, constraint.chain_count, constraint.use_tail = (bpy.data.objects[chain.target],
                                                                          chain.length, True)


def use(bpy: Any, chains: list[LiveChain], solver: Solver) -> None:
    """Make ``solver`` act on every chain ("none": neither), and put every bone at its rest pose
    (Blender's IK starts from the pose, ours from the last one it wrote)."""
    if solver not in ("none", "blender", "ours"):
        raise ValueError(f"unknown solver {solver!r}")
    for chain in chains:
        obj = bpy.data.objects[chain.armature]
        obj.ik_chains.chains[chain.tip].enabled = False  # by name: collection items move when it grows
        obj.pose.bones[chain.tip].constraints["bench_ik"].mute = solver != "blender"
    for name in {chain.armature for chain in chains}:
        for pbone in bpy.data.objects[name].pose.bones:
            pbone.rotation_euler = (0.0, 0.0, 0.0)
    if solver == "ours":
        for chain in chains:
            bpy.data.objects[chain.armature].ik_chains.chains[chain.tip].enabled = True


class TipChain(Protocol):
    """A chain of a built scene, by name: its armature, tip bone and target object."""

    @property
    def armature(self) -> str: ...
    @property
    def tip(self) -> str: ...
    @property
    def target(self) -> str: ...


def tip_errors(bpy: Any, chains: Sequence[TipChain], frames: list[int]) -> list[float]:
    """The distance from each chain's evaluated tip (its tip bone's tail) to its target's evaluated
    location at each frame, whatever moves the bones (live chains, constraints)."""
    scene, view_layer = bpy.context.scene, bpy.context.view_layer
    errors = []
    for frame in frames:
        scene.frame_set(frame)
        view_layer.update()
        depsgraph = bpy.context.evaluated_depsgraph_get()
        for chain in chains:
            rig = bpy.data.objects[chain.armature].evaluated_get(depsgraph)
            tip = np.array(rig.matrix_world @ rig.pose.bones[chain.tip].tail)
            goal = np.array(bpy.data.objects[chain.target].evaluated_get(depsgraph).matrix_world.translation)
            errors.append(float(np.linalg.norm(tip - goal)))
    return errors


def reach(bpy: Any, chain: LiveChain) -> float:
    """The chain's length (sum of its bones' lengths), to scale its tip errors."""
    bone = bpy.data.objects[chain.armature].data.bones[chain.tip]
    total = 0.0
    for _ in range(chain.length):
        total += bone.length
        bone = bone.parent
    return total
