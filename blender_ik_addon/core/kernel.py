"""The LM solver as scalar loops compiled by numba (optional).

This module imports numba and is only imported by :mod:`.compiled`, which checks that numba is
there first. It is :func:`.lm.lm_solve`, rule for rule, for every problem but a soft comfort pull:

* FK and the Jacobian as in :mod:`.fk` (a joint turns about the axes of the frame it has after
  the rotations applied outside it): the tree kernel's, :func:`.kernel_base.forward_joints` on the
  tree whose joints each hang from the one before; the tip in world space through the chain's base; the
  orientation, pole and reach-first comfort residuals as in :func:`.objectives.evaluate`.
* The step as in ``lm._step``: active set (a free angle on a limit whose gradient pushes outward is
  frozen), Marquardt scaling with a floor, the dual (Woodbury) form when there are fewer rows (3
  or 6) than angles, projection onto the limits.
* Acceptance, damping (``DAMPING_DOWN`` on success, ``DAMPING_UP`` on failure, capped), "quiet"
  progress and the stop rules as in ``lm.lm_attempt``.
* Restarts as in ``lm.lm_solve``: the same seeds (the caller passes the same uniform draws), tried
  in order, the first converging one wins, at most ``_FRUITLESS_RESTARTS`` in a row that gain
  nothing, none for targets beyond reach.

Two paths: :func:`solve_many` for the tip task alone (position, and orientation if asked), and
:func:`solve_many_secondary` when a pole or a reach-first comfort pull adds secondary tasks (the
null-space step, the tip restore, lexicographic acceptance, pole-branch restarts). They are kept
apart because numba's code for the plain iteration ran three times slower with the secondary calls
merely present in its loop.

Why a second implementation at all: numpy's fixed cost per call (about a microsecond, and an LM
iteration makes ~100 calls) is what a single small solve spends its time on. Here one iteration of
a 3-angle arm takes well under a microsecond. The answers agree with the numpy path to rounding (the
linear algebra is summed in another order), not bit for bit; within this kernel, a batch is exactly
a loop of single solves, since each target runs alone.

A chain that stretches (:mod:`.stretch`) has length factors after its free angles: FK scales each
joint's links by its frame scale (a factor, or 1.0, which leaves a chain without stretch bit for bit
as it was), a factor's Jacobian column is its segment divided by the factor, its comfort row
follows the joints' rows, and Newton's curvature has its terms as in ``lm._curvature``. As in
``lm.lm_attempt``, an attempt holds the factors (the variables from ``free`` on) until the angles
stall short of the target, unless the target is beyond what the angles alone reach (:func:`_free_count`).

Arrays are float64 and C-contiguous; the "plan" arrays are built by :func:`.compiled.plan_of`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# numba's ways of compiling a function here, and the numeric pieces both kernels share:
from .kernel_base import forward_joints as _forward_joints
from .kernel_base import jit as _jit
from .kernel_base import jit_inline as _jit_inline
from .kernel_base import jit_leaf as _jit_leaf
from .kernel_base import position_column as _position_column
from .kernel_base import rotation_vector as _rotation_vector
from .kernel_base import solve_small as _solve_small

# The rules (constants, status codes) are lm.py's, from one module; numba compiles them in.
from .rules import (
    CONVERGED,
    DAMPING_DOWN,
    DAMPING_MAX,
    DAMPING_MIN,
    DAMPING_UP,
    FREEZE_PASSES,
    FRUITLESS_RESTARTS,
    LIMIT_EPS,
    MAX_ITER,
    MAX_STEP,
    NEWTON_LIMIT_BAND,
    NEWTON_MAX_ANGLES,
    NEWTON_RIDGE,
    QUIET_RELATIVE,
    QUIET_TO_STALL,
    RELAX_GROW,
    RELAX_RADIUS_MIN,
    RELAX_SHRINK,
    RELAX_STEPS,
    RESTART_BLOCK,
    RESTART_GAIN,
    RESTORE_CLOSE,
    RESTORE_DAMPING,
    RESTORE_STEPS,
    RUNNING,
    SCALE_FLOOR,
    SETTLE_ANGLE,
    STALLED,
)
from .types import AnyArray, FloatArray

# Annotations are for readers and mypy; numba compiles from the argument types it is called with.
Plan = tuple[Any, ...]  # see compiled.plan_of: limits, rest transforms, slots, base, tip offset, variables' joints,
# axes, turn ranks, the number of angles, the reach sphere of the angles alone (centre x, y, z, radius)
Workspace = tuple[Any, ...]  # see _workspace
Task = tuple[Any, ...]  # (target (3,), orientation (3, 3), orientation scale, tolerance, orientation tolerance)
Flags = tuple[Any, ...]  # (can relax, problem has secondary tasks, relax slack), see _attempt_secondary


@_jit_inline
def _copy_vector(dst: FloatArray, src: FloatArray) -> None:
    """``dst[:] = src`` as a loop: a slice assignment checks for overlap and may copy through a
    buffer it allocates, which a function compiled without numba's runtime cannot (see _jit_leaf)."""
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@_jit_inline
def _copy_matrix(dst: FloatArray, src: FloatArray) -> None:
    """``dst[:, :] = src`` as a loop."""
    for i in range(dst.shape[0]):
        for k in range(dst.shape[1]):
            dst[i, k] = src[i, k]


@_jit_inline
def _evaluate(q: FloatArray, task: Task, plan: Plan, residual: FloatArray, jac: FloatArray,
              ws: Workspace) -> tuple[float, float]:
    """Residual ``(k,)`` and world Jacobian ``(k, m)`` at ``q``, ``k`` = 3 (tip position) or 6 (and
    orientation). Returns ``(0.5 |r|^2, orientation error in radians)``. Leaves the variables' axes
    and origins (a length factor: no axis, its joint's origin) and the joints' origins (chain space)
    in the workspace.

    Inlined, it hands :func:`_forward` only the arrays it reads: numba passes each array of the
    plan and workspace tuples field by field on the stack, and the LM loops evaluate every iteration."""
    return _forward(q, task[0], task[1], task[2], plan[2], plan[3], plan[4], plan[5], plan[6], plan[7], plan[8],
                    plan[9], plan[10], plan[11], plan[14], plan[19], residual, jac, ws[6], ws[7], ws[8], ws[9],
                    ws[14], ws[15], ws[16], ws[18])


@_jit_leaf
def _forward(q: FloatArray, target: FloatArray, orientation: FloatArray, orientation_scale: float,
             rest_rot: FloatArray, rest_pos: FloatArray, rest_rotates: AnyArray, slot_count: AnyArray,
             slot_axis: AnyArray, slot_dof: AnyArray, slot_fixed: FloatArray, base: FloatArray, tip_offset: FloatArray,
             dof_joint: AnyArray, angle_count: int, parents: AnyArray, residual: FloatArray, jac: FloatArray,
             rot: FloatArray, tmp: FloatArray, axes: FloatArray, origins: FloatArray, joint_origins: FloatArray,
             frames: FloatArray, turned: FloatArray, tip: FloatArray) -> tuple[float, float]:
    """:func:`_evaluate` on the arrays it reads (the plan's and the workspace's, by name). The joints
    are the trees' (:func:`.kernel_base.forward_joints`, the chain's joints each hanging from the one
    before); then the tip, the residual and the Jacobian."""
    n, m = rest_pos.shape[0], axes.shape[0]
    sigma = _forward_joints(q, parents, rest_rot, rest_pos, rest_rotates, slot_count, slot_axis, slot_dof,
                            slot_fixed, dof_joint, angle_count, rot, joint_origins, frames, turned, axes, origins)
    px, py, pz = joint_origins[n - 1, 0], joint_origins[n - 1, 1], joint_origins[n - 1, 2]
    tx, ty, tz = sigma * tip_offset[0], sigma * tip_offset[1], sigma * tip_offset[2]
    cx = px + rot[0, 0] * tx + rot[0, 1] * ty + rot[0, 2] * tz
    cy = py + rot[1, 0] * tx + rot[1, 1] * ty + rot[1, 2] * tz
    cz = pz + rot[2, 0] * tx + rot[2, 1] * ty + rot[2, 2] * tz
    tip[0], tip[1], tip[2] = cx, cy, cz
    cost = 0.0
    for a in range(3):
        residual[a] = base[a, 0] * cx + base[a, 1] * cy + base[a, 2] * cz + base[a, 3] - target[a]
        cost += residual[a] * residual[a]
    for k in range(axes.shape[0]):
        jac[0, k], jac[1, k], jac[2, k] = _position_column(base, axes[k, 0], axes[k, 1], axes[k, 2], cx - origins[k, 0],
                                                           cy - origins[k, 1], cz - origins[k, 2])
    if angle_count < m:
        for k in range(angle_count, m):  # length factors: segment / factor (fk.stretch_columns)
            _, ex, ey, ez = _segment_end(k, n, dof_joint, origins, tip)
            col0 = (ex - origins[k, 0]) / q[k]
            col1 = (ey - origins[k, 1]) / q[k]
            col2 = (ez - origins[k, 2]) / q[k]
            for a in range(3):
                jac[a, k] = base[a, 0] * col0 + base[a, 1] * col1 + base[a, 2] * col2
    orientation_error = 0.0
    if orientation_scale > 0:
        # r = w * reach * log(R_tip R_target^T) (objectives.evaluate); J = w * reach * axes^T.
        for a in range(3):
            for b in range(3):
                tmp[a, b] = (rot[a, 0] * orientation[b, 0] + rot[a, 1] * orientation[b, 1]
                             + rot[a, 2] * orientation[b, 2])
        residual[3], residual[4], residual[5] = _rotation_vector(tmp)
        for a in range(3, 6):
            orientation_error += residual[a] * residual[a]
            residual[a] *= orientation_scale
            cost += residual[a] * residual[a]
            for k in range(axes.shape[0]):
                jac[a, k] = orientation_scale * axes[k, a - 3]
        orientation_error = np.sqrt(orientation_error)
    return 0.5 * cost, orientation_error


