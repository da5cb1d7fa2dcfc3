"""Solve one chain for ``F`` frames: world targets -> chain space -> core ``solve_batch`` -> angles.

Live solving (``F = 1``) and baking share this code, so a baked key equals the live pose.

* Each frame's base (armature world matrix times the root parent's pose) may differ, so targets
  are moved into that frame's chain space (``base^-1``) and the chain is solved base-less.
  Residuals are measured back in world space.
* Deterministic: every frame starts from the comfort pose (zero = rest when none was captured),
  never from the previous frame, except in follow mode (see :func:`solve_follow`) and in a
  continuous bake (``solve_frames(..., continuous=True)``: the first frame as above, then each from
  the previous one, by the rule of :func:`..core.motion.solve_path`'s ``"continuous"`` mode).
* The comfort blend interpolates the solved angles toward the comfort pose (inside the limits,
  since both ends are).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from mathutils import Quaternion

from ..core import Chain, ComfortPose, SolveResult, SolverOptions, forward, solve_batch
from ..core.batched import ChainJob
from ..core.motion import find_switches, solve_path
from ..core.rotations import euler_to_matrix, matrix_to_euler, orthonormalize, rotation_vector
from ..core.types import BoolArray, FloatArray
from .read import ChainBinding, current_angles, inverse_of, read_chain
from .scene_checks import refuse_drivers, require_usable
from .spec import ChainSpec

_ORIENTATION_TOLERANCE = SolverOptions().orientation_tolerance


@dataclass(frozen=True)
class PreparedChain:
    """A chain read from the rig, with its comfort pose in joint angles.

    Attributes:
        spec: The settings.
        binding: The chain as read (see :mod:`.read`).
        comfort_angles: ``(n, 3)`` comfort pose in parameter-order angles, radians, inside the
            limits (locked axes hold their fixed value). Zero (the rest pose) when none captured.
    """

    spec: ChainSpec
    binding: ChainBinding
    comfort_angles: FloatArray


@dataclass(frozen=True)
class FrameSolution:
    """Solved angles and quality for ``F`` frames.

    Attributes:
        angles: ``(F, n, 3)`` joint angles, parameter order, radians.
        error: ``(F,)`` tip distance to the target, world units.
        orientation_error: ``(F,)`` tip rotation error, radians (0 unless following orientation).
        converged: ``(F,)`` within tolerance.
        scales: ``(F, n)`` each joint's length factor (``SolveResult.scales``) for a chain that
            stretches (:mod:`.stretch`), else None.
    """

    angles: FloatArray
    error: FloatArray
    orientation_error: FloatArray
    converged: BoolArray
    scales: FloatArray | None = None


def prepare(obj: Any, spec: ChainSpec, binding: ChainBinding | None = None) -> PreparedChain:
    """Read the chain of ``spec`` from ``obj`` (preferably evaluated), or take the ``binding``
    already read (the live pass's :mod:`.structure` cache). Raises :class:`RigSetupError`."""
    if binding is None:
        binding = read_chain(obj, spec.tip_bone, spec.length, stretch=spec.use_stretch)
    refuse_drivers(obj, binding)
    chain = binding.chain
    comfort = np.zeros((chain.n_joints, 3))
    for j, bone in enumerate(binding.bones):
        quat = spec.comfort.get(bone.name)
        if quat is not None:
            comfort[j] = Quaternion(quat).normalized().to_euler(bone.order)
    comfort = chain.expand(chain.clamp(chain.compress(comfort)))
    return PreparedChain(spec, binding, comfort)


def to_chain_space(bases: FloatArray, matrices: FloatArray, *, rotations: bool = True
                   ) -> tuple[FloatArray, FloatArray | None]:
    """World ``(F, 4, 4)`` matrices -> chain-space positions ``(F, 3)`` and rotations ``(F, 3, 3)``.

    Rotations are skipped (None) unless asked for: they cost an SVD per frame.
    """
    if _all_same(bases):  # the usual bake, and a live chain whose armature stands still: one base
        inverse = inverse_of(bases[0])
        positions = matrices[:, :3, 3] @ inverse[:3, :3].T + inverse[:3, 3]
    else:
        inverse = np.linalg.inv(bases)
        positions = np.einsum("fij,fj->fi", inverse[:, :3, :3], matrices[:, :3, 3]) + inverse[:, :3, 3]
    if not rotations:
        return positions, None
    return positions, np.swapaxes(orthonormalize(bases[:, :3, :3]), -1, -2) @ orthonormalize(matrices[:, :3, :3])


def _all_same(bases: FloatArray) -> bool:
    return bases.strides[0] == 0 or bool(np.all(bases == bases[0]))


def solve_frames(prepared: PreparedChain, bases: FloatArray, targets: FloatArray, poles: FloatArray | None = None,
                 *, initial: FloatArray | None = None, continuous: bool = False) -> FrameSolution:
    """Solve ``F`` frames: in one ``solve_batch`` call, or in frame order with ``continuous``.

    Args:
        prepared: The chain.
        bases: ``(F, 4, 4)`` chain base per frame (:func:`.read.chain_base`).
        targets: ``(F, 4, 4)`` target world matrices, in frame order.
        poles: ``(F, 4, 4)`` pole world matrices, or None.
        initial: Start angles ``(F, n, 3)`` or ``(n, 3)``; default the comfort pose. With
            ``continuous``, the first frame's only.
        continuous: Solve the first frame as every frame is solved otherwise (the reaching pose
            nearest the comfort pose), then each frame from, and nearest to, the previous frame's
            pose: the motion stays continuous where the nearest pose would switch solutions.
            Deterministic for given frames, but frame ``k`` depends on the frames before it.
    """
    require_usable(prepared, bases, targets, poles)
    problem, scales = frame_problem(prepared, bases, targets, poles)
    if continuous:
        result = None
        q = _continuous(problem, initial)
    else:
        result, q = _nearest(problem, initial)
    return finish_frames(problem, result, q, bases, targets, scales)


def frame_problem(prepared: PreparedChain, bases: FloatArray, targets: FloatArray, poles: FloatArray | None,
                  options_of: Callable[[float], SolverOptions] | None = None) -> tuple[FrameProblem, FloatArray]:
    """The frames in chain space, ready for the core solver, and ``(F,)`` each base's mean scale.

    ``options_of`` makes the solver options for a tolerance scale (default the spec's
    ``solver_options``; the live pass passes one that remembers them).
    """
    spec = prepared.spec
    positions, rotations = to_chain_space(bases, targets, rotations=spec.follow_orientation)
    pole_positions = None if poles is None else to_chain_space(bases, poles, rotations=False)[0]
    if pole_positions is not None and spec.pole_angle:
        pole_positions = turn_poles(pole_positions, positions, prepared.binding.chain.rest[0, :3, 3], spec.pole_angle)
    scales = np.cbrt(np.abs(np.linalg.det(bases[:, :3, :3])))
    # Rounded: a scale that wobbles in float32 noise (a base turned by a solved upper chain) must not
    # make new options, and with them a new live job, every frame.
    tolerance_scale = 1.0 / float(f"{float(scales.max()):.5g}")
    options = (options_of or (lambda scale: spec.solver_options(tolerance_scale=scale)))(tolerance_scale)
    orientations = rotations if spec.follow_orientation else None
    # The solver returns the reaching pose nearest the comfort pose (the rest pose when none was
    # captured); the weight only matters for a soft pull. Zero weight still names the pose.
    comfort = ComfortPose(prepared.comfort_angles, max(spec.comfort_weight, 0.0))
    swivel = None
    if pole_positions is not None and spec.pole_rule == "turn" and not spec.follow_mode:
        swivel = swivel_rotations(prepared, positions, pole_positions)
    if swivel is not None:  # solved in the turned chain space, where the pole has done its work
        root = prepared.binding.chain.rest[0, :3, 3]
        positions = root + np.einsum("fi,fij->fj", positions - root, swivel)
        pole_positions = None
        if orientations is not None:
            orientations = np.swapaxes(swivel, -1, -2) @ orientations
    return FrameProblem(prepared, positions, orientations, pole_positions, comfort, options, swivel), scales


def swivel_rotations(prepared: PreparedChain, positions: FloatArray, poles: FloatArray) -> FloatArray | None:
    """The pole rule ``"turn"`` (Blender's): ``(F, 3, 3)`` per frame the rotation about the chain's root
    (its first bone's head) that carries the comfort (or rest) pose's root -> tip line onto the
    root -> target line, and its bend direction (its interior joints' offsets from that line) toward
    the pole (already turned by the pole angle). The frame is then solved in the chain space turned
    back by it, where the target lies on the comfort pose's line and the pole behind its bend: the
    answer is the reaching pose nearest the turned comfort pose, as Blender's IK bends from its
    start pose after turning it toward the pole. A frame whose pole lies on the root -> target
    line gets the shortest turn onto the line.

    None (the pole rule ``"bend"`` applies instead) where that turn cannot be put into the chain's
    joints: a root bone that is not free to turn every way (limits or locks on it), a one-bone
    chain, or a comfort pose that does not bend (no bend direction to turn toward the pole).
    """
    chain = prepared.binding.chain
    if chain.n_joints < 2 or not chain.ball_joints[0]:
        return None
    start = chain.memo("swivel start", (prepared.comfort_angles.tobytes(),), lambda: _bend_frame(prepared))
    if start is None:
        return None
    root = chain.rest[0, :3, 3]
    reach = positions - root
    size = np.maximum(np.linalg.norm(reach, axis=-1, keepdims=True), 1e-12)
    axis = reach / size
    offset = poles - root
    side = offset - np.einsum("fi,fi->f", offset, axis)[:, None] * axis
    width = np.linalg.norm(side, axis=-1, keepdims=True)
    weak = width[:, 0] < 1e-9 * size[:, 0]
    if weak.any():  # the pole on the line: the comfort bend carried by the shortest turn onto it
        side[weak] = np.stack([_across(_shortest_turn(start[:, 0], a) @ start[:, 1], a) for a in axis[weak]])
        width[weak] = np.linalg.norm(side[weak], axis=-1, keepdims=True)
    side = side / np.maximum(width, 1e-12)
    frames = np.stack([axis, side, np.cross(axis, side)], axis=-1)
    return np.asarray(frames @ start.T)


def _bend_frame(prepared: PreparedChain) -> FloatArray | None:
    """``(3, 3)`` columns: the comfort pose's root -> tip direction, its bend direction across it, and
    their cross product; None when it does not bend."""
    chain = prepared.binding.chain
    kin = forward(chain, chain.compress(prepared.comfort_angles)[None], with_axes=False)
    root = chain.rest[0, :3, 3]
    line = kin.tip_chain[0] - root
    length = float(np.linalg.norm(line))
    if length < 1e-9:
        return None
    axis = line / length
    bend = _across((kin.origins[0, 1:] - root).sum(axis=0), axis)
    width = float(np.linalg.norm(bend))
    if width < 1e-6 * length:
        return None
    return np.asarray(np.stack([axis, bend / width, np.cross(axis, bend / width)], axis=-1))


def _across(vector: FloatArray, axis: FloatArray) -> FloatArray:
    """The part of ``vector`` (3,) across the unit ``axis`` (3,)."""
    return np.asarray(vector - float(vector @ axis) * axis)


def _shortest_turn(source: FloatArray, target: FloatArray) -> FloatArray:
    """The ``(3, 3)`` rotation by the smallest angle carrying unit ``source`` onto unit ``target``."""
    cross = np.cross(source, target)
    cos = float(source @ target)
    if cos < -1.0 + 1e-12:  # opposite: half a turn about any axis across them
        other = np.eye(3)[int(np.argmin(np.abs(source)))]
        axis = _across(other, source)
        axis /= np.linalg.norm(axis)
        return np.asarray(2.0 * np.outer(axis, axis) - np.eye(3))
    skew = np.array([[0.0, -cross[2], cross[1]], [cross[2], 0.0, -cross[0]], [-cross[1], cross[0], 0.0]])
    return np.asarray(np.eye(3) + skew + skew @ skew / (1.0 + cos))


def turn_poles(poles: FloatArray, targets: FloatArray, root: FloatArray, angle: float) -> FloatArray:
    """The chain's pole angle: each frame's pole turned by ``angle`` radians about the line from the
    chain's root (its first bone's head) to the target, right-handed about the root -> target
    direction, all ``(F, 3)`` in chain space. The chain bends toward the turned pole, so a positive
    angle turns the bend counter-clockwise seen from the target looking back at the root. A target
    on the root leaves the pole as it is."""
    axis = targets - root
    size = np.linalg.norm(axis, axis=-1, keepdims=True)
    axis = np.where(size > 1e-12, axis / np.maximum(size, 1e-12), 0.0)
    offset = poles - root
    cos, sin = math.cos(angle), math.sin(angle)
    along = np.einsum("fi,fi->f", axis, offset)[:, None] * axis
    turned = cos * offset + sin * np.cross(axis, offset) + (1.0 - cos) * along  # Rodrigues
    return np.asarray(root + turned)


def finish_frames(problem: FrameProblem, result: SolveResult | None, q: FloatArray, bases: FloatArray,
                  targets: FloatArray, scales: FloatArray) -> FrameSolution:
    """The solved free angles ``q`` ``(F, m)`` blended toward the comfort pose and measured in world
    units (``result``: the solver's, when ``q`` is its answer unchanged)."""
    prepared, orientations = problem.prepared, problem.orientations
    spec, chain = prepared.spec, prepared.binding.chain
    blend = min(max(float(spec.comfort_blend), 0.0), 1.0)
    if blend > 0:
        q = (1.0 - blend) * q + blend * chain.compress(prepared.comfort_angles)
    if problem.swivel is not None:
        q = _unswivel(chain, q, problem.swivel)
        if orientations is not None:
            orientations = problem.swivel @ orientations
    elif result is not None and q is result.q and uniform_scale(bases):
        # The solver's chain-space residuals, scaled back to world units: no need for another FK.
        error = result.error * scales
        converged = error <= spec.tolerance
        if orientations is not None:
            converged &= result.orientation_error <= _ORIENTATION_TOLERANCE
        return FrameSolution(result.angles, error, result.orientation_error, converged,
                             result.scales if chain.n_stretch else None)
    return _measure(prepared, q, bases, targets, orientations)


def _unswivel(chain: Chain, q: FloatArray, swivel: FloatArray) -> FloatArray:
    """Variables ``(F, m)`` solved in the turned chain space (:func:`swivel_rotations`), with each
    frame's turn put into the root joint: a ball joint (its X, Y, Z angles are the first three
    variables), so any rotation is inside its limits."""
    rest = chain.rest[0, :3, :3]
    order = chain.joints[0].order
    turned = rest.T @ swivel @ rest @ euler_to_matrix(q[:, :3], order)
    out = np.array(q, dtype=np.float64)
    out[:, :3] = np.unwrap(matrix_to_euler(turned, order), axis=0)  # frame to frame without whole turns
    return out


def live_job(problem: FrameProblem) -> ChainJob:
    """A :class:`ChainJob` solving one frame of ``problem``'s chain as :func:`_nearest` does (the
    live pass keeps it while the chain and its settings stay the same)."""
    return ChainJob(problem.prepared.binding.chain, problem.comfort, problem.options,
                    orientation=problem.orientations is not None, pole=problem.poles is not None)


def set_job_target(job: ChainJob, problem: FrameProblem) -> None:
    """Give ``job`` the one frame of ``problem``."""
    job.set_target(problem.positions[0], None if problem.orientations is None else problem.orientations[0],
                   None if problem.poles is None else problem.poles[0])


def finish_job(problem: FrameProblem, result: SolveResult, bases: FloatArray, targets: FloatArray,
               scales: FloatArray) -> FrameSolution:
    """:func:`finish_frames` for a frame a :class:`ChainJob` solved: what :func:`solve_frames` returns."""
    q = result.q
    if problem.comfort is not None and not result.converged.all():
        q = _reach_first_fallback(problem.prepared, result, problem.positions, problem.orientations, problem.poles,
                                  None, problem.options)
    return finish_frames(problem, result, q, bases, targets, scales)


@dataclass(frozen=True)
class FrameProblem:
    """One chain's frames in chain space, ready for the core solver."""

    prepared: PreparedChain
    positions: FloatArray
    orientations: FloatArray | None
    poles: FloatArray | None
    comfort: ComfortPose | None
    options: SolverOptions
    swivel: FloatArray | None = None

    def frames(self, index: slice) -> FrameProblem:
        """The sub-problem of some frames."""
        return replace(self, positions=self.positions[index],
                       orientations=None if self.orientations is None else self.orientations[index],
                       poles=None if self.poles is None else self.poles[index],
                       swivel=None if self.swivel is None else self.swivel[index])


def _nearest(problem: FrameProblem, start: FloatArray | None) -> tuple[SolveResult, FloatArray]:
    """Every frame on its own, from ``start``: the result, and its ``(F, m)`` free angles."""
    result = solve_batch(problem.prepared.binding.chain, problem.positions, orientations=problem.orientations,
                         poles=problem.poles, comfort=problem.comfort, initial=start, options=problem.options)
    q = result.q
    if problem.comfort is not None and not result.converged.all():
        q = _reach_first_fallback(problem.prepared, result, problem.positions, problem.orientations, problem.poles,
                                  start, problem.options)
    return result, q


CONTINUITY_WEIGHT = 1.0
"""Weight of the pull toward the previous frame's pose (``core.motion``'s continuous mode uses 1)."""


def _continuous(problem: FrameProblem, start: FloatArray | None) -> FloatArray:
    """``(F, m)`` free angles: frame 0 as :func:`_nearest` solves it, so a range's first frame gets
    the pose any bake gives it (the comfort pose is the start pose at any comfort weight); then
    ``core.motion.solve_path(mode="continuous")`` over the other frames, anchored on frame 0's
    pose: each frame from, and nearest to, the previous frame's pose."""
    chain = problem.prepared.binding.chain
    first_start = start[:1] if start is not None and np.ndim(start) == 3 else start
    first = _nearest(problem.frames(slice(0, 1)), first_start)[1]
    if problem.positions.shape[0] == 1:
        return first
    rest = problem.frames(slice(1, None))
    path = solve_path(chain, rest.positions, mode="continuous", orientations=rest.orientations, poles=rest.poles,
                      comfort=ComfortPose(first[0], CONTINUITY_WEIGHT, reach_first=True), options=problem.options)
    return np.concatenate([first, path.result.q])


def find_frame_switches(prepared: PreparedChain, bases: FloatArray, targets: FloatArray, poles: FloatArray | None,
                        solution: FrameSolution, companions: Sequence[FloatArray] = ()) -> BoolArray:
    """``(F,)`` True at frames where the solved pose jumps although what it follows moved smoothly.

    :func:`..core.motion.find_switches` on the free angles, against the motion of everything the
    chain follows, in chain space: the target's location, the pole's, and (when the chain
    follows the target's rotation) its rotation, scaled by the chain's length so that turning
    counts like moving. A cut in that motion (a target that jumps) is not flagged; a pose that
    jumps while it glides is. Only runs of consecutive converged frames are checked: out of
    reach, the pose stops following the target (those frames are reported as not converged).

    ``companions``: world matrices ``(F, 4, 4)`` of the other goals the pose follows: the targets
    and poles of the chains it shares bones with (:mod:`.groups`), whose pull turns its shared
    bones while its own target holds still.
    """
    spec, chain = prepared.spec, prepared.binding.chain
    positions, rotations = to_chain_space(bases, targets, rotations=spec.follow_orientation)
    parts = [positions]
    for goal in (*(() if poles is None else (poles,)), *companions):
        parts.append(to_chain_space(bases, goal, rotations=False)[0])
    if rotations is not None:
        parts.append(chain.world_length * rotations.reshape(len(rotations), 9))  # identity base: chain space
    motion = np.concatenate(parts, axis=1)
    # An angle that goes on past 180 degrees comes back as its equal below -180: the same pose (the
    # keys are written unwrapped, write.py), not a jump.
    q = np.unwrap(chain.compress(solution.angles), axis=0)
    flagged = np.zeros(len(q), dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], solution.converged.astype(np.int8), [0]])))
    for begin, end in zip(edges[0::2], edges[1::2], strict=True):  # [begin, end): converged runs
        flagged[begin:end] = find_switches(q[begin:end], motion[begin:end])
    return flagged


