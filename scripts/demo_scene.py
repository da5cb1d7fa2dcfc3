"""The demo's scene, built in code: a robot arm and a tentacle reaching for animated targets.

Used by ``scripts/demo.py``; needs the bpy module (or a Blender binary).

Conventions and traps:
    * Bones point along their own +Y. Both rigs stand upright (bones along world +Z), so a
      rotation about a bone's Y axis is a yaw about world Z, and about its X axis a pitch.
    * Meshes are modelled where they sit in the rest pose, in world space, then parented. A
      BONE parent places a child relative to the bone's *tail*; ``matrix_parent_inverse`` is set
      to the inverse of that rest transform so the child stays where it was modelled.
    * Workbench shows ``Material.diffuse_color`` (the viewport colour) with ``color_type``
      ``MATERIAL``; node trees are not needed.
    * Limits are authored as LOCAL-space Limit Rotation constraints plus rotation locks, the way
      an animator sets them up; the add-on reads both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import bmesh
import bpy
import numpy as np
import numpy.typing as npt
from mathutils import Matrix, Vector

Color = tuple[float, float, float]
Point = tuple[float, float, float]
Keys = Sequence[tuple[int, Point]]
FloatArray: TypeAlias = npt.NDArray[np.float64]

ORANGE: Color = (1.0, 0.33, 0.02)
GRAPHITE: Color = (0.09, 0.09, 0.1)
STEEL: Color = (0.55, 0.57, 0.6)
PURPLE: Color = (0.42, 0.16, 0.62)
TARGET_RED: Color = (0.95, 0.05, 0.12)
TARGET_GREEN: Color = (0.1, 0.85, 0.25)
FLOOR: Color = (0.82, 0.82, 0.8)


@dataclass(frozen=True)
class ChainSetup:
    """One chain the demo bakes: where it lives and what it reaches for."""

    rig: Any
    name: str
    tip_bone: str
    length: int
    target: Any


# -- small builders -------------------------------------------------------------------------------


def current_scene() -> Any:
    """The context's scene. Typed ``Any``: the stubs say Optional, but an open file always has one."""
    return bpy.context.scene


def material(name: str, color: Color) -> Any:
    """A material whose viewport colour Workbench shows."""
    mat: Any = bpy.data.materials.new(name)
    mat.diffuse_color = (*color, 1.0)
    mat.roughness = 0.45
    return mat


def mesh_object(name: str, build: Callable[[Any], object], color: Color, *, smooth: bool = False) -> Any:
    """A mesh object linked to the scene, its geometry made by ``build(bmesh)`` in world space."""
    bm = bmesh.new()
    build(bm)
    mesh = bpy.data.meshes.new(name)
    bm.to_mesh(mesh)
    bm.free()
    if smooth:
        mesh.shade_smooth()
    mesh.materials.append(material(name, color))
    obj = bpy.data.objects.new(name, mesh)
    current_scene().collection.objects.link(obj)
    return obj


def cylinder(radius: float, depth: float, matrix: Matrix, segments: int = 32,
             tip_radius: float | None = None) -> Callable[[Any], object]:
    """A capped cylinder (or cone) along the local Z of ``matrix``, centred at its origin."""
    top = radius if tip_radius is None else tip_radius
    return lambda bm: bmesh.ops.create_cone(bm, cap_ends=True, segments=segments, radius1=radius, radius2=top,
                                            depth=depth, matrix=matrix)


def box(size: tuple[float, float, float], matrix: Matrix) -> Callable[[Any], object]:
    """A box of ``size`` (x, y, z) centred at the origin of ``matrix``."""
    return lambda bm: bmesh.ops.create_cube(bm, size=1.0, matrix=matrix @ Matrix.Diagonal((*size, 1.0)))


def sphere(radius: float, matrix: Matrix) -> Callable[[Any], object]:
    """A UV sphere centred at the origin of ``matrix``."""
    return lambda bm: bmesh.ops.create_uvsphere(bm, u_segments=32, v_segments=16, radius=radius, matrix=matrix)


def at(x: float, y: float, z: float, rotate_x_deg: float = 0.0, rotate_y_deg: float = 0.0) -> Matrix:
    """A translation, optionally rotated about X then Y (to lay cylinders along X or Y)."""
    rotation = Matrix.Rotation(math.radians(rotate_y_deg), 4, "Y") @ Matrix.Rotation(math.radians(rotate_x_deg), 4, "X")
    return Matrix.Translation((x, y, z)) @ rotation