@_jit_inline
def _segment_end(k: int, n: int, dof_joint: AnyArray, origins: FloatArray,
                 tip: FloatArray) -> tuple[int, float, float, float]:
    """Length factor ``k``'s segment end (``fk.stretch_columns``): the joint where it ends and its
    origin, chain space; the next factor's (the factors follow the angles in joint order), or the
    tip (joint ``n``) after the last."""
    if k + 1 < origins.shape[0]:
        return dof_joint[k + 1], origins[k + 1, 0], origins[k + 1, 1], origins[k + 1, 2]
    return n, tip[0], tip[1], tip[2]


@_jit_leaf
def _step(q: FloatArray, residual: FloatArray, jac: FloatArray, rows: int, lower: FloatArray, upper: FloatArray,
          damping: float, step: FloatArray, work: FloatArray, small: FloatArray, vec: FloatArray, free: int) -> None:
    """The projected LM step into ``step`` (see ``lm._step`` and ``lm.damped_solve``) for the
    first ``rows`` rows of the residual and Jacobian; the variables from ``free`` on are held
    (length factors, see :func:`_free_count`).

    Scratch: ``work`` ``(6, m)`` receives the active Jacobian (frozen columns zeroed); ``vec``
    ``(6 + m,)`` holds a ``rows``-vector in ``[:6]`` and the damping diagonal in ``[6:]``; ``small``
    ``(6, 6)`` is the system solved (dual form, or the normal equations when ``m <= rows``).
    """
    m = q.shape[0]
    largest = 0.0
    for i in range(m):
        g = 0.0
        for a in range(rows):
            g += jac[a, i] * residual[a]
        blocked = (q[i] <= lower[i] + LIMIT_EPS and g > 0) or (q[i] >= upper[i] - LIMIT_EPS and g < 0) or i >= free
        step[i] = 0.0 if blocked else -g
        d = 0.0
        for a in range(rows):
            work[a, i] = 0.0 if blocked else jac[a, i]
            d += work[a, i] * work[a, i]
        vec[6 + i] = d  # the diagonal of J^T J, kept for the scaling below
        largest = max(largest, d)
    floor = SCALE_FLOOR * (largest + 1e-300)
    for i in range(m):
        vec[6 + i] = damping * max(vec[6 + i], floor)  # the damping diagonal
    if m > rows:
        # Dual form: x = D^-1 b - D^-1 J^T (I + J D^-1 J^T)^-1 J D^-1 b. The sums run angle by angle
        # (each entry gets the same terms in the same order as summed entry by entry), so that each
        # J[a, i] / D[i] is divided once, not once per entry of its row.
        for a in range(rows):
            vec[a] = 0.0
            for b in range(rows):
                small[a, b] = 0.0
        for i in range(m):
            diagonal = vec[6 + i]
            step[i] /= diagonal
            for a in range(rows):
                vec[a] += work[a, i] * step[i]
                scaled = work[a, i] / diagonal
                for b in range(rows):
                    small[a, b] += scaled * work[b, i]
        for a in range(rows):
            for b in range(rows):
                small[a, b] = small[a, b] + (1.0 if a == b else 0.0)
        _solve_small(small, vec, rows)
        for i in range(m):
            total = 0.0
            for a in range(rows):
                total += work[a, i] * vec[a]
            step[i] -= total / vec[6 + i]
    else:
        for i in range(m):
            for j in range(m):
                total = 0.0
                for a in range(rows):
                    total += work[a, i] * work[a, j]
                small[i, j] = total
            small[i, i] += vec[6 + i]
        _solve_small(small, step, m)


@_jit_leaf
def _converged(position_error: float, orientation_error: float, rows: int, task: Task) -> bool:
    """``lm._converged``: the tip within tolerance, and the orientation too when it is a task."""
    return position_error < task[3] and (rows == 3 or orientation_error < task[4])


@_jit_leaf
def _trust(step: FloatArray) -> None:
    """``lm._trust``: clip every angle's change in ``step`` to ``MAX_STEP``, in place."""
    for i in range(step.shape[0]):
        step[i] = min(max(step[i], -MAX_STEP), MAX_STEP)


@_jit_inline
def _free_count(task: Task, plan: Plan, m: int) -> int:
    """How many variables an attempt starts with free: all, or for a chain that stretches whose
    target the angles alone may reach (``lm.beyond_rigid_reach``), the angles only."""
    angle_count = plan[14]
    if angle_count == m:
        return m
    target = task[0]
    distance = np.sqrt((target[0] - plan[15]) ** 2 + (target[1] - plan[16]) ** 2 + (target[2] - plan[17]) ** 2)
    return m if distance > plan[18] + task[3] else angle_count


@_jit_leaf
def _attempt(q: FloatArray, task: Task, max_iterations: int, initial_damping: float, plan: Plan,
             ws: Workspace) -> tuple[float, float, int, int]:
    """One LM attempt from ``q`` (inside the limits), in place.

    Returns ``(position error, orientation error, iterations, status)``.
    """
    m = q.shape[0]
    rows = 6 if task[2] > 0 else 3
    lower, upper = plan[0], plan[1]
    residual, trial_residual, jac, trial_jac, trial_q, step = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5]
    cost, orientation_error = _evaluate(q, task, plan, residual, jac, ws)
    damping = initial_damping
    quiet = 0
    iterations = 0
    position_error = np.sqrt(residual[0] ** 2 + residual[1] ** 2 + residual[2] ** 2)
    status = CONVERGED if _converged(position_error, orientation_error, rows, task) else RUNNING
    trial_cost, trial_orientation_error, rejected = cost, orientation_error, False
    free = _free_count(task, plan, m)
    while status == RUNNING and iterations < max_iterations:
        _step(q, residual, jac, rows, lower, upper, damping, step, ws[10], ws[11], ws[12], free)
        _trust(step)
        # A step clipped to MAX_STEP can come back unchanged after a rejection (the damping has not
        # yet shrunk it below the clip): the same trial, so the same verdict, without evaluating it.
        same = rejected
        for i in range(m):
            value = min(max(q[i] + step[i], lower[i]), upper[i])
            same = same and value == trial_q[i]
            trial_q[i] = value
        if not same:
            trial_cost, trial_orientation_error = _evaluate(trial_q, task, plan, trial_residual, trial_jac, ws)
        iterations += 1
        rejected = not trial_cost < cost
        if trial_cost < cost:
            negligible = cost - trial_cost <= QUIET_RELATIVE * max(cost, 1e-300) + 1e-30
            quiet = quiet + 1 if negligible else 0
            _copy_vector(q, trial_q)
            _copy_vector(residual, trial_residual)
            _copy_matrix(jac, trial_jac)
            cost, orientation_error = trial_cost, trial_orientation_error
            position_error = np.sqrt(residual[0] ** 2 + residual[1] ** 2 + residual[2] ** 2)
            damping = max(damping / DAMPING_DOWN, DAMPING_MIN)
        else:
            damping *= DAMPING_UP
        if _converged(position_error, orientation_error, rows, task):
            status = CONVERGED
        elif (quiet >= QUIET_TO_STALL or damping >= DAMPING_MAX) and free < m and rows == 3:
            # The angles stall short of the target: the length factors join in. Not with an
            # orientation task: stretching turns nothing, and a stall there is the orientation's
            # (such a chain stretches only for a target beyond its full length, _free_count).
            free, quiet, damping, rejected = m, 0, initial_damping, False
        elif quiet >= QUIET_TO_STALL or damping >= DAMPING_MAX:
            status = STALLED
    if status == RUNNING:
        status = CONVERGED if _converged(position_error, orientation_error, rows, task) else MAX_ITER
    return position_error, orientation_error, iterations, status


