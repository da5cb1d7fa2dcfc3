"""A tree of joints with several effectors: chains that share bones, solved as one problem.

Two arms whose chains run into the spine, two legs that share the hips, a tentacle's branches: each
chain is a path from its tip up to its root, and where paths share joints they form a tree. The
tree's joints keep :class:`.chain.Joint`'s meaning (a rest transform from the parent joint's frame,
Euler angles in the joint's order, limits, locked axes); what is new is that a joint's parent is
any earlier joint (``parents``), and that several **effectors** (each chain's tip) pull at once.

As in Blender's tree IK, an effector is moved by every joint between it and the tree's root: a
chain that is shorter than another it shares bones with still turns the longer one's bones. Where
not every target can be reached at once, the solve finds the weighted least-squares compromise
(each effector's rows times the square root of its weight) and reports each effector's error.

Conventions are the core's (see :mod:`blender_ik_addon.core`): radians, ``(F, ...)`` batches first,
the free angles of all joints as the variables, in joint order (parents before children), X, Y, Z
within a joint. The tree space is the root's parent frame; ``base`` maps it to world (it may scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike

from .chain import Chain, Joint
from .errors import ChainDefinitionError
from .fk import forward_joints
from .types import AnyArray, FloatArray


@dataclass(frozen=True)
class Effector:
    """One chain's tip in the tree.

    Attributes:
        name: Used in messages and results (the add-on: the chain's name).
        joint: Index of the tree joint the tip hangs from.
        tip_offset: ``(3,)`` tip position in that joint's frame (a bone's ``(0, length, 0)``).
        weight: How much this effector counts where targets compete, ``>= 0`` (Blender's IK
            Weight Position). 0: it does not pull at all; its error is still reported.
        joints: The tree joints of its own chain, root first (its pole hint bends these).
    """

    name: str
    joint: int
    tip_offset: FloatArray = field(default_factory=lambda: np.zeros(3))
    weight: float = 1.0
    joints: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        weight = float(self.weight)
        if not (np.isfinite(weight) and weight >= 0.0):
            raise ChainDefinitionError(
                f"effector {self.name!r}: weight must be a finite number >= 0, got {self.weight!r}")
        tip = np.asarray(self.tip_offset, dtype=np.float64)
        if tip.shape != (3,) or not np.all(np.isfinite(tip)):
            raise ChainDefinitionError(f"effector {self.name!r}: tip_offset must be 3 finite values")
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "tip_offset", tip)
        object.__setattr__(self, "joints", tuple(int(j) for j in self.joints) or (int(self.joint),))


@dataclass(frozen=True)
class Tree:
    """A validated tree of joints and its effectors.

    Attributes:
        joints: The joints as a :class:`.chain.Chain` (its per-joint arrays, variables, limits,
            ``expand``/``compress``/``clamp``; its serial tip and FK are not used here).
        parents: ``(n,)`` each joint's parent joint index, ``-1`` for the root (joint 0 only);
            a parent always comes before its children.
        effectors: The effectors, at least one.
        base: ``(4, 4)`` tree space to world.
    """

    joints: Chain
    parents: AnyArray
    effectors: tuple[Effector, ...]
    base: FloatArray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self) -> None:
        parents = np.asarray(self.parents, dtype=np.intp)
        n = self.joints.n_joints
        if parents.shape != (n,):
            raise ChainDefinitionError(f"parents must have one entry per joint ({n}), got shape {parents.shape}")
        if parents[0] != -1 or np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, n)):
            raise ChainDefinitionError(
                "parents must name an earlier joint for every joint but the first (the root, -1)")
        if not self.effectors:
            raise ChainDefinitionError("a tree needs at least one effector")
        names = [e.name for e in self.effectors]
        if len(set(names)) != len(names):
            raise ChainDefinitionError(f"effector names must be unique, got {names}")
        for effector in self.effectors:
            if not 0 <= effector.joint < n or any(not 0 <= j < n for j in effector.joints):
                raise ChainDefinitionError(f"effector {effector.name!r} names a joint outside the tree")
        base = np.asarray(self.base, dtype=np.float64)
        if base.shape != (4, 4) or not np.all(np.isfinite(base)) or abs(np.linalg.det(base[:3, :3])) < 1e-12:
            raise ChainDefinitionError("base must be a finite, invertible 4x4 matrix")
        if self.joints.n_stretch:
            raise ChainDefinitionError("joints of a tree cannot stretch (IK Stretch) yet: "
                                       f"{', '.join(j.name for j in self.joints.joints if j.stretch > 0)}")
        object.__setattr__(self, "parents", parents)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "effectors", tuple(self.effectors))

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def from_chains(cls, chains: Sequence[Chain], *, names: Sequence[str] | None = None,
                    weights: Sequence[float] | None = None) -> Tree:
        """Merge serial chains that share joints (by joint name) into one tree.

        The chains' joints must agree where they overlap (a shared joint's parent is the same in
        every chain that holds it), and exactly one chain root must be the root of the whole tree
        (its base is the tree's base): every other chain's root must be a joint of another chain.
        A chain on its own gives a tree with one effector, which :func:`.tree_solver.solve_tree` solves
        as that chain (the single chain is the one-effector case).
        """
        if not chains:
            raise ChainDefinitionError("from_chains needs at least one chain")
        names = list(names) if names is not None else [f"chain{i}" for i in range(len(chains))]
        weights = list(weights) if weights is not None else [1.0] * len(chains)
        if len(names) != len(chains) or len(weights) != len(chains):
            raise ChainDefinitionError("names and weights need one entry per chain")
        parent_of: dict[str, str | None] = {}
        joint_of: dict[str, Joint] = {}
        holder: dict[str, str] = {}
        for name, chain in zip(names, chains, strict=True):
            for j, joint in enumerate(chain.joints):
                parent = chain.joints[j - 1].name if j else None
                known = parent_of.get(joint.name, "")
                if joint.name in parent_of and known is not None and parent is not None and known != parent:
                    raise ChainDefinitionError(
                        f"joint {joint.name!r} hangs from {known!r} in chain {holder[joint.name]!r} "
                        f"but from {parent!r} in chain {name!r}")
                if joint.name in joint_of:
                    _require_same(joint_of[joint.name], joint, holder[joint.name], name,
                                  rest=known is not None and parent is not None)
                if parent is not None or joint.name not in parent_of:
                    parent_of[joint.name] = parent
                    joint_of[joint.name] = joint
                    holder[joint.name] = name
        roots = [j for j, p in parent_of.items() if p is None]
        if not roots:
            raise ChainDefinitionError(f"the chains' joints hang from each other in a circle "
                                       f"({', '.join(map(repr, parent_of))}): a tree needs a root")
        if len(roots) != 1:
            raise ChainDefinitionError(
                f"the chains do not form one tree: {len(roots)} roots ({', '.join(map(repr, roots))}); "
                "chains solved together must share bones")
        root_chain = next(c for c in chains if c.joints[0].name == roots[0])
        order: list[str] = []
        children: dict[str | None, list[str]] = {}
        for name_, parent in parent_of.items():
            children.setdefault(parent, []).append(name_)
        stack = [roots[0]]
        while stack:  # depth first, children in the order the chains named them
            name_ = stack.pop()
            order.append(name_)
            stack.extend(reversed(children.get(name_, [])))
        index = {name_: i for i, name_ in enumerate(order)}
        parents = [index[p] if (p := parent_of[name_]) is not None else -1 for name_ in order]
        flat = Chain(tuple(joint_of[j] for j in order), np.zeros(3) if len(order) > 1 else root_chain.tip_offset)
        effectors = tuple(
            Effector(name, index[chain.joints[-1].name], chain.tip_offset, weight,
                     tuple(index[j.name] for j in chain.joints))
            for name, chain, weight in zip(names, chains, weights, strict=True))
        return cls(flat, np.array(parents, dtype=np.intp), effectors, root_chain.base)

    def with_base(self, base: ArrayLike) -> Tree:
        """A copy with another base transform."""
        return Tree(self.joints, self.parents, self.effectors, np.asarray(base, dtype=np.float64))

    # -- derived ---------------------------------------------------------------------------------
    @property
    def n_joints(self) -> int:
        return self.joints.n_joints

    @property
    def n_dofs(self) -> int:
        return self.joints.n_dofs

    @property
    def names(self) -> tuple[str, ...]:
        """The effectors' names, in order."""
        return tuple(e.name for e in self.effectors)

    @cached_property
    def ancestors(self) -> AnyArray:
        """``(E, n)`` True where joint ``j`` lies on effector ``e``'s path to the root (its own joint included)."""
        out = np.zeros((len(self.effectors), self.n_joints), dtype=bool)
        for e, effector in enumerate(self.effectors):
            j = effector.joint
            while j >= 0:
                out[e, j] = True
                j = int(self.parents[j])
        out.flags.writeable = False
        return out

    @cached_property
    def strict_ancestors(self) -> AnyArray:
        """``(n, n)`` True where joint ``i`` lies above joint ``j`` (``[j, i]``; not ``j`` itself): the
        joints whose turning moves ``j``'s origin."""
        out = np.zeros((self.n_joints, self.n_joints), dtype=bool)
        for j in range(1, self.n_joints):
            parent = int(self.parents[j])
            out[j] = out[parent]
            out[j, parent] = True
        out.flags.writeable = False
        return out

    @cached_property
    def moves(self) -> AnyArray:
        """``(E, m)`` True where variable ``k`` moves effector ``e``."""
        out = np.asarray(self.ancestors[:, self.joints.dof_joint])
        out.flags.writeable = False
        return out

    @cached_property
    def weights(self) -> FloatArray:
        """``(E,)`` the effectors' weights."""
        out = np.array([e.weight for e in self.effectors], dtype=np.float64)
        out.flags.writeable = False
        return out

    @cached_property
    def reach(self) -> float:
        """A length scale in world units: the longest path from the root to a tip (through the base's scale)."""
        rest_pos = self.joints.rest[:, :3, 3]
        scale = float(abs(np.linalg.det(self.base[:3, :3]))) ** (1.0 / 3.0)
        depth = np.zeros(self.n_joints)
        for j in range(1, self.n_joints):
            depth[j] = depth[self.parents[j]] + np.linalg.norm(rest_pos[j])
        longest = max(float(depth[e.joint]) + float(np.linalg.norm(e.tip_offset)) for e in self.effectors)
        return float(max(longest * scale, 1e-9))

    def effector_chain(self, effector: int = 0) -> tuple[Chain, AnyArray]:
        """Effector ``effector``'s path from the root as a serial :class:`.chain.Chain` (its joints,
        root first, its tip offset, the tree's base), and the tree variables that are the chain's
        (``(m_chain,)`` indices, in the chain's order). A tree of one effector is solved as this
        chain (:func:`.tree_solver.solve_tree`): the single chain is its one-effector case."""
        cache: dict[int, tuple[Chain, AnyArray]] = self.__dict__.setdefault("_effector_chains", {})
        if effector not in cache:
            on_path = self.ancestors[effector]
            joints = tuple(j for j, keep in zip(self.joints.joints, on_path, strict=True) if keep)
            variables = np.flatnonzero(on_path[self.joints.dof_joint])
            variables.flags.writeable = False
            cache[effector] = (Chain(joints, self.effectors[effector].tip_offset, self.base), variables)
        return cache[effector]


LOCKED_VALUE_TOLERANCE = 1e-6
"""Radians: two chains' values of a shared joint's locked axis that differ by less are the same
(a bone in Quaternion mode read at two moments decodes its locked axis as 0 or as -7e-11)."""


def _require_same(first: Joint, second: Joint, first_chain: str, second_chain: str, *, rest: bool) -> None:
    """A joint two chains share must be the same joint in both: its axes, limits, locks and (where
    both give it a parent, so both rests are relative to the same frame) its rest transform; locked
    values within :data:`LOCKED_VALUE_TOLERANCE`. A
    chain's root joint has its rest relative to that chain's base instead, which is not compared.
    (A free axis's ``fixed`` value is unused: a chain read from a rig may hold its pose there.)"""
    locked = ~np.array(first.free)
    fields = [("order", first.order == second.order), ("free axes", first.free == second.free),
              ("lower limits", np.array_equal(first.lower, second.lower)),
              ("upper limits", np.array_equal(first.upper, second.upper)),
              ("locked values", bool(np.allclose(first.fixed[locked], second.fixed[locked], rtol=0.0,
                                                 atol=LOCKED_VALUE_TOLERANCE))),
              ("stretch", first.stretch == second.stretch)]
    if rest:
        fields.append(("rest transform", bool(np.allclose(first.rest, second.rest, rtol=0.0, atol=1e-9))))
    for what, same in fields:
        if not same:
            raise ChainDefinitionError(f"joint {first.name!r} has other {what} in chain {second_chain!r} than in "
                                       f"chain {first_chain!r}: chains that share a joint must agree on it")


@dataclass(frozen=True)
class TreePose:
    """The tree evaluated at one configuration, tree space (the base not applied).

    Attributes:
        origins: ``(n, 3)`` each joint's origin.
        rotations: ``(n, 3, 3)`` each joint's frame after it turns.
        axes: ``(m, 3)`` each variable's axis: turning it by ``d`` turns everything below its joint
            by ``d`` about this axis through the joint's origin.
        tips: ``(E, 3)`` the effectors' tips.
    """

    origins: FloatArray
    rotations: FloatArray
    axes: FloatArray
    tips: FloatArray


def tree_forward(tree: Tree, q: ArrayLike) -> TreePose:
    """Forward kinematics of one configuration ``q`` ``(m,)`` (see :class:`TreePose`): the chain's
    FK, :func:`.fk.forward_joints`, on the tree's parents.

    A joint's frame is ``parent frame @ rest @ R``, ``R`` its Euler rotation in application order
    (the last applied outermost), so an angle turns about an axis of the frame after the rotations
    applied after it.
    """
    joints = forward_joints(tree.joints, np.asarray(q, dtype=np.float64)[None], tree.parents)
    origins, rotations = joints.origins[0], joints.rotations[0]
    assert joints.axes is not None
    tips = np.array([origins[e.joint] + rotations[e.joint] @ e.tip_offset for e in tree.effectors])
    return TreePose(origins, rotations, joints.axes[0], tips)


def tree_tips(tree: Tree, q: ArrayLike) -> FloatArray:
    """``(F, E, 3)`` world tips for configurations ``(F, m)`` (or ``(E, 3)`` for one ``(m,)``)."""
    q_arr = np.asarray(q, dtype=np.float64)
    flat = q_arr.reshape(-1, q_arr.shape[-1])
    tips = np.stack([tree_forward(tree, row).tips for row in flat])
    world = tips @ tree.base[:3, :3].T + tree.base[:3, 3]
    return np.asarray(world.reshape(*q_arr.shape[:-1], len(tree.effectors), 3))
