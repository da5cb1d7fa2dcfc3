"""Chains that follow other chains, in one rule: who moves with whose bones, and in which order to solve.

A chain *follows* another when its target, its pole or its whole armature moves with that chain's
bones, by any route Blender offers (:func:`.dependencies.bone_links`): a hand target parented to the
chest bone that a spine chain solves, a prop rig parented to a hand, a Child Of to such a bone, an
Armature constraint, a driver... (A chain whose *root* hangs below another chain's bone is the
stacking case, :mod:`.stacking`; a chain that follows its own bones is refused as a cycle by
:func:`.scene_checks.require_goals`.)

The rule: a chain is solved after every chain it follows, and reads its target, pole and base as
they are once those chains are written.

* The bake (:mod:`.bake`) and Key Current Frame solve in *stages*: each stage is sampled or keyed
  after the stages before it were written and Blender evaluated them, so every route is exact.
* The live pass cannot ask Blender to evaluate again inside a frame handler (``Depsgraph.update``
  and ``ViewLayer.update`` crash Blender 4.2-5.0 there), so it *carries* what follows a solved chain
  along with the bone it hangs from: ``M = W_new @ W_eval^-1`` of that bone, exactly as a stacked
  chain's base is carried (:class:`PassMotion`). That is exact when the object moves rigidly with
  one bone (:func:`carrier`: parents, a bone parent, a full Child Of); other routes (Copy Location,
  an Armature constraint blending bones, a driver) cannot be carried, and the chain's status says
  it lags a frame behind the chain it follows.

Chains that follow each other in a circle are refused, naming both routes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.types import FloatArray
from .dependencies import BoneLink, bone_links, is_plain
from .errors import RigSetupError
from .goals import Goal, GoalKey
from .grouping import group_of, sharing_groups
from .read import ChainBinding, chain_bone_names
from .spec import ChainSpec
from .stacking import bone_world, joint_world, links, upper_move

ChainKey = tuple[int, str]
"""A chain in a pass: ``(its armature's as_pointer(), chain name)``."""


@dataclass(frozen=True)
class Follows:
    """One chain followed by another chain's target, pole or armature.

    Attributes:
        role: ``"target"``, ``"pole"`` or ``"armature"``.
        thing: What moves: the target, the pole (objects or bones), or the armature object.
        upper: The chain followed: ``(armature pointer, chain name)``.
        link: How ``thing`` reaches that chain's bones.
        carried: ``thing`` moves rigidly with one bone (:func:`carrier`), so the live pass can carry
            it along; False: it cannot, and lags a frame behind live.
    """

    role: str
    thing: Goal
    upper: ChainKey
    link: BoneLink
    carried: bool

    def describe(self, upper_name: str, upper_rig: str | None = None) -> str:
        """``"target 'T' moves with chain 'spine' ('T' -> parent bone 'chest' of 'Rig')"``; with
        ``upper_rig``, the chain is named with its armature (``chain 'spine' of 'Rig'``)."""
        of = "" if upper_rig is None else f" of {upper_rig!r}"
        return f"{self.role} {self.thing.label} moves with chain {upper_name!r}{of} ({self.link.describe()})"


def carrier(obj: Any) -> tuple[Any, str] | None:
    """``(armature, bone)`` that ``obj`` moves rigidly with, if it does: ``obj``'s world matrix is
    ``W(bone) @ F`` with ``F`` fixed by anything a chain solves. Followed: plain object parents
    (helpers in between), a bone parent, a Child Of constraint at full influence on every channel.
    Anything else on the way (another constraint, a driver, a vertex or deform parent) returns None.
    """
    walker = obj
    while walker is not None:
        constraints = [c for c in walker.constraints if not c.mute and c.influence > 0 and c.is_valid]
        anim = walker.animation_data
        if anim is not None and any(not d.mute for d in anim.drivers):
            return None
        if constraints:
            con = constraints[0]
            full = (con.type == "CHILD_OF" and len(constraints) == 1 and con.influence >= 1.0 - 1e-6
                    and all(getattr(con, f"use_{kind}_{axis}") for kind in ("location", "rotation", "scale")
                            for axis in "xyz"))
            target = getattr(con, "target", None)
            if full and target is not None and target.type == "ARMATURE" and con.subtarget:
                return target, con.subtarget
            return None
        parent = walker.parent
        if parent is None:
            return None
        if walker.parent_type == "BONE" and parent.type == "ARMATURE" and walker.parent_bone:
            return parent, walker.parent_bone
        if walker.parent_type != "OBJECT":
            return None
        walker = parent
    return None


def goal_carrier(goal: Goal) -> tuple[Any, str] | None:
    """:func:`carrier` of a goal: a bone goal is carried by its own bone (:meth:`PassMotion.move_of`
    finds the solved bone above it and whether the bones in between are rigid)."""
    return (goal.obj, goal.bone) if goal.bone is not None else carrier(goal.obj)


def goal_links(goal: Goal) -> list[BoneLink]:
    """:func:`.dependencies.bone_links` of a goal (none for a plain object, without walking)."""
    if goal.bone is None and is_plain(goal.obj):
        return []
    return bone_links(goal.obj, goal.bone)


def chain_follows(rig: Any, spec: ChainSpec, things: Sequence[tuple[str, Goal | None]],
                  pass_bones: Mapping[ChainKey, frozenset[str]],
                  walked: Mapping[GoalKey, list[BoneLink]] | None = None) -> list[Follows]:
    """The chains of the pass that ``spec`` (a chain of ``rig``) follows, through ``things``:
    ``(role, goal)`` pairs, its target and pole (objects or bones) and its armature.

    Args:
        pass_bones: Every chain of the pass (this one included) -> its bones.
        walked: Goal key -> its :func:`goal_links`, where already walked.
    """
    me = (rig.as_pointer(), spec.name)
    out: list[Follows] = []
    seen: set[ChainKey] = set()
    for role, thing in things:
        if thing is None:
            continue
        known = None if walked is None else walked.get(thing.key)
        links = goal_links(thing) if known is None else known
        if not links:
            continue
        rigid = goal_carrier(thing)
        for link in links:
            owner = link.rig.as_pointer()
            if role == "armature" and owner == me[0]:
                continue  # an armature's own bones are the stacking case
            for key, bones in pass_bones.items():
                if key[0] != owner or key == me or key in seen or (link.bone is not None and link.bone not in bones):
                    continue
                seen.add(key)
                carried = (rigid is not None and rigid[0].as_pointer() == owner
                           and not loose_bone(rigid[0], rigid[1], bones))
                out.append(Follows(role, thing, key, link, carried))
    return out


def solve_levels(keys: Iterable[ChainKey], follows: Mapping[ChainKey, Sequence[Follows]],
                 names: Mapping[ChainKey, str], rigs: Mapping[ChainKey, str] | None = None
                 ) -> tuple[dict[ChainKey, int], dict[ChainKey, str]]:
    """Levels (a chain after every chain it follows) and the chains refused as a cycle. ``rigs``:
    the armature names of chains whose name another armature's chain also has (messages name them).

    Returns:
        ``(level by chain, message by chain in a cycle)``; level 0 follows nothing in the pass.
    """
    ordered = list(dict.fromkeys(keys))  # the given order: messages name a circle's chains the same way each time
    wanted = set(ordered)
    level: dict[ChainKey, int] = {}
    cycles: dict[ChainKey, str] = {}
    visiting: list[ChainKey] = []

    def visit(key: ChainKey) -> int:
        if key in level:
            return level[key]
        if key in visiting:  # a circle: every chain on it is refused
            circle = visiting[visiting.index(key):]
            steps = "; ".join(_step(k, circle, follows, names, rigs or {}) for k in circle)
            for k in circle:
                cycles[k] = (f"chain {_label(k, names, rigs or {})} is part of a cycle of chains following each "
                             f"other ({steps}), so none of them can be solved first; break one of these links")
            return 0
        visiting.append(key)
        deepest = -1
        for follow in follows.get(key, ()):
            if follow.upper in wanted:
                deepest = max(deepest, visit(follow.upper))
        visiting.pop()
        level[key] = deepest + 1
        return level[key]

    for key in ordered:
        visit(key)
    return level, cycles


def _step(key: ChainKey, circle: list[ChainKey], follows: Mapping[ChainKey, Sequence[Follows]],
          names: Mapping[ChainKey, str], rigs: Mapping[ChainKey, str]) -> str:
    after = circle[(circle.index(key) + 1) % len(circle)]
    found = next(f for f in follows[key] if f.upper == after)
    return f"chain {_label(key, names, rigs)}: {found.describe(names[after], rigs.get(after))}"


def _label(key: ChainKey, names: Mapping[ChainKey, str], rigs: Mapping[ChainKey, str]) -> str:
    """``'arm'``, or ``'arm' of 'Rig'`` where another armature of the pass has a chain ``arm``."""
    rig = rigs.get(key)
    return f"{names[key]!r}" if rig is None else f"{names[key]!r} of {rig!r}"


def loose_bone(rig: Any, bone: str, stop: Collection[str]) -> str:
    """Why ``bone`` of ``rig`` does not move rigidly with the first bone of ``stop`` above it ("" if
    it does): on the way up (``bone`` included, the ``stop`` bone not), a bone that does not inherit
    its parent's rotation, or that a constraint moves, takes its own way. Carrying something along
    with a solved bone (stacking, :class:`PassMotion`) is exact only through rigid bones."""
    bones = rig.data.bones
    pose = rig.pose.bones
    walker = bones.get(bone)
    while walker is not None and walker.name not in stop:
        if walker.parent is not None and not walker.use_inherit_rotation:
            return f"bone {walker.name!r} does not inherit its parent's rotation"
        con = next((c for c in pose[walker.name].constraints if not c.mute and c.influence > 0 and c.is_valid), None)
        if con is not None:
            return f"bone {walker.name!r} is moved by its constraint {con.name!r}"
        walker = walker.parent
    return ""


@dataclass(frozen=True)
class Move:
    """How a solve of this pass moved the bones at and below one solved bone.

    Attributes:
        matrix: ``(F, 4, 4)`` ``W_new @ W_eval^-1`` of the solved bone.
        chain: The chain that solved it.
        loose: Why the asked-for bone does not move rigidly with it ("" if it does): then
            ``matrix`` does not carry it (see :func:`loose_bone`).
    """

    matrix: FloatArray
    chain: ChainKey
    loose: str = ""


class PassMotion:
    """How the bones solved so far in one pass moved, for whatever hangs from or follows them.

    A chain solved in the pass is added with its solved angles; :meth:`move_of` then gives, for any
    bone at or below one of its bones, ``W_new @ W_eval^-1`` of the nearest solved bone above it
    (:func:`.stacking.upper_move`): an object carried rigidly by that bone moves by it. Shared by
    every rig of a frame pass, so a prop rig parented to another rig's hand moves with it.
    """

    def __init__(self) -> None:
        self._solved: dict[tuple[int, str],
                           tuple[Any, ChainBinding, FloatArray, FloatArray, FloatArray | None, int, str]] = {}
        self._moves: dict[tuple[int, str], FloatArray] = {}
        self.moved: set[ChainKey] = set()  # chains whose solve changed their pose in this pass

    def __bool__(self) -> bool:
        return bool(self._solved)

    def add(self, obj_eval: Any, name: str, binding: ChainBinding, bases: FloatArray, angles: FloatArray,
            factors: FloatArray | None = None) -> None:
        """Chain ``name`` of the evaluated armature ``obj_eval`` solved to ``angles`` ``(F, n, 3)``
        (and, for a chain that stretches, length ``factors`` ``(F, n)``) from ``bases``."""
        owner = obj_eval.original.as_pointer()
        for joint, bone in enumerate(binding.bone_names):
            self._solved[(owner, bone)] = (obj_eval, binding, bases, angles, factors, joint, name)
            self._moves.pop((owner, bone), None)

    def move_of(self, rig: Any, bone: str | None) -> Move | None:
        """How ``bone`` of armature ``rig`` (original) was moved by this pass's solves, or None if no
        solved bone is at or above it."""
        if bone is None or not self._solved:
            return None
        owner = rig.as_pointer()
        walker = rig.data.bones.get(bone)
        while walker is not None:
            key = (owner, walker.name)
            if key in self._solved:
                obj_eval, binding, bases, angles, factors, joint, chain = self._solved[key]
                move = self._moves.get(key)
                if move is None:
                    new = joint_world(binding, bases, angles, joint, obj_eval.pose.bones[walker.name].scale,
                                      factors)
                    move = self._moves[key] = upper_move(bone_world(obj_eval, walker.name)[None], new)
                return Move(move, (owner, chain), loose_bone(rig, bone, (walker.name,)))
            walker = walker.parent
        return None

    def carry(self, goal: Goal, matrix: FloatArray) -> FloatArray:
        """``matrix`` ``(F, 4, 4)`` of ``goal`` as evaluated, moved with the bone that carries it
        (:func:`goal_carrier`), if a solve of this pass moved that bone and it carries it rigidly."""
        held = goal_carrier(goal)
        if held is None:
            return matrix
        move = self.move_of(held[0], held[1])
        return matrix if move is None or move.loose else np.asarray(move.matrix @ matrix)


def stage_levels(rig: Any, plan: PassPlan, chains: Mapping[str, tuple[Sequence[str], Sequence[str]]]) -> dict[str, int]:
    """Levels of ``chains`` (name -> (bones root first, ancestors parent first)) of ``rig`` for
    passes that let Blender evaluate between levels (Key Current Frame, the bake): a chain after
    every chain of ``chains`` it follows, and after the chain it hangs below when a bone in between
    moves on its own (:func:`loose_bone`: stacking could not carry it)."""
    me = rig.as_pointer()
    above: dict[str, set[str]] = {name: {f.upper[1] for f in plan.same_rig((me, name))} for name in chains}
    for lower, (upper, _joint) in links(chains).items():
        if loose_bone(rig, chains[lower][1][0], chains[upper][0]):
            above[lower].add(upper)
    together = group_of(sharing_groups({name: bones for name, (bones, _) in chains.items()}))
    levels = dict.fromkeys(chains, 0)
    for _ in chains:  # longest path; plan_pass refused circles of following, stacking has none
        for name in chains:  # a group's chains (solved together) share their level
            levels[name] = max([levels[name], *(levels[u] + 1 for u in above[name] if u in levels),
                                *(levels[m] for m in together.get(name, ()))])
    return levels


@dataclass
class PassPlan:
    """Who follows whom among the chains of one pass (several rigs), and in which order to solve.

    Attributes:
        follows: Chain -> the chains it follows (empty for most).
        levels: Chain -> its level: every chain it follows has a lower one.
        cycles: Chain -> the message refusing it (chains following each other in a circle).
        rigs: The pass's armatures, each after the armatures whose chains its chains follow (as far
            as a circle between armatures allows).
    """

    follows: dict[ChainKey, list[Follows]]
    levels: dict[ChainKey, int]
    cycles: dict[ChainKey, str]
    rigs: list[Any]

    def same_rig(self, key: ChainKey) -> list[Follows]:
        """The chains of its own armature that ``key`` follows."""
        return [f for f in self.follows.get(key, ()) if f.upper[0] == key[0]]


def plan_pass(rigs: Sequence[Any], specs_of: Mapping[int, Sequence[ChainSpec]], scene: Any) -> PassPlan:
    """The plan of a pass solving ``specs_of[rig.as_pointer()]`` of each rig of ``rigs``.

    Cheap when nothing follows anything (targets and poles are plain objects, armatures unparented):
    one :func:`.dependencies.bone_links` walk per target, pole and armature, each a few attribute
    reads; the chains' bones are read only when some walk reaches an armature.
    """
    things: dict[ChainKey, list[tuple[str, Goal | None]]] = {}
    linked = False
    walks: dict[GoalKey, list[BoneLink]] = {}  # each goal walked once per pass
    for rig in rigs:
        for spec in specs_of.get(rig.as_pointer(), ()):
            items = [("target", _goal(spec.target_object, spec.target, spec.target_bone, spec.target_head_tail, scene)),
                     ("pole", _goal(spec.pole_object, spec.pole, spec.pole_bone, 0.0, scene)),
                     ("armature", Goal(rig))]
            things[(rig.as_pointer(), spec.name)] = items
            for _role, thing in items:
                if thing is not None and thing.key not in walks:
                    walks[thing.key] = goal_links(thing)
                linked = linked or (thing is not None and bool(walks[thing.key]))
    if not linked:
        return PassPlan({}, dict.fromkeys(things, 0), {}, list(rigs))
    pass_bones: dict[ChainKey, frozenset[str]] = {}
    names: dict[ChainKey, str] = {}
    by_pointer = {rig.as_pointer(): rig for rig in rigs}
    for rig in rigs:
        for spec in specs_of.get(rig.as_pointer(), ()):
            key = (rig.as_pointer(), spec.name)
            names[key] = spec.name
            try:
                pass_bones[key] = frozenset(chain_bone_names(rig, spec.tip_bone, spec.length))
            except RigSetupError:
                continue  # refused when it is solved
    follows = {key: chain_follows(by_pointer[key[0]], _spec(specs_of, key), things[key], pass_bones, walks)
               for key in things}
    counts = Counter(names.values())
    rig_names = {key: by_pointer[key[0]].name for key, name in names.items() if counts[name] > 1}
    levels, cycles = solve_levels(things, follows, names, rig_names)
    return PassPlan(follows, levels, cycles, _rig_order(rigs, follows))


def _goal(obj: Any, name: str | None, bone: str | None, head_tail: float, scene: Any) -> Goal | None:
    """A spec's target or pole as a goal, without the checks (:func:`.scene_checks.require_goals`
    refuses what is missing when the chain is solved)."""
    found = obj if obj is not None else (scene.objects.get(name) if name else None)
    if found is None:
        return None
    if not bone:
        return Goal(found)
    if found.type != "ARMATURE" or found.pose.bones.get(bone) is None:
        return None
    return Goal(found, bone, head_tail)


def _spec(specs_of: Mapping[int, Sequence[ChainSpec]], key: ChainKey) -> ChainSpec:
    return next(s for s in specs_of[key[0]] if s.name == key[1])


def _rig_order(rigs: Sequence[Any], follows: Mapping[ChainKey, Sequence[Follows]]) -> list[Any]:
    """Armatures after the armatures they follow (a circle keeps the given order)."""
    after: dict[int, set[int]] = {rig.as_pointer(): set() for rig in rigs}
    for key, found in follows.items():
        for follow in found:
            if follow.upper[0] != key[0] and follow.upper[0] in after:
                after[key[0]].add(follow.upper[0])
    order: list[Any] = []
    placed: set[int] = set()
    by_pointer = {rig.as_pointer(): rig for rig in rigs}
    while len(order) < len(rigs):
        ready = [p for p in after if p not in placed and after[p] <= placed]
        if not ready:  # a circle between armatures: the rest in the given order
            ready = [p for p in after if p not in placed]
        for pointer in ready:
            placed.add(pointer)
            order.append(by_pointer[pointer])
    return order
