"""Settings saved in the .blend: ``Object.ik_chains`` (an ``IKCHAINS_PG_rig``) on armature objects.

Trade-off: settings live on the object, not the Armature data, so two objects sharing one
Armature have separate chains (targets are per object anyway).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    FloatVectorProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)
from bpy.types import PropertyGroup

from ..blender import replay
from ..blender.events import solve_object_now
from ..blender.settings import rig_settings
from ..core.options import DEFAULTS

# Library overrides keep only overridable properties: without these flags, chain settings edited on an
# overridden rig would be reset from the library when the file is opened again.
OVERRIDABLE: set[Literal["LIBRARY_OVERRIDABLE"]] = {"LIBRARY_OVERRIDABLE"}
# Chains added on a library override are kept (USE_INSERTION).
OVERRIDABLE_COLLECTION: set[Literal["LIBRARY_OVERRIDABLE", "USE_INSERTION"]] = {"LIBRARY_OVERRIDABLE", "USE_INSERTION"}

SOLVERS = (
    ("LM", "Levenberg-Marquardt", "Damped least squares with analytic Jacobians: fast, precise (default)"),
    ("TUTORIAL", "Tutorial (gradient descent)", "Finite-difference gradient descent, as in Alan Zucconi's "
     "tutorial: slower, kept for comparison"),
)

POLE_RULES = (
    ("BEND", "Bend Toward Pole", "The interior joints bend toward the pole; the rest of the pose stays nearest the "
     "comfort (or rest) pose"),
    ("TURN", "Turn Toward Pole", "As Blender's IK constraint: the whole chain turns about its root so that its "
     "comfort (or rest) pose bends toward the pole, then reaches from there, so the bones roll with the pole. Needs "
     "a root bone free to turn every way (no limits or locks) and a comfort pose that bends; otherwise the chain "
     "bends toward the pole"),
)


def _resolve_now(self: Any, context: Any) -> None:
    """Re-solve the owner's live chains when a setting changes, so the viewport follows at once
    (and drop the kept frame-pass replays: they were made with the old settings)."""
    replay.invalidate()
    solve_object_now(self.id_data)


class IKCHAINS_PG_comfort_bone(PropertyGroup):
    """One bone's comfort rotation. ``name`` is the bone name."""

    rotation: FloatVectorProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Rotation", size=4, default=(1.0, 0.0, 0.0, 0.0), subtype="QUATERNION",
        description="Captured pose rotation (quaternion w, x, y, z), whatever the bone's rotation mode")


class IKCHAINS_PG_kept_rotation(PropertyGroup):
    """One bone's rotation channel as it was before adoption (``name`` is the bone name), put back
    by Restore IK Constraints: Blender's IK starts from it."""

    mode: StringProperty(override=OVERRIDABLE, name="Rotation Mode")  # type: ignore[valid-type]
    values: FloatVectorProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Values", size=4, description="The channel's values in that mode (3 for Euler)")


