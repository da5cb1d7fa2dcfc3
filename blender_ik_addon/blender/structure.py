"""A chain read from the rig once, and read again only when something it depends on changes.

Reading a chain (numpy work plus the core's validation) costs far more than solving it, and the
live pass solves every frame. The cache keeps each chain's :class:`.read.ChainBinding` and decides
per frame whether it still holds.

**What a chain depends on** (its *signature*): bone hierarchy, rest matrices and lengths, bone
flags, rotation modes, locks, IK settings (``ik_stretch`` included), pose location and scale, every
constraint on the chain bones and Blender IK constraints below the chain root, and the value each
*locked* axis keeps. The rotations of free axes are not part of it: the solve writes them, and
reading them back must not count as a change (that made the cache miss on every frame of every rig
with an IK-locked bone). Nor is the scale of a bone that stretches (the chain's Stretch on and its
``ik_stretch`` above 0): the solve writes it too. A chain is kept per Stretch switch.

**When it is checked.** Comparing the whole signature costs tens of microseconds a bone, so the
live pass trusts Blender's own change tracking where it can:

* An edit of a bone, pose bone or constraint (in the UI or from Python, any mode) tags the
  *Armature* datablock; playing animation and our own bulk pose writes (``foreach_set`` and
  ``Object.update_tag``) tag only the Object. The handlers see the tagged IDs in
  ``depsgraph.updates`` (``depsgraph_update_post`` for evaluations the UI or a script caused,
  ``frame_change_post`` for edits made just before a ``frame_set``) and call :func:`note_updates`,
  which bumps the armature's *edit generation*. A chain whose entry was checked at the current
  generation is taken as it is.
* Values animation can change on any frame are checked on every frame: when the armature has
  animation data, the locked axes' values; and when an F-curve or driver animates anything else
  of the chain's bones (limits, locks, constraints, location...), the whole signature.
* Callers outside the handlers (``key_chains``, scripts) pass ``trust_edits=False``: the whole
  signature is compared on every call.

A file load or unregister forgets everything (:func:`clear`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .keys import action_paths
from .read import ChainBinding, chain_bone_names, current_angles, read_chain, subtree

_MAX_ENTRIES = 512
_IK_TYPES = ("IK", "SPLINE_IK")
_LIMIT_FIELDS = ("owner_space", "euler_order", "use_limit_x", "use_limit_y", "use_limit_z", "min_x", "min_y",
                 "min_z", "max_x", "max_y", "max_z")
_IK_FIELDS = ("lock_ik_x", "lock_ik_y", "lock_ik_z", "use_ik_limit_x", "use_ik_limit_y", "use_ik_limit_z",
              "ik_min_x", "ik_min_y", "ik_min_z", "ik_max_x", "ik_max_y", "ik_max_z", "ik_stretch")
LOCKED_TOLERANCE = 1e-6
"""Radians: a locked axis whose value moved by less (a round trip through a float32 quaternion)
keeps the chain as read."""


@dataclass
class _Entry:
    binding: ChainBinding
    signature: tuple[Any, ...]
    armature: int  # the Armature datablock's pointer (an object can be given other armature data)
    generation: int  # that armature's edit generation when the entry was last checked
    animation: tuple[Any, ...]  # which animation data the rig had then (see animation_key)
    animated: bool  # an F-curve or driver animates a signature value of this chain: check every frame


_CACHE: dict[tuple[str, str, int, bool], _Entry] = {}
_GENERATION: dict[str, int] = {}  # armature datablock name -> edits seen


def clear() -> None:
    """Forget every cached chain and edit count (file load, add-on unregister)."""
    _CACHE.clear()
    _GENERATION.clear()


def note_updates(depsgraph: Any) -> frozenset[str]:
    """Count the edits of armatures in ``depsgraph.updates`` (see the module docstring); returns the
    names of every ID the depsgraph updated."""
    names = set()
    for update in depsgraph.updates:
        data = update.id
        name = getattr(data, "original", data).name
        names.add(name)
        if getattr(data, "bl_rna", None) is not None and data.bl_rna.identifier == "Armature":
            _GENERATION[name] = _GENERATION.get(name, 0) + 1
    return frozenset(names)


def generation_of(obj: Any) -> tuple[int, int]:
    """``obj``'s Armature datablock (its pointer) and how many of its edits the handlers have seen."""
    data = obj.data
    return data.as_pointer(), _GENERATION.get(data.name, 0)


def chain_binding(obj: Any, tip_bone: str, length: int, *, trust_edits: bool = False,
                  stretch: bool = False) -> ChainBinding:
    """:func:`.read.read_chain`, re-using the last result while nothing it depends on changed.

    Args:
        obj: The armature object (evaluated or original: the values compared are the same).
        tip_bone: The chain's last bone.
        length: Its number of bones (0: up to the root).
        trust_edits: Skip the whole-signature check while the armature's edit generation is the
            one of the last check (the handlers' way; see the module docstring).
        stretch: The chain's Stretch switch (``ChainSpec.use_stretch``).
    """
    key = (obj.name, tip_bone, length, stretch)
    entry = _CACHE.get(key)
    armature, generation = generation_of(obj)
    animation = animation_key(obj)
    if (entry is not None and trust_edits and entry.armature == armature and entry.generation == generation
            and entry.animation == animation and not entry.animated):
        if animation and not _locked_values_hold(obj, entry.binding):
            return _read(obj, key, tip_bone, length, (armature, generation), animation)
        return entry.binding
    names = chain_bone_names(obj, tip_bone, length)
    signature = _signature(obj, names, stretch)
    if (entry is not None and entry.armature == armature and entry.signature == signature
            and _locked_values_hold(obj, entry.binding)):
        # Still the chain as read; what is animated may have changed with the edit (a key inserted).
        entry.generation, entry.animation = generation, animation
        entry.animated = _animates_signature(obj, names, stretch)
        return entry.binding
    return _read(obj, key, tip_bone, length, (armature, generation), animation, names, signature)