@_jit_leaf
def _better_attempt(converged: bool, alignment: float, distance: float, error: float, best_converged: bool,
                    best_alignment: float, best_distance: float, best_error: float) -> bool:
    """``lm._better_attempt`` for one target: does a restart's attempt beat the best so far?"""
    if converged and best_converged:
        bend, best_bend = min(alignment, 0.0), min(best_alignment, 0.0)
        return bend > best_bend or (bend == best_bend and distance < best_distance)
    if best_converged:
        return False
    return converged or error < best_error - 1e-15


@_jit_leaf
def _comfort_distance(q: FloatArray, task: Task, posture: Task, plan: Plan, ws: Workspace, rows: FloatArray) -> float:
    """``lm.preference_cost`` without a pole: the distance from the comfort rotations at ``q``
    (FK into the trial buffers; ``rows`` ``(3n,)`` scratch)."""
    _evaluate(q, task, plan, ws[1], ws[3], ws)
    return _posture_rows(q, posture, plan, ws, rows, ws[8], 0, False)  # ws[8]: an unused (m, 3) stand-in


@_jit
def _workspace(m: int, n: int) -> Workspace:
    """Scratch arrays of one solve, by position: 0-1 residual and trial residual (6,), 2-3 Jacobian
    and trial Jacobian (6, m), 4 trial pose, 5 step, 6-7 rotation and product (3, 3), 8-9 axes and
    origins of the free angles (m, 3), 10 active Jacobian (6, m), 11 small system (6, 6), 12 vector
    (6 + m,), 13 seed or restore step (m,), 14 joint origins (n, 3), 15-16 each joint's frame before
    and after it turns (n, 3, 3), chain space, 17 posture scratch (3 x (3, 3)),
    18 the tip (3,), chain space."""
    return (np.empty(6), np.empty(6), np.empty((6, m)), np.empty((6, m)), np.empty(m), np.empty(m),
            np.empty((3, 3)), np.empty((3, 3)), np.empty((m, 3)), np.empty((m, 3)), np.empty((6, m)),
            np.empty((6, 6)), np.empty(6 + m), np.empty(m), np.empty((n, 3)), np.empty((n, 3, 3)),
            np.empty((n, 3, 3)), np.empty((3, 3, 3)), np.empty(3))


@_jit_leaf
def _seed_pose(k: int, seed_base: FloatArray, unit: FloatArray, spread: FloatArray, lower: FloatArray,
               upper: FloatArray, seed: FloatArray, angles: int) -> None:
    """Restart seed ``k`` into ``seed``, as lm.restart_seeds computes it (same operations, same bits):
    the first ``angles`` variables perturbed, the length factors after them kept as they start."""
    for i in range(angles, seed.shape[0]):
        seed[i] = seed_base[i]
    for i in range(angles):
        low = lower[i] if np.isfinite(lower[i]) else seed_base[i] - np.pi
        high = upper[i] if np.isfinite(upper[i]) else seed_base[i] + np.pi
        uniform = unit[k, i] * (high - low) + low
        seed[i] = min(max(seed_base[i] + spread[k] * (uniform - seed_base[i]), lower[i]), upper[i])


@_jit
def _solve_one(task: Task, start: FloatArray, seed_base: FloatArray, hopeless: bool, unit: FloatArray,
               spread: FloatArray, max_iterations: int, initial_damping: float, posture: Task, plan: Plan,
               q_out: FloatArray,
               ws: Workspace) -> tuple[float, float, int, int]:
    """``lm.lm_solve`` for one target: the attempt from ``start``, then seeded restarts in blocks of
    ``RESTART_BLOCK``, the best by ``_better_attempt`` kept. Writes the best pose into ``q_out``;
    returns ``(position error, orientation error, iterations, status)``."""
    lower, upper, tolerance = plan[0], plan[1], task[3]
    _copy_vector(q_out, start)
    best_error, best_orientation_error, iterations, best_status = _attempt(
        q_out, task, max_iterations, initial_damping, plan, ws)
    distance_rows = np.empty(3 * plan[3].shape[0] + posture[4].shape[0])
    best_distance = np.inf  # measured once a restart is tried (most solves need none)
    fruitless = 0
    seed = ws[13]
    for k in range(unit.shape[0]):
        if k % RESTART_BLOCK == 0 and (best_status == CONVERGED or hopeless or fruitless >= FRUITLESS_RESTARTS):
            break
        if k == 0:
            best_distance = _comfort_distance(q_out, task, posture, plan, ws, distance_rows)
        _seed_pose(k, seed_base, unit, spread, lower, upper, seed, plan[14])
        error, orientation_error, used, status = _attempt(seed, task, max_iterations, initial_damping, plan, ws)
        distance = _comfort_distance(seed, task, posture, plan, ws, distance_rows)
        iterations += used
        converged = status == CONVERGED
        helped = converged or error < best_error - RESTART_GAIN * tolerance
        fruitless = 0 if helped else fruitless + 1
        if _better_attempt(converged, 1.0, distance, error, best_status == CONVERGED, 1.0, best_distance, best_error):
            _copy_vector(q_out, seed)
            best_error, best_orientation_error, best_status, best_distance = error, orientation_error, status, distance
    return best_error, best_orientation_error, iterations, best_status


@_jit
def solve_many(targets: FloatArray, orientations: FloatArray, orientation_scale: float, starts: FloatArray,
               seed_bases: FloatArray, hopeless: AnyArray, unit: FloatArray, spread: FloatArray, tolerance: float,
               orientation_tolerance: float, max_iterations: int, initial_damping: float, posture: Task,
               plan: Plan, q_out: FloatArray, error_out: FloatArray,
               orientation_error_out: FloatArray, iterations_out: AnyArray, status_out: AnyArray) -> None:
    """:func:`_solve_one` for each of ``F`` targets. ``orientations`` ``(F, 3, 3)`` are chain-space
    tip rotations, used when ``orientation_scale`` (weight times reach) is above 0; ``starts`` and
    ``seed_bases`` are ``(F, m)`` or ``(1, m)`` (shared); ``posture`` (see :func:`_posture_rows`)
    ranks reaching restarts by nearness (zero scales: no preference). Results go into the
    ``*_out`` arrays."""
    m = q_out.shape[1]
    ws = _workspace(m, plan[3].shape[0])
    for f in range(targets.shape[0]):
        start = starts[f] if starts.shape[0] > 1 else starts[0]
        seed_base = seed_bases[f] if seed_bases.shape[0] > 1 else seed_bases[0]
        orientation = orientations[f] if orientations.shape[0] > 1 else orientations[0]
        task = (targets[f], orientation, orientation_scale, tolerance, orientation_tolerance)
        error, orientation_error, iterations, status = _solve_one(
            task, start, seed_base, hopeless[f], unit, spread, max_iterations, initial_damping, posture, plan, q_out[f],
            ws)
        error_out[f], orientation_error_out[f], iterations_out[f], status_out[f] = (
            error, orientation_error, iterations, status)


# -- Reach-first secondary tasks: a pole hint and a comfort pull ---------------------------------
# A separate path, so the plain one above stays as it is (see the module docstring).
#
# ``sec`` (per target): (pole (3,) world, has pole, pole weight (0: no pole rows), posture (see
# _posture_rows), has comfort, reach). ``sws``: see _secondary_workspace.


@_jit
def _secondary_workspace(m: int, n: int, rows: int, pole_rows: int) -> Workspace:
    """Scratch arrays of the secondary tasks, by position: 0 pole offsets (n, 3), 1 projector (3, 3),
    2 pole direction (3,), 3 secondary gradient (m,), 4-5 trial secondary residual (rows,) and pole
    Jacobian (pole rows, m), 6 curvature (rows,), 7-8 secondary residual and pole Jacobian, 9 shaping
    (3, 3), 10 raw secondary gradient (m,), 11 frozen angles (m,) (1.0 frozen), 12-13 compact comfort
    Jacobian and trial one (m, 3) (see _posture_rows); for :func:`_newton_step`: 14-16 the accepted
    pose's axes and origins (m, 3) and tip (3,), chain space, 17 Hessian (m, m), 18 system (m, m),
    19 (6, 6), 20 (6, m), 21-22 (m, 6) products, 23 the step (m,)."""
    rows, pole_rows = max(rows, 1), max(pole_rows, 1)
    return (np.empty((n, 3)), np.empty((3, 3)), np.empty(3), np.empty(m), np.empty(rows), np.empty((pole_rows, m)),
            np.empty(rows), np.empty(rows), np.empty((pole_rows, m)), np.empty((3, 3)), np.empty(m), np.empty(m),
            np.empty((m, 3)), np.empty((m, 3)), np.empty((m, 3)), np.empty((m, 3)), np.empty(3), np.empty((m, m)),
            np.empty((m, m)), np.empty((6, 6)), np.empty((6, m)), np.empty((m, 6)), np.empty((m, 6)), np.empty(m))