def parent_to_bone(obj: Any, rig: Any, bone_name: str) -> None:
    """Parent ``obj`` to a bone without moving it (see the module docstring)."""
    bone = rig.data.bones[bone_name]
    tail = rig.matrix_world @ bone.matrix_local @ Matrix.Translation((0.0, bone.length, 0.0))
    obj.parent, obj.parent_type, obj.parent_bone = rig, "BONE", bone_name
    obj.matrix_parent_inverse = tail.inverted()


def parent_to_object(obj: Any, parent: Any) -> None:
    """Parent ``obj`` to an object without moving it."""
    obj.parent = parent
    obj.matrix_parent_inverse = parent.matrix_world.inverted()


def armature(name: str, origin: Point, lengths: Sequence[float], names: Sequence[str]) -> Any:
    """An upright chain of connected bones starting at ``origin``, left in Object mode."""
    data = bpy.data.armatures.new(name)
    data.display_type = "STICK"
    rig = bpy.data.objects.new(name, data)
    rig.matrix_world = Matrix.Translation(origin)  # also sets location; meshes parented later read it
    current_scene().collection.objects.link(rig)
    view_layer: Any = bpy.context.view_layer
    view_layer.objects.active = rig  # edit mode works on the active object
    bpy.ops.object.mode_set(mode="EDIT")
    height, parent = 0.0, None
    for bone_name, length in zip(names, lengths, strict=True):
        bone = data.edit_bones.new(bone_name)
        bone.head, bone.tail = (0.0, 0.0, height), (0.0, 0.0, height + length)
        bone.parent, bone.use_connect = parent, parent is not None
        height, parent = height + length, bone
    bpy.ops.object.mode_set(mode="OBJECT")
    return rig


def limit_bone(rig: Any, bone_name: str, free_axes: str, limit_deg: dict[str, float]) -> None:
    """Euler XYZ with only ``free_axes`` unlocked, and a LOCAL Limit Rotation of +-``limit_deg``."""
    pose_bone = rig.pose.bones[bone_name]
    pose_bone.rotation_mode = "XYZ"
    pose_bone.lock_rotation = tuple(axis not in free_axes for axis in "xyz")
    constraint = pose_bone.constraints.new("LIMIT_ROTATION")
    constraint.owner_space = "LOCAL"
    for axis, degrees in limit_deg.items():
        setattr(constraint, f"use_limit_{axis}", True)
        setattr(constraint, f"min_{axis}", -math.radians(degrees))
        setattr(constraint, f"max_{axis}", math.radians(degrees))


# -- the robot arm (the tutorial's: base yaw, two pitch joints) ----------------------------------

ARM_ORIGIN: Point = (-1.25, 0.35, 0.0)
ARM_BONES = ("arm_base", "arm_upper", "arm_fore")
ARM_LENGTHS = (0.5, 1.15, 1.0)


def build_robot_arm() -> Any:
    """The arm: a yawing turret, an upper arm and a forearm with a gripper; meshes follow bones."""
    rig = armature("RobotArm", ARM_ORIGIN, ARM_LENGTHS, ARM_BONES)
    limit_bone(rig, "arm_base", "y", {"y": 180.0})
    limit_bone(rig, "arm_upper", "x", {"x": 90.0})
    limit_bone(rig, "arm_fore", "x", {"x": 150.0})
    x, y, _ = ARM_ORIGIN
    shoulder, elbow = ARM_LENGTHS[0], ARM_LENGTHS[0] + ARM_LENGTHS[1]
    tip = elbow + ARM_LENGTHS[2]
    parent_to_object(mesh_object("arm_pedestal", cylinder(0.5, 0.12, at(x, y, 0.06)), GRAPHITE), rig)
    parts = [
        ("arm_turret", cylinder(0.32, shoulder - 0.1, at(x, y, 0.12 + (shoulder - 0.1) / 2), tip_radius=0.26),
         STEEL, "arm_base"),
        ("arm_turret_mark", box((0.12, 0.2, 0.16), at(x, y - 0.27, shoulder - 0.18)), ORANGE, "arm_base"),
        ("arm_shoulder", cylinder(0.17, 0.42, at(x, y, shoulder, rotate_y_deg=90)), GRAPHITE, "arm_upper"),
        ("arm_upper_link", box((0.2, 0.2, ARM_LENGTHS[1] - 0.1), at(x, y, (shoulder + elbow) / 2)), ORANGE,
         "arm_upper"),
        ("arm_elbow", cylinder(0.14, 0.34, at(x, y, elbow, rotate_y_deg=90)), GRAPHITE, "arm_fore"),
        ("arm_fore_link", box((0.16, 0.16, ARM_LENGTHS[2] - 0.12), at(x, y, (elbow + tip) / 2 - 0.04)), ORANGE,
         "arm_fore"),
        ("arm_wrist", box((0.26, 0.12, 0.08), at(x, y, tip - 0.08)), GRAPHITE, "arm_fore"),
        ("arm_finger_l", box((0.04, 0.08, 0.16), at(x - 0.1, y, tip + 0.02)), GRAPHITE, "arm_fore"),
        ("arm_finger_r", box((0.04, 0.08, 0.16), at(x + 0.1, y, tip + 0.02)), GRAPHITE, "arm_fore"),
    ]
    for name, build, color, bone in parts:
        parent_to_bone(mesh_object(name, build, color), rig, bone)
    return rig


