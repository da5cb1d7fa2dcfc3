"""The LM solver as scalar loops compiled by numba (optional).

This module imports numba and is only imported by :mod:`.compiled`, which checks that numba is
there first. It is :func:`.lm.lm_solve` for every problem but a soft comfort pull, rule for rule:

* FK and the Jacobian as in :mod:`.fk` (a joint turns about the axes of the frame it has after
  the rotations applied outside it), the tip in world space through the chain's base; the
  orientation residual, the pole residual and the reach-first comfort residual as in
  :func:`.objectives.evaluate`.
* The step as in ``lm._step``: active set (a free angle on a limit whose gradient pushes outward is
  frozen), Marquardt scaling with a floor, the dual (Woodbury) form when there are fewer rows (3
  or 6) than angles, projection onto the limits; once the tip is well inside tolerance, the
  secondary step (the secondary gradient projected onto the tip task's null space) and the two
  Gauss-Newton steps that restore the tip (``lm._secondary_step``, ``lm._restore_tip``).
* Acceptance (lexicographic with secondary tasks), damping (/3 on success, x4 on failure,
  capped), "quiet" progress and the stop rules as in ``lm.lm_attempt``.
* Restarts as in ``lm.lm_solve``: the same seeds (the caller passes the same uniform draws), tried
  in order, the first that helps wins; at most ``_FRUITLESS_RESTARTS`` in a row that gain nothing,
  none for targets beyond reach; with a pole, also for reached targets that bend away from it.

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
Plan = tuple[Any, ...]  # see compiled.plan_of: limits, rest transforms, slots, base, tip offset, dof joints
Workspace = tuple[Any, ...]  # see _workspace
Task = tuple[Any, ...]  # one target's goals, see solve_many
Flags = tuple[Any, ...]  # (can relax, problem has secondary tasks, relax slack), see solve_many

# Keep in step with lm.py (the tests compare the two paths on the same problems).
_DAMPING_MIN = 1e-12
_DAMPING_MAX = 1e6
_REJECTIONS_TO_SETTLE = 6
_SECONDARY_FULL_STEP_DAMPING = 1e-3
_FRUITLESS_RESTARTS = 16
_RESTORE_DAMPING = 1e-6
_RELAX_PROGRESS = 1e-4
_RESTORE_STEPS = 2
_LIMIT_EPS = 1e-12
RUNNING, CONVERGED, STALLED, MAX_ITER = -1, 0, 1, 2

# Task fields, by position.
_TARGET, _ORIENTATION, _ORIENTATION_SCALE, _TOLERANCE, _ORIENTATION_TOLERANCE = 0, 1, 2, 3, 4
_POLE, _HAS_POLE, _POLE_WEIGHT, _COMFORT_TARGET, _COMFORT_SCALE, _HAS_COMFORT, _REACH = 5, 6, 7, 8, 9, 10, 11

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
def _evaluate(q: FloatArray, task: Task, plan: Plan, residual: FloatArray, jac: FloatArray, secondary: FloatArray,
              secondary_jac: FloatArray, ws: Workspace) -> tuple[float, float, float]:
    """Everything :func:`.objectives.evaluate` stacks, at ``q``.

    Primary: residual ``(k,)`` and Jacobian ``(k, m)``, ``k`` = 3 (tip position) or 6 (and
    orientation). Secondary (reach-first tasks): the pole rows, ``3 (n - 1)``, then the comfort
    rows, ``m``. Returns ``(0.5 |primary|^2, orientation error in radians, 0.5 |secondary|^2)``.
    Leaves the joints' chain-space origins in ``ws[14]``.
    """
    _, _, rest_rot, rest_pos, rest_rotates, slot_count, slot_axis, slot_dof, slot_fixed, base, tip_offset, _ = plan
    target, orientation, orientation_scale = task[_TARGET], task[_ORIENTATION], task[_ORIENTATION_SCALE]
    rot, tmp, axes, origins, joint_origins = ws[6], ws[7], ws[8], ws[9], ws[14]
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
        joint_origins[j, 0], joint_origins[j, 1], joint_origins[j, 2] = px, py, pz
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
    rows = _pole_rows(task, plan, secondary, secondary_jac, ws) if task[_POLE_WEIGHT] > 0 else 0
    if task[_HAS_COMFORT]:
        # r = sqrt(w) * reach * (q - q_comfort) per free angle; J = diag(sqrt(w) * reach).
        comfort_target, comfort_scale = task[_COMFORT_TARGET], task[_COMFORT_SCALE]
        for i in range(q.shape[0]):
            secondary[rows + i] = comfort_scale[i] * (q[i] - comfort_target[i])
            for k in range(q.shape[0]):
                secondary_jac[rows + i, k] = comfort_scale[i] if i == k else 0.0
        rows += q.shape[0]
    secondary_cost = 0.0
    for r in range(rows):
        secondary_cost += secondary[r] * secondary[r]
    return 0.5 * cost, orientation_error, 0.5 * secondary_cost


@_jit
def _pole_geometry(task: Task, plan: Plan, ws: Workspace) -> float:
    """World joint origins relative to the root into ``ws[15]`` ``(n, 3)``, the projector off the
    base-to-target line into ``ws[16]`` and the pole's unit direction off it into ``ws[17][:3]``
    (``objectives._pole_geometry``). Returns 1.0 if the pole gives a direction, else 0.0."""
    base, joint_origins = plan[9], ws[14]
    offsets, projector, pole_dir = ws[15], ws[16], ws[17]
    target, pole = task[_TARGET], task[_POLE]
    n = joint_origins.shape[0]
    for j in range(n):  # world origins, then relative to the root (which no angle moves)
        for a in range(3):
            offsets[j, a] = (base[a, 0] * joint_origins[j, 0] + base[a, 1] * joint_origins[j, 1]
                             + base[a, 2] * joint_origins[j, 2] + base[a, 3])
    for j in range(n - 1, -1, -1):
        for a in range(3):
            offsets[j, a] -= offsets[0, a]
    axis_x, axis_y, axis_z = (target[0] - base[0, 3] - _root(plan, ws, 0), target[1] - base[1, 3] - _root(plan, ws, 1),
                              target[2] - base[2, 3] - _root(plan, ws, 2))
    length = max(np.sqrt(axis_x * axis_x + axis_y * axis_y + axis_z * axis_z), 1e-12)
    axis = (axis_x / length, axis_y / length, axis_z / length)
    for a in range(3):
        for b in range(3):
            projector[a, b] = (1.0 if a == b else 0.0) - axis[a] * axis[b]
    to_pole = (pole[0] - base[0, 3] - _root(plan, ws, 0), pole[1] - base[1, 3] - _root(plan, ws, 1),
               pole[2] - base[2, 3] - _root(plan, ws, 2))
    size = 0.0
    for a in range(3):
        pole_dir[a] = projector[a, 0] * to_pole[0] + projector[a, 1] * to_pole[1] + projector[a, 2] * to_pole[2]
        size += pole_dir[a] * pole_dir[a]
    size = np.sqrt(size)
    for a in range(3):
        pole_dir[a] /= max(size, 1e-12)
    return 1.0 if size > 1e-9 else 0.0


@_jit
def _root(plan: Plan, ws: Workspace, a: int) -> float:
    """Axis ``a`` of the root joint's world origin, minus the base's translation."""
    base, origin = plan[9], ws[14][0]
    return float(base[a, 0] * origin[0] + base[a, 1] * origin[1] + base[a, 2] * origin[2])


@_jit
def _pole_rows(task: Task, plan: Plan, secondary: FloatArray, secondary_jac: FloatArray, ws: Workspace) -> int:
    """The pole residual and Jacobian (``objectives._pole_terms``) into the first ``3 (n - 1)``
    secondary rows; returns that row count."""
    base, dof_joint = plan[9], plan[11]
    joint_origins, axes, origins = ws[14], ws[8], ws[9]
    offsets, projector, pole_dir = ws[15], ws[16], ws[17]
    n, m = joint_origins.shape[0], axes.shape[0]
    if n < 2:  # a one-joint chain has no interior joint to aim
        return 0
    usable = _pole_geometry(task, plan, ws)
    weight = task[_POLE_WEIGHT] / np.sqrt(n - 1) * usable
    shaped = ws[7]  # 3x3 scratch: weight * (I - pole_dir unit^T) @ projector
    for i in range(1, n):
        row = 3 * (i - 1)
        off = (projector[0, 0] * offsets[i, 0] + projector[0, 1] * offsets[i, 1] + projector[0, 2] * offsets[i, 2],
               projector[1, 0] * offsets[i, 0] + projector[1, 1] * offsets[i, 1] + projector[1, 2] * offsets[i, 2],
               projector[2, 0] * offsets[i, 0] + projector[2, 1] * offsets[i, 1] + projector[2, 2] * offsets[i, 2])
        size = np.sqrt(off[0] * off[0] + off[1] * off[1] + off[2] * off[2])
        for a in range(3):
            secondary[row + a] = weight * (off[a] - size * pole_dir[a])
        unit = (off[0] / max(size, 1e-12), off[1] / max(size, 1e-12), off[2] / max(size, 1e-12))
        for a in range(3):
            for b in range(3):
                total = 0.0
                for c in range(3):
                    total += ((1.0 if a == c else 0.0) - pole_dir[a] * unit[c]) * projector[c, b]
                shaped[a, b] = weight * total
        # Times the world Jacobian of joint i's origin: only angles of earlier joints move it.
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
            w0 = base[0, 0] * c0 + base[0, 1] * c1 + base[0, 2] * c2
            w1 = base[1, 0] * c0 + base[1, 1] * c1 + base[1, 2] * c2
            w2 = base[2, 0] * c0 + base[2, 1] * c1 + base[2, 2] * c2
            for a in range(3):
                secondary_jac[row + a, k] = shaped[a, 0] * w0 + shaped[a, 1] * w1 + shaped[a, 2] * w2
    return int(3 * (n - 1))


@_jit
def _pole_alignment(q: FloatArray, task: Task, plan: Plan, ws: Workspace) -> float:
    """``objectives.pole_alignment`` at ``q``: the worst cosine between an interior joint's bend
    direction and the pole's (1 without a pole, or without one usable)."""
    n = plan[3].shape[0]
    if not task[_HAS_POLE] or n < 2:
        return 1.0
    _evaluate(q, task, plan, ws[1], ws[3], ws[19], ws[20], ws)  # FK into the scratch buffers
    usable = _pole_geometry(task, plan, ws)
    if usable == 0.0:
        return 1.0
    offsets, projector, pole_dir = ws[15], ws[16], ws[17]
    worst = np.inf
    for i in range(1, n):
        off = (projector[0, 0] * offsets[i, 0] + projector[0, 1] * offsets[i, 1] + projector[0, 2] * offsets[i, 2],
               projector[1, 0] * offsets[i, 0] + projector[1, 1] * offsets[i, 1] + projector[1, 2] * offsets[i, 2],
               projector[2, 0] * offsets[i, 0] + projector[2, 1] * offsets[i, 1] + projector[2, 2] * offsets[i, 2])
        size = np.sqrt(off[0] * off[0] + off[1] * off[1] + off[2] * off[2])
        cosine = (off[0] * pole_dir[0] + off[1] * pole_dir[1] + off[2] * pole_dir[2]) / max(size, 1e-12)
        worst = min(worst, cosine if size > 1e-9 * task[_REACH] else 1.0)
    return worst


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
def _secondary_step(q: FloatArray, work: FloatArray, rows: int, secondary: FloatArray, secondary_jac: FloatArray,
                    secondary_rows: int, lower: FloatArray, upper: FloatArray, shrink: float, step: FloatArray,
                    ws: Workspace) -> None:
    """Add the reach-first step to ``step`` (``lm._secondary_step``): the secondary gradient, kept
    off the limits, projected onto the null space of the active primary Jacobian ``work``, scaled
    by its Gauss-Newton length and ``shrink``."""
    m = q.shape[0]
    gradient, gram, vec, curvature = ws[18], ws[11], ws[12], ws[21]
    for i in range(m):
        g = 0.0
        for r in range(secondary_rows):
            g += secondary_jac[r, i] * secondary[r]
        if (q[i] <= lower[i] + _LIMIT_EPS and g > 0) or (q[i] >= upper[i] - _LIMIT_EPS and g < 0):
            g = 0.0  # stay off the limits
        gradient[i] = g
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
            gram[a, b] = total
        trace += gram[a, a]
    ridge = 1e-12 * (trace / rows + 1e-300)  # keeps J J^T invertible at singularities
    for a in range(rows):
        gram[a, a] += ridge
    _solve_small(gram, vec, rows)
    length = 0.0
    for i in range(m):
        total = 0.0
        for a in range(rows):
            total += work[a, i] * vec[a]
        gradient[i] -= total  # now the projected gradient
        length += gradient[i] * gradient[i]
    bend = 0.0
    for r in range(secondary_rows):
        total = 0.0
        for i in range(m):
            total += secondary_jac[r, i] * gradient[i]
        curvature[r] = total
        bend += total * total
    scale = length / (bend + 1e-300) * shrink
    for i in range(m):
        step[i] -= scale * gradient[i]