@_jit_leaf
def _pole_geometry(target: FloatArray, sec: Task, plan: Plan, ws: Workspace, sws: Workspace) -> float:
    """Joint origins relative to the root, world space, into ``sws[0]``; the projector off the
    base-to-target line into ``sws[1]``; the pole's unit direction off that line into ``sws[2]``
    (``objectives._pole_geometry``). Returns 1.0 if the pole gives a direction, else 0.0."""
    base, joint_origins, pole = plan[9], ws[14], sec[0]
    offsets, projector, pole_dir = sws[0], sws[1], sws[2]
    n = joint_origins.shape[0]
    for j in range(n):
        for a in range(3):
            offsets[j, a] = (base[a, 0] * joint_origins[j, 0] + base[a, 1] * joint_origins[j, 1]
                             + base[a, 2] * joint_origins[j, 2] + base[a, 3])
    root = (offsets[0, 0], offsets[0, 1], offsets[0, 2])
    for j in range(n):
        for a in range(3):
            offsets[j, a] -= root[a]
    axis_x, axis_y, axis_z = target[0] - root[0], target[1] - root[1], target[2] - root[2]
    length = max(np.sqrt(axis_x * axis_x + axis_y * axis_y + axis_z * axis_z), 1e-12)
    axis = (axis_x / length, axis_y / length, axis_z / length)
    for a in range(3):
        for b in range(3):
            projector[a, b] = (1.0 if a == b else 0.0) - axis[a] * axis[b]
    to_pole = (pole[0] - root[0], pole[1] - root[1], pole[2] - root[2])
    size = 0.0
    for a in range(3):
        pole_dir[a] = projector[a, 0] * to_pole[0] + projector[a, 1] * to_pole[1] + projector[a, 2] * to_pole[2]
        size += pole_dir[a] * pole_dir[a]
    size = np.sqrt(size)
    for a in range(3):
        pole_dir[a] /= max(size, 1e-12)
    return 1.0 if size > 1e-9 else 0.0


@_jit_leaf
def _projected_offset(sws: Workspace, i: int) -> tuple[float, float, float, float]:
    """Joint ``i``'s offset from the base-to-target line (after :func:`_pole_geometry`), and its length."""
    offsets, projector = sws[0], sws[1]
    x = projector[0, 0] * offsets[i, 0] + projector[0, 1] * offsets[i, 1] + projector[0, 2] * offsets[i, 2]
    y = projector[1, 0] * offsets[i, 0] + projector[1, 1] * offsets[i, 1] + projector[1, 2] * offsets[i, 2]
    z = projector[2, 0] * offsets[i, 0] + projector[2, 1] * offsets[i, 1] + projector[2, 2] * offsets[i, 2]
    return x, y, z, float(np.sqrt(x * x + y * y + z * z))


@_jit_leaf
def _pole_rows(q: FloatArray, target: FloatArray, sec: Task, plan: Plan, secondary: FloatArray,
               secondary_jac: FloatArray, ws: Workspace, sws: Workspace) -> int:
    """The pole residual and Jacobian (``objectives._pole_terms``) into the first ``3 (n - 1)``
    secondary rows (after :func:`_evaluate` at ``q``); returns that row count."""
    base, dof_joint, angle_count = plan[9], plan[11], plan[14]
    joint_origins, axes, origins = ws[14], ws[8], ws[9]
    pole_dir, projector, shaped = sws[2], sws[1], sws[9]
    n, m = joint_origins.shape[0], axes.shape[0]
    if n < 2:  # a one-joint chain has no interior joint to aim
        return 0
    weight = sec[2] / np.sqrt(n - 1) * _pole_geometry(target, sec, plan, ws, sws)
    for i in range(1, n):
        row = 3 * (i - 1)
        x, y, z, size = _projected_offset(sws, i)
        off = (x, y, z)
        unit = (x / max(size, 1e-12), y / max(size, 1e-12), z / max(size, 1e-12))
        for a in range(3):
            secondary[row + a] = weight * (off[a] - size * pole_dir[a])
            for b in range(3):  # weight * (I - pole_dir unit^T) @ projector
                total = 0.0
                for c in range(3):
                    total += ((1.0 if a == c else 0.0) - pole_dir[a] * unit[c]) * projector[c, b]
                shaped[a, b] = weight * total
        # ... times the world Jacobian of joint i's origin: only angles of earlier joints move it.
        for k in range(m):
            if dof_joint[k] >= i:
                for a in range(3):
                    secondary_jac[row + a, k] = 0.0
                continue
            lx = joint_origins[i, 0] - origins[k, 0]
            ly = joint_origins[i, 1] - origins[k, 1]
            lz = joint_origins[i, 2] - origins[k, 2]
            ax, ay, az = axes[k, 0], axes[k, 1], axes[k, 2]
            c0, c1, c2 = ay * lz - az * ly, az * lx - ax * lz, ax * ly - ay * lx
            if k >= angle_count:  # a length factor: its segment up to joint i (fk.stretch_columns)
                end, ex, ey, ez = _segment_end(k, n, dof_joint, origins, ws[18])
                if end <= i:
                    lx, ly, lz = ex - origins[k, 0], ey - origins[k, 1], ez - origins[k, 2]
                c0, c1, c2 = lx / q[k], ly / q[k], lz / q[k]
            w0 = base[0, 0] * c0 + base[0, 1] * c1 + base[0, 2] * c2
            w1 = base[1, 0] * c0 + base[1, 1] * c1 + base[1, 2] * c2
            w2 = base[2, 0] * c0 + base[2, 1] * c1 + base[2, 2] * c2
            for a in range(3):
                secondary_jac[row + a, k] = shaped[a, 0] * w0 + shaped[a, 1] * w1 + shaped[a, 2] * w2
    return int(3 * (n - 1))


