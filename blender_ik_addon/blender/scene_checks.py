"""Checks of a chain's setup against the scene, with the messages users see.

Each raises :class:`.errors.RigSetupError` naming the chain, bone or object at fault:

* :func:`require_goals`: the target and pole (objects or bones) exist in the scene and do not move
  with the chain that follows them (feedback);
* :func:`find_conflicts`: chains that cannot be solved for how they share bones (or a name);
* :func:`refuse_drivers`: a driver that would override the solved rotation;
* :func:`require_usable`: targets at NaN, infinite or absurd places, chain bases of zero scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.types import FloatArray
from .dependencies import driver_paths, is_plain, moves_with
from .errors import RigSetupError
from .goals import Goal
from .grouping import group_refusal, sharing_groups
from .keys import bone_path
from .read import ChainBinding, chain_bone_names
from .spec import ChainSpec

if TYPE_CHECKING:
    from .solving import PreparedChain


def refuse_drivers(obj: Any, binding: ChainBinding, scaled: Sequence[str] | None = None) -> None:
    """A driver on a chain bone's rotation (or a stretching bone's scale: ``scaled``, by default the
    binding's stretching bones) overrides whatever is written or keyed there."""
    anim = obj.animation_data
    if anim is None or not len(anim.drivers):
        return
    prefixes = {bone_path(b.name): b.name for b in binding.bones}
    if scaled is None:
        chain = getattr(binding, "chain", None)
        scaled = [b.name for b, j in zip(binding.bones, chain.joints, strict=True) if j.stretch] if chain else []
    for name in scaled:
        prefixes.setdefault(bone_path(name), name)
    for index, path in enumerate(driver_paths(obj)):  # paths kept between calls: a rig may have hundreds
        if ".rotation_" not in path and not (scaled and path.endswith(".scale")):
            continue
        fcurve = anim.drivers[index]
        if fcurve.mute or not fcurve.driver.is_valid:
            continue
        for prefix, bone in prefixes.items():
            rest = path[len(prefix):]
            if path.startswith(prefix) and (rest.startswith("rotation_") or (rest == "scale" and bone in scaled)):
                raise RigSetupError(f"bone {bone!r}: a driver sets {path[len(prefix):]}[{fcurve.array_index}], so the "
                                    "solved pose would be overridden; remove or mute the driver")


def require_goals(spec: ChainSpec, scene: Any, rig: Any = None) -> tuple[Goal, Goal | None]:
    """The chain's target and pole (:class:`.goals.Goal`: an object, or a bone of an armature),
    checked to be in ``scene``, to name a bone the armature has, and not to move with the chain that
    follows them (:func:`_refuse_feedback`, when ``rig`` is given).

    A spec read from the settings carries the objects themselves (``target_object``/``pole_object``):
    they are used as they are, never looked up again by name (a linked library may bring another
    object of the same name). A script's spec that gives only names is looked up in the scene.
    """
    if not spec.target:
        raise RigSetupError(f"chain {spec.name!r} has no target object (set one; was it deleted?)")
    found: list[Goal | None] = []
    for role, name, held, bone, head_tail in (
            ("target", spec.target, spec.target_object, spec.target_bone, spec.target_head_tail),
            ("pole", spec.pole, spec.pole_object, spec.pole_bone, 0.0)):
        if name is None:
            found.append(None)
            continue
        obj = held if held is not None else scene.objects.get(name)
        if obj is None or not _in_scene(obj, scene):
            raise RigSetupError(f"chain {spec.name!r}: {role} object {name!r} is not in scene {scene.name!r}")
        if bone and obj.type != "ARMATURE":
            raise RigSetupError(f"chain {spec.name!r}: {role} {name!r} is not an armature, so it has no bone {bone!r}; "
                                "clear the bone or pick the armature")
        if bone and obj.pose.bones.get(bone) is None:
            raise RigSetupError(f"chain {spec.name!r}: {role} bone {bone!r} is not in armature {name!r} (renamed or "
                                "deleted?); pick the bone again")
        goal = Goal(obj, bone or None, min(max(float(head_tail), 0.0), 1.0))
        if rig is not None:
            _refuse_feedback(spec, role, goal, rig)
        found.append(goal)
    target = found[0]
    assert target is not None
    return target, found[1]