@_jit
def _converged(position_error: float, orientation_error: float, rows: int, task: Task) -> bool:
    """``lm._converged``: the tip within tolerance, and the orientation too when it is a task."""
    return position_error < task[_TOLERANCE] and (rows == 3 or orientation_error < task[_ORIENTATION_TOLERANCE])


@_jit
def _secondary_rows(task: Task, n: int, m: int) -> int:
    rows = 3 * (n - 1) if task[_POLE_WEIGHT] > 0 and n >= 2 else 0
    return rows + (m if task[_HAS_COMFORT] else 0)


@_jit
def _norm3(v: FloatArray) -> float:
    return float(np.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2))


@_jit
def _attempt(q: FloatArray, task: Task, flags: Flags, max_iterations: int, initial_damping: float, plan: Plan,
             ws: Workspace) -> tuple[float, float, int, int]:
    """One LM attempt from ``q`` (inside the limits), in place (``lm.lm_attempt``).

    Returns ``(position error, orientation error, iterations, status)``.
    """
    m, n = q.shape[0], plan[3].shape[0]
    can_relax, problem_has_secondary, slack = flags[0], flags[1], flags[2]
    rows = 6 if task[_ORIENTATION_SCALE] > 0 else 3
    secondary_rows = _secondary_rows(task, n, m)
    lower, upper = plan[0], plan[1]
    residual, trial_residual, jac, trial_jac, trial_q, step = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5]
    secondary, secondary_jac, trial_secondary, trial_secondary_jac = ws[22], ws[23], ws[19], ws[20]
    work, small, vec = ws[10], ws[11], ws[12]
    cost, orientation_error, secondary_cost = _evaluate(q, task, plan, residual, jac, secondary, secondary_jac, ws)
    position_error = _norm3(residual)
    damping = initial_damping
    quiet = 0
    rejections = 0
    iterations = 0
    status = RUNNING
    if not can_relax and _converged(position_error, orientation_error, rows, task):
        status = CONVERGED
    while status == RUNNING and iterations < max_iterations:
        relax = can_relax and cost <= slack
        _step(q, residual, jac, rows, lower, upper, damping, step, work, small, vec)
        if relax:
            # Each rejection multiplies the damping by 4; the secondary step shrinks in step with it.
            shrink = min(1.0, _SECONDARY_FULL_STEP_DAMPING / damping)
            _secondary_step(q, work, rows, secondary, secondary_jac, secondary_rows, lower, upper, shrink, step, ws)
        for i in range(m):
            trial_q[i] = min(max(q[i] + step[i], lower[i]), upper[i])
        trial_cost, trial_orientation_error, trial_secondary_cost = _evaluate(
            trial_q, task, plan, trial_residual, trial_jac, trial_secondary, trial_secondary_jac, ws)
        if relax:
            # lm._restore_tip: lightly damped Gauss-Newton steps back onto the tip's solution set.
            for _ in range(_RESTORE_STEPS):
                _step(trial_q, trial_residual, trial_jac, rows, lower, upper, _RESTORE_DAMPING, ws[13], work, small,
                      vec)
                for i in range(m):
                    trial_q[i] = min(max(trial_q[i] + ws[13][i], lower[i]), upper[i])
                trial_cost, trial_orientation_error, trial_secondary_cost = _evaluate(
                    trial_q, task, plan, trial_residual, trial_jac, trial_secondary, trial_secondary_jac, ws)
        iterations += 1
        if problem_has_secondary and cost <= slack:  # lm._better: reach first, then the secondary cost
            accept = trial_cost <= slack and trial_secondary_cost < secondary_cost
        else:
            accept = trial_cost < cost
        old_merit = secondary_cost if relax else cost
        new_merit = trial_secondary_cost if relax else trial_cost
        if accept:
            relative = _RELAX_PROGRESS if relax else 1e-14
            negligible = old_merit - new_merit <= relative * max(old_merit, 1e-300) + 1e-30
            quiet = quiet + 1 if negligible else 0
            q[:] = trial_q
            residual[:] = trial_residual
            jac[:, :] = trial_jac
            secondary[:] = trial_secondary
            secondary_jac[:, :] = trial_secondary_jac
            cost, orientation_error, secondary_cost = trial_cost, trial_orientation_error, trial_secondary_cost
            position_error = _norm3(residual)
            damping = max(damping / 3.0, _DAMPING_MIN)
            rejections = 0
        else:
            damping *= 4.0
            rejections += 1
        reached = _converged(position_error, orientation_error, rows, task)
        if can_relax:
            # Keep improving the secondary task until it stops moving, then stop if reached.
            if quiet >= 2 or damping >= _DAMPING_MAX or (reached and rejections >= _REJECTIONS_TO_SETTLE):
                status = CONVERGED if reached else STALLED
        elif reached:
            status = CONVERGED
        elif quiet >= 3 or damping >= _DAMPING_MAX:
            status = STALLED
    final = _converged(position_error, orientation_error, rows, task)
    if status == RUNNING:
        status = CONVERGED if final else MAX_ITER
    if status == CONVERGED and not final:  # settled secondary tasks can drift the tip up to tolerance
        status = STALLED
    return position_error, orientation_error, iterations, status