@_jit_inline
def _posture_rows(q: FloatArray, posture: Task, plan: Plan, ws: Workspace, out: FloatArray, out_jac: FloatArray,
                  first: int, with_jacobian: bool) -> float:
    """The distance from the comfort pose (``posture.posture_terms``), after :func:`_evaluate` at
    ``q``: rows ``first + 3j .. first + 3j + 2`` of ``out`` for joint ``j``. Returns the rows'
    ``0.5 |r|^2``.

    The Jacobian is block diagonal (a joint's rows move with its own angles only), so it is kept
    compact: ``out_jac[k, a]`` ``(m, 3)`` is the derivative of row ``first + 3 joint(k) + a`` by
    angle ``k``.

    ``posture``: (comfort rotations (n, 3, 3), scale per joint (n,), ball joints (n,), comfort
    variables (m,), scale per length factor (k,)). A length factor's row is ``first + 3n + i``
    (factor ``i``), its compact Jacobian ``out_jac[k, 0]``.
    """
    comfort, scales, ball, angles, stretch = posture[0], posture[1], posture[2], posture[3], posture[4]
    angle_count = plan[14]
    frames, turned, axes = ws[15], ws[16], ws[8]
    dof_joint, dof_axis, slot_axis, slot_dof, slot_count = plan[11], plan[12], plan[6], plan[7], plan[5]
    scratch = ws[17]
    own, turn, inverse = scratch[0], scratch[1], scratch[2]
    n = frames.shape[0]
    cost = 0.0
    for j in range(n):
        row, scale = first + 3 * j, scales[j]
        if not ball[j]:
            # Euler distance: row 3j + axis holds the free angle about that axis.
            for a in range(3):
                out[row + a] = 0.0
            for s in range(slot_count[j]):
                k = slot_dof[j, s]
                if k >= 0:
                    value = scale * (q[k] - angles[k])
                    out[row + slot_axis[j, s]] = value
                    cost += value * value
                    if with_jacobian:
                        for a in range(3):
                            out_jac[k, a] = scale if a == dof_axis[k] else 0.0
            continue
        for a in range(3):  # own = frames^T turned: the joint's own rotation; turn = C^T own
            for b in range(3):
                own[a, b] = frames[j, 0, a] * turned[j, 0, b] + frames[j, 1, a] * turned[j, 1, b] + frames[
                    j, 2, a] * turned[j, 2, b]
        for a in range(3):
            for b in range(3):
                turn[a, b] = comfort[j, 0, a] * own[0, b] + comfort[j, 1, a] * own[1, b] + comfort[j, 2, a] * own[2, b]
        px, py, pz = _rotation_vector(turn)
        out[row], out[row + 1], out[row + 2] = scale * px, scale * py, scale * pz
        cost += (scale * px) ** 2 + (scale * py) ** 2 + (scale * pz) ** 2
        if not with_jacobian:
            continue
        _inverse_left_jacobian(px, py, pz, inverse)
        for k in range(angle_count):
            if dof_joint[k] != j:
                continue
            # The angle's axis in the joint's frame (frames^T axis), then in the comfort frame (C^T).
            lx = frames[j, 0, 0] * axes[k, 0] + frames[j, 1, 0] * axes[k, 1] + frames[j, 2, 0] * axes[k, 2]
            ly = frames[j, 0, 1] * axes[k, 0] + frames[j, 1, 1] * axes[k, 1] + frames[j, 2, 1] * axes[k, 2]
            lz = frames[j, 0, 2] * axes[k, 0] + frames[j, 1, 2] * axes[k, 1] + frames[j, 2, 2] * axes[k, 2]
            ux = comfort[j, 0, 0] * lx + comfort[j, 1, 0] * ly + comfort[j, 2, 0] * lz
            uy = comfort[j, 0, 1] * lx + comfort[j, 1, 1] * ly + comfort[j, 2, 1] * lz
            uz = comfort[j, 0, 2] * lx + comfort[j, 1, 2] * ly + comfort[j, 2, 2] * lz
            for a in range(3):
                out_jac[k, a] = scale * (inverse[a, 0] * ux + inverse[a, 1] * uy + inverse[a, 2] * uz)
    for i in range(stretch.shape[0]):  # the length factors prefer 1
        k = angle_count + i
        value = stretch[i] * (q[k] - 1.0)
        out[first + 3 * n + i] = value
        cost += value * value
        if with_jacobian:
            out_jac[k, 0], out_jac[k, 1], out_jac[k, 2] = stretch[i], 0.0, 0.0
    return 0.5 * cost


@_jit_leaf
def _inverse_left_jacobian(px: float, py: float, pz: float, out: FloatArray) -> None:
    """``posture.inverse_left_jacobian`` of the rotation vector ``(px, py, pz)`` into ``out`` (3, 3)."""
    theta = np.sqrt(px * px + py * py + pz * pz)
    if theta < 1e-4:
        coefficient = 1.0 / 12.0 + theta * theta / 720.0
    else:
        coefficient = 1.0 / (theta * theta) - (1.0 + np.cos(theta)) / (2.0 * theta * max(np.sin(theta), 1e-6))
    # I - 0.5 [p]x + c [p]x^2, with [p]x^2 = p p^T - |p|^2 I.
    square = theta * theta
    out[0, 0] = 1.0 + coefficient * (px * px - square)
    out[1, 1] = 1.0 + coefficient * (py * py - square)
    out[2, 2] = 1.0 + coefficient * (pz * pz - square)
    out[0, 1] = 0.5 * pz + coefficient * px * py
    out[1, 0] = -0.5 * pz + coefficient * px * py
    out[0, 2] = -0.5 * py + coefficient * px * pz
    out[2, 0] = 0.5 * py + coefficient * px * pz
    out[1, 2] = 0.5 * px + coefficient * py * pz
    out[2, 1] = -0.5 * px + coefficient * py * pz


@_jit_inline
def _evaluate_secondary(q: FloatArray, target: FloatArray, sec: Task, plan: Plan, secondary: FloatArray,
                        secondary_jac: FloatArray, posture_jac: FloatArray, ws: Workspace, sws: Workspace) -> float:
    """The secondary rows of :func:`.objectives.evaluate` at ``q``, after :func:`_evaluate` at the
    same ``q``: the pole rows (Jacobian in ``secondary_jac``), then the comfort rows (compact
    Jacobian in ``posture_jac``, see :func:`_posture_rows`). Returns ``0.5 |secondary|^2``."""
    rows = _pole_rows(q, target, sec, plan, secondary, secondary_jac, ws, sws) if sec[2] > 0 else 0
    if sec[4]:
        _posture_rows(q, sec[3], plan, ws, secondary, posture_jac, rows, True)
        rows += 3 * plan[3].shape[0] + sec[3][4].shape[0]
    cost = 0.0
    for r in range(rows):
        cost += secondary[r] * secondary[r]
    return 0.5 * cost


@_jit_leaf
def _pole_alignment(q: FloatArray, task: Task, sec: Task, plan: Plan, ws: Workspace, sws: Workspace) -> float:
    """``objectives.pole_alignment`` at ``q``: the worst cosine between an interior joint's bend
    direction and the pole's (1 without a pole, or without one usable)."""
    n = plan[3].shape[0]
    if not sec[1] or n < 2:
        return 1.0
    _evaluate(q, task, plan, ws[1], ws[3], ws)  # FK into the trial buffers
    if _pole_geometry(task[0], sec, plan, ws, sws) == 0.0:
        return 1.0
    pole_dir = sws[2]
    worst = np.inf
    for i in range(1, n):
        x, y, z, size = _projected_offset(sws, i)
        cosine = (x * pole_dir[0] + y * pole_dir[1] + z * pole_dir[2]) / max(size, 1e-12)
        worst = min(worst, cosine if size > 1e-9 * sec[5] else 1.0)
    return float(worst)


