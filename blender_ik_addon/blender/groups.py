"""Chains of one armature that share bones, solved together as one tree (:mod:`..core.tree`).

Two arms whose chains run into the spine, two legs that include the hips, a tentacle's branches:
the chains that share bones (directly, or through a chain between them) form a **group**, and the
group is one problem, each chain's tip an effector with the chain's **Weight** (Blender's IK
Weight Position). Where every target can be reached at once, each is; where not, the pose is the
weighted least-squares compromise, and each chain's status shows its own residual plus the
group's note. As in Blender's tree IK, every bone between a chain's tip and the group's root
moves it.

The live pass, Key Current Frame and the bake call :func:`solve_group` where they would solve a
single chain: the group's members arrive together (the same level of the pass, the same stage of
the bake) and each gets its own :class:`.solving.FrameSolution`, written and keyed as any chain's
(a shared bone is written once per member, with the same value).

A member's pole bends its own chain (the rule "bend", :func:`..core.tree_solver.solve_tree`). What
a group does not do yet is refused by name (:func:`.grouping.group_refusal`): Pole Rule Turn Toward
Pole or a Pole Angle, IK Stretch, Comfort Blend, the tutorial solver or follow mode on a member,
Influence below 1, and every member at Weight 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..core import ComfortPose, SolverOptions
from ..core.errors import IKError
from ..core.tree import Tree
from ..core.tree_job import TreeJob
from ..core.tree_solver import TreeResult, solve_tree
from ..core.types import AnyArray, FloatArray
from .errors import RigSetupError
from .solving import FrameSolution, PreparedChain, to_chain_space

_ORIENTATION_TOLERANCE = SolverOptions().orientation_tolerance


def describe_group(group: Sequence[str], me: str, weight: float = 1.0) -> str:
    """``"shares bones with 'arm.R'"`` for the panel (and, at Weight 0, that its target does not pull)."""
    others = [name for name in group if name != me]
    note = f"shares bones with {', '.join(map(repr, others))}: solved together"
    return note if weight > 0.0 else f"{note}; Weight 0: its target does not pull"


@dataclass(frozen=True)
class GroupTree:
    """A group's tree and where each member's joints sit in it.

    Attributes:
        tree: The merged tree (tree space: the root member's chain space).
        joints: Per member, ``(n_member,)`` the tree joint of each of its joints.
        root: The member whose root is the tree's root (its base is the group's).
        bindings: The members' bindings it was built from.
    """

    tree: Tree
    joints: tuple[AnyArray, ...]
    root: int
    bindings: tuple[object, ...]


_TREES: dict[tuple[object, ...], GroupTree] = {}
# The group's comfort pose and options per tolerance scale, for one set of PreparedChains (the live
# pass keeps them while the chains' settings stay): (the members themselves, comfort, options by scale).
_SETTINGS: dict[tuple[int, ...], tuple[tuple[PreparedChain, ...], ComfortPose, dict[float, SolverOptions]]] = {}


# A live group's TreeJob: the members' ids -> (key, its tree, its comfort pose, the job).
_JOBS: dict[tuple[int, ...], tuple[tuple[object, ...], Tree, ComfortPose, TreeJob]] = {}


def forget() -> None:
    """Drop the kept trees, settings and jobs (file load; the live pass's :func:`.live.forget`)."""
    _TREES.clear()
    _SETTINGS.clear()
    _JOBS.clear()


def _settings(group: GroupTree, members: Sequence[PreparedChain],
              tolerance_scale: float) -> tuple[ComfortPose, SolverOptions]:
    """:func:`group_comfort` and :func:`group_options`, made once per set of members and scale."""
    key = tuple(id(p) for p in members)
    kept = _SETTINGS.get(key)
    if kept is None or any(a is not b for a, b in zip(kept[0], members, strict=True)):
        if len(_SETTINGS) > 256:
            _SETTINGS.clear()
        kept = _SETTINGS[key] = (tuple(members), group_comfort(group, members), {})
    options = kept[2].get(tolerance_scale)
    if options is None:
        kept[2].clear()  # one scale at a time (a scaled armature), as the live chains keep theirs
        options = kept[2][tolerance_scale] = group_options(members, tolerance_scale)
    return kept[1], options


def _job(group: GroupTree, members: Sequence[PreparedChain], comfort: ComfortPose, options: SolverOptions,
         follow: AnyArray, has_pole: AnyArray) -> TreeJob:
    """The group's :class:`..core.tree_job.TreeJob` for these settings, kept while they stay (one at a
    time per set of members, as the options are)."""
    key = (id(group.tree), options, follow.tobytes(), has_pole.tobytes(), id(comfort))
    kept = _JOBS.get(tuple(id(p) for p in members))
    if kept is not None and kept[0] == key and kept[1] is group.tree and kept[2] is comfort:
        return kept[3]
    if len(_JOBS) > 256:
        _JOBS.clear()
    job = TreeJob(group.tree, follow=follow, has_pole=has_pole, comfort=comfort, options=options)
    _JOBS[tuple(id(p) for p in members)] = (key, group.tree, comfort, job)
    return job


def group_tree(members: Sequence[PreparedChain]) -> GroupTree:
    """The group's tree, built once per set of bindings and weights (the bindings are the live
    pass's cached ones, so a still rig builds it once)."""
    key = tuple((id(p.binding), p.spec.name, p.spec.weight) for p in members)
    kept = _TREES.get(key)
    if kept is not None and all(a is p.binding for a, p in zip(kept.bindings, members, strict=True)):
        return kept
    try:
        tree = Tree.from_chains([p.binding.chain for p in members], names=[p.spec.name for p in members],
                                weights=[max(float(p.spec.weight), 0.0) for p in members])
    except IKError as err:
        raise RigSetupError(f"chains {', '.join(repr(p.spec.name) for p in members)} share bones but cannot be "
                            f"solved as one tree: {err}") from err
    index = {joint.name: j for j, joint in enumerate(tree.joints.joints)}
    joints = tuple(np.array([index[b] for b in p.binding.bone_names], dtype=np.intp) for p in members)
    root = next(i for i, p in enumerate(members) if p.binding.bone_names[0] == tree.joints.joints[0].name)
    if len(_TREES) > 256:
        _TREES.clear()
    made = _TREES[key] = GroupTree(tree, joints, root, tuple(p.binding for p in members))
    return made


def group_options(members: Sequence[PreparedChain], tolerance_scale: float) -> SolverOptions:
    """One set of solver options for the group: the strictest tolerance, the most iterations and
    restarts any member asks for, the members' orientation and pole weights (the largest)."""
    specs = [p.spec for p in members]
    return SolverOptions(max_iterations=max(s.max_iterations for s in specs), restarts=max(s.restarts for s in specs),
                         tolerance=min(s.tolerance for s in specs) * tolerance_scale,
                         orientation_weight=max(s.orientation_weight for s in specs),
                         pole_weight=max(s.pole_weight for s in specs))


def group_comfort(group: GroupTree, members: Sequence[PreparedChain]) -> ComfortPose:
    """The preferred pose of the tree's joints: each member's comfort pose on its bones, weighted by
    the member's comfort weight. A shared bone takes the comfort pose of the first member that
    captured one for it (a member without one holds the rest pose there), else the first member's."""
    tree = group.tree
    angles = np.zeros((tree.n_joints, 3))
    weights = np.zeros((tree.n_joints, 3))
    done = np.zeros(tree.n_joints, dtype=bool)
    for captured_only in (True, False):
        for joints, prepared in zip(group.joints, members, strict=True):
            take = ~done[joints]
            if captured_only:
                take &= np.array([bone.name in prepared.spec.comfort for bone in prepared.binding.bones])
            angles[joints[take]] = prepared.comfort_angles[take]
            done[joints[take]] = True
    for joints, prepared in zip(group.joints, members, strict=True):
        weights[joints] = np.maximum(weights[joints], max(float(prepared.spec.comfort_weight), 0.0))
    return ComfortPose(angles, weights)


def solve_group(members: Sequence[PreparedChain], bases: Sequence[FloatArray], targets: Sequence[FloatArray],
                poles: Sequence[FloatArray | None] | None = None, *, continuous: bool = False) -> list[FrameSolution]:
    """Solve ``F`` frames of a group: one :class:`.solving.FrameSolution` per member, in order.

    Args:
        members: The group's chains (their specs and bindings).
        bases: Per member, ``(F, 4, 4)`` its chain base (only the root member's is used: the
            others hang from the tree's joints).
        targets: Per member, ``(F, 4, 4)`` its target's world matrices.
        poles: Per member, ``(F, 4, 4)`` its pole's world matrices, or None (no pole): its chain
            bends toward it (the rule "bend"; :func:`.grouping.group_refusal` refuses the others).
        continuous: A bake's Continuous: each frame from, and nearest to, the frame before
            (:func:`..core.tree_solver.solve_tree`).
    """
    group = group_tree(members)
    tree, root_bases = group.tree, np.asarray(bases[group.root])
    follow = np.array([p.spec.follow_orientation for p in members])
    positions, orientations = [], []
    for prepared, matrices in zip(members, targets, strict=True):
        pos, rot = to_chain_space(root_bases, np.asarray(matrices), rotations=prepared.spec.follow_orientation)
        positions.append(pos)
        orientations.append(rot if rot is not None else np.broadcast_to(np.eye(3), (len(pos), 3, 3)))
    has_pole = np.array([p is not None for p in (poles or [None] * len(members))])
    pole_positions = np.zeros((len(root_bases), len(members), 3))
    for e, pole in enumerate(poles or ()):
        if pole is not None:
            pole_positions[:, e] = to_chain_space(root_bases, np.asarray(pole), rotations=False)[0]
    if len(root_bases) == 1:  # a live frame: the kept job (the same answer as solve_tree's, made faster)
        job, scales = live_job(members, root_bases[0], has_pole)
        job.set_targets(np.stack(positions, axis=1)[0], np.stack(orientations, axis=1)[0],
                        pole_positions[0] if has_pole.any() else None)
        result = job.solve()
    else:
        scales = _scales(root_bases)
        comfort, options = _settings(group, members, _tolerance_scale(scales))
        result = solve_tree(tree, np.stack(positions, axis=1), orientations=np.stack(orientations, axis=1),
                            follow=follow, poles=pole_positions if has_pole.any() else None, has_pole=has_pole,
                            comfort=comfort, options=options, continuous=continuous)
    return member_solutions(group, members, result, scales)


def live_job(members: Sequence[PreparedChain], root_base: FloatArray, has_pole: AnyArray) -> tuple[TreeJob, FloatArray]:
    """The kept :class:`..core.tree_job.TreeJob` that solves a live frame of the group whose root
    member's base is ``root_base`` ``(4, 4)``, and that base's scale ``(1,)`` (errors in tree
    units times it are world units). ``has_pole``: ``(E,)`` which members have a pole."""
    group = group_tree(members)
    scales = _scales(root_base[None])
    comfort, options = _settings(group, members, _tolerance_scale(scales))
    follow = np.array([p.spec.follow_orientation for p in members])
    return _job(group, members, comfort, options, follow, np.asarray(has_pole, dtype=bool)), scales


def member_solutions(group: GroupTree, members: Sequence[PreparedChain], result: TreeResult,
                     scales: FloatArray) -> list[FrameSolution]:
    """Each member's share of the tree's answer: its joints' angles, its error in world units
    (``scales``: ``(F,)`` the root base's scale) and whether it converged. (A member with a
    comfort blend is refused: :func:`.grouping.group_refusal`.)"""
    out = []
    for e, (prepared, joints) in enumerate(zip(members, group.joints, strict=True)):
        spec = prepared.spec
        angles = result.angles[:, joints]
        error = result.errors[:, e] * scales
        converged = error <= spec.tolerance
        if spec.follow_orientation:
            converged &= result.orientation_errors[:, e] <= _ORIENTATION_TOLERANCE
        out.append(FrameSolution(angles, error, result.orientation_errors[:, e], converged))
    return out


def _scales(root_bases: FloatArray) -> FloatArray:
    """``(F,)`` the root base's mean scale per frame (as :func:`.solving.frame_problem` computes it)."""
    scales: FloatArray = np.cbrt(np.abs(np.linalg.det(root_bases[:, :3, :3])))
    return scales


def _tolerance_scale(scales: FloatArray) -> float:
    return 1.0 / float(f"{float(scales.max()):.5g}")  # rounded, as solving.frame_problem's


def group_note(group: Sequence[str], solutions: Mapping[str, FrameSolution], weights: Mapping[str, float],
               frame: int = 0) -> str:
    """The status note of a group at one frame when its targets fight (a member that pulls, of
    ``weights`` above 0, did not converge): the RMS residual of the members that pull, and which
    of those that missed follow their target's rotation (a rotation the chain cannot match pulls
    the shared bones too); else ""."""
    pulling = [name for name in group if name in solutions and weights.get(name, 1.0) > 0.0]
    if all(bool(solutions[name].converged[frame]) for name in pulling):
        return ""
    rms = float(np.sqrt(np.mean([float(solutions[n].error[frame]) ** 2 for n in pulling])))
    note = (f"the group's targets ({', '.join(map(repr, group))}) cannot all be reached at once: weighted "
            f"compromise, group residual {rms:.3g} (RMS)")
    turned = [f"{name!r} {math.degrees(float(solutions[name].orientation_error[frame])):.3g}°" for name in pulling
              if not bool(solutions[name].converged[frame]) and float(solutions[name].orientation_error[frame]) > 0.0]
    if turned:
        note += f"; target rotations followed, off by: {', '.join(turned)}"
    return note