@_jit
def _workspace(m: int, n: int, secondary_rows: int) -> Workspace:
    """Scratch arrays of one solve, by position: 0-1 residual and trial residual (6,), 2-3 Jacobian
    and trial Jacobian (6, m), 4 trial pose, 5 step, 6-7 rotation and product (3, 3), 8-9 axes and
    origins of the free angles (m, 3), 10 active Jacobian (6, m), 11 small system (6, 6), 12 vector
    (6 + m,), 13 restore step (m,), 14 joint origins (n, 3), 15 pole offsets (n, 3),
    16 projector (3, 3), 17 pole direction (3,), 18 secondary gradient (m,), 19-20 trial secondary
    residual and Jacobian, 21 curvature (rows,), 22-23 secondary residual and Jacobian."""
    rows = max(secondary_rows, 1)
    return (np.empty(6), np.empty(6), np.empty((6, m)), np.empty((6, m)), np.empty(m), np.empty(m),
            np.empty((3, 3)), np.empty((3, 3)), np.empty((m, 3)), np.empty((m, 3)), np.empty((6, m)),
            np.empty((6, 6)), np.empty(6 + m), np.empty(m), np.empty((n, 3)), np.empty((n, 3)),
            np.empty((3, 3)), np.empty(3), np.empty(m), np.empty(rows), np.empty((rows, m)), np.empty(rows),
            np.empty(rows), np.empty((rows, m)))


