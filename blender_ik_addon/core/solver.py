"""Public entry points: :func:`solve` (one target) and :func:`solve_batch` (many)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import rules
from .chain import Chain
from .compiled import KernelError, lm_solve_compiled, use_compiled
from .errors import IKInputError
from .lm import Attempt, beyond_reach, lm_solve, restart_draws
from .objectives import ComfortPose, Problem, make_problem
from .options import STATUSES, SolveResult, SolverOptions
from .rotations import order_indices
from .tutorial import tutorial_solve
from .types import FloatArray


def solve(
    chain: Chain,
    target: ArrayLike,
    *,
    orientation: ArrayLike | None = None,
    pole: ArrayLike | None = None,
    comfort: ComfortPose | None = None,
    initial: ArrayLike | None = None,
    options: SolverOptions | None = None,
) -> SolveResult:
    """Solve one target. See :func:`solve_batch`; shapes lose the leading ``F`` axis.

    Example:
        >>> result = solve(chain, (0.5, 1.2, 0.3))
        >>> result.converged, result.error, result.angles.shape
    """
    target_arr = np.asarray(target, dtype=np.float64)
    if target_arr.shape != (3,):
        raise IKInputError(f"target must have shape (3,), got {target_arr.shape}")
    batch = solve_batch(
        chain, target_arr[None],
        orientations=None if orientation is None else np.asarray(orientation, dtype=np.float64)[None],
        poles=None if pole is None else np.asarray(pole, dtype=np.float64)[None],
        comfort=comfort,
        initial=None if initial is None else _single_initial(chain, initial),
        options=options,
    )
    return batch[0]


def _single_initial(chain: Chain, initial: ArrayLike) -> FloatArray:
    arr = np.asarray(initial, dtype=np.float64)
    if arr.shape == (chain.n_joints, 3):
        arr = chain.compress(arr)
    if chain.n_stretch and arr.shape == (chain.n_angles,):
        arr = np.concatenate([arr, chain.neutral[chain.n_angles:]])
    if arr.shape != (chain.n_dofs,):
        raise IKInputError(f"initial pose must have shape ({chain.n_dofs},) or ({chain.n_joints}, 3), got {arr.shape}")
    return arr[None]


def solve_batch(
    chain: Chain,
    targets: ArrayLike,
    *,
    orientations: ArrayLike | None = None,
    poles: ArrayLike | None = None,
    comfort: ComfortPose | None = None,
    initial: ArrayLike | None = None,
    options: SolverOptions | None = None,
) -> SolveResult:
    """Solve ``F`` independent targets on one chain, vectorised and chunked.

    Args:
        chain: The chain.
        targets: ``(F, 3)`` tip targets, world units.
        orientations: ``(F, 3, 3)`` or ``(3, 3)`` world rotations for the tip frame, or None.
        poles: ``(F, 3)`` or ``(3,)`` world pole (bend direction) hints, or None.
        comfort: Preferred posture, or None.
        initial: Start poses: ``(F, m)``, ``(m,)``, ``(F, n, 3)`` or ``(n, 3)``. Default: the
            comfort pose if given, else zero; either is projected onto the limits.
        options: Solver options; default :class:`SolverOptions` ().

    Returns:
        A :class:`SolveResult` with one entry per target. ``solve_batch`` gives the same answer
        as calling :func:`solve` on each target.

    Raises:
        IKInputError: Shapes do not match, or a value is NaN or infinite.
    """
    opts = options or SolverOptions()
    comfort = nearest_comfort(chain, comfort, opts, has_pole=poles is not None)
    problem = make_problem(chain, targets, orientations=orientations, orientation_weight=opts.orientation_weight,
                           poles=poles, pole_weight=opts.pole_weight, comfort=comfort)
    count, dofs = problem.count, chain.n_dofs
    start, seed_poses = start_poses(chain, problem, initial, bend=opts.method == "lm")
    if use_compiled(problem, opts):
        unit, spread = restart_draws(dofs, opts)
        try:
            return _result(chain, problem, lm_solve_compiled(
                problem, start, seed_poses, beyond_reach(problem, opts), unit, spread, opts))
        except KernelError:
            if opts.backend == "numba":
                raise
            # "auto": numba cannot run here (it warned once and is not tried again); solve with numpy.
    out: dict[str, Any] = {
        "q": np.empty((count, dofs)), "error": np.empty(count), "orientation_error": np.empty(count),
        "iterations": np.empty(count, dtype=np.int64), "status": np.empty(count, dtype=np.int64),
    }
    for begin in range(0, count, opts.chunk_size):
        index = np.arange(begin, min(begin + opts.chunk_size, count))
        sub: Problem = problem.take(index)
        q0 = start[index] if start.shape[0] == count else np.repeat(start, index.size, axis=0)
        if opts.method == "tutorial":
            attempt = tutorial_solve(sub, q0, opts)
        else:
            # Shared seed poses (the comfort pose, or one start for all) as they are; per-target
            # start poses for this chunk only.
            attempt = lm_solve(sub, q0, opts, seed_poses if seed_poses.shape[0] == 1 else q0)
        out["q"][index] = attempt.q
        out["error"][index] = attempt.position_error
        out["orientation_error"][index] = attempt.orientation_error
        out["iterations"][index] = attempt.iterations
        out["status"][index] = attempt.status
    return _result(chain, problem, Attempt(out["q"], out["error"], out["orientation_error"], out["iterations"],
                                           out["status"]))


def nearest_comfort(chain: Chain, comfort: ComfortPose | None, options: SolverOptions, *,
                    has_pole: bool) -> ComfortPose | None:
    """The comfort pose a solve uses: the pose nearest the comfort pose (the rest pose without one)
    is the answer, even at zero comfort weight, unless a pole picks the bend (a rest pull would
    fight it) or the method is the tutorial's."""
    if has_pole or options.method != "lm" or (comfort is not None and not np.all(np.asarray(comfort.weights) == 0)):
        if comfort is None and chain.n_stretch and options.method == "lm":
            # Length factors always prefer 1 (reach first): a pose with no angle preference.
            return chain.memo("stretch_comfort", (), lambda: ComfortPose(chain.neutral, 0.0))
        return comfort
    if comfort is None:
        return chain.memo("rest_comfort", (), lambda: ComfortPose(chain.neutral, rules.REST_WEIGHT))
    return ComfortPose(comfort.angles, rules.REST_WEIGHT)


