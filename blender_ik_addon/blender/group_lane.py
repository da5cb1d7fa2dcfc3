"""The fast lane's way with a group of chains that share bones (:mod:`.replay`).

:func:`.groups.solve_group` solves a live frame of a group in general: each member's target put in
chain space, the group's settings looked up, the kept :class:`..core.tree_job.TreeJob` solved, its
answer turned into one :class:`.solving.FrameSolution` per member. On a usual frame (every member's
target reached) most of that is numpy on a few numbers: it cost twice the
compiled solve of a two-arm character. A :class:`GroupLane` keeps what stands from frame to frame
(the job and the root base's inverse and scale, per root base; where each member's angles sit in
the tree's) and does that frame on Python floats. Its answers are :func:`.groups.solve_group`'s
bit for bit: the same job, the targets put into chain space by the same products, the same
angles and errors (``tests/blender/test_replay.py`` compares the lane with the full pass). A frame
it does not cover (a target not reached, bones not in plain Euler, the kernel unavailable) takes the
general way with the answer already solved; a group with a member that follows its target's
orientation takes :func:`.groups.solve_group` every frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..core.tree_job import TreeJob
from ..core.types import BoolArray, FloatArray, IntArray
from .groups import describe_group, group_note, group_tree, live_job, member_solutions, solve_group
from .read import inverse_of
from .rig_pose import RigPose, put_bone_by_bone
from .solving import FrameSolution, PreparedChain
from .status import ChainStatus

if TYPE_CHECKING:
    from .replay import _ChainReplay

Member = tuple["_ChainReplay", FloatArray, FloatArray, FloatArray | None]
"""A member's frame: the chain, its base, its target and its pole (world matrices)."""