# -- the tentacle (a skinned tube) --------------------------------------------------------------

TENTACLE_ORIGIN: Point = (1.2, -0.1, 0.0)
TENTACLE_SEGMENTS = 16
TENTACLE_SEGMENT_LENGTH = 0.17
TENTACLE_LIMIT_DEG = 35.0


def tentacle_bone_names() -> list[str]:
    """``tentacle.00`` (root) to ``tentacle.15`` (tip)."""
    return [f"tentacle.{i:02d}" for i in range(TENTACLE_SEGMENTS)]


def build_tentacle() -> Any:
    """A 16-bone tentacle bending about X and Z (no twist), +-35 degrees per joint, skinned tube."""
    names = tentacle_bone_names()
    rig = armature("Tentacle", TENTACLE_ORIGIN, [TENTACLE_SEGMENT_LENGTH] * TENTACLE_SEGMENTS, names)
    for name in names:
        limit_bone(rig, name, "xz", {"x": TENTACLE_LIMIT_DEG, "z": TENTACLE_LIMIT_DEG})
    base = cylinder(0.32, 0.1, at(TENTACLE_ORIGIN[0], TENTACLE_ORIGIN[1], 0.05))
    parent_to_object(mesh_object("tentacle_base", base, GRAPHITE), rig)
    parent_to_object(tentacle_skin(rig, names), rig)
    return rig


def tentacle_profile(heights: FloatArray, length: float) -> FloatArray:
    """Tube radius at each height: thick at the root, tapering to a rounded tip."""
    u = heights / length
    radii: FloatArray = 0.035 + 0.15 * (1.0 - u) ** 1.2 + 0.02 * np.sin(np.pi * u)
    return radii


def tube_geometry(heights: FloatArray, radii: FloatArray, sides: int) -> tuple[FloatArray, list[tuple[int, ...]]]:
    """A closed tube along +Z: rings of ``sides`` vertices at ``heights``, then one tip vertex.

    Returns the vertices ``(len(heights) * sides + 1, 3)`` and the faces (quads, the tip's fan,
    and the root's cap facing down).
    """
    angles = np.linspace(0.0, 2 * np.pi, sides, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles), np.zeros(sides)], axis=1)
    centres = np.zeros((len(heights), 3))
    centres[:, 2] = heights
    verts = (centres[:, None] + radii[:, None, None] * ring[None]).reshape(-1, 3)
    tip, last = len(verts), (len(heights) - 1) * sides
    faces: list[tuple[int, ...]] = [
        (r * sides + s, r * sides + (s + 1) % sides, (r + 1) * sides + (s + 1) % sides, (r + 1) * sides + s)
        for r in range(len(heights) - 1) for s in range(sides)]
    faces += [(last + s, last + (s + 1) % sides, tip) for s in range(sides)]
    faces.append(tuple(reversed(range(sides))))
    return np.vstack([verts, (0.0, 0.0, heights[-1] + 0.03)]), faces


