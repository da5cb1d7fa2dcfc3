"""Adopt Blender's own IK constraints as chains, and give them back (issue 12).

:func:`adopt_constraints` reads an armature's IK constraints and makes one chain per constraint that
is on (not muted), with its settings carried over (below); it mutes the constraint and records on
the chain which constraint it came from and the chain bones' rotation channels as they were, so
:func:`restore_constraints` can un-mute exactly those constraints, put those channels back and
remove the adopted chains. What a chain cannot carry is listed by constraint, never dropped
silently; a constraint that cannot be adopted at all is refused by name and left as it is.

Carried over (constraint -> chain):

* the owner bone and Chain Length (``chain_count``, 0 = to the root) -> Tip Bone and Chain Length;
  with Use Tail off, the tip is the owner's parent, whose tail is the owner's head (the owner must
  be connected to it);
* Target and its bone (``subtarget``; Blender's IK reaches for the bone's head) -> Target, Bone,
  Head/Tail 0; Pole and its bone -> Pole, Bone;
* Pole Angle -> Pole Angle (converted, below) with the pole rule "Turn Toward Pole";
* Iterations -> Iterations; Rotation and its Weight (``use_rotation``, ``orient_weight``) ->
  Follow Orientation, Orientation Weight; Stretch -> Stretch; Influence -> Influence.

The pole angle: Blender's IK turns the chain about its root so that the root bone's X axis turned
by ``pole_angle`` toward its Z axis (``x cos a + z sin a``) faces the pole (``ConstrainPoleVector``
in intern/iksolver). The add-on's Pole Angle turns the chain's *bend direction* (see
``solving.turn_poles``), so the conversion is the angle, about the rest pose's root -> tip line, from
that axis to the rest pose's bend (its interior joints' offsets from the line): with it and the
pole rule "turn" (``solving.swivel_rotations``), the adopted chain lands on Blender's pose (measured
in ``tests/blender/test_adopt.py`` and ``scripts/bench/adopt_cases.py``). It is read from the
bones' rest geometry, where Blender starts from the bones' own pose: a chain posed away from rest
at adoption is noted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np

from . import guard, status
from .errors import RigSetupError
from .events import solve_object_now
from .keys import action_paths, bone_path
from .read import chain_bone_names, read_chain, require_armature
from .settings import remove_chain, rig_settings, unique_name

_KEPT_CHANNELS = {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}
_ITASC_ONLY = ("lock_location_x", "lock_location_y", "lock_location_z", "lock_rotation_x", "lock_rotation_y",
               "lock_rotation_z")
_MAX_ITERATIONS = 10000  # the chain setting's range


@dataclass(frozen=True)
class AdoptReport:
    """What :func:`adopt_constraints` did, by constraint (``constraint 'IK' on bone 'forearm.L'``).

    Attributes:
        adopted: Constraint -> the chain made from it (the constraint is now muted).
        not_carried: Constraint (adopted) -> what of it the chain does not carry, one line each.
        refused: Constraint -> why it was not adopted (it is left as it was, on).
        skipped: Constraints that were muted already: not adopted, left muted.
    """

    adopted: dict[str, str] = field(default_factory=dict)
    not_carried: dict[str, tuple[str, ...]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: ``Adopted 2 IK constraint(s) as chains, refused 1, 1 muted one(s) left alone``."""
        parts = [f"Adopted {len(self.adopted)} IK constraint(s) as chains"]
        if self.refused:
            parts.append(f"refused {len(self.refused)}")
        if self.skipped:
            parts.append(f"{len(self.skipped)} muted one(s) left alone")
        if self.not_carried:
            parts.append(f"{sum(map(len, self.not_carried.values()))} setting(s) not carried")
        return ", ".join(parts)

    def lines(self) -> list[str]:
        """The summary, then one line per chain made, per setting not carried and per refusal."""
        out = [self.summary()]
        out += [f"{con}: chain {chain!r}" for con, chain in self.adopted.items()]
        out += [f"{con}: not carried: {note}" for con, notes in self.not_carried.items() for note in notes]
        out += [f"{con}: not adopted: {why}" for con, why in self.refused.items()]
        return out