@_jit_leaf
def _secondary_step(q: FloatArray, jac: FloatArray, work: FloatArray, rows: int, pole_rows: int, posture_on: bool,
                    plan: Plan, relax_radius: float, step: FloatArray, small: FloatArray, vec: FloatArray,
                    sws: Workspace, free: int) -> tuple[float, float]:
    """Add the reach-first step, shortened to ``relax_radius``, to ``step`` (``lm._secondary_step``
    and ``lm._step``): Newton's step along the tip's solution set where it is well posed
    (:func:`_newton_step`; shortened to end on a limit it would cross), else the secondary
    gradient, kept off the limits, projected onto the null space of the primary Jacobian ``jac``
    (copied into the scratch ``work``, where frozen angles' columns are zeroed), scaled by its
    Gauss-Newton length. Returns the full step's largest angle and the size of the part added.
    The variables from ``free`` on are held (frozen)."""
    m = q.shape[0]
    lower, upper, dof_joint, angle_count = plan[0], plan[1], plan[11], plan[14]
    factor_rows = pole_rows + 3 * plan[3].shape[0] - angle_count  # + k: length factor k's comfort row
    gradient, secondary, secondary_jac, posture_jac = sws[3], sws[7], sws[8], sws[12]
    raw, frozen = sws[10], sws[11]
    for i in range(m):
        for a in range(rows):
            work[a, i] = jac[a, i]  # the full Jacobian: an angle the tip step froze may move here
        g = 0.0
        for r in range(pole_rows):
            g += secondary_jac[r, i] * secondary[r]
        if posture_on and i >= angle_count:  # a length factor's own comfort row
            g += posture_jac[i, 0] * secondary[factor_rows + i]
        elif posture_on:  # the comfort rows of the angle's own joint
            first = pole_rows + 3 * dof_joint[i]
            g += posture_jac[i, 0] * secondary[first] + posture_jac[i, 1] * secondary[first + 1] + posture_jac[
                i, 2] * secondary[first + 2]
        raw[i] = g
        at_lower, at_upper = q[i] <= lower[i] + LIMIT_EPS, q[i] >= upper[i] - LIMIT_EPS
        frozen[i] = 1.0 if (at_lower and g > 0) or (at_upper and g < 0) or i >= free else 0.0
    length = 0.0
    newton_allowed = m <= NEWTON_MAX_ANGLES
    posed = False
    for _ in range(FREEZE_PASSES):
        # lm._secondary_step's active set: frozen angles drop out of the gradient and the Jacobian.
        for i in range(m):
            gradient[i] = 0.0 if frozen[i] else raw[i]
            if frozen[i]:
                for a in range(rows):
                    work[a, i] = 0.0
        trace = 0.0
        for a in range(rows):
            total = 0.0
            for i in range(m):
                total += work[a, i] * gradient[i]
            vec[a] = total
            for b in range(rows):
                total = 0.0
                for i in range(m):
                    total += work[a, i] * work[b, i]
                small[a, b] = total
            trace += small[a, a]
        ridge = 1e-12 * (trace / rows + 1e-300)  # keeps J J^T invertible at singularities
        for a in range(rows):
            small[a, a] += ridge
        _solve_small(small, vec, rows)
        length = 0.0
        pushing = False
        for i in range(m):
            total = 0.0
            for a in range(rows):
                total += work[a, i] * vec[a]
            gradient[i] -= total  # now the projected gradient
            length += gradient[i] * gradient[i]
            if not frozen[i] and ((q[i] <= lower[i] + LIMIT_EPS and gradient[i] > 0)
                                  or (q[i] >= upper[i] - LIMIT_EPS and gradient[i] < 0)):
                frozen[i] = 1.0
                pushing = True
        if pushing:
            continue  # Newton needs the projection of the final active set
        if not newton_allowed:
            break
        posed, refrozen = _newton_step(q, work, rows, pole_rows, posture_on, plan, vec, sws)
        if not refrozen:
            break  # else the angles it would carry across a near limit are frozen: project again
        posed = False
    if posed:
        newton, gap, shortened = sws[23], 0.0, 1.0
        for i in range(m):
            gap = max(gap, abs(newton[i]))
            # lm._secondary_step: shortened to end on a limit it would cross farther away.
            if newton[i] < 0:
                shortened = min(shortened, (lower[i] - q[i]) / newton[i])
            elif newton[i] > 0:
                shortened = min(shortened, (upper[i] - q[i]) / newton[i])
        taken = min(gap, relax_radius)
        share = taken / max(gap, 1e-300) * shortened
        for i in range(m):
            step[i] += share * newton[i]
        return gap, taken
    bend = 0.0  # |J2 projected|^2: the pole rows, then the comfort rows joint by joint
    for r in range(pole_rows):
        total = 0.0
        for i in range(m):
            total += secondary_jac[r, i] * gradient[i]
        bend += total * total
    if posture_on:
        joint, v0, v1, v2 = -1, 0.0, 0.0, 0.0
        for i in range(angle_count):  # angles are grouped by joint, base first
            if dof_joint[i] != joint:
                bend += v0 * v0 + v1 * v1 + v2 * v2
                joint, v0, v1, v2 = dof_joint[i], 0.0, 0.0, 0.0
            v0 += posture_jac[i, 0] * gradient[i]
            v1 += posture_jac[i, 1] * gradient[i]
            v2 += posture_jac[i, 2] * gradient[i]
        bend += v0 * v0 + v1 * v1 + v2 * v2
        for i in range(angle_count, m):  # each length factor's own row
            bend += (posture_jac[i, 0] * gradient[i]) ** 2
    full = length / (bend + 1e-300)
    gap = 0.0
    for i in range(m):
        gap = max(gap, abs(full * gradient[i]))
    taken = min(gap, relax_radius)
    share = taken / max(gap, 1e-300)
    for i in range(m):
        step[i] -= share * full * gradient[i]
    return gap, taken


@_jit_leaf
def _newton_step(q: FloatArray, work: FloatArray, rows: int, pole_rows: int, posture_on: bool, plan: Plan,
                 vec: FloatArray, sws: Workspace) -> tuple[bool, bool]:
    """``lm._newton_step``: Newton's step toward the nearest pose along the tip's solution set into
    ``sws[23]``, after :func:`_secondary_step`'s projection (``work``: the free angles' primary
    Jacobian; ``vec[:rows]``: ``(J J^T)^-1 J g``; ``sws[3]``: the projected gradient ``P g``;
    ``sws[11]``: the frozen angles). Returns ``(posed, refrozen)``: not posed where the system has
    no Cholesky factor (the gradient step is left in charge); refrozen where the step would carry
    a free angle that is nearer a limit than ``NEWTON_LIMIT_BAND`` across it (those angles are
    frozen in ``sws[11]``, and the caller projects again).

    ``P = D - W^T A`` with ``A = (W W^T)^-1 W`` (``D``: 1 on free angles) has rank ``rows`` off
    the identity, so ``P H P`` is built from ``(m, rows)`` products in ``O(m^2 rows)``, not the
    ``O(m^3)`` of two dense products.
    """
    m = work.shape[1]
    lower, upper, base, rank, dof_joint = plan[0], plan[1], plan[9], plan[13], plan[11]
    angle_count, n = plan[14], plan[3].shape[0]
    gradient, secondary_jac, frozen, posture_jac = sws[3], sws[8], sws[11], sws[12]
    axes, origins, tip = sws[14], sws[15], sws[16]
    hessian, system, inverse, part, twice, outer, newton = sws[17], sws[18], sws[19], sws[20], sws[21], sws[22], sws[23]
    # Multipliers of the tip's position rows, -(J J^T)^-1 J g, pulled into chain space: B^T l.
    l0, l1, l2 = -vec[0], -vec[1], -vec[2]
    mu0 = base[0, 0] * l0 + base[1, 0] * l1 + base[2, 0] * l2
    mu1 = base[0, 1] * l0 + base[1, 1] * l1 + base[2, 1] * l2
    mu2 = base[0, 2] * l0 + base[1, 2] * l1 + base[2, 2] * l2
    # (W W^T + ridge)^-1, column by column (the ridge as _secondary_step adds it).
    trace = 0.0
    for a in range(rows):
        for i in range(m):
            trace += work[a, i] * work[a, i]
    ridge = 1e-12 * (trace / rows + 1e-300)
    for b in range(rows):
        for a in range(rows):
            for c in range(rows):
                total = 0.0
                for i in range(m):
                    total += work[a, i] * work[c, i]
                inverse[a, c] = total + (ridge if a == c else 0.0)
            vec[a] = 1.0 if a == b else 0.0
        _solve_small(inverse, vec, rows)
        for a in range(rows):
            part[a, b] = vec[a]  # column b of the inverse, kept in part[:, b] for now
    for a in range(rows):
        for b in range(rows):
            inverse[a, b] = part[a, b]
    for a in range(rows):  # A = (W W^T)^-1 W
        for i in range(m):
            total = 0.0
            for b in range(rows):
                total += inverse[a, b] * work[b, i]
            part[a, i] = total
    # H = J2^T J2 + l . d2 r1 (lm._curvature), zero on frozen rows and columns.
    for u in range(m):
        eu0 = mu1 * axes[u, 2] - mu2 * axes[u, 1]  # (B^T l) x a_u
        eu1 = mu2 * axes[u, 0] - mu0 * axes[u, 2]
        eu2 = mu0 * axes[u, 1] - mu1 * axes[u, 0]
        for d in range(m):
            if rank[u] > rank[d]:
                continue
            if d < angle_count:
                lx, ly, lz = tip[0] - origins[d, 0], tip[1] - origins[d, 1], tip[2] - origins[d, 2]
                ax, ay, az = axes[d, 0], axes[d, 1], axes[d, 2]
                value = eu0 * (ay * lz - az * ly) + eu1 * (az * lx - ax * lz) + eu2 * (ax * ly - ay * lx)
            else:  # a length factor's column: its segment / the factor
                _, ex, ey, ez = _segment_end(d, n, dof_joint, origins, tip)
                value = (eu0 * (ex - origins[d, 0]) + eu1 * (ey - origins[d, 1]) + eu2 * (ez - origins[d, 2])) / q[d]
            if u >= angle_count:  # lm._curvature: a factor bends only the angles inside its segment
                value = 0.0
                end, ex, ey, ez = _segment_end(u, n, dof_joint, origins, tip)
                if d < angle_count and dof_joint[u] < dof_joint[d] < end:
                    ad0, ad1, ad2 = axes[d, 0], axes[d, 1], axes[d, 2]
                    t0, t1, t2 = mu1 * ad2 - mu2 * ad1, mu2 * ad0 - mu0 * ad2, mu0 * ad1 - mu1 * ad0
                    value = (t0 * (ex - origins[d, 0]) + t1 * (ey - origins[d, 1]) + t2 * (ez - origins[d, 2])) / q[u]
            hessian[u, d] = value
            hessian[d, u] = value
    for i in range(m):
        for k in range(m):
            if frozen[i] or frozen[k]:
                hessian[i, k] = 0.0
                continue
            total = 0.0
            for r in range(pole_rows):
                total += secondary_jac[r, i] * secondary_jac[r, k]
            if posture_on and i < angle_count and k < angle_count and dof_joint[i] == dof_joint[k]:
                total += posture_jac[i, 0] * posture_jac[k, 0] + posture_jac[i, 1] * posture_jac[k, 1] + posture_jac[
                    i, 2] * posture_jac[k, 2]
            elif posture_on and i == k:  # a length factor's own row
                total += posture_jac[i, 0] * posture_jac[k, 0]
            hessian[i, k] += total
    # P H P = H - W^T (A H) - (H A^T) W + W^T (A H A^T) W, with H A^T = twice (m, rows).
    for i in range(m):
        for a in range(rows):
            total = 0.0
            for k in range(m):
                total += hessian[i, k] * part[a, k]
            twice[i, a] = total
    for a in range(rows):  # A H A^T into inverse (no longer needed)
        for b in range(rows):
            total = 0.0
            for k in range(m):
                total += part[a, k] * twice[k, b]
            inverse[a, b] = total
    for i in range(m):  # W^T (A H A^T)
        for b in range(rows):
            total = 0.0
            for a in range(rows):
                total += work[a, i] * inverse[a, b]
            outer[i, b] = total
    for i in range(m):
        for k in range(m):
            total = hessian[i, k] + (1.0 if i == k else 0.0) - (0.0 if frozen[i] or i != k else 1.0)
            for a in range(rows):
                total += (-work[a, i] * twice[k, a] - twice[i, a] * work[a, k] + outer[i, a] * work[a, k]
                          + work[a, i] * part[a, k])  # the last: -(-W^T A), from I - P
            system[i, k] = total
    largest = 0.0
    for i in range(m):
        largest = max(largest, system[i, i])
    for i in range(m):
        system[i, i] += NEWTON_RIDGE * largest
    if not _cholesky(system, m):
        return False, False
    for i in range(m):  # L z = -P g
        total = -gradient[i]
        for k in range(i):
            total -= system[i, k] * newton[k]
        newton[i] = total / system[i, i]
    for i in range(m - 1, -1, -1):  # L^T y = z
        total = newton[i]
        for k in range(i + 1, m):
            total -= system[k, i] * newton[k]
        newton[i] = total / system[i, i]
    refrozen = False
    for i in range(m):  # past a limit within the band: frozen there (the clamp would bend the step)
        if not frozen[i] and ((newton[i] < 0 and q[i] + newton[i] < lower[i] and q[i] < lower[i] + NEWTON_LIMIT_BAND)
                              or (newton[i] > 0 and q[i] + newton[i] > upper[i]
                                  and q[i] > upper[i] - NEWTON_LIMIT_BAND)):
            frozen[i] = 1.0
            refrozen = True
    return True, refrozen