class IKCHAINS_PG_chain(PropertyGroup):
    """One IK chain: a tip bone and a length, a target, solver and comfort settings."""

    tip_bone: StringProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Tip Bone", description="Last bone of the chain: its tail reaches for the target", update=_resolve_now)
    chain_length: IntProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Chain Length", default=2, min=0, max=255, update=_resolve_now,
        description="Number of bones in the chain, tip included (0: up to the root)")
    target: PointerProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        type=bpy.types.Object, name="Target", update=_resolve_now,
        description="Object whose location the chain's tip reaches for (usually an Empty), or the armature "
                    "that holds the target bone (this one for its own control bones)")
    target_bone: StringProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Bone", update=_resolve_now,
        description="With an armature target: the bone the tip reaches for (its head, or its tail by Head/Tail)")
    target_head_tail: FloatProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Head/Tail", default=0.0, min=0.0, max=1.0, subtype="FACTOR", update=_resolve_now,
        description="Where on the target bone the goal lies: 0 its head, 1 its tail")
    pole: PointerProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        type=bpy.types.Object, name="Pole", update=_resolve_now,
        description="Optional object the chain bends toward, or the armature that holds the pole bone")
    pole_bone: StringProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Bone", update=_resolve_now,
        description="With an armature pole: the bone (its head) the chain bends toward")
    pole_angle: FloatProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Pole Angle", default=0.0, min=-math.pi, max=math.pi, subtype="ANGLE", update=_resolve_now,
        description="Turns the bend direction about the line from the chain's root to the target (0: toward the pole)")
    pole_rule: EnumProperty(  # type: ignore[valid-type]
        override=OVERRIDABLE, items=POLE_RULES, name="Pole Rule", default="BEND", update=_resolve_now)
    use_stretch: BoolProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Stretch", default=False, update=_resolve_now,
        description="Bones with an IK Stretch above 0 (Bone properties > Inverse Kinematics) may scale along their "
                    "length to reach, as with Blender's IK constraint")
    weight: FloatProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Weight", default=1.0, min=0.0, max=1.0, subtype="FACTOR", update=_resolve_now,
        description="For chains that share bones (solved together): how much this chain's target counts when the "
                    "targets cannot all be reached at once, as Blender's IK Weight Position (0: it does not pull)")
    influence: FloatProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Influence", default=1.0, min=0.0, max=1.0, subtype="FACTOR", update=_resolve_now,
        description="Blend of the solved rotations with the bones' own keys (1: all IK, 0: the keys); keyable, "
                    "for IK/FK switches")
    enabled: BoolProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Live", default=True, update=_resolve_now,
        description="Solve this chain on every frame change and while its target moves")
    solver: EnumProperty(  # type: ignore[valid-type]
        override=OVERRIDABLE, items=SOLVERS, name="Solver", default="LM", update=_resolve_now)
    max_iterations: IntProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Iterations", default=DEFAULTS.max_iterations, min=1, max=10000, update=_resolve_now,
        description="Iteration cap per frame (tutorial: sweeps over all joints)")
    restarts: IntProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Restarts", default=DEFAULTS.restarts, min=0, max=64, update=_resolve_now,
        description="Levenberg-Marquardt: extra attempts from perturbed poses when a frame stalls short of the "
                    "target (each can cost a full solve; frames out of reach pay them all)")
    tolerance: FloatProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Tolerance", default=DEFAULTS.tolerance, min=1e-9, max=1.0, precision=5, step=0.01, subtype="DISTANCE",
        update=_resolve_now, description="Tip distance to the target counted as reached")
    learning_rate: FloatProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Learning Rate", default=DEFAULTS.learning_rate, min=1e-6, max=10.0, update=_resolve_now,
        description="Tutorial solver: angle step per unit of gradient")
    sampling_distance: FloatProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Sampling Distance", default=DEFAULTS.sampling_distance, min=1e-7, max=0.5, precision=4, subtype="ANGLE",
        update=_resolve_now, description="Tutorial solver: finite-difference step")
    follow_orientation: BoolProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Follow Orientation", default=False, update=_resolve_now,
        description="Also turn the tip bone to the target's rotation")
    orientation_weight: FloatProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Orientation Weight", default=DEFAULTS.orientation_weight, min=0.0, max=100.0, update=_resolve_now)
    pole_weight: FloatProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Pole Weight", default=DEFAULTS.pole_weight, min=0.0, max=10.0, update=_resolve_now)
    comfort_bones: CollectionProperty(  # type: ignore[valid-type]
        override=OVERRIDABLE_COLLECTION, type=IKCHAINS_PG_comfort_bone)
    comfort_weight: FloatProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Comfort Weight", default=0.0, min=0.0, max=10.0, update=_resolve_now,
        description="With a pole: how much the comfort pose counts beside the pole's bend (0: the pole decides). "
                    "Without one, every frame gets the reaching pose nearest the comfort pose at any weight")
    comfort_blend: FloatProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Comfort Blend", default=0.0, min=0.0, max=1.0, subtype="FACTOR", update=_resolve_now,
        description="0: pure IK; 1: the comfort pose")
    adopted_bone: StringProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Adopted From Bone", description="The bone whose Blender IK constraint this chain was adopted from "
        "(Adopt IK Constraints; empty for chains made otherwise)")
    adopted_constraint: StringProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Adopted Constraint", description="The name of the IK constraint this chain was adopted from; "
        "Restore IK Constraints un-mutes it")
    adopted_pose: CollectionProperty(  # type: ignore[valid-type]
        override=OVERRIDABLE_COLLECTION, type=IKCHAINS_PG_kept_rotation)
    follow_mode: BoolProperty(override=OVERRIDABLE,  # type: ignore[valid-type]
        name="Follow Mode", default=False, update=_resolve_now,
        description="The tutorial's look: one gradient sweep per frame from the current pose. History-dependent: "
                    "the pose depends on the frames played before")


class IKCHAINS_PG_rig(PropertyGroup):
    """The chains of one armature object."""

    chains: CollectionProperty(override=OVERRIDABLE_COLLECTION, type=IKCHAINS_PG_chain)  # type: ignore[valid-type]
    active_index: IntProperty(  # type: ignore[valid-type]
        override=OVERRIDABLE, name="Active Chain", default=0, min=0)

    @property
    def active_chain(self) -> IKCHAINS_PG_chain | None:
        """The chain selected in the list, or None."""
        if 0 <= self.active_index < len(self.chains):
            chain: IKCHAINS_PG_chain = self.chains[self.active_index]
            return chain
        return None


def get_rig_settings(obj: Any) -> IKCHAINS_PG_rig | None:
    """The armature object's ``IKCHAINS_PG_rig``, or None for other objects."""
    if obj is None or obj.type != "ARMATURE":
        return None
    settings: IKCHAINS_PG_rig | None = rig_settings(obj)  # registered at run time
    return settings


def checked_rig_settings(obj: Any) -> IKCHAINS_PG_rig:
    """:func:`get_rig_settings` for an object a ``poll()`` has checked to be an armature."""
    settings = get_rig_settings(obj)
    assert settings is not None, "poll() lets only armatures through"
    return settings


def checked_active_chain(obj: Any) -> IKCHAINS_PG_chain:
    """The active chain of an armature a ``poll()`` has checked to have one."""
    chain = checked_rig_settings(obj).active_chain
    assert chain is not None, "poll() lets only rigs with an active chain through"
    return chain


classes = (IKCHAINS_PG_comfort_bone, IKCHAINS_PG_kept_rotation, IKCHAINS_PG_chain, IKCHAINS_PG_rig)