@dataclass(frozen=True)
class RestoreReport:
    """What :func:`restore_constraints` did.

    Attributes:
        restored: Constraint -> the adopted chain removed (the constraint is on again).
        kept: Chain -> why it was kept (its constraint is gone).
    """

    restored: dict[str, str] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: ``Restored 2 IK constraint(s)`` and the chains kept."""
        text = f"Restored {len(self.restored)} IK constraint(s) and removed their chains"
        return text + (f"; kept {len(self.kept)} chain(s) whose constraint is gone" if self.kept else "")

    def lines(self) -> list[str]:
        """The summary, then one line per chain kept."""
        return [self.summary(), *(f"chain {chain!r}: {why}" for chain, why in self.kept.items())]


def label(bone: str, constraint: str) -> str:
    """How reports name a constraint."""
    return f"constraint {constraint!r} on bone {bone!r}"


@dataclass
class _Plan:
    """One constraint turned into chain settings (before anything is written)."""

    bone: str
    constraint: str
    tip: str
    length: int
    bones: list[str]
    values: dict[str, Any]
    notes: list[str]


def adopt_constraints(obj: Any) -> AdoptReport:
    """Make one chain per IK constraint of ``obj`` that is on, and mute those constraints.

    Each chain is named ``"<bone>/<constraint>"`` and is live; the rig is solved at once, so the pose
    stays where Blender's IK had it. Constraints that are muted are left alone. Refused by name, and
    left on: a target or pole (object or bone) that is gone, a target or pole inside the chain, a
    chain that would share bones with another chain or adopted constraint (shared chains are not
    supported), Position off, Distance mode, a driven or keyed Mute, Use Tail off on a bone not
    connected to its parent, a chain the add-on cannot read (its message).

    Raises:
        RigSetupError: ``obj`` is not an armature, or the add-on is not registered.
    """
    settings = _settings_of(obj)
    adopted_from = {(c.adopted_bone, c.adopted_constraint): c.name for c in settings.chains if c.adopted_constraint}
    refused: dict[str, str] = {}
    skipped: list[str] = []
    plans: list[_Plan] = []
    for pbone in obj.pose.bones:
        for con in pbone.constraints:
            if con.type != "IK":
                continue
            name = label(pbone.name, con.name)
            if con.mute:
                skipped.append(name)
                continue
            if (pbone.name, con.name) in adopted_from:
                refused[name] = (f"already adopted as chain {adopted_from[pbone.name, con.name]!r} (it was turned on "
                                 "again by hand); mute it, or remove that chain first")
                continue
            try:
                plans.append(_plan(obj, pbone, con))
            except RigSetupError as err:
                refused[name] = str(err)
    plans = _without_shared(obj, settings, plans, refused)
    report = AdoptReport({}, {}, refused, tuple(skipped))
    with guard.suspended():  # no live solve of half-filled settings
        for plan in plans:
            _adopt(obj, settings, plan, report)
    obj.update_tag()
    solve_object_now(obj)
    return report


def restore_constraints(obj: Any, names: Sequence[str] | None = None) -> RestoreReport:
    """Undo :func:`adopt_constraints`: un-mute every constraint a chain of ``obj`` (or each chain of
    ``names``) was adopted from, put its bones' rotation channels back as they were at adoption, and
    remove the chain (keys it baked stay). A chain whose constraint is gone is kept and reported.

    Raises:
        RigSetupError: ``obj`` is not an armature, or the add-on is not registered.
    """
    settings = _settings_of(obj)
    report = RestoreReport()
    with guard.suspended():
        adopted = [c.name for c in settings.chains if c.adopted_constraint]
        for chain_name in [name for name in adopted if names is None or name in names]:
            index = settings.chains.find(chain_name)
            chain = settings.chains[index]
            pbone = obj.pose.bones.get(chain.adopted_bone)
            con = pbone.constraints.get(chain.adopted_constraint) if pbone is not None else None
            if con is None:
                gone = label(chain.adopted_bone, chain.adopted_constraint)
                report.kept[chain_name] = f"its {gone} is gone (renamed or removed), so the chain is kept"
                continue
            con.mute = False
            for kept in chain.adopted_pose:
                _put_rotation(obj.pose.bones.get(kept.name), kept.mode, tuple(kept.values))
            report.restored[label(chain.adopted_bone, chain.adopted_constraint)] = chain_name
            status.clear_status(obj.name, chain_name)
            remove_chain(obj, index)
    obj.update_tag()
    return report


def _settings_of(obj: Any) -> Any:
    """The armature's chain settings; raises :class:`RigSetupError` for another object, or when the
    add-on is not registered."""
    require_armature(obj)
    settings = rig_settings(obj)
    if settings is None:
        raise RigSetupError("the IK Chains add-on is not registered (no chain settings on objects)")
    return settings


def blender_pole_angle(obj: Any, bones: list[str], angle: float) -> float | None:
    """The add-on's Pole Angle for Blender's ``angle`` on the chain ``bones`` (root first, the last
    one's tail the tip), from their rest geometry (see the module doc); None if the rest pose is
    straight (no bend to measure from)."""
    data = obj.data.bones
    root = data[bones[0]]
    head = np.array(root.head_local, dtype=np.float64)
    line = np.array(data[bones[-1]].tail_local, dtype=np.float64) - head
    axis = line / np.linalg.norm(line)
    basis = np.array(root.matrix_local, dtype=np.float64)[:3, :3]
    up = basis[:, 0] * math.cos(angle) + basis[:, 2] * math.sin(angle)
    up -= (up @ axis) * axis
    bend = np.zeros(3)
    for name in bones[1:]:
        offset = np.array(data[name].head_local, dtype=np.float64) - head
        bend += offset - (offset @ axis) * axis
    if np.linalg.norm(bend) < 1e-6 * np.linalg.norm(line) or np.linalg.norm(up) < 1e-9:
        return None
    return math.atan2(float(axis @ np.cross(up, bend)), float(up @ bend))


def _plan(obj: Any, pbone: Any, con: Any) -> _Plan:
    """The chain settings for one constraint; raises :class:`RigSetupError` with the reason to refuse."""
    animated = _animated(obj, con)
    if "mute" in animated:
        raise RigSetupError(f"its Mute is {animated['mute']}, so muting it would not hold; remove that "
                            "animation first (an IK/FK switch: adopt the rig's constraints one way)")
    if con.ik_type == "DISTANCE":
        raise RigSetupError("it is in Distance mode (iTaSC), which keeps the tip at a distance; chains only reach")
    if not con.use_location:
        raise RigSetupError("its Position is off (only rotation is followed); chains always reach for the location")
    if con.use_tail:
        tip, length = pbone.name, int(con.chain_count)
    else:
        if pbone.parent is None or not pbone.bone.use_connect:
            raise RigSetupError("Use Tail is off and the bone is not connected to a parent, so no bone's tail lies "
                                "at its head; connect it, or turn Use Tail on")
        tip, length = pbone.parent.name, int(con.chain_count)
    bones = chain_bone_names(obj, tip, length)
    values: dict[str, Any] = {"tip_bone": tip, "chain_length": length}
    values.update(_goal(obj, con, "target", con.target, con.subtarget, bones))
    notes: list[str] = []
    if con.pole_target is not None:
        values.update(_goal(obj, con, "pole", con.pole_target, con.pole_subtarget, bones))
        if len(bones) < 2:
            notes.append("a pole on a one-bone chain: the chain has no joint to bend; the pole is kept, doing nothing")
        converted = blender_pole_angle(obj, bones, float(con.pole_angle)) if len(bones) > 1 else 0.0
        if converted is None:
            converted = 0.0
            notes.append(f"Pole Angle {math.degrees(con.pole_angle):.1f}°: the chain is straight in its rest pose, "
                         "so its bend direction (which the pole angle turns) cannot be told; the chain bends toward "
                         "the pole (set Pole Angle by eye)")
        values["pole_angle"] = converted
        values["pole_rule"] = "TURN"
    elif con.pole_subtarget:
        raise RigSetupError(f"its pole bone {con.pole_subtarget!r} has no pole armature (the pole object is gone)")
    elif len(bones) > 1:  # without a pole, Blender's pose depends on the pose each frame starts from
        values["comfort"] = _evaluated_rotations(obj, bones)
        notes.append("no pole: Blender's pose then depends on the pose each frame starts from, the chain's on its "
                     "comfort pose, captured from Blender's pose at this frame (no jump here; elsewhere the poses "
                     "may differ: add a pole for a match)")
    if not con.is_valid:
        raise RigSetupError("Blender marks it invalid (red in the constraint stack); fix its targets first")
    values["max_iterations"] = max(1, min(int(con.iterations), _MAX_ITERATIONS))
    values["follow_orientation"] = bool(con.use_rotation)
    values["weight"] = float(con.weight)  # Weight Position: counts where chains share bones (groups.py)
    if con.use_rotation:
        values["orientation_weight"] = min(max(float(con.orient_weight), 0.0), 100.0)
    values["use_stretch"] = bool(con.use_stretch)
    values["influence"] = float(con.influence)
    if con.influence < 1.0 and not _keyed(obj, bones):
        notes.append(f"Influence {con.influence:g} blends with the bones' keys, and they have none: the chain blends "
                     "with the rest pose where Blender blended with the current pose (key the pose first)")
    notes += _not_carried(obj, con, animated)
    notes += _posed_away(obj, bones)
    return _Plan(pbone.name, con.name, tip, length, bones, values, notes)


def _evaluated_rotations(obj: Any, bones: list[str]) -> dict[str, tuple[float, ...]]:
    """Each bone's rotation as Blender evaluates it now (its IK constraint on), as a channel value:
    the quaternion of its local (rest-relative) pose."""
    obj_eval = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    out = {}
    for name in bones:
        pbone = obj_eval.pose.bones[name]
        local = obj_eval.convert_space(pose_bone=pbone, matrix=pbone.matrix, from_space="POSE", to_space="LOCAL")
        out[name] = tuple(local.to_quaternion())
    return out


def _keyed(obj: Any, bones: list[str]) -> bool:
    """Some rotation channel of ``bones`` has keys in the armature's action."""
    paths = action_paths(obj.animation_data.action) if obj.animation_data and obj.animation_data.action else set()
    return any(path.startswith(bone_path(b, "rotation_")) for path in paths for b in bones)


def _goal(obj: Any, con: Any, role: str, target: Any, bone: str, chain: list[str]) -> dict[str, Any]:
    """The chain's target or pole settings, refusing one that is gone or inside the chain."""
    if target is None:
        gone = f" (its bone {bone!r} is left without it)" if bone else ""
        raise RigSetupError(f"its {role} is gone: no {role} object{gone}; set one or remove the constraint")
    if target.type == "ARMATURE" and bone:
        if target.pose is None or target.pose.bones.get(bone) is None:
            raise RigSetupError(f"its {role} bone {bone!r} is gone from armature {target.name!r} (renamed or "
                                "deleted?); pick it again")
        if target.as_pointer() == obj.as_pointer():
            inside = [b for b in (bone, *(p.name for p in obj.data.bones[bone].parent_recursive)) if b in chain]
            if inside:
                where = "is a bone of" if inside[0] == bone else f"hangs below {inside[0]!r} of"
                raise RigSetupError(f"its {role} bone {bone!r} {where} its own chain, so the chain would chase "
                                    "itself; use a control bone outside the chain")
        return {role: target, f"{role}_bone": bone}
    if target.as_pointer() == obj.as_pointer():
        raise RigSetupError(f"its {role} is the armature {obj.name!r} itself, with no bone; pick a control bone")
    return {role: target, f"{role}_bone": ""}


def _not_carried(obj: Any, con: Any, animated: dict[str, str]) -> list[str]:
    """What of ``con`` the chain does not carry, one line each."""
    notes = []
    if obj.pose.ik_solver == "ITASC":
        notes.append("the armature's iTaSC solver settings (precision, iterations, solver mode, feedback): the chain "
                     "is solved by the add-on's solver")
    if con.reference_axis == "TARGET":
        notes.append("Axis Reference 'Target' (iTaSC)")
    free = [name for name in _ITASC_ONLY if not getattr(con, name)]  # True: the axis is constrained (default)
    if free:
        notes.append(f"iTaSC axes left unconstrained ({', '.join(free)}): the chain reaches on every axis")
    for prop, how in animated.items():
        notes.append(f"{prop} is {how}: the chain takes its value at this frame")
    return notes


def _animated(obj: Any, con: Any) -> dict[str, str]:
    """Properties of ``con`` that a driver or an F-curve animates: name -> ``"driven"``/``"keyed"``."""
    anim = obj.animation_data
    if anim is None:
        return {}
    prefix = con.path_from_id() + "."
    found = {d.data_path[len(prefix):]: "driven" for d in anim.drivers if d.data_path.startswith(prefix)}
    for action in (anim.action, *(s.action for t in anim.nla_tracks for s in t.strips)):
        if action is None:
            continue
        for path in action_paths(action):
            if path.startswith(prefix):
                found.setdefault(path[len(prefix):], "keyed")
    return found


def _posed_away(obj: Any, bones: list[str]) -> list[str]:
    """A note when chain bones are rotated away from rest: Blender's IK starts from their pose, the
    chain's pole angle is converted from the rest pose."""
    posed = [name for name in bones if _rotated(obj.pose.bones[name])]
    if not posed:
        return []
    return [f"bone(s) {', '.join(map(repr, posed))} are rotated away from their rest pose, where Blender's IK "
            "starts; the chain starts from the rest pose (capture a comfort pose if the result differs)"]


def _rotated(pbone: Any) -> bool:
    mode = pbone.rotation_mode
    if mode == "QUATERNION":
        return bool(any(abs(v - r) > 1e-6 for v, r in zip(pbone.rotation_quaternion, (1, 0, 0, 0), strict=True)))
    if mode == "AXIS_ANGLE":
        return bool(abs(pbone.rotation_axis_angle[0]) > 1e-6)
    return any(abs(v) > 1e-6 for v in pbone.rotation_euler)


def _without_shared(obj: Any, settings: Any, plans: list[_Plan], refused: dict[str, str]) -> list[_Plan]:
    """Plans whose bones no chain and no other plan holds; the others are refused by name."""
    existing: dict[str, set[str]] = {}
    for chain in settings.chains:
        try:
            existing[chain.name] = set(chain_bone_names(obj, chain.tip_bone, int(chain.chain_length)))
        except RigSetupError:
            continue
    kept = []
    for plan in plans:
        mine = set(plan.bones)
        clash = [f"chain {name!r}" for name, bones in existing.items() if bones & mine]
        clash += [label(o.bone, o.constraint) for o in plans if o is not plan and set(o.bones) & mine]
        if clash:
            refused[label(plan.bone, plan.constraint)] = (
                f"its chain {', '.join(map(repr, plan.bones))} shares bones with {', '.join(clash)}; adopting "
                "IK constraints that share bones (Blender's tree IK) is not supported yet: add those chains by "
                "hand (chains that share bones are solved together, with a Weight each)")
        else:
            kept.append(plan)
    return kept


def _adopt(obj: Any, settings: Any, plan: _Plan, report: AdoptReport) -> None:
    """Mute the constraint, make the chain, check it reads; on a setup error undo both and refuse."""
    name = label(plan.bone, plan.constraint)
    con = obj.pose.bones[plan.bone].constraints[plan.constraint]
    con.mute = True
    try:
        read_chain(obj, plan.tip, plan.length)
    except RigSetupError as err:
        con.mute = False
        report.refused[name] = str(err)
        return
    taken = {c.name for c in settings.chains}
    chain_name = unique_name(taken, f"{plan.bone}/{plan.constraint}")
    chain = settings.chains.add()
    chain.name = chain_name
    for key, value in plan.values.items():
        if key == "comfort":  # bone -> quaternion: the comfort pose's collection
            for bone, rotation in value.items():
                item = chain.comfort_bones.add()
                item.name, item.rotation = bone, rotation
        else:
            setattr(chain, key, value)
    chain.adopted_bone, chain.adopted_constraint = plan.bone, plan.constraint
    for bone in plan.bones:
        pbone = obj.pose.bones[bone]
        kept = chain.adopted_pose.add()
        kept.name, kept.mode = bone, pbone.rotation_mode
        values = tuple(getattr(pbone, _KEPT_CHANNELS.get(pbone.rotation_mode, "rotation_euler")))
        kept.values = (*values, 0.0)[:4]
    settings.active_index = len(settings.chains) - 1
    report.adopted[name] = chain_name
    if plan.notes:
        report.not_carried[name] = tuple(plan.notes)


def _put_rotation(pbone: Any, mode: str, values: tuple[float, ...]) -> None:
    """Write a kept rotation channel back (in the mode it was kept in, if the bone still has it)."""
    if pbone is None or pbone.rotation_mode != mode:
        return
    channel = _KEPT_CHANNELS.get(mode, "rotation_euler")
    setattr(pbone, channel, values if channel != "rotation_euler" else values[:3])