def start_poses(chain: Chain, problem: Problem, initial: ArrayLike | None = None, *,
                bend: bool = True) -> tuple[FloatArray, FloatArray]:
    """``(start poses, seed poses)``, each ``(F, m)`` or ``(1, m)``: where attempts begin (see
    :func:`_initial_poses`), and what restarts perturb: the comfort pose if there is one (the
    preferred posture), else each target's own start pose, so a warm start (the previous frame)
    restarts nearby."""
    start = _initial_poses(chain, problem, initial, bend=bend)
    if problem.comfort is None:
        return start, start
    comfort_angles = problem.comfort[0]
    return start, chain.memo_of("seed_poses", (comfort_angles,), lambda: chain.clamp(comfort_angles)[None])


_STATUS_NAMES = np.asarray(STATUSES, dtype=object)


def _result(chain: Chain, problem: Problem, attempt: Attempt) -> SolveResult:
    return finish_result(chain, problem.comfort[0] if problem.comfort is not None else chain.neutral, attempt)


def finish_result(chain: Chain, comfort_angles: FloatArray, attempt: Attempt) -> SolveResult:
    """The :class:`SolveResult` of an attempt: angles turned near the comfort pose (see
    :func:`_near_turn`), statuses named."""
    status = attempt.status
    q = _near_turn(chain, attempt.q, comfort_angles)
    return SolveResult(
        q=q, angles=chain.expand(q), error=attempt.position_error,
        orientation_error=attempt.orientation_error, iterations=attempt.iterations,
        converged=status == 0, status=_STATUS_NAMES[status], scales=chain.factors(q),
    )


