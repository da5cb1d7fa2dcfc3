"""Re-use a chain read on earlier frames while nothing it depends on has changed.

Reading a chain (numpy work plus the core's validation) costs far more than reading the few
dozen RNA values it depends on, and the live handler reads every chain on every frame. The cache
key is those values: bone hierarchy and rest matrices, rotation modes, locks (with the current
rotation of locked bones, which locked axes keep), IK settings, pose location and scale, every
constraint on the chain bones, and Blender IK constraints below the chain root. A change to any of
them reads the chain again; so does a file load (:func:`clear`).
"""

from __future__ import annotations

from typing import Any

from .read import ChainBinding, chain_bone_names, read_chain, subtree

_CACHE: dict[tuple[str, str, int], tuple[tuple[Any, ...], ChainBinding]] = {}
_MAX_ENTRIES = 512
_IK_TYPES = ("IK", "SPLINE_IK")
_LIMIT_FIELDS = ("owner_space", "euler_order", "use_limit_x", "use_limit_y", "use_limit_z", "min_x", "min_y",
                 "min_z", "max_x", "max_y", "max_z")
_IK_FIELDS = ("lock_ik_x", "lock_ik_y", "lock_ik_z", "use_ik_limit_x", "use_ik_limit_y", "use_ik_limit_z",
              "ik_min_x", "ik_min_y", "ik_min_z", "ik_max_x", "ik_max_y", "ik_max_z")


def clear() -> None:
    """Forget every cached chain (file load, add-on unregister)."""
    _CACHE.clear()


def read_chain_cached(obj: Any, tip_bone: str, length: int) -> ChainBinding:
    """:func:`.read.read_chain`, re-using the last result while its inputs are unchanged."""
    names = chain_bone_names(obj, tip_bone, length)
    key = (obj.name, tip_bone, length)
    signature = _signature(obj, names)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == signature:
        return hit[1]
    binding = read_chain(obj, tip_bone, length)
    if len(_CACHE) >= _MAX_ENTRIES:
        _CACHE.clear()
    _CACHE[key] = (signature, binding)
    return binding


def _signature(obj: Any, names: list[str]) -> tuple[Any, ...]:
    bones = obj.pose.bones
    parts: list[Any] = [tuple(names), _ancestors(bones[names[0]])]
    parts.extend(_bone_key(bones[name]) for name in names)
    parts.extend(_constraint_key(c) for pbone in subtree(obj, names[0]) for c in pbone.constraints
                 if c.type in _IK_TYPES)
    return tuple(parts)


def _ancestors(pbone: Any) -> tuple[str, ...]:
    out = []
    while pbone.parent is not None:
        pbone = pbone.parent
        out.append(pbone.name)
    return tuple(out)


def _bone_key(pbone: Any) -> tuple[Any, ...]:
    bone = pbone.bone
    ik = tuple(getattr(pbone, f) for f in _IK_FIELDS)
    locked = any(pbone.lock_rotation) or any(ik[:3])
    rotation = (tuple(pbone.rotation_euler), tuple(pbone.rotation_quaternion),
                tuple(pbone.rotation_axis_angle)) if locked else None
    return (pbone.rotation_mode, tuple(tuple(row) for row in bone.matrix_local), bone.length, bone.use_connect,
            bone.use_inherit_rotation, bone.use_local_location, bone.inherit_scale, tuple(pbone.location),
            tuple(pbone.scale), tuple(pbone.lock_rotation), ik, rotation,
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