def _in_scene(obj: Any, scene: Any) -> bool:
    """``obj`` (the object itself, not its name) is in ``scene``. The name lookup answers at once in
    the usual case; only when another object holds that name (a linked one) are the scene's objects
    compared one by one."""
    named = scene.objects.get(obj.name)
    if named is not None and named.as_pointer() == obj.as_pointer():
        return True
    pointer = obj.as_pointer()
    return any(o.as_pointer() == pointer for o in scene.objects)


def _refuse_feedback(spec: ChainSpec, role: str, goal: Goal, rig: Any) -> None:
    """Refuse a target or pole that is the armature or that the chain's own pose moves.

    The pose moves the chain's bones and every bone below them, and with them anything that
    depends on such a bone by any route (:func:`.dependencies.moves_with`: a parent, a constraint,
    an Armature constraint's bone list, a helper object in between, a vertex parent on a deformed
    mesh, a driver reading the bone, a bone outside the chain constrained to it...): the chain would
    chase an object its own pose moves. An object parented to the armature *object*, or to a bone
    the chain does not move (above it or beside it), moves with the character, not with the chain:
    that is allowed. So is a control bone of the chain's own armature beside or above the chain.
    A chain that cannot be read is not checked here: reading it reports why.
    """
    obj = goal.obj
    same_rig = obj.as_pointer() == rig.as_pointer()
    if same_rig and goal.bone is None:
        raise RigSetupError(f"chain {spec.name!r}: its {role} is the armature {rig.name!r} itself, which the chain "
                            "moves; pick another object, or a control bone of the armature as its Bone")
    if goal.bone is None and is_plain(obj):
        return  # the usual target: nothing but its own keys moves it
    try:
        chain = set(chain_bone_names(rig, spec.tip_bone, spec.length))
    except RigSetupError:
        return
    if same_rig and goal.bone in chain:
        raise RigSetupError(f"chain {spec.name!r}: its {role} bone {goal.bone!r} is a bone of the chain, which would "
                            "chase itself; pick a control bone outside the chain")
    link = moves_with(obj, rig, chain, bone=goal.bone)
    if link is None:
        return
    if goal.bone is not None:
        what = f"bone {link.bone!r} of the chain" if link.bone is not None else f"the pose of armature {rig.name!r}"
        below = same_rig and _moved(rig, goal.bone, chain)
        fix = "parent it outside the chain" if below else "remove that link"
        raise RigSetupError(f"chain {spec.name!r}: {role} bone {goal.bone!r} of {obj.name!r} moves with {what} "
                            f"through {link.describe()}, so the chain would chase its own pose; {fix}")
    if obj.parent is not None and obj.parent.as_pointer() == rig.as_pointer() and obj.parent_type == "BONE" \
            and _moved(rig, obj.parent_bone, chain):
        raise RigSetupError(f"chain {spec.name!r}: {role} {obj.name!r} is parented to the armature "
                            f"{rig.name!r} and would move with the chain that follows it; unparent it")
    for con in obj.constraints:  # the direct case: a constraint of its own targets a moved bone
        source = getattr(con, "target", None)
        if con.type != "ARMATURE" and not con.mute and con.is_valid and source is not None \
                and source.as_pointer() == rig.as_pointer() and _moved(rig, getattr(con, "subtarget", ""), chain):
            raise RigSetupError(f"chain {spec.name!r}: {role} {obj.name!r} follows the armature {rig.name!r} "
                                f"through its constraint {con.name!r} and would move with the chain that follows "
                                "it; remove that constraint")
    what = f"bone {link.bone!r} of the chain" if link.bone is not None else f"the pose of armature {rig.name!r}"
    raise RigSetupError(f"chain {spec.name!r}: {role} {obj.name!r} moves with {what} through {link.describe()}, "
                        "so the chain would chase its own pose; remove that link")


def _moved(rig: Any, name: str, chain: set[str]) -> bool:
    """Bone ``name`` of ``rig`` is one of the ``chain`` bones or below one."""
    bone = rig.data.bones.get(name) if name else None
    return bone is not None and (name in chain or any(up.name in chain for up in bone.parent_recursive))