def _near_turn(chain: Chain, q: FloatArray, around: FloatArray) -> FloatArray:
    """``q`` with every unlimited angle moved by whole turns to within half a turn of ``around``,
    and each ball joint (three free, unlimited axes) in whichever of its two Euler triples for
    the same rotation, ``(a, b, c)`` or ``(a + pi, pi - b, c + pi)`` (first, middle, last axis of
    its order), is nearer ``around``.

    The same rotations, so the same pose; but the same pose must give the same angles on every
    frame, or keys interpolate through an extra half or whole turn.
    """
    if not chain.any_unlimited:
        return q
    unlimited = chain.unlimited

    def wrapped(angles: FloatArray) -> FloatArray:
        return np.asarray(np.where(unlimited, around + np.remainder(angles - around + np.pi, 2.0 * np.pi) - np.pi,
                                   angles))

    out = wrapped(q)
    for dofs in chain.memo("ball_dofs", (), lambda: _ball_dofs(chain)):
        alias = out.copy()
        alias[..., dofs[0]] += np.pi
        alias[..., dofs[1]] = np.pi - alias[..., dofs[1]]
        alias[..., dofs[2]] += np.pi
        alias = wrapped(alias)
        nearer = (np.sum((alias[..., dofs] - around[dofs]) ** 2, axis=-1)
                  < np.sum((out[..., dofs] - around[dofs]) ** 2, axis=-1))
        out[..., dofs] = np.where(nearer[..., None], alias[..., dofs], out[..., dofs])
    return out


def _ball_dofs(chain: Chain) -> list[list[int]]:
    """Per ball joint, its free angles' indices in application order: first, middle, last axis."""
    out = []
    for j in np.flatnonzero(chain.ball_joints):
        order = order_indices(chain.joints[j].order)
        out.append([int(np.flatnonzero((chain.free_joint == j) & (chain.free_axis == axis))[0]) for axis in order])
    return out


def pre_bend(chain: Chain, pose: FloatArray) -> FloatArray:
    """The cold start: ``pose`` inside the limits, with every free angle that sits on a limit
    nudged off it, into its range, by ``rules.PRE_BEND`` shared among the joints (at most a
    quarter of the range).

    An elbow whose range starts at the straight pose (0..150 deg) is a singular start: the tip's
    gradient pushes it against its limit, the active set freezes it, and LM stalls with the arm
    straight. Nudged off the limit it can bend, and always the same way, so neighbouring targets
    land on the same branch. Angles free to turn both ways are left alone: a bend there would pick
    a branch that limits elsewhere can trap. The pull toward the preferred pose takes the nudge
    back out where it is not needed.
    """
    start = chain.clamp(pose)
    on_lower = np.isfinite(chain.lower) & (start <= chain.lower)
    on_upper = np.isfinite(chain.upper) & (start >= chain.upper)
    room = 0.25 * np.where(np.isfinite(chain.upper - chain.lower), chain.upper - chain.lower, np.inf)
    nudge = np.minimum(rules.PRE_BEND / chain.n_joints, room)
    return np.asarray(chain.clamp(start + np.where(on_lower, nudge, 0.0) - np.where(on_upper, nudge, 0.0)))


def _initial_poses(chain: Chain, problem: Problem, initial: ArrayLike | None, *, bend: bool) -> FloatArray:
    """``(F, m)`` or ``(1, m)`` start poses inside the limits (``bend``: cold starts pre-bent)."""
    if initial is None:
        pose = problem.comfort[0] if problem.comfort is not None else chain.neutral
        if not bend:
            return chain.clamp(pose)[None]
        return chain.memo("pre_bend", (pose.tobytes(),), lambda: pre_bend(chain, pose)[None])
    arr = np.asarray(initial, dtype=np.float64)
    if arr.shape[-2:] == (chain.n_joints, 3) and arr.ndim in (2, 3):
        arr = chain.compress(arr)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != chain.n_dofs or arr.shape[0] not in (1, problem.count):
        raise IKInputError(f"initial poses must have shape ({problem.count}, {chain.n_dofs}) or "
                           f"({chain.n_dofs},), got {np.shape(initial)}")
    if not np.isfinite(arr).all():
        raise IKInputError("initial pose contains NaN or infinite angles")
    return chain.clamp(arr)