def uniform_scale(bases: FloatArray) -> bool:
    """True if every base scales alike along every axis: its Gram matrix is ``s * I`` within 1e-6 of
    ``s`` (float32 bone matrices, multiplied, are off by about 1e-8). Written out: ``np.allclose``
    costs more than the rest of a live frame's bookkeeping."""
    linear = bases[:1, :3, :3] if _all_same(bases) else bases[:, :3, :3]
    gram = np.swapaxes(linear, -1, -2) @ linear
    if len(gram) == 1:  # a live frame: nine floats compare faster in Python than in numpy
        (a, b, c), (d, e, f), (g, h, i) = gram[0].tolist()
        tolerance = 1e-9 + 1e-6 * abs(a)
        return all(abs(v) <= tolerance for v in (b, c, d, f, g, h, e - a, i - a))
    uniform = gram[:, :1, :1] * _EYE3
    return bool((np.abs(gram - uniform) <= 1e-9 + 1e-6 * np.abs(gram[:, :1, :1])).all())


_EYE3 = np.eye(3)


def _reach_first_fallback(prepared: PreparedChain, result: SolveResult, positions: FloatArray,
                          orientations: FloatArray | None, poles: FloatArray | None, start: FloatArray | None,
                          options: SolverOptions) -> FloatArray:
    """Frames the comfort-weighted solve left short are re-solved without the comfort term.

    Reaching the target comes first; the comfort pose only chooses among reaching poses. The
    answer with the smaller tip error wins, so this never makes a frame worse.
    """
    chain = prepared.binding.chain
    missed = np.flatnonzero(~result.converged)
    sub_start = None if start is None else (start[missed] if np.ndim(start) == 3 else start)
    retry = solve_batch(chain, positions[missed],
                        orientations=None if orientations is None else orientations[missed],
                        poles=None if poles is None else poles[missed], initial=sub_start, options=options)
    q = result.q.copy()
    better = retry.error < result.error[missed]
    q[missed[better]] = retry.q[better]
    return q