@_jit_leaf
def _cholesky(matrix: FloatArray, size: int) -> bool:
    """``matrix[:size, :size] = L L^T`` in place (the lower triangle becomes ``L``); False if it is
    not positive definite (as LAPACK's ``potrf`` fails, which numpy's Cholesky calls)."""
    for j in range(size):
        total = matrix[j, j]
        for k in range(j):
            total -= matrix[j, k] * matrix[j, k]
        if not total > 0.0:
            return False
        pivot = np.sqrt(total)
        matrix[j, j] = pivot
        for i in range(j + 1, size):
            total = matrix[i, j]
            for k in range(j):
                total -= matrix[i, k] * matrix[j, k]
            matrix[i, j] = total / pivot
    return True


@_jit_inline
def _keep_kinematics(ws: Workspace, sws: Workspace) -> None:
    """The FK of the pose just evaluated (axes, origins, tip; chain space) becomes the accepted
    pose's, which :func:`_newton_step` reads after later trials have overwritten the workspace."""
    _copy_matrix(sws[14], ws[8])
    _copy_matrix(sws[15], ws[9])
    _copy_vector(sws[16], ws[18])


@_jit_leaf
def _attempt_secondary(q: FloatArray, task: Task, sec: Task, flags: Flags, max_iterations: int,
                       initial_damping: float, plan: Plan, ws: Workspace,
                       sws: Workspace) -> tuple[float, float, int, int]:
    """:func:`_attempt` with reach-first secondary tasks (``lm.lm_attempt`` in full): once the tip
    is well inside tolerance, each step adds the null-space step (within a trust radius that grows
    after accepted steps and shrinks below refused ones) and up to ``RESTORE_STEPS`` lightly damped
    steps restore the tip; acceptance is lexicographic (reach first, then the secondary cost); the
    attempt settles when the full null-space step is under ``SETTLE_ANGLE``.

    ``flags``: (can relax: the tip task leaves a null space, problem has secondary tasks, relax slack).
    """
    m, n = q.shape[0], plan[3].shape[0]
    can_relax, has_secondary, slack = flags[0], flags[1], flags[2]
    rows = 6 if task[2] > 0 else 3
    pole_rows = 3 * (n - 1) if sec[2] > 0 and n >= 2 else 0
    lower, upper, target = plan[0], plan[1], task[0]
    residual, trial_residual, jac, trial_jac, trial_q, step = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5]
    work, small, vec, restore = ws[10], ws[11], ws[12], ws[13]
    secondary, secondary_jac, trial_secondary, trial_secondary_jac = sws[7], sws[8], sws[4], sws[5]
    cost, orientation_error = _evaluate(q, task, plan, residual, jac, ws)
    posture_jac, trial_posture_jac = sws[12], sws[13]
    secondary_cost = _evaluate_secondary(q, target, sec, plan, secondary, secondary_jac, posture_jac, ws, sws)
    newton = can_relax and m <= NEWTON_MAX_ANGLES  # only Newton's step reads the kept kinematics
    if newton:
        _keep_kinematics(ws, sws)
    position_error = np.sqrt(residual[0] ** 2 + residual[1] ** 2 + residual[2] ** 2)
    damping, quiet, iterations = initial_damping, 0, 0
    relax_radius, gap, taken, relaxed = np.inf, np.inf, 0.0, 0  # the null-space step's trust radius
    status = RUNNING
    if not can_relax and _converged(position_error, orientation_error, rows, task):
        status = CONVERGED
    trial_cost, trial_orientation_error, rejected = cost, orientation_error, False
    free = _free_count(task, plan, m)
    while status == RUNNING and iterations < max_iterations:
        relax = can_relax and cost <= slack
        _step(q, residual, jac, rows, lower, upper, damping, step, work, small, vec, free)
        gap = np.inf
        if relax:
            gap, taken = _secondary_step(q, jac, work, rows, pole_rows, sec[4], plan, relax_radius, step, small, vec,
                                         sws, free)
        _trust(step)
        same = rejected and not relax  # _attempt: an unchanged tip step after a rejection is not evaluated again
        for i in range(m):
            value = min(max(q[i] + step[i], lower[i]), upper[i])
            same = same and value == trial_q[i]
            trial_q[i] = value
        if not same:
            trial_cost, trial_orientation_error = _evaluate(trial_q, task, plan, trial_residual, trial_jac, ws)
        if relax:
            # lm._restore_tip: lightly damped Gauss-Newton steps back onto the tip's solution set.
            for _ in range(RESTORE_STEPS):
                if trial_cost <= RESTORE_CLOSE * slack:
                    break  # lm._restore_tip: close enough, a further step would not move it
                _step(trial_q, trial_residual, trial_jac, rows, lower, upper, RESTORE_DAMPING, restore, work, small,
                      vec, free)
                _trust(restore)
                for i in range(m):
                    trial_q[i] = min(max(trial_q[i] + restore[i], lower[i]), upper[i])
                trial_cost, trial_orientation_error = _evaluate(trial_q, task, plan, trial_residual, trial_jac, ws)
        trial_secondary_cost = np.inf  # only a trial well inside the tolerance is judged by it (lm._better)
        if trial_cost <= slack:
            trial_secondary_cost = _evaluate_secondary(trial_q, target, sec, plan, trial_secondary,
                                                       trial_secondary_jac, trial_posture_jac, ws, sws)
        iterations += 1
        relaxed += 1 if relax else 0
        if has_secondary and cost <= slack:  # lm._better: reach first, then the secondary cost
            accept = trial_cost <= slack and trial_secondary_cost < secondary_cost
        else:
            accept = trial_cost < cost
        rejected = not accept and not relax
        if accept:
            # Only the tip task's progress counts as quiet: the pull toward p settles by its own rule.
            negligible = cost - trial_cost <= QUIET_RELATIVE * max(cost, 1e-300) + 1e-30
            quiet = quiet + 1 if negligible and not relax else 0
            _copy_vector(q, trial_q)
            _copy_vector(residual, trial_residual)
            _copy_matrix(jac, trial_jac)
            _copy_vector(secondary, trial_secondary)
            _copy_matrix(secondary_jac, trial_secondary_jac)
            _copy_matrix(posture_jac, trial_posture_jac)
            if newton:
                _keep_kinematics(ws, sws)
            cost, orientation_error, secondary_cost = trial_cost, trial_orientation_error, trial_secondary_cost
            position_error = np.sqrt(residual[0] ** 2 + residual[1] ** 2 + residual[2] ** 2)
            damping = max(damping / DAMPING_DOWN, DAMPING_MIN)
            if relax:
                relax_radius *= RELAX_GROW
        else:
            damping *= DAMPING_UP
            if relax:
                relax_radius = taken * RELAX_SHRINK
        reached = _converged(position_error, orientation_error, rows, task)
        # Reached, and (with a null space) the full step toward p is tiny or no such step helps.
        settled = reached and (not can_relax or gap < SETTLE_ANGLE or relax_radius < RELAX_RADIUS_MIN
                               or relaxed >= RELAX_STEPS)
        if settled:
            status = CONVERGED
        elif not reached and (quiet >= QUIET_TO_STALL or damping >= DAMPING_MAX) and free < m and rows == 3:
            free, quiet, damping, rejected = m, 0, initial_damping, False  # the length factors join in
        elif not reached and (quiet >= QUIET_TO_STALL or damping >= DAMPING_MAX):
            status = STALLED
    final = _converged(position_error, orientation_error, rows, task)
    if status == RUNNING:
        status = CONVERGED if final else MAX_ITER
    if status == CONVERGED and not final:  # a settled pull can leave the tip right at tolerance
        status = STALLED
    return position_error, orientation_error, iterations, status