@_jit
def _solve_one(task: Task, flags: Flags, start: FloatArray, seed_base: FloatArray, hopeless: bool,
               unit: FloatArray, spread: FloatArray, max_iterations: int, initial_damping: float, plan: Plan,
               q_out: FloatArray, seed: FloatArray, ws: Workspace) -> tuple[float, float, int, int]:
    """``lm.lm_solve`` for one target: the attempt from ``start``, then seeded restarts.
    Writes the best pose into ``q_out``; returns ``(position error, orientation error, iterations,
    status)``."""
    m = start.shape[0]
    lower, upper, tolerance = plan[0], plan[1], task[_TOLERANCE]
    q_out[:] = start
    best_error, best_orientation_error, iterations, best_status = _attempt(
        q_out, task, flags, max_iterations, initial_damping, plan, ws)
    best_alignment = _pole_alignment(q_out, task, plan, ws) if unit.shape[0] > 0 else 1.0
    fruitless = 0
    for k in range(unit.shape[0]):
        unfinished = best_status != CONVERGED and not hopeless and fruitless < _FRUITLESS_RESTARTS
        if not (unfinished or best_alignment < 0):  # _RestartState.wants_restart
            break
        # The seed as lm.restart_seeds computes it (same operations, so the same bits).
        for i in range(m):
            low = lower[i] if np.isfinite(lower[i]) else seed_base[i] - np.pi
            high = upper[i] if np.isfinite(upper[i]) else seed_base[i] + np.pi
            uniform = unit[k, i] * (high - low) + low
            seed[i] = min(max(seed_base[i] + spread[k] * (uniform - seed_base[i]), lower[i]), upper[i])
        error, orientation_error, used, status = _attempt(seed, task, flags, max_iterations, initial_damping, plan,
                                                          ws)
        alignment = _pole_alignment(seed, task, plan, ws)
        iterations += used
        converged = status == CONVERGED
        if best_status == CONVERGED:  # a converged target restarts only to bend toward the pole
            wins = converged and alignment > best_alignment
        else:
            wins = converged or error < best_error - 1e-15
        helped = converged or error < best_error - 0.01 * tolerance
        fruitless = 0 if helped else fruitless + 1
        if wins:
            q_out[:] = seed
            best_error, best_orientation_error, best_status = error, orientation_error, status
            best_alignment = alignment
    return best_error, best_orientation_error, iterations, best_status