def find_conflicts(obj: Any, specs: list[ChainSpec]) -> dict[str, str]:
    """Chains that cannot be solved for how they share bones, or a name: chain name -> message.

    Chains that share bones are solved together (:mod:`.groups`); a group with a setting that
    solving together does not support yet (:func:`.grouping.group_refusal`) is refused, every
    member with the same message. So are chains with the same name (the list lets a name be typed
    twice): chains are told apart by name, so one of them would silently stand in for the other.
    """
    out: dict[str, str] = {}
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            out[spec.name] = (f"two chains of {obj.name!r} are named {spec.name!r}; chains are told apart by name, "
                              "so neither is solved: rename one")
        seen.add(spec.name)
    bones = _chain_bones(obj, specs)
    by_name = {spec.name: spec for spec in specs}
    for group in sharing_groups(bones):
        message = group_refusal([by_name[name] for name in group], bones)
        if message is not None:
            for name in group:
                out.setdefault(name, message)
    return out


def find_groups(obj: Any, specs: list[ChainSpec], conflicts: dict[str, str]) -> list[tuple[str, ...]]:
    """The groups of ``specs`` that share bones and are solved together (none of them refused)."""
    return [group for group in sharing_groups(_chain_bones(obj, specs))
            if not any(name in conflicts for name in group)]


def _chain_bones(obj: Any, specs: list[ChainSpec]) -> dict[str, list[str]]:
    bones: dict[str, list[str]] = {}
    for spec in specs:
        try:
            bones.setdefault(spec.name, chain_bone_names(obj, spec.tip_bone, spec.length))
        except RigSetupError:
            continue  # reported when that chain is solved
    return bones


_FAR = 1e15  # world units: a target farther than this is a typo or a clamped infinity, not a goal


def require_usable(prepared: PreparedChain, bases: FloatArray, targets: FloatArray, poles: FloatArray | None) -> None:
    """Refuse NaN, infinite or absurdly far targets and poles, and chain bases of zero scale."""
    spec = prepared.spec
    if len(targets) == 1 and usable_frame(bases[0], targets[0], None if poles is None else poles[0]):
        return  # a live frame: sixteen floats checked in Python cost less than the numpy calls
    for role, name, matrices in (("target", _named(spec.target, spec.target_bone), targets),
                                 ("pole", _named(spec.pole, spec.pole_bone), poles)):
        if matrices is None:
            continue
        if np.isfinite(matrices).all() and float(np.abs(matrices[:, :3, 3]).max()) <= _FAR:
            continue  # the usual case, in two numpy calls
        where = matrices[:, :3, 3]
        bad = ~np.all(np.isfinite(matrices), axis=(1, 2)) | np.any(np.abs(where) > _FAR, axis=1)
        shown = ", ".join(f"{v:.6g}" for v in where[int(np.argmax(bad))])
        raise RigSetupError(f"chain {spec.name!r}: {role} {name} is at ({shown}), which is not a usable "
                            f"location (NaN, infinite or farther than {_FAR:g}); move it")
    if not np.isfinite(bases).all() or float(np.abs(np.linalg.det(bases[:, :3, :3])).min()) < 1e-12:
        raise RigSetupError(f"chain {spec.name!r}: armature {prepared.binding.object_name!r} (or a bone above the "
                            "chain) has a zero scale, so the chain has no size to solve; give it a non-zero scale")


def _named(obj: str | None, bone: str | None) -> str:
    return f"bone {bone!r} of {obj!r}" if bone else repr(obj)


def usable_frame(base: FloatArray, target: FloatArray, pole: FloatArray | None) -> bool:
    """True if one frame passes :func:`require_usable` (False: let it find and name the fault)."""
    for matrix in (target, pole):
        if matrix is None:
            continue
        values = matrix.ravel().tolist()
        if not all(map(math.isfinite, values)) or max(abs(values[3]), abs(values[7]), abs(values[11])) > _FAR:
            return False
    values = base.ravel().tolist()
    if not all(map(math.isfinite, values)):
        return False
    a, b, c, _, d, e, f, _, g, h, i = values[:11]
    return bool(abs(a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)) >= 1e-12)