@_jit_leaf
def _secondary_distance(q: FloatArray, task: Task, sec: Task, plan: Plan, ws: Workspace, sws: Workspace) -> float:
    """``lm.preference_cost``: the secondary cost at ``q`` (uses the trial buffers)."""
    _evaluate(q, task, plan, ws[1], ws[3], ws)
    return _evaluate_secondary(q, task[0], sec, plan, sws[4], sws[5], sws[13], ws, sws)


@_jit_leaf
def _solve_one_secondary(task: Task, sec: Task, flags: Flags, start: FloatArray, seed_base: FloatArray,
                         hopeless: bool, unit: FloatArray, spread: FloatArray, max_iterations: int,
                         initial_damping: float, plan: Plan, q_out: FloatArray, seed: FloatArray, ws: Workspace,
                         sws: Workspace) -> tuple[float, float, int, int]:
    """:func:`_solve_one` with secondary tasks: a target whose chain bends away from the pole also
    restarts, even when reached; reaching restarts are ranked by ``_better_attempt`` (the pole's
    bend, then the secondary cost: nearness to the preferred pose)."""
    lower, upper, tolerance = plan[0], plan[1], task[3]
    _copy_vector(q_out, start)
    best_error, best_orientation_error, iterations, best_status = _attempt_secondary(
        q_out, task, sec, flags, max_iterations, initial_damping, plan, ws, sws)
    restarts = unit.shape[0]
    best_alignment = _pole_alignment(q_out, task, sec, plan, ws, sws) if restarts > 0 else 1.0
    best_distance = np.inf  # measured once a restart is tried (most solves need none)
    fruitless = 0
    for k in range(restarts):
        if k % RESTART_BLOCK == 0:
            unfinished = best_status != CONVERGED and not hopeless and fruitless < FRUITLESS_RESTARTS
            if not (unfinished or best_alignment < 0):
                break
        if k == 0:
            best_distance = _secondary_distance(q_out, task, sec, plan, ws, sws)
        _seed_pose(k, seed_base, unit, spread, lower, upper, seed, plan[14])
        error, orientation_error, used, status = _attempt_secondary(
            seed, task, sec, flags, max_iterations, initial_damping, plan, ws, sws)
        alignment = _pole_alignment(seed, task, sec, plan, ws, sws)
        distance = _secondary_distance(seed, task, sec, plan, ws, sws)
        iterations += used
        converged = status == CONVERGED
        helped = converged or error < best_error - RESTART_GAIN * tolerance
        fruitless = 0 if helped else fruitless + 1
        if _better_attempt(converged, alignment, distance, error, best_status == CONVERGED, best_alignment,
                           best_distance, best_error):
            _copy_vector(q_out, seed)
            best_error, best_orientation_error, best_status = error, orientation_error, status
            best_alignment, best_distance = alignment, distance
    return best_error, best_orientation_error, iterations, best_status


@_jit
def solve_many_secondary(targets: FloatArray, orientations: FloatArray, poles: FloatArray, sec_shared: Task,
                         flags: Flags, starts: FloatArray, seed_bases: FloatArray, hopeless: AnyArray,
                         unit: FloatArray, spread: FloatArray, settings: Task, plan: Plan, q_out: FloatArray,
                         error_out: FloatArray, orientation_error_out: FloatArray, iterations_out: AnyArray,
                         status_out: AnyArray) -> None:
    """:func:`solve_many` with secondary tasks. ``poles`` ``(F, 3)`` or ``(1, 3)`` world poles;
    ``sec_shared`` (has pole, pole weight, posture (see :func:`_posture_rows`), has comfort, reach);
    ``settings`` (orientation scale, tolerance, orientation tolerance, max iterations, initial
    damping); ``flags`` as :func:`_attempt_secondary` takes them."""
    orientation_scale, tolerance, orientation_tolerance, max_iterations, initial_damping = settings
    has_pole, pole_weight, posture, has_comfort, reach = sec_shared
    # No pole, no pole rows: the stand-in pole (the world origin) must not pull the chain.
    pole_weight = pole_weight if has_pole else 0.0
    m, n = q_out.shape[1], plan[3].shape[0]
    pole_rows = 3 * (n - 1) if pole_weight > 0 and n >= 2 else 0
    rows = pole_rows + (3 * n + posture[4].shape[0] if has_comfort else 0)
    ws, sws, seed = _workspace(m, n), _secondary_workspace(m, n, rows, pole_rows), np.empty(m)
    for f in range(targets.shape[0]):
        start = starts[f] if starts.shape[0] > 1 else starts[0]
        seed_base = seed_bases[f] if seed_bases.shape[0] > 1 else seed_bases[0]
        orientation = orientations[f] if orientations.shape[0] > 1 else orientations[0]
        pole = poles[f] if poles.shape[0] > 1 else poles[0]
        task = (targets[f], orientation, orientation_scale, tolerance, orientation_tolerance)
        sec = (pole, has_pole, pole_weight, posture, has_comfort, reach)
        error, orientation_error, iterations, status = _solve_one_secondary(
            task, sec, flags, start, seed_base, hopeless[f], unit, spread, max_iterations, initial_damping, plan,
            q_out[f], seed, ws, sws)
        error_out[f], orientation_error_out[f], iterations_out[f], status_out[f] = (
            error, orientation_error, iterations, status)


# -- Several chains in one call -------------------------------------------------------------------
# The live pass solves every moving chain of a frame in one call: a numba typed List of jobs, one a
# chain, built once and kept while the chains do not change (see ``batched``). A job carries what
# ``compiled.lm_solve_compiled`` passes to either path above, and its own input and output arrays:
#
# (secondary path?, active?, targets, orientations, poles, sec_shared, flags, starts, seed_bases, hopeless,
#  unit, spread, settings, plan, q_out, error_out, orientation_error_out, iterations_out, status_out)
#
# ``active`` is a (1,) bool array the caller sets per call: a still chain stays in the list, skipped.


@_jit
def solve_jobs(jobs: Any) -> None:
    """:func:`solve_many` or :func:`solve_many_secondary` for each active job of ``jobs``."""
    for index in range(len(jobs)):
        job = jobs[index]
        if not job[1][0]:
            continue
        targets, orientations, poles, sec_shared, flags = job[2], job[3], job[4], job[5], job[6]
        starts, seed_bases, hopeless, unit, spread, settings, plan = job[7], job[8], job[9], job[10], job[11], \
            job[12], job[13]
        q_out, error_out, orientation_error_out, iterations_out, status_out = job[14], job[15], job[16], job[17], \
            job[18]
        if job[0]:
            solve_many_secondary(targets, orientations, poles, sec_shared, flags, starts, seed_bases, hopeless, unit,
                                 spread, settings, plan, q_out, error_out, orientation_error_out, iterations_out,
                                 status_out)
        else:
            orientation_scale, tolerance, orientation_tolerance, max_iterations, initial_damping = settings
            solve_many(targets, orientations, orientation_scale, starts, seed_bases, hopeless, unit, spread, tolerance,
                       orientation_tolerance, max_iterations, initial_damping, sec_shared[2], plan, q_out, error_out,
                       orientation_error_out, iterations_out, status_out)