@dataclass
class GroupLane:
    """One group's kept lane (see the module docstring). ``members``: the group's chains in the
    group's order (as :func:`.groups.solve_group` takes them)."""

    names: tuple[str, ...]
    prepared: list[PreparedChain]
    root: int  # the member whose base is the tree's base
    has_pole: BoolArray  # (E,) which members have a pole
    any_pole: bool
    notes: list[str]  # each member's status note ("shares bones with ...")
    weights: dict[str, float]  # each member's Weight
    plain: bool  # every member's bones are plain Euler bones
    follows: bool  # a member follows its target's orientation: every frame the general way
    member_flat: list[list[int]]  # per member, where its angles (3 a joint) sit in the tree's, flat
    tree_fixed: FloatArray  # the tree's angles flat, locked axes at their values
    tree_free: IntArray  # where in it each of the job's variables goes
    # The usual frame's write (plain groups): each bone once, shared bones too.
    write_rows: list[int]  # the group's bones' rows in the rig's arrays, each once (members in order)
    write_flat: IntArray  # per row, where its three angles sit in the tree's, flat
    member_slots: list[list[int]]  # per member, its bones' places in ``write_rows``
    member_own: list[list[int]]  # per member, the places it writes first (its bones no member before has)
    # Per root base (it stands still on most frames):
    base_key: bytes = b""
    job: TreeJob | None = None
    scale: float = 1.0
    scales: FloatArray = field(default_factory=lambda: np.ones(1))
    inverse: FloatArray = field(default_factory=lambda: np.eye(4))

    @classmethod
    def of(cls, names: tuple[str, ...], chains: Sequence[_ChainReplay]) -> GroupLane:
        """The lane of the group ``names``, whose members are ``chains`` (in the group's order)."""
        prepared = [chain.state.prepared for chain in chains]
        group = group_tree(prepared)
        joints = group.tree.joints
        member_flat = [[3 * int(j) + axis for j in tree_joints for axis in range(3)] for tree_joints in group.joints]
        plain = all(chain.rows is not None for chain in chains)
        follows = any(chain.spec.follow_orientation for chain in chains)
        free = [3 * int(j) + int(a) for j, a in zip(joints.free_joint, joints.free_axis, strict=True)]
        write_rows: list[int] = []
        write_flat: list[int] = []
        member_slots, member_own = [], []
        for chain, flat in zip(chains, member_flat, strict=True):
            slots, own = [], []
            for b, row in enumerate(chain.row_list):  # (empty unless plain Euler bones)
                if row not in write_rows:
                    own.append(len(write_rows))
                    write_rows.append(row)
                    write_flat.extend(flat[3 * b:3 * b + 3])
                slots.append(write_rows.index(row))
            member_slots.append(slots)
            member_own.append(own)
        has_pole = np.array([chain.spec.pole is not None for chain in chains])
        return cls(names, prepared, group.root, has_pole, bool(has_pole.any()),
                   [describe_group(names, chain.spec.name, chain.spec.weight) for chain in chains],
                   {chain.spec.name: float(chain.spec.weight) for chain in chains}, plain, follows, member_flat,
                   joints.fixed.ravel().copy(), np.array(free, dtype=np.intp), write_rows,
                   np.array(write_flat, dtype=np.intp), member_slots, member_own)

    def solve(self, members: Sequence[Member], pose: RigPose, frame: float) -> dict[str, tuple[ChainStatus, bool]]:
        """Solve this frame of the group (``members`` in the group's order), write it into ``pose``
        and keep each member's answer on its live state; the members' outcomes."""
        if self.follows:
            solutions = solve_group(self.prepared, [base[None] for _, base, _, _ in members],
                                    [target[None] for _, _, target, _ in members],
                                    [None if pole is None else pole[None] for *_, pole in members])
            return self._take(members, solutions, pose, frame)
        base = members[self.root][1]
        if base.tobytes() != self.base_key:
            self.job, self.scales = live_job(self.prepared, base, self.has_pole)
            self.scale, self.inverse, self.base_key = float(self.scales[0]), inverse_of(base), base.tobytes()
        job = self.job
        assert job is not None
        inverse = self.inverse  # (the products as solving.to_chain_space makes them for one base)
        positions = np.concatenate([target[None, :3, 3] @ inverse[:3, :3].T + inverse[:3, 3]
                                    for _, _, target, _ in members])
        poles = None
        if self.any_pole:
            poles = np.zeros((len(members), 3))
            for e, (*_, pole) in enumerate(members):
                if pole is not None:
                    poles[e] = (pole[None, :3, 3] @ inverse[:3, :3].T + inverse[:3, 3])[0]
        job.set_targets(positions, None, poles)  # (a target or pole not finite: IKInputError, the full pass names it)
        if job.solve_in_place():
            errors = [error * self.scale for error in job.errors[0].tolist()]
            if self.plain and all(error <= chain.tolerance for error, (chain, *_) in zip(errors, members,
                                                                                              strict=True)):
                return self._take_reached(members, job, errors, pose, frame)
            result = job.result()
        else:
            result = job.solve()
        return self._take(members, member_solutions(group_tree(self.prepared), self.prepared, result, self.scales),
                          pose, frame)

    def _take_reached(self, members: Sequence[Member], job: TreeJob, errors: list[float], pose: RigPose,
                      frame: float) -> dict[str, tuple[ChainStatus, bool]]:
        """The usual frame: every target reached, plain Euler bones. What :meth:`_take` does with
        :func:`.groups.member_solutions`' answer, on Python floats (the same values). Each bone is
        written once: a shared bone gets the same angles from every member, so a member after the
        first finds it in place (it counts as changed for the member that wrote it first, as when
        members are written one after the other)."""
        solved = self.tree_fixed.copy()  # the tree's angles flat: its variables among the locked values
        solved[self.tree_free] = job.q[0]
        moved = pose.put_euler_moved(self.write_rows, solved[self.write_flat].tolist())
        written = pose.euler_values(self.write_rows)
        out = {}
        for (chain, base, target, pole), flat, slots, own, note, error in zip(
                members, self.member_flat, self.member_slots, self.member_own, self.notes, errors, strict=True):
            status = ChainStatus(True, True, error, note, frame)
            _keep(chain, base, target, pole, written[slots].ravel(), status, solved[flat].reshape(1, -1, 3))
            out[chain.spec.name] = (status, any(moved[k] for k in own))
        return out

    def _take(self, members: Sequence[Member], solutions: Sequence[FrameSolution], pose: RigPose,
              frame: float) -> dict[str, tuple[ChainStatus, bool]]:
        """Every member's :class:`.solving.FrameSolution` written and kept, with the group's note
        when the targets fight (as :func:`.live._solve_group`)."""
        fight = group_note(self.names, dict(zip(self.names, solutions, strict=True)), self.weights)
        out = {}
        for (chain, base, target, pole), solution, note in zip(members, solutions, self.notes, strict=True):
            angles = solution.angles[0]
            if chain.rows is not None:
                changed = pose.put_euler(chain.rows, angles)
            else:
                changed = put_bone_by_bone(chain.binding, angles, pose)
            status = ChainStatus(True, bool(solution.converged[0]), float(solution.error[0]),
                                 f"{note}; {fight}" if fight else note, frame)
            _keep(chain, base, target, pole, pose.current(chain.binding), status, solution.angles)
            out[chain.spec.name] = (status, changed)
        return out


def _keep(chain: _ChainReplay, base: FloatArray, target: FloatArray, pole: FloatArray | None, written: FloatArray,
          status: ChainStatus, angles: FloatArray) -> None:
    """What the live state keeps of a member's frame (for the still check and chains below it):
    ``written`` is its channels as they stand after the write (:meth:`.rig_pose.RigPose.current`)."""
    state = chain.state
    state.inputs = (base[None], target[None], None if pole is None else pole[None])
    state.written = written
    state.status, state.angles, state.scales, state.influence = status, angles, None, 1.0
    state.group = chain.group


__all__ = ["GroupLane"]