def _measure(prepared: PreparedChain, q: FloatArray, bases: FloatArray, targets: FloatArray,
             orientations: FloatArray | None) -> FrameSolution:
    chain, spec = prepared.binding.chain, prepared.spec
    kin = forward(chain, q, with_axes=False)
    tips = np.einsum("fij,fj->fi", bases[:, :3, :3], kin.tip_chain) + bases[:, :3, 3]
    error = np.linalg.norm(tips - targets[:, :3, 3], axis=1)
    converged = error <= spec.tolerance
    orientation_error = np.zeros(len(q))
    if orientations is not None:
        residual = rotation_vector(kin.tip_rotation @ np.swapaxes(orientations, -1, -2))
        orientation_error = np.linalg.norm(residual, axis=-1)
        converged &= orientation_error <= _ORIENTATION_TOLERANCE
    return FrameSolution(chain.expand(q), error, orientation_error, converged,
                         chain.factors(q) if chain.n_stretch else None)


def solve_follow(prepared: PreparedChain, bases: FloatArray, targets: FloatArray, poles: FloatArray | None,
                 start: FloatArray) -> FrameSolution:
    """Follow mode over ``F`` consecutive frames: one tutorial sweep per frame, each from the last.

    History-dependent by design (the tutorial's per-frame look), hence sequential.
    """
    pieces = []
    angles = np.asarray(start)
    for f in range(len(targets)):
        piece = solve_frames(prepared, bases[f:f + 1], targets[f:f + 1], None if poles is None else poles[f:f + 1],
                             initial=angles)
        angles = piece.angles[0]
        pieces.append(piece)
    angles_, error, orientation_error, converged = (np.concatenate([getattr(p, k) for p in pieces]) for k in
                                                    ("angles", "error", "orientation_error", "converged"))
    scales = None if pieces[0].scales is None else np.concatenate([p.scales for p in pieces])  # stretch
    return FrameSolution(angles_, error, orientation_error, converged, scales)


def current_pose(obj: Any, binding: ChainBinding) -> FloatArray:
    """The chain's current pose as joint angles ``(n, 3)`` (follow mode starts from it)."""
    return np.stack([current_angles(obj.pose.bones[b.name], b.order) for b in binding.bones])
