"""Rigs built in code for the Blender tests (no committed .blend files)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Matrix, Vector


@dataclass
class BoneDef:
    """An edit bone: head, tail, roll (radians), parent name, connected."""

    name: str
    head: Sequence[float]
    tail: Sequence[float]
    roll: float = 0.0
    parent: str | None = None
    connect: bool = False


def make_armature(bones: Sequence[BoneDef], name: str = "Rig", matrix: Matrix | None = None) -> bpy.types.Object:
    """An armature object linked to the scene, with the given bones, left in Object mode."""
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    if matrix is not None:
        obj.matrix_world = matrix
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for spec in bones:
        edit = data.edit_bones.new(spec.name)
        edit.head, edit.tail, edit.roll = spec.head, spec.tail, spec.roll
        if spec.parent:
            edit.parent = data.edit_bones[spec.parent]
            edit.use_connect = spec.connect
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def straight_chain(count: int = 3, link: float = 1.0, name: str = "Rig", prefix: str = "b",
                   origin: Sequence[float] = (0.0, 0.0, 0.0), matrix: Matrix | None = None) -> bpy.types.Object:
    """``count`` connected bones along +Y, each ``link`` long."""
    ox, oy, oz = origin
    bones = [BoneDef(f"{prefix}{i}", (ox, oy + i * link, oz), (ox, oy + (i + 1) * link, oz),
                     parent=f"{prefix}{i - 1}" if i else None, connect=bool(i)) for i in range(count)]
    return make_armature(bones, name, matrix)


def empty(name: str = "Target", location: Sequence[float] = (0.0, 0.0, 0.0)) -> bpy.types.Object:
    """An Empty linked to the scene."""
    obj = bpy.data.objects.new(name, None)
    obj.location = location
    bpy.context.scene.collection.objects.link(obj)
    return obj


def add_chain(obj: bpy.types.Object, tip: str, length: int, target: bpy.types.Object | None = None,
              name: str | None = None, **settings: object) -> object:
    """Add a chain to ``obj.ik_chains`` (settings are set before the target, so it solves once)."""
    chain = obj.ik_chains.chains.add()
    chain.name = name or tip
    chain.enabled = False
    chain.tip_bone = tip
    chain.chain_length = length
    for key, value in settings.items():
        setattr(chain, key, value)
    chain.target = target
    chain.enabled = bool(settings.get("enabled", True))
    return chain


def limit_rotation(obj: bpy.types.Object, bone: str, *, order: str = "AUTO", space: str = "LOCAL",
                   **limits_deg: tuple[float, float]) -> bpy.types.Constraint:
    """A Limit Rotation constraint; ``x=(min, max)`` in degrees limits X, etc."""
    con = obj.pose.bones[bone].constraints.new("LIMIT_ROTATION")
    con.euler_order = order
    con.owner_space = space
    for axis, (low, high) in limits_deg.items():
        setattr(con, f"use_limit_{axis}", True)
        setattr(con, f"min_{axis}", math.radians(low))
        setattr(con, f"max_{axis}", math.radians(high))
    return con


def evaluated(obj: bpy.types.Object) -> bpy.types.Object:
    """``obj`` evaluated by the view layer's depsgraph (after an update)."""
    bpy.context.view_layer.update()
    return obj.evaluated_get(bpy.context.evaluated_depsgraph_get())


def world_tail(obj: bpy.types.Object, bone: str) -> np.ndarray:
    """The evaluated world position of a bone's tail."""
    ev = evaluated(obj)
    return np.array(ev.matrix_world @ ev.pose.bones[bone].tail)


def world_head(obj: bpy.types.Object, bone: str) -> np.ndarray:
    """The evaluated world position of a bone's head."""
    ev = evaluated(obj)
    return np.array(ev.matrix_world @ ev.pose.bones[bone].head)


def pose_matrices(obj: bpy.types.Object, bones: Sequence[str]) -> np.ndarray:
    """Evaluated armature-space pose matrices ``(n, 4, 4)``."""
    ev = evaluated(obj)
    return np.array([np.array(ev.pose.bones[b].matrix) for b in bones])


def vec(values: Sequence[float]) -> Vector:
    """A mathutils Vector."""
    return Vector(values)


SPINE = ["spine.0", "spine.1", "spine.2", "spine.3"]
LEFT = ["shoulder.L", "upper_arm.L", "forearm.L", "hand.L"]
RIGHT = ["shoulder.R", "upper_arm.R", "forearm.R", "hand.R"]


def torso_bones(prefix: str = "", x0: float = 0.0) -> list[BoneDef]:
    """A spine of 4 bones up +Z at ``x = x0``, and two arms (shoulder, upper arm, forearm, hand) off
    its top bone; every name prefixed with ``prefix``."""
    spine = [prefix + name for name in SPINE]
    bones = [BoneDef(name, (x0, 0, 1.0 + 0.15 * i), (x0, 0, 1.15 + 0.15 * i), parent=spine[i - 1] if i else None,
                     connect=bool(i)) for i, name in enumerate(spine)]
    for side, names in ((1.0, LEFT), (-1.0, RIGHT)):
        x = 0.0
        lengths = (0.15, 0.3, 0.28, 0.1)
        for i, (name, length) in enumerate(zip(names, lengths, strict=True)):
            head = (x0 + side * x, 0, 1.55)
            x += length
            bones.append(BoneDef(prefix + name, head, (x0 + side * x, 0, 1.55),
                                 parent=prefix + names[i - 1] if i else spine[-1], connect=bool(i)))
    return bones


def torso(prefixes: Sequence[str] = ("",)) -> bpy.types.Object:
    """One armature with a :func:`torso_bones` per prefix (2 m apart), hinge elbows (IK locks and limits)."""
    bones = [bone for i, prefix in enumerate(prefixes) for bone in torso_bones(prefix, 2.0 * i)]
    rig = make_armature(bones, "Rig")
    for name in (p + n for p in prefixes for n in ("forearm.L", "forearm.R")):  # hinge elbows (IK locks, limits)
        pbone = rig.pose.bones[name]
        pbone.lock_ik_x = pbone.lock_ik_y = True
        pbone.use_ik_limit_z = True
        pbone.ik_min_z, pbone.ik_max_z = (-math.radians(150), 0.0) if name.endswith("L") else (0.0, math.radians(150))
    return rig




def torso_arms(rig: bpy.types.Object, left: Sequence[float], right: Sequence[float], prefix: str = "",
               **settings: object) -> tuple[bpy.types.Object, bpy.types.Object]:
    """Both arms' chains (``arm.L``, ``arm.R``), tip = forearm (the wrist), 2 bones into the spine
    (they share spine.2 and spine.3): a group solved together. Returns their targets."""
    t_left, t_right = empty(prefix + "T.L", left), empty(prefix + "T.R", right)
    add_chain(rig, prefix + "forearm.L", 5, t_left, name=prefix + "arm.L", **settings)
    add_chain(rig, prefix + "forearm.R", 5, t_right, name=prefix + "arm.R", **settings)
    return t_left, t_right