@_jit
def solve_many(targets: FloatArray, orientations: FloatArray, orientation_scale: float, poles: FloatArray,
               has_pole: bool, pole_weight: float, comfort_target: FloatArray, comfort_scale: FloatArray,
               has_comfort: bool, reach: float, flags: Flags, starts: FloatArray, seed_bases: FloatArray,
               hopeless: AnyArray, unit: FloatArray, spread: FloatArray, tolerance: float,
               orientation_tolerance: float, max_iterations: int, initial_damping: float, plan: Plan,
               q_out: FloatArray, error_out: FloatArray, orientation_error_out: FloatArray,
               iterations_out: AnyArray, status_out: AnyArray) -> None:
    """:func:`_solve_one` for each of ``F`` targets; results go into the ``*_out`` arrays.

    Per target (or shared, with a leading axis of 1): ``orientations`` ``(F, 3, 3)`` chain-space tip
    rotations, used when ``orientation_scale`` (weight times reach) is above 0; ``poles``
    ``(F, 3)`` world poles, used when ``has_pole`` (their residual only with ``pole_weight`` above
    0); ``starts`` and ``seed_bases`` ``(F, m)``. Shared: the reach-first comfort pose
    ``comfort_target`` ``(m,)`` and its per-angle residual scale ``comfort_scale``, used when
    ``has_comfort``; ``flags`` ``(can relax, problem has secondary tasks, relax slack)``.
    """
    m, n = q_out.shape[1], plan[3].shape[0]
    secondary_rows = (3 * (n - 1) if pole_weight > 0 and n >= 2 else 0) + (m if has_comfort else 0)
    ws = _workspace(m, n, secondary_rows)
    seed = np.empty(m)
    for f in range(targets.shape[0]):
        start = starts[f] if starts.shape[0] > 1 else starts[0]
        seed_base = seed_bases[f] if seed_bases.shape[0] > 1 else seed_bases[0]
        orientation = orientations[f] if orientations.shape[0] > 1 else orientations[0]
        pole = poles[f] if poles.shape[0] > 1 else poles[0]
        task = (targets[f], orientation, orientation_scale, tolerance, orientation_tolerance, pole, has_pole,
                pole_weight, comfort_target, comfort_scale, has_comfort, reach)
        error, orientation_error, iterations, status = _solve_one(
            task, flags, start, seed_base, hopeless[f], unit, spread, max_iterations, initial_damping, plan,
            q_out[f], seed, ws)
        error_out[f], orientation_error_out[f], iterations_out[f], status_out[f] = (
            error, orientation_error, iterations, status)
