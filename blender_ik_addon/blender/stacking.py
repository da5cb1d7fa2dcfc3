"""Chains stacked on chains: an arm whose root hangs below a bone of a spine chain.

The lower chain's base depends on the upper chain's pose, which is being solved in the same
pass, so Blender's evaluated pose (from before the solve) is stale for it. Chains are therefore
solved upper first, and the lower chain's base is moved along with the upper bone it hangs from:

    base_new = W_new @ W_eval^-1 @ base_eval

where ``W`` is the world pose matrix of that upper bone: ``W_eval`` as Blender evaluated it (the
same evaluation ``base_eval`` comes from) and ``W_new`` from the upper chain's solved angles. The
bones in between (a clavicle between spine and arm) ride along unchanged, as they would in Blender.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..core.fk import joint_pose
from ..core.types import FloatArray
from .grouping import group_of, sharing_groups
from .read import ChainBinding

Solved = dict[str, tuple[ChainBinding, FloatArray, FloatArray, FloatArray | None]]
"""Chains solved earlier in a pass: name -> (binding, bases (F, 4, 4), angles (F, n, 3))."""


def links(chains: Mapping[str, tuple[Sequence[str], Sequence[str]]]) -> dict[str, tuple[str, int]]:
    """Chain name -> ``(upper chain, joint index)`` for chains whose root hangs below another chain.

    Chains that share bones (directly or through others: one group, :mod:`.groups`) are solved
    together, so one never hangs below another of its group.

    Args:
        chains: Chain name -> ``(bone names root first, ancestors of the root parent first)``.
    """
    together = group_of(sharing_groups({name: bones for name, (bones, _) in chains.items()}))
    owner = {bone: (name, j) for name, (bones, _) in chains.items() for j, bone in enumerate(bones)}
    out = {}
    for name, (_, ancestors) in chains.items():
        mine = together.get(name, (name,))
        for ancestor in ancestors:
            if ancestor in owner and owner[ancestor][0] not in mine:
                out[name] = owner[ancestor]
                break
    return out


def upper_first(names: Iterable[str], uppers: dict[str, tuple[str, int]],
                together: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """``names`` ordered so that every chain comes after the chain it hangs from. The chains of a
    group (``together``: chain -> its group, :mod:`.groups`) come one after another, after every
    chain any of them hangs from: the group is solved as one, when its first chain is reached."""
    pending = list(names)
    wanted = set(pending)
    together = together or {}
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name in visiting:
            return
        members = [m for m in together.get(name, (name,)) if m in wanted] or [name]
        visiting.update(members)
        for member in members:
            upper = uppers.get(member)
            if upper is not None and upper[0] in wanted and upper[0] not in members:
                visit(upper[0])
        order.extend(m for m in members if m not in order)

    for name in pending:
        visit(name)
    return order


def ancestors_of(obj: Any, names: list[str]) -> tuple[str, ...]:
    """Bone names above the first of ``names`` (its parent first)."""
    out = []
    bone = obj.data.bones[names[0]].parent
    while bone is not None:
        out.append(bone.name)
        bone = bone.parent
    return tuple(out)


def bone_world(obj_eval: Any, bone: str) -> FloatArray:
    """``(4, 4)`` evaluated world pose matrix of a bone."""
    world = np.array(obj_eval.matrix_world, dtype=np.float64)
    return world @ np.array(obj_eval.pose.bones[bone].matrix, dtype=np.float64)


def joint_world(binding: ChainBinding, bases: FloatArray, angles: FloatArray, joint: int,
                scale: Iterable[float] = (1.0, 1.0, 1.0), factors: FloatArray | None = None) -> FloatArray:
    """``(F, 4, 4)`` world pose matrices of one chain bone for solved ``angles`` ``(F, n, 3)`` and,
    for a chain that stretches, its solved length factors ``(F, n)``.

    ``scale`` is that bone's pose scale (only a chain's tip bone may have one); a stretching bone's
    scale is the solve's (``factors``), not the pose's, which still holds the last write.
    """
    chain = binding.chain
    frames = joint_pose(chain, chain.compress(angles, factors), joint)
    if not chain.joints[joint].stretch:
        frames[:, :3, :3] *= np.asarray(tuple(scale), dtype=np.float64)
    return np.asarray(bases @ frames)


def upper_move(upper_eval: FloatArray, upper_new: FloatArray) -> FloatArray:
    """``W_new @ W_eval^-1`` ``(F, 4, 4)``: how the upper bone moved (see module doc)."""
    return np.asarray(upper_new @ np.linalg.inv(upper_eval))


def restack(bases_eval: FloatArray, upper_eval: FloatArray, upper_new: FloatArray) -> FloatArray:
    """Move the lower chain's evaluated bases ``(F, 4, 4)`` with its upper bone (see module doc)."""
    return np.asarray(upper_move(upper_eval, upper_new) @ bases_eval)