def tentacle_skin(rig: Any, names: Sequence[str], rings_per_bone: int = 6, sides: int = 24) -> Any:
    """The tube mesh, weighted linearly between neighbouring bone centres, with an Armature modifier."""
    length = TENTACLE_SEGMENTS * TENTACLE_SEGMENT_LENGTH
    heights = np.linspace(0.0, length, TENTACLE_SEGMENTS * rings_per_bone + 1)
    verts, faces = tube_geometry(heights, tentacle_profile(heights, length), sides)
    mesh = bpy.data.meshes.new("tentacle_skin")
    mesh.from_pydata((verts + np.array(rig.location)).tolist(), [], faces)
    mesh.shade_smooth()
    mesh.materials.append(material("tentacle_skin", PURPLE))
    obj = bpy.data.objects.new("tentacle_skin", mesh)
    current_scene().collection.objects.link(obj)
    skin_weights(obj, names, verts[:, 2], TENTACLE_SEGMENT_LENGTH)
    modifier: Any = obj.modifiers.new("Armature", "ARMATURE")
    modifier.object = rig
    return obj


def skin_weights(obj: Any, names: Sequence[str], heights: FloatArray, segment: float) -> None:
    """Blend each vertex between the two bones whose centres bracket its height."""
    position = np.clip(heights / segment - 0.5, 0.0, len(names) - 1.0)
    lower = np.minimum(position.astype(int), len(names) - 2)
    blend = position - lower
    groups = [obj.vertex_groups.new(name=name) for name in names]
    for index, (bone, t) in enumerate(zip(lower, blend, strict=True)):
        groups[bone].add([index], float(1.0 - t), "REPLACE")
        groups[bone + 1].add([index], float(t), "REPLACE")


# -- targets, set dressing ----------------------------------------------------------------------


def animated_target(name: str, color: Color, keys: Keys) -> Any:
    """An Empty keyed through ``keys`` ``(frame, xyz)``, carrying a small sphere so it renders."""
    empty = bpy.data.objects.new(name, None)
    empty.empty_display_type = "SPHERE"
    empty.empty_display_size = 0.12
    current_scene().collection.objects.link(empty)
    for frame, location in keys:
        empty.location = location
        empty.keyframe_insert("location", frame=frame)
    marker = mesh_object(f"{name}_marker", sphere(0.1, Matrix()), color, smooth=True)
    marker.parent = empty
    return empty


ARM_TARGET_KEYS: Keys = (  # all inside the arm's reach and limits, away from the yaw axis
    (1, (-0.55, -0.6, 1.9)), (20, (-0.2, -0.7, 0.9)), (40, (-2.1, -1.1, 0.75)),
    (60, (-2.4, -0.3, 1.3)), (80, (-1.7, 0.2, 2.3)), (96, (-0.55, -0.6, 1.9)),
)
TENTACLE_TARGET_KEYS: Keys = (
    (1, (2.1, -0.9, 1.4)), (24, (0.6, -0.8, 2.2)), (48, (2.5, 0.3, 1.9)),
    (72, (2.7, -0.4, 0.7)), (96, (2.1, -0.9, 1.4)),
)


def add_floor() -> None:
    """A large pale floor to catch Workbench's shadows."""
    mesh_object("floor", box((14.0, 14.0, 0.02), at(0.0, 0.0, -0.01)), FLOOR)


def add_camera_and_light(scene: Any) -> None:
    """A camera framing both rigs from the front, and a sun (Workbench renders with its studio
    light; the sun is there for EEVEE or Cycles)."""
    lens: Any = bpy.data.cameras.new("Camera")
    lens.lens = 45.0
    camera = bpy.data.objects.new("Camera", lens)
    scene.collection.objects.link(camera)
    camera.location = (0.1, -7.4, 3.6)
    direction = Vector((0.1, 0.0, 1.15)) - camera.location
    camera.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    scene.camera = camera
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.rotation_euler = (math.radians(40), 0.0, math.radians(30))
    scene.collection.objects.link(sun)


def build_scene() -> list[ChainSetup]:
    """Both rigs, their targets, floor, camera and light in the current (empty) file."""
    scene = current_scene()
    scene.frame_start, scene.frame_end = ARM_TARGET_KEYS[0][0], ARM_TARGET_KEYS[-1][0]
    add_floor()
    arm = build_robot_arm()
    tentacle = build_tentacle()
    arm_target = animated_target("ArmTarget", TARGET_RED, ARM_TARGET_KEYS)
    tentacle_target = animated_target("TentacleTarget", TARGET_GREEN, TENTACLE_TARGET_KEYS)
    add_camera_and_light(scene)
    return [
        ChainSetup(arm, "arm", ARM_BONES[-1], len(ARM_BONES), arm_target),
        ChainSetup(tentacle, "tentacle", tentacle_bone_names()[-1], TENTACLE_SEGMENTS, tentacle_target),
    ]
