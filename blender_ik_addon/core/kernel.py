"""The LM solver as scalar loops compiled by numba (optional), for tip position and orientation.

This module imports numba and is only imported by :mod:`.compiled`, which checks that numba is
there first. It is :func:`.lm.lm_solve` restricted to problems whose tasks are the tip position and,
optionally, the tip orientation (no pole hint and no comfort pull), rule for rule:

* FK and the Jacobian as in :mod:`.fk` (a joint turns about the axes of the frame it has after
  the rotations applied outside it), the tip in world space through the chain's base; the
  orientation residual as in :func:`.objectives.evaluate` (the rotation vector of
  ``R_tip R_target^T``, scaled by the weight times the chain's reach).
* The step as in ``lm._step``: active set (a free angle on a limit whose gradient pushes outward is
  frozen), Marquardt scaling with a floor, the dual (Woodbury) form when there are fewer rows (3
  or 6) than angles, projection onto the limits.
* Acceptance, damping (/3 on success, x4 on failure, capped), "quiet" progress and the stop rules
  as in ``lm.lm_attempt`` without secondary tasks.
* Restarts as in ``lm.lm_solve``: the same seeds (the caller passes the same uniform draws), tried
  in order, the first converging one wins, at most ``_FRUITLESS_RESTARTS`` in a row that gain
  nothing, none for targets beyond reach.

Why a second implementation: numpy's fixed cost per call (about a microsecond, and an LM iteration
makes ~100 calls) is what a single small solve spends its time on. Here one iteration of a 3-angle
arm takes well under a microsecond. The answers agree with the numpy path to rounding (the linear
algebra is summed in another order), not bit for bit; within this kernel, a batch is exactly a loop
of single solves, since each target runs alone.

Arrays are float64 and C-contiguous; the "plan" arrays are built by :func:`.compiled.plan_of`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from .types import AnyArray, FloatArray

# Annotations are for readers and mypy; numba compiles from the argument types it is called with.
Plan = tuple[Any, ...]  # see compiled.plan_of: limits, rest transforms, slots, base, tip offset
Workspace = tuple[Any, ...]  # see _workspace
Task = tuple[Any, ...]  # (target (3,), orientation (3, 3), orientation scale, tolerance, orientation tolerance)

# Keep in step with lm.py (the tests compare the two paths on the same problems).
_DAMPING_MIN = 1e-12
_DAMPING_MAX = 1e6
_FRUITLESS_RESTARTS = 16
_LIMIT_EPS = 1e-12
RUNNING, CONVERGED, STALLED, MAX_ITER = -1, 0, 1, 2

_jit = njit(cache=True, nogil=True, fastmath=False)


@_jit
def _turn(frame: FloatArray, axis: int, angle: float) -> None:
    """``frame = frame @ R_axis(angle)`` in place (right-handed, active)."""
    c, s = np.cos(angle), np.sin(angle)
    i, k = (axis + 1) % 3, (axis + 2) % 3
    for r in range(3):
        a, b = frame[r, i], frame[r, k]
        frame[r, i] = c * a + s * b
        frame[r, k] = c * b - s * a


@_jit
def _evaluate(q: FloatArray, task: Task, plan: Plan, residual: FloatArray, jac: FloatArray,
              ws: Workspace) -> tuple[float, float]:
    """Residual ``(k,)`` and world Jacobian ``(k, m)`` at ``q``, ``k`` = 3 (tip position) or 6 (and
    orientation). Returns ``(0.5 |r|^2, orientation error in radians)``."""
    _, _, rest_rot, rest_pos, rest_rotates, slot_count, slot_axis, slot_dof, slot_fixed, base, tip_offset = plan
    target, orientation, orientation_scale = task[0], task[1], task[2]
    rot, tmp, axes, origins = ws[6], ws[7], ws[8], ws[9]
    n = rest_pos.shape[0]
    for a in range(3):
        for b in range(3):
            rot[a, b] = 1.0 if a == b else 0.0
    px, py, pz = 0.0, 0.0, 0.0
    for j in range(n):
        rx, ry, rz = rest_pos[j, 0], rest_pos[j, 1], rest_pos[j, 2]
        px += rot[0, 0] * rx + rot[0, 1] * ry + rot[0, 2] * rz
        py += rot[1, 0] * rx + rot[1, 1] * ry + rot[1, 2] * rz
        pz += rot[2, 0] * rx + rot[2, 1] * ry + rot[2, 2] * rz
        if rest_rotates[j]:
            for a in range(3):
                for b in range(3):
                    tmp[a, b] = (rot[a, 0] * rest_rot[j, 0, b] + rot[a, 1] * rest_rot[j, 1, b]
                                 + rot[a, 2] * rest_rot[j, 2, b])
            rot[:, :] = tmp
        # Slots in application order: the last applied is outermost, so an angle turns about an
        # axis of the frame after the slots applied after it (see fk.forward).
        for s in range(slot_count[j] - 1, -1, -1):
            axis, dof = slot_axis[j, s], slot_dof[j, s]
            if dof >= 0:
                axes[dof, 0], axes[dof, 1], axes[dof, 2] = rot[0, axis], rot[1, axis], rot[2, axis]
                origins[dof, 0], origins[dof, 1], origins[dof, 2] = px, py, pz
                _turn(rot, axis, q[dof])
            else:
                _turn(rot, axis, slot_fixed[j, s])
    tx, ty, tz = tip_offset[0], tip_offset[1], tip_offset[2]
    cx = px + rot[0, 0] * tx + rot[0, 1] * ty + rot[0, 2] * tz
    cy = py + rot[1, 0] * tx + rot[1, 1] * ty + rot[1, 2] * tz
    cz = pz + rot[2, 0] * tx + rot[2, 1] * ty + rot[2, 2] * tz
    cost = 0.0
    for a in range(3):
        residual[a] = base[a, 0] * cx + base[a, 1] * cy + base[a, 2] * cz + base[a, 3] - target[a]
        cost += residual[a] * residual[a]
    for k in range(axes.shape[0]):
        lx, ly, lz = cx - origins[k, 0], cy - origins[k, 1], cz - origins[k, 2]
        ax, ay, az = axes[k, 0], axes[k, 1], axes[k, 2]
        col0, col1, col2 = ay * lz - az * ly, az * lx - ax * lz, ax * ly - ay * lx
        for a in range(3):
            jac[a, k] = base[a, 0] * col0 + base[a, 1] * col1 + base[a, 2] * col2
    orientation_error = 0.0
    if orientation_scale > 0:
        # r = w * reach * log(R_tip R_target^T) (objectives.evaluate); J = w * reach * axes^T.
        for a in range(3):
            for b in range(3):
                tmp[a, b] = (rot[a, 0] * orientation[b, 0] + rot[a, 1] * orientation[b, 1]
                             + rot[a, 2] * orientation[b, 2])
        _rotation_vector(tmp, residual)
        for a in range(3, 6):
            orientation_error += residual[a] * residual[a]
            residual[a] *= orientation_scale
            cost += residual[a] * residual[a]
            for k in range(axes.shape[0]):
                jac[a, k] = orientation_scale * axes[k, a - 3]
        orientation_error = np.sqrt(orientation_error)
    return 0.5 * cost, orientation_error


@_jit
def _rotation_vector(m: FloatArray, out: FloatArray) -> None:
    """``out[3:6]`` = the axis-angle vector of rotation ``m``, as ``rotations.rotation_vector``:
    Shepperd's quaternion (largest pivot, first on ties), ``w >= 0``, then ``axis * angle``."""
    xx, yy, zz = m[0, 0], m[1, 1], m[2, 2]
    pivots = (1 + xx + yy + zz, 1 + xx - yy - zz, 1 - xx + yy - zz, 1 - xx - yy + zz)
    best = 0
    for i in range(1, 4):
        if pivots[i] > pivots[best]:
            best = i
    zy, yz, xz, zx, yx, xy = m[2, 1], m[1, 2], m[0, 2], m[2, 0], m[1, 0], m[0, 1]
    if best == 0:
        w, x, y, z = pivots[0], zy - yz, xz - zx, yx - xy
    elif best == 1:
        w, x, y, z = zy - yz, pivots[1], xy + yx, xz + zx
    elif best == 2:
        w, x, y, z = xz - zx, xy + yx, pivots[2], yz + zy
    else:
        w, x, y, z = yx - xy, xz + zx, yz + zy, pivots[3]
    norm = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    if w < 0:
        w, x, y, z = -w, -x, -y, -z
    sin_half = np.sqrt(x * x + y * y + z * z)
    scale = 2.0 * np.arctan2(sin_half, w) / sin_half if sin_half > 1e-12 else 2.0
    out[3], out[4], out[5] = x * scale, y * scale, z * scale