def _read(obj: Any, key: tuple[str, str, int, bool], tip_bone: str, length: int, generation: tuple[int, int],
          animation: tuple[Any, ...], names: list[str] | None = None,
          signature: tuple[Any, ...] | None = None) -> ChainBinding:
    stretch = key[3]
    names = names if names is not None else chain_bone_names(obj, tip_bone, length)
    signature = signature if signature is not None else _signature(obj, names, stretch)
    binding = read_chain(obj, tip_bone, length, stretch=True) if stretch else read_chain(obj, tip_bone, length)
    if len(_CACHE) >= _MAX_ENTRIES:
        _CACHE.clear()
    _CACHE[key] = _Entry(binding, signature, *generation, animation, _animates_signature(obj, names, stretch))
    return binding


def _locked_values_hold(obj: Any, binding: ChainBinding) -> bool:
    """True if every locked axis of the chain still has the value the chain was read with (clamped
    into its limits, as the reader clamps it)."""
    bones = obj.pose.bones
    for bone, joint in zip(binding.bones, binding.chain.joints, strict=True):
        if all(joint.free):
            continue
        angles = current_angles(bones[bone.name], bone.order)
        for axis in range(3):
            if joint.free[axis]:
                continue
            value = float(angles[axis])
            low, high = float(joint.lower[axis]), float(joint.upper[axis])
            if low <= high:
                value = min(max(value, low), high)
            if not math.isclose(value, float(joint.fixed[axis]), rel_tol=0.0, abs_tol=LOCKED_TOLERANCE):
                return False
    return True


def animation_key(obj: Any) -> tuple[Any, ...]:
    """Which animation data ``obj`` has (empty without any): another action, NLA strip or driver
    makes the cache look again at what is animated."""
    anim = obj.animation_data
    if anim is None:
        return ()
    action = anim.action
    strips = tuple(strip.action.name_full if strip.action is not None else None
                   for track in anim.nla_tracks for strip in track.strips)
    return (action.name_full if action is not None else None, strips, len(anim.drivers))


def _animates_signature(obj: Any, names: list[str], stretch: bool = False) -> bool:
    """True if an F-curve of the object's action or a driver changes a value of the signature of
    the chain ``names`` (anything of its bones but their rotations and, with ``stretch``, the scale
    of those that stretch; or a constraint below it)."""
    obj = getattr(obj, "original", obj)
    anim = obj.animation_data
    if anim is None:
        return False
    actions = [anim.action, *(strip.action for track in anim.nla_tracks for strip in track.strips)]
    paths = [path for action in actions if action is not None for path in action_paths(action)]
    paths += [f.data_path for f in anim.drivers]
    watched = {pbone.name for pbone in subtree(obj, names[0])}
    chain = set(names)
    stretching = {name for name in names if stretch and obj.pose.bones[name].ik_stretch > 0}
    for path in paths:
        if not path.startswith('pose.bones["'):
            continue
        bone, _, rest = path[len('pose.bones["'):].partition('"]')
        bone = bone.replace('\\"', '"').replace("\\\\", "\\")
        if bone not in watched:
            continue
        if (rest.startswith(".rotation_") and not rest.startswith(".rotation_mode")) or (
                bone == names[0] and rest.startswith(".location")):
            continue  # free axes are ours, locked ones and the root's location are read every frame anyway
        if bone in stretching and rest.startswith(".scale"):
            continue  # the solve writes a stretching bone's scale
        if bone in chain or rest.startswith(".constraints"):
            return True
    return False


def _signature(obj: Any, names: list[str], stretch: bool = False) -> tuple[Any, ...]:
    bones = obj.pose.bones
    parts: list[Any] = [tuple(names), _ancestors(bones[names[0]])]
    parts.extend(_bone_key(bones[name], root=index == 0, stretch=stretch) for index, name in enumerate(names))
    parts.extend(_constraint_key(c) for pbone in subtree(obj, names[0]) for c in pbone.constraints
                 if c.type in _IK_TYPES)
    return tuple(parts)


def _ancestors(pbone: Any) -> tuple[str, ...]:
    out = []
    while pbone.parent is not None:
        pbone = pbone.parent
        out.append(pbone.name)
    return tuple(out)


def _bone_key(pbone: Any, *, root: bool, stretch: bool = False) -> tuple[Any, ...]:
    bone = pbone.bone
    # The root's location is not read into the chain: it is part of the base, read every frame.
    location = None if root else tuple(pbone.location)
    scale = None if stretch and pbone.ik_stretch > 0 else tuple(pbone.scale)  # a stretching bone's: ours
    return (pbone.rotation_mode, tuple(tuple(row) for row in bone.matrix_local), bone.length, bone.use_connect,
            bone.use_inherit_rotation, bone.use_local_location, bone.inherit_scale, location,
            scale, tuple(pbone.lock_rotation), tuple(getattr(pbone, f) for f in _IK_FIELDS),
            tuple(_constraint_key(c) for c in pbone.constraints))


def _constraint_key(con: Any) -> tuple[Any, ...]:
    head = (con.name, con.type, con.mute, con.influence > 0, con.is_valid)
    if con.type == "LIMIT_ROTATION":
        return (*head, *(getattr(con, f) for f in _LIMIT_FIELDS), getattr(con, "use_legacy_behavior", True))
    if con.type == "IK":
        return (*head, con.use_tail, con.chain_count)
    if con.type == "SPLINE_IK":
        return (*head, con.chain_count)
    return head