@_jit
def _solve_small(matrix: FloatArray, rhs: FloatArray, size: int) -> None:
    """Solve ``matrix[:size, :size] x = rhs[:size]`` in place (Gaussian elimination, partial
    pivoting); the answer is left in ``rhs``."""
    for col in range(size):
        pivot = col
        for row in range(col + 1, size):
            if abs(matrix[row, col]) > abs(matrix[pivot, col]):
                pivot = row
        if pivot != col:
            for c in range(size):
                matrix[col, c], matrix[pivot, c] = matrix[pivot, c], matrix[col, c]
            rhs[col], rhs[pivot] = rhs[pivot], rhs[col]
        for row in range(col + 1, size):
            factor = matrix[row, col] / matrix[col, col]
            for c in range(col, size):
                matrix[row, c] -= factor * matrix[col, c]
            rhs[row] -= factor * rhs[col]
    for row in range(size - 1, -1, -1):
        total = rhs[row]
        for c in range(row + 1, size):
            total -= matrix[row, c] * rhs[c]
        rhs[row] = total / matrix[row, row]


@_jit
def _step(q: FloatArray, residual: FloatArray, jac: FloatArray, rows: int, lower: FloatArray, upper: FloatArray,
          damping: float, step: FloatArray, work: FloatArray, small: FloatArray, vec: FloatArray) -> None:
    """The projected LM step into ``step`` (see ``lm._step`` and ``lm.damped_solve``) for the
    first ``rows`` rows of the residual and Jacobian.

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
        blocked = (q[i] <= lower[i] + _LIMIT_EPS and g > 0) or (q[i] >= upper[i] - _LIMIT_EPS and g < 0)
        step[i] = 0.0 if blocked else -g
        d = 0.0
        for a in range(rows):
            work[a, i] = 0.0 if blocked else jac[a, i]
            d += work[a, i] * work[a, i]
        vec[6 + i] = d  # the diagonal of J^T J, kept for the scaling below
        largest = max(largest, d)
    floor = 1e-9 * (largest + 1e-300)
    for i in range(m):
        vec[6 + i] = damping * max(vec[6 + i], floor)  # the damping diagonal
    if m > rows:
        # Dual form: x = D^-1 b - D^-1 J^T (I + J D^-1 J^T)^-1 J D^-1 b.
        for i in range(m):
            step[i] /= vec[6 + i]
        for a in range(rows):
            total = 0.0
            for i in range(m):
                total += work[a, i] * step[i]
            vec[a] = total
            for b in range(rows):
                total = 0.0
                for i in range(m):
                    total += work[a, i] / vec[6 + i] * work[b, i]
                small[a, b] = total + (1.0 if a == b else 0.0)
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


@_jit
def _converged(position_error: float, orientation_error: float, rows: int, task: Task) -> bool:
    """``lm._converged``: the tip within tolerance, and the orientation too when it is a task."""
    return position_error < task[3] and (rows == 3 or orientation_error < task[4])


@_jit
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
    while status == RUNNING and iterations < max_iterations:
        _step(q, residual, jac, rows, lower, upper, damping, step, ws[10], ws[11], ws[12])
        for i in range(m):
            trial_q[i] = min(max(q[i] + step[i], lower[i]), upper[i])
        trial_cost, trial_orientation_error = _evaluate(trial_q, task, plan, trial_residual, trial_jac, ws)
        iterations += 1
        if trial_cost < cost:
            negligible = cost - trial_cost <= 1e-14 * max(cost, 1e-300) + 1e-30
            quiet = quiet + 1 if negligible else 0
            q[:] = trial_q
            residual[:] = trial_residual
            jac[:, :] = trial_jac
            cost, orientation_error = trial_cost, trial_orientation_error
            position_error = np.sqrt(residual[0] ** 2 + residual[1] ** 2 + residual[2] ** 2)
            damping = max(damping / 3.0, _DAMPING_MIN)
        else:
            damping *= 4.0
        if _converged(position_error, orientation_error, rows, task):
            status = CONVERGED
        elif quiet >= 3 or damping >= _DAMPING_MAX:
            status = STALLED
    if status == RUNNING:
        status = CONVERGED if _converged(position_error, orientation_error, rows, task) else MAX_ITER
    return position_error, orientation_error, iterations, status


@_jit
def _workspace(m: int) -> Workspace:
    """Scratch arrays of one solve, by position: residual, trial residual, Jacobian, trial
    Jacobian, trial pose, step, rotation, product, axes, origins, work, small system, vector, seed."""
    return (np.empty(6), np.empty(6), np.empty((6, m)), np.empty((6, m)), np.empty(m), np.empty(m),
            np.empty((3, 3)), np.empty((3, 3)), np.empty((m, 3)), np.empty((m, 3)), np.empty((6, m)),
            np.empty((6, 6)), np.empty(6 + m), np.empty(m))


@_jit
def _solve_one(task: Task, start: FloatArray, seed_base: FloatArray, hopeless: bool, unit: FloatArray,
               spread: FloatArray, max_iterations: int, initial_damping: float, plan: Plan, q_out: FloatArray,
               ws: Workspace) -> tuple[float, float, int, int]:
    """``lm.lm_solve`` for one target: the attempt from ``start``, then seeded restarts.
    Writes the best pose into ``q_out``; returns ``(position error, orientation error, iterations,
    status)``."""
    m = start.shape[0]
    lower, upper, tolerance = plan[0], plan[1], task[3]
    q_out[:] = start
    best_error, best_orientation_error, iterations, best_status = _attempt(
        q_out, task, max_iterations, initial_damping, plan, ws)
    fruitless = 0
    seed = ws[13]
    for k in range(unit.shape[0]):
        if best_status == CONVERGED or hopeless or fruitless >= _FRUITLESS_RESTARTS:
            break
        # The seed as lm.restart_seeds computes it (same operations, so the same bits).
        for i in range(m):
            low = lower[i] if np.isfinite(lower[i]) else seed_base[i] - np.pi
            high = upper[i] if np.isfinite(upper[i]) else seed_base[i] + np.pi
            uniform = unit[k, i] * (high - low) + low
            seed[i] = min(max(seed_base[i] + spread[k] * (uniform - seed_base[i]), lower[i]), upper[i])
        error, orientation_error, used, status = _attempt(seed, task, max_iterations, initial_damping, plan, ws)
        iterations += used
        converged = status == CONVERGED
        helped = converged or error < best_error - 0.01 * tolerance
        fruitless = 0 if helped else fruitless + 1
        if converged or error < best_error - 1e-15:
            q_out[:] = seed
            best_error, best_orientation_error, best_status = error, orientation_error, status
    return best_error, best_orientation_error, iterations, best_status


@_jit
def solve_many(targets: FloatArray, orientations: FloatArray, orientation_scale: float, starts: FloatArray,
               seed_bases: FloatArray, hopeless: AnyArray, unit: FloatArray, spread: FloatArray, tolerance: float,
               orientation_tolerance: float, max_iterations: int, initial_damping: float, plan: Plan,
               q_out: FloatArray, error_out: FloatArray, orientation_error_out: FloatArray,
               iterations_out: AnyArray, status_out: AnyArray) -> None:
    """:func:`_solve_one` for each of ``F`` targets. ``orientations`` ``(F, 3, 3)`` are chain-space
    tip rotations, used when ``orientation_scale`` (weight times reach) is above 0; ``starts`` and
    ``seed_bases`` are ``(F, m)`` or ``(1, m)`` (shared). Results go into the ``*_out`` arrays."""
    m = q_out.shape[1]
    ws = _workspace(m)
    for f in range(targets.shape[0]):
        start = starts[f] if starts.shape[0] > 1 else starts[0]
        seed_base = seed_bases[f] if seed_bases.shape[0] > 1 else seed_bases[0]
        orientation = orientations[f] if orientations.shape[0] > 1 else orientations[0]
        task = (targets[f], orientation, orientation_scale, tolerance, orientation_tolerance)
        error, orientation_error, iterations, status = _solve_one(
            task, start, seed_base, hopeless[f], unit, spread, max_iterations, initial_damping, plan, q_out[f], ws)
        error_out[f], orientation_error_out[f], iterations_out[f], status_out[f] = (
            error, orientation_error, iterations, status)
