"""The tree solver as scalar loops compiled by numba (optional): :mod:`.tree_solver`'s numpy
``_solve_numpy``, rule for rule.

This module imports numba and is only imported by :mod:`.compiled` (through ``importlib``, in
``tree_kernel_module``), which checks that numba is there first. What it shares with the chain
kernel :mod:`.kernel` (the forward pass over the joints, a position row's Jacobian column, the
rotation vector, a small solve) lives in :mod:`.kernel_base`: importing it from :mod:`.kernel`
would load, and on a fresh install compile, the chain kernel too.

What it computes is ``tree_solver._Frame`` on every frame:

* FK as :func:`.tree.tree_forward` (:func:`.kernel_base.forward_joints`, the chain kernel's too): a
  joint's frame is ``parent frame @ rest @ R``, its Euler slots
  in application order, the last applied outermost, so an angle turns about an axis of the frame
  after the rotations applied after it; a locked axis with a non-zero fixed value turns, one fixed
  at zero is skipped. Each variable's axis is that frame's column, through its joint's origin.
* The stacked rows: per effector of positive weight ``sqrt(w_e) (base @ tip_e - target_e)`` and,
  when it follows, ``sqrt(w_e) * orientation_weight * reach * log(R_e O_e^T)``, with the Jacobian
  (``axis x (tip - origin)`` through the base, the axes for the rotation rows) on the variables
  that move the effector; then the comfort pull ``sqrt(mu) * reach * sqrt(c_k) (q_k - a_k)``.
* One LM stage per ``mu`` (the pull toward an anchor ``a``: the preferred pose in the stages of
  :data:`.tree_solver.STAGES`, the pose each stage starts from in the first attempt's anchored
  :data:`.tree_solver.FIRST_STAGES`): active set (a variable on a limit whose gradient pushes
  outward is frozen), Marquardt scaling with a floor, the whole step scaled down so no angle
  turns more than :data:`.rules.MAX_STEP`, projection onto the limits, the damping rules and the
  stage's stop rules (:data:`.tree_solver.STAGE_QUIET`, :data:`.tree_solver.STEP_QUIET`).
* Per frame: the first attempt, anchored, from the preferred pose with its angles on a limit bent
  into their range (``_Frame.bent_start``; a tree with a pole skips it: its first attempt is the
  second); where it does not reach every weighted target, the second attempt (the stages pulling
  toward the preferred pose, from it), kept if it reaches or clearly gains; then the restarts in
  order while no attempt has reached (the first that does wins, else the least weighted error; at
  most :data:`.tree_solver.FRUITLESS_TREE_RESTARTS` in a row that gain nothing).

The step's linear system, ``J^T J + D`` on the free variables (``J`` the effector and pole rows,
``D`` the diagonal pull rows' squares plus the damping), is solved as :func:`.lm.damped_solve` solves
it for numpy (and the chain kernel for chains): in the dual form where ``J`` has fewer rows than
there are free variables (:func:`_dual_step`, a ``rows x rows`` Cholesky), else the normal
equations (symmetric positive definite: the pull rows and the damping keep them so) by Cholesky,
where numpy calls LAPACK's LU (Gaussian elimination if rounding ever breaks definiteness). The sums
run in another order, so the answers
agree with numpy's to rounding, not bit for bit: the same iterations, the same branches, poses
within ~1e-12 where the targets are reached; where they are not, the stop rule leaves the pose
anywhere along a flat valley of the compromise, and the backends' poses differ by up to ~1e-6
(``tests/core/test_tree_compiled.py``). A trial's Jacobian is computed only once the trial is
kept (numpy computes it for every trial; the result is the same). Frames are solved one after
another, each alone: a batch is exactly a loop of single frames.

numba compiles in the constants of ``rules.py`` and ``tree_solver.py`` (:data:`.tree_solver.STAGES`,
:data:`.tree_solver.FIRST_STAGES`, the start bend's and the stop rules) but judges its on-disk
cache by this file alone, so :mod:`.compiled` stamps the cache with a hash of both
(``tree_kernel.rules-stamp``, see ``forget_stale_kernel_cache``).

Arrays are float64 (int64, bool where said) and C-contiguous; the plan is built by
:func:`.compiled.tree_plan_of`.
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
from .rules import DAMPING_DOWN, DAMPING_MAX, DAMPING_MIN, DAMPING_UP, LIMIT_EPS, MAX_STEP, RESTART_GAIN, SCALE_FLOOR
from .tree_solver import (
    BEND,
    BEND_REACH,
    BEND_ROOM,
    EARLY_QUIET,
    EARLY_STEP,
    FIRST_STAGES,
    FRUITLESS_TREE_RESTARTS,
    RESTART_STAGE,
    SETTLE_STAGES,
    STAGE_QUIET,
    STAGES,
    STEP_QUIET,
)
from .types import AnyArray, FloatArray

# Annotations are for readers and mypy; numba compiles from the argument types it is called with.
# Every array a call hands on costs numba IR to pass (and compile time, per call site), so the
# functions take small tuples: the tree's geometry (FK) apart from its effectors' rows.
Plan = tuple[Any, ...]  # (lower, upper, geometry, effectors, bends), see compiled.tree_plan_of
Geometry = tuple[Any, ...]  # (rest_rot, rest_pos, rest_rotates, parents, slot_count, slot_axis, slot_dof,
# slot_fixed, effector_joint, tip_offset, dof_joint): what FK reads
Effectors = tuple[Any, ...]  # (effector_joint, sqrt_weights, moves, dof_joint, base): what the rows read
Kinematics = tuple[Any, ...]  # (origins (n, 3), rotations (n, 3, 3), axes (m, 3), tips (E, 3), scratch (3, 3),
# each joint's frame before it turns (n, 3, 3), each variable's joint origin (m, 3)): forward_joints' outputs
Scratch = tuple[Any, ...]  # see _scratch
Frame = tuple[Any, ...]  # (targets (E, 3), orientations (E, 3, 3), follow (E,), orientation scale,
# poles (E, 3) world, has_pole (E,), pole weight (times tree_solver.POLE_GAIN))
Bends = tuple[Any, ...]  # (chain joints (E, L) root first, -1 padded; chain lengths (E,); strict ancestors (n, n))


@_jit_leaf
def _forward(q: FloatArray, geometry: Geometry, kin: Kinematics) -> None:
    """``tree.tree_forward`` at ``q``: the joints' origins and frames, the variables' axes
    (:func:`.kernel_base.forward_joints`, the chain kernel's FK) and the effectors' tips (tree
    space) into ``kin``."""
    rest_rot, rest_pos, rest_rotates, parents, slot_count, slot_axis, slot_dof, slot_fixed = geometry[:8]
    effector_joint, tip_offset, dof_joint = geometry[8], geometry[9], geometry[10]
    origins, rotations, axes, tips, frame, before, dof_origins = kin
    _forward_joints(q, parents, rest_rot, rest_pos, rest_rotates, slot_count, slot_axis, slot_dof, slot_fixed,
                    dof_joint, axes.shape[0], frame, origins, before, rotations, axes, dof_origins)
    for e in range(effector_joint.shape[0]):
        j = effector_joint[e]
        tx, ty, tz = tip_offset[e, 0], tip_offset[e, 1], tip_offset[e, 2]
        for a in range(3):
            tips[e, a] = origins[j, a] + (rotations[j, a, 0] * tx + rotations[j, a, 1] * ty + rotations[j, a, 2] * tz)


@_jit_inline
def _rotation_error(kin: Kinematics, j: int, orientation: FloatArray) -> tuple[float, float, float]:
    """``rotation_vector(R_j O^T)``: joint ``j``'s frame (from the last FK) against a target rotation."""
    rotations, tmp = kin[1], kin[4]
    for a in range(3):
        for b in range(3):
            tmp[a, b] = (rotations[j, a, 0] * orientation[b, 0] + rotations[j, a, 1] * orientation[b, 1]
                         + rotations[j, a, 2] * orientation[b, 2])
    return _rotation_vector(tmp)


@_jit_inline
def _primary(q: FloatArray, frame: Frame, geometry: Geometry, effectors: Effectors, kin: Kinematics,
             rows: FloatArray) -> float:
    """``_Frame.primary``'s rows: FK at ``q``, then the weighted effector rows into ``rows``; returns
    ``0.5 |rows|^2``. Effectors of weight 0 have no rows; the rows used are the first
    ``3 * positive + 3 * following positive`` (:func:`_row_count`)."""
    effector_joint, sqrt_weights, base = effectors[0], effectors[1], effectors[4]
    targets, orientations, follow, orientation_scale = frame[0], frame[1], frame[2], frame[3]
    _forward(q, geometry, kin)
    tips = kin[3]
    r = 0
    cost = 0.0
    for e in range(effector_joint.shape[0]):
        w = sqrt_weights[e]
        if w == 0.0:
            continue
        cx, cy, cz = tips[e, 0], tips[e, 1], tips[e, 2]
        for a in range(3):
            value = w * (base[a, 0] * cx + base[a, 1] * cy + base[a, 2] * cz + base[a, 3] - targets[e, a])
            rows[r + a] = value
            cost += value * value
        r += 3
        if follow[e]:
            s = w * orientation_scale
            vx, vy, vz = _rotation_error(kin, effector_joint[e], orientations[e])
            rows[r], rows[r + 1], rows[r + 2] = s * vx, s * vy, s * vz
            for a in range(3):
                cost += rows[r + a] * rows[r + a]
            r += 3
    return 0.5 * cost


@_jit_inline
def _jacobian(follow: AnyArray, orientation_scale: float, effectors: Effectors, kin: Kinematics,
              jac: FloatArray) -> None:
    """``_Frame.primary``'s Jacobian of the rows :func:`_primary` has just computed (from the FK it
    left in ``kin``): ``axis x (tip - joint origin)`` through the base for a position row, the axis
    for a rotation row, on the variables that move the effector (zero elsewhere)."""
    _, sqrt_weights, moves, dof_joint, base = effectors
    origins, axes, tips = kin[0], kin[2], kin[3]
    m = axes.shape[0]
    r = 0
    for e in range(sqrt_weights.shape[0]):
        w = sqrt_weights[e]
        if w == 0.0:
            continue
        cx, cy, cz = tips[e, 0], tips[e, 1], tips[e, 2]
        for k in range(m):
            if moves[e, k]:
                j = dof_joint[k]
                col0, col1, col2 = _position_column(base, axes[k, 0], axes[k, 1], axes[k, 2], cx - origins[j, 0],
                                                    cy - origins[j, 1], cz - origins[j, 2])
                jac[r, k], jac[r + 1, k], jac[r + 2, k] = w * col0, w * col1, w * col2
            else:
                for a in range(3):
                    jac[r + a, k] = 0.0
        r += 3
        if follow[e]:
            s = w * orientation_scale
            for k in range(m):
                for a in range(3):
                    jac[r + a, k] = s * axes[k, a] if moves[e, k] else 0.0
            r += 3


@_jit_leaf
def _pole_rows(frame: Frame, bends: Bends, effectors: Effectors, kin: Kinematics, rows: FloatArray,
               jac: FloatArray, start: int, scale: float) -> float:
    """``_Frame.pole_rows`` (times ``scale``) into ``rows``/``jac`` from row ``start``, from the FK
    :func:`_primary` has just left in ``kin``; returns ``0.5 |rows|^2`` of them. Three rows per
    interior joint of each poled effector's chain (zero where its pole lies on the root-to-target
    line): the joint's offset from that line minus its length along the pole's direction off it."""
    targets, poles, has_pole = frame[0], frame[4], frame[5]
    chain_joints, chain_length, above = bends
    dof_joint, base = effectors[3], effectors[4]
    origins, axes = kin[0], kin[2]
    m = axes.shape[0]
    r = start
    cost = 0.0
    for e in range(chain_length.shape[0]):
        length = chain_length[e]
        if not has_pole[e] or length < 2:
            continue
        root_joint = chain_joints[e, 0]
        rx, ry, rz = _world(base, origins, root_joint)
        ax, ay, az = targets[e, 0] - rx, targets[e, 1] - ry, targets[e, 2] - rz
        size = max(np.sqrt(ax * ax + ay * ay + az * az), 1e-12)
        ax, ay, az = ax / size, ay / size, az / size
        px, py, pz = poles[e, 0] - rx, poles[e, 1] - ry, poles[e, 2] - rz
        along = px * ax + py * ay + pz * az
        dx, dy, dz = px - along * ax, py - along * ay, pz - along * az
        width = np.sqrt(dx * dx + dy * dy + dz * dz)
        usable = width > 1e-9
        width = max(width, 1e-12)
        dx, dy, dz = dx / width, dy / width, dz / width
        weight = scale / np.sqrt(length - 1.0)
        for i in range(1, length):
            joint = chain_joints[e, i]
            if not usable:
                for a in range(3):
                    rows[r + a] = 0.0
                    for k in range(m):
                        jac[r + a, k] = 0.0
                r += 3
                continue
            wx, wy, wz = _world(base, origins, joint)
            ox, oy, oz = wx - rx, wy - ry, wz - rz
            along = ox * ax + oy * ay + oz * az
            ox, oy, oz = ox - along * ax, oy - along * ay, oz - along * az
            length_o = np.sqrt(ox * ox + oy * oy + oz * oz)
            rows[r], rows[r + 1], rows[r + 2] = (weight * (ox - length_o * dx), weight * (oy - length_o * dy),
                                                 weight * (oz - length_o * dz))
            for a in range(3):
                cost += rows[r + a] * rows[r + a]
            unit = max(length_o, 1e-12)
            ux, uy, uz = ox / unit, oy / unit, oz / unit
            for k in range(m):
                j = dof_joint[k]
                # world d(origin of joint) - d(origin of root) for variable k (joints above each move it)
                cx, cy, cz = 0.0, 0.0, 0.0
                if above[joint, j]:
                    cx, cy, cz = _moved(base, origins, axes, k, j, joint)
                if above[root_joint, j]:
                    bx, by, bz = _moved(base, origins, axes, k, j, root_joint)
                    cx, cy, cz = cx - bx, cy - by, cz - bz
                # the projector off the line, then (I - direction unit^T)
                along = cx * ax + cy * ay + cz * az
                cx, cy, cz = cx - along * ax, cy - along * ay, cz - along * az
                dot = ux * cx + uy * cy + uz * cz
                jac[r, k] = weight * (cx - dx * dot)
                jac[r + 1, k] = weight * (cy - dy * dot)
                jac[r + 2, k] = weight * (cz - dz * dot)
            r += 3
    return 0.5 * cost


@_jit_inline
def _world(base: FloatArray, origins: FloatArray, j: int) -> tuple[float, float, float]:
    """Joint ``j``'s origin in world space."""
    x, y, z = origins[j, 0], origins[j, 1], origins[j, 2]
    return (base[0, 0] * x + base[0, 1] * y + base[0, 2] * z + base[0, 3],
            base[1, 0] * x + base[1, 1] * y + base[1, 2] * z + base[1, 3],
            base[2, 0] * x + base[2, 1] * y + base[2, 2] * z + base[2, 3])


@_jit_inline
def _moved(base: FloatArray, origins: FloatArray, axes: FloatArray, k: int, j: int,
           point: int) -> tuple[float, float, float]:
    """World derivative of joint ``point``'s origin by variable ``k`` (at joint ``j``, above it)."""
    lx, ly, lz = origins[point, 0] - origins[j, 0], origins[point, 1] - origins[j, 1], origins[point, 2] - origins[j, 2]
    ax, ay, az = axes[k, 0], axes[k, 1], axes[k, 2]
    c0, c1, c2 = ay * lz - az * ly, az * lx - ax * lz, ax * ly - ay * lx
    return (base[0, 0] * c0 + base[0, 1] * c1 + base[0, 2] * c2, base[1, 0] * c0 + base[1, 1] * c1 + base[1, 2] * c2,
            base[2, 0] * c0 + base[2, 1] * c1 + base[2, 2] * c2)


@_jit_leaf
def _pole_row_count(has_pole: AnyArray, chain_length: AnyArray) -> int:
    """How many rows :func:`_pole_rows` fills."""
    count = 0
    for e in range(chain_length.shape[0]):
        if has_pole[e] and chain_length[e] >= 2:
            count += 3 * (chain_length[e] - 1)
    return count


@_jit_leaf
def _row_count(follow: AnyArray, sqrt_weights: FloatArray) -> int:
    """How many effector rows :func:`_primary` fills."""
    count = 0
    for e in range(sqrt_weights.shape[0]):
        if sqrt_weights[e] != 0.0:
            count += 6 if follow[e] else 3
    return count


@_jit_leaf
def _errors(q: FloatArray, frame: Frame, geometry: Geometry, base: FloatArray, kin: Kinematics,
            distance: FloatArray, rotation: FloatArray) -> None:
    """``_Frame.errors``: each effector's distance and rotation error (unweighted)."""
    targets, orientations, follow = frame[0], frame[1], frame[2]
    effector_joint = geometry[8]
    _forward(q, geometry, kin)
    tips = kin[3]
    for e in range(effector_joint.shape[0]):
        cx, cy, cz = tips[e, 0], tips[e, 1], tips[e, 2]
        total = 0.0
        for a in range(3):
            d = base[a, 0] * cx + base[a, 1] * cy + base[a, 2] * cz + base[a, 3] - targets[e, a]
            total += d * d
        distance[e] = np.sqrt(total)
        rotation[e] = 0.0
        if follow[e]:
            vx, vy, vz = _rotation_error(kin, effector_joint[e], orientations[e])
            rotation[e] = np.sqrt(vx * vx + vy * vy + vz * vz)


@_jit_leaf
def _reached(distance: FloatArray, rotation: FloatArray, sqrt_weights: FloatArray, tolerance: float,
             orientation_tolerance: float) -> bool:
    """``_Frame.reached`` from :func:`_errors`' output: every effector of positive weight within its
    tolerances."""
    for e in range(sqrt_weights.shape[0]):
        if sqrt_weights[e] > 0.0 and not (distance[e] <= tolerance and rotation[e] <= orientation_tolerance):
            return False
    return True


@_jit_leaf
def _cholesky_solve(matrix: FloatArray, rhs: FloatArray, size: int) -> bool:
    """Solve ``matrix[:size, :size] x = rhs[:size]`` by Cholesky in place (the lower triangle
    becomes ``L``, the answer is left in ``rhs``); False, with ``rhs`` untouched, if the matrix is
    not positive definite."""
    for j in range(size):
        total = matrix[j, j]
        for k in range(j):
            total -= matrix[j, k] * matrix[j, k]
        if not total > 0.0:
            return False
        pivot = np.sqrt(total)
        matrix[j, j] = pivot
        i = j + 1
        while i + 4 <= size:  # four rows at a time (four independent sums, each in its own order)
            t0, t1, t2, t3 = matrix[i, j], matrix[i + 1, j], matrix[i + 2, j], matrix[i + 3, j]
            for k in range(j):
                c = matrix[j, k]
                t0 -= matrix[i, k] * c
                t1 -= matrix[i + 1, k] * c
                t2 -= matrix[i + 2, k] * c
                t3 -= matrix[i + 3, k] * c
            matrix[i, j], matrix[i + 1, j], matrix[i + 2, j], matrix[i + 3, j] = (t0 / pivot, t1 / pivot, t2 / pivot,
                                                                                  t3 / pivot)
            i += 4
        while i < size:
            total = matrix[i, j]
            for k in range(j):
                total -= matrix[i, k] * matrix[j, k]
            matrix[i, j] = total / pivot
            i += 1
    for i in range(size):  # L y = b
        total = rhs[i]
        for k in range(i):
            total -= matrix[i, k] * rhs[k]
        rhs[i] = total / matrix[i, i]
    for i in range(size - 1, -1, -1):  # L^T x = y
        total = rhs[i]
        for k in range(i + 1, size):
            total -= matrix[k, i] * rhs[k]
        rhs[i] = total / matrix[i, i]
    return True


@_jit_inline
def _active_set(q: FloatArray, preferred: FloatArray, rows: FloatArray, jac: FloatArray, count: int,
                lower: FloatArray, upper: FloatArray, scratch: Scratch) -> int:
    """The gradient of the stacked rows, and the variables free to move: not on a limit with the
    gradient pushing outward. Returns how many are free; their indices go to ``scratch``'s free
    list, their negated gradient to its right-hand side and their Jacobian columns to its rows of
    columns (contiguous for the normal matrix's sums), the step is zeroed."""
    pull, step, free, rhs, columns = scratch[0], scratch[1], scratch[3], scratch[6], scratch[9]
    size = 0
    for k in range(q.shape[0]):
        g = 0.0
        for r in range(count):
            g += jac[r, k] * rows[r]
        g += pull[k] * (pull[k] * (q[k] - preferred[k]))  # the pull row's share
        step[k] = 0.0
        if not ((q[k] <= lower[k] + LIMIT_EPS and g > 0) or (q[k] >= upper[k] - LIMIT_EPS and g < 0)):
            free[size] = k
            rhs[size] = -g
            for r in range(count):
                columns[size, r] = jac[r, k]
            size += 1
    return size


@_jit_inline
def _dual_step(size: int, count: int, damping: float, scratch: Scratch) -> None:
    """The damped step on the free variables in the dual (Woodbury) form, where the effector and pole
    rows are fewer than the free variables: the pull rows are diagonal, so with ``J`` the ``count``
    rows' free columns and ``D`` the pull's squares plus the damping (Marquardt-scaled, as the
    primal form's), ``x = D^-1 b - D^-1 J^T (I + J D^-1 J^T)^-1 J D^-1 b``: a ``count x count``
    Cholesky instead of ``size x size`` (the chain kernel's form, ``kernel._step``)."""
    pull, step, small_rhs, free, normal, spare, rhs = (scratch[0], scratch[1], scratch[2], scratch[3], scratch[4],
                                                       scratch[5], scratch[6])
    columns = scratch[9]
    largest = 0.0
    for a in range(size):
        d = 0.0
        for r in range(count):
            d += columns[a, r] * columns[a, r]
        ka = free[a]
        d += pull[ka] * pull[ka]
        spare[a, 0] = d
        largest = max(largest, d)
    floor = SCALE_FLOOR * max(largest, 1e-300)
    for a in range(size):
        ka = free[a]
        spare[a, 0] = pull[ka] * pull[ka] + damping * max(spare[a, 0], floor)  # D
        rhs[a] /= spare[a, 0]  # D^-1 b
    for r in range(count):
        total = 0.0
        for a in range(size):
            total += columns[a, r] * rhs[a]
        small_rhs[r] = total  # J D^-1 b
        for c in range(r + 1):
            total = 0.0
            for a in range(size):
                total += columns[a, r] * columns[a, c] / spare[a, 0]
            if r == c:
                total += 1.0
            normal[r, c] = total
            normal[c, r] = total
    if not _cholesky_solve(normal, small_rhs, count):  # I + J D^-1 J^T is at least I: never expected
        _solve_small(normal, small_rhs, count)
    for a in range(size):
        total = 0.0
        for r in range(count):
            total += columns[a, r] * small_rhs[r]
        step[free[a]] = rhs[a] - total / spare[a, 0]


@_jit_inline
def _step(q: FloatArray, preferred: FloatArray, rows: FloatArray, jac: FloatArray, count: int, damping: float,
          lower: FloatArray, upper: FloatArray, scratch: Scratch) -> None:
    """``_Frame._stage``'s step into ``scratch``'s step: the damped Gauss-Newton step on the free
    variables (active set, Marquardt scaling with a floor), scaled down to :data:`MAX_STEP`."""
    pull, step, free, normal, spare, rhs = scratch[0], scratch[1], scratch[3], scratch[4], scratch[5], scratch[6]
    columns = scratch[9]
    m = q.shape[0]
    # (Counted in a function of its own: a count that starts as a literal 0 here made numba compile
    # the solves below a second time, for a size of literally 0.)
    size = _active_set(q, preferred, rows, jac, count, lower, upper, scratch)
    if 0 < count < size:
        _dual_step(size, count, damping, scratch)
    elif size > 0:
        largest = 0.0
        for a in range(size):
            # Each entry the sum over jac[r, ka] * jac[r, kb] in row order; four entries at a time
            # (four independent sums: each addition waits on the one before it in its own sum).
            b = 0
            while b + 4 <= a:
                t0, t1, t2, t3 = 0.0, 0.0, 0.0, 0.0
                for r in range(count):
                    c = columns[a, r]
                    t0 += c * columns[b, r]
                    t1 += c * columns[b + 1, r]
                    t2 += c * columns[b + 2, r]
                    t3 += c * columns[b + 3, r]
                normal[a, b], normal[a, b + 1], normal[a, b + 2], normal[a, b + 3] = t0, t1, t2, t3
                normal[b, a], normal[b + 1, a], normal[b + 2, a], normal[b + 3, a] = t0, t1, t2, t3
                b += 4
            while b <= a:
                total = 0.0
                for r in range(count):
                    total += columns[a, r] * columns[b, r]
                if a == b:
                    ka = free[a]
                    total += pull[ka] * pull[ka]
                    largest = max(largest, total)
                normal[a, b] = total
                normal[b, a] = total
                b += 1
        floor = SCALE_FLOOR * max(largest, 1e-300)
        for a in range(size):
            normal[a, a] += damping * max(normal[a, a], floor)
            spare[a, a] = normal[a, a]  # the Cholesky overwrites the diagonal and below, not above
        if not _cholesky_solve(normal, rhs, size):  # rounding broke definiteness: LU, as numpy's solve
            for a in range(size):
                for b in range(a + 1, size):
                    spare[a, b] = normal[a, b]
                    spare[b, a] = normal[a, b]
            _solve_small(spare, rhs, size)
        for a in range(size):
            step[free[a]] = rhs[a]
    largest = 0.0
    for k in range(m):
        largest = max(largest, abs(step[k]))
    if largest > MAX_STEP:
        scale = MAX_STEP / largest
        for k in range(m):
            step[k] *= scale


@_jit_inline
def _pull_cost(q: FloatArray, preferred: FloatArray, pull: FloatArray) -> float:
    """``0.5 |pull * (q - p)|^2``, the comfort rows' share of the cost."""
    total = 0.0
    for k in range(q.shape[0]):
        value = pull[k] * (q[k] - preferred[k])
        total += value * value
    return 0.5 * total


@_jit_leaf
def _stage(q: FloatArray, mu: float, frame: Frame, preferred: FloatArray, pull_base: FloatArray,
           max_iterations: int, initial_damping: float, plan: Plan, kin: Kinematics, scratch: Scratch,
           quiet: float, step_quiet: float) -> int:
    """``_Frame._stage``: Levenberg-Marquardt on the stacked rows at pull ``mu``, ``q`` in place,
    until a step gains less than ``quiet`` of the cost or moves no angle more than ``step_quiet``;
    returns the iterations used."""
    lower, upper, geometry, effectors, bends = plan
    pull, step, trial, rows, jac = scratch[0], scratch[1], scratch[2], scratch[7], scratch[8]
    follow, orientation_scale, has_pole = frame[2], frame[3], frame[5]
    m = q.shape[0]
    root = np.sqrt(mu)
    for k in range(m):
        pull[k] = root * pull_base[k]
    primary = _row_count(follow, effectors[1])
    pole_scale = root * frame[6]
    count = primary + _pole_row_count(has_pole, bends[1])  # the effectors' rows, then the poles'
    current = 0  # rows[current], jac[current] hold q's; the other slot receives the trial's
    cost = _primary(q, frame, geometry, effectors, kin, rows[current]) + _pull_cost(q, preferred, pull)
    _jacobian(follow, orientation_scale, effectors, kin, jac[current])
    if count > primary:
        cost += _pole_rows(frame, bends, effectors, kin, rows[current], jac[current], primary, pole_scale)
    damping = initial_damping
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        _step(q, preferred, rows[current], jac[current], count, damping, lower, upper, scratch)
        for k in range(m):
            trial[k] = min(max(q[k] + step[k], lower[k]), upper[k])
        other = 1 - current
        trial_cost = _primary(trial, frame, geometry, effectors, kin, rows[other]) + _pull_cost(trial, preferred, pull)
        if count > primary:
            trial_cost += _pole_rows(frame, bends, effectors, kin, rows[other], jac[other], primary, pole_scale)
        if trial_cost < cost:
            # numpy's _rows computes the Jacobian of every trial; only a kept one needs it.
            _jacobian(follow, orientation_scale, effectors, kin, jac[other])
            gain, moved = cost - trial_cost, 0.0
            for k in range(m):
                moved = max(moved, abs(trial[k] - q[k]))
                q[k] = trial[k]
            current, cost = other, trial_cost
            damping = max(damping / DAMPING_DOWN, DAMPING_MIN)
            if gain <= quiet * cost or moved <= step_quiet:
                break
        else:
            damping *= DAMPING_UP
            if damping > DAMPING_MAX:
                break
    return iterations


@_jit_leaf
def _attempt(q: FloatArray, start: FloatArray, frame: Frame, preferred: FloatArray, pull_base: FloatArray,
             max_iterations: int, initial_damping: float, plan: Plan, kin: Kinematics, scratch: Scratch,
             first_stage: int) -> int:
    """``_Frame.attempt``: the stages from ``first_stage`` on, from ``start`` (clamped) into ``q``;
    returns the iterations."""
    lower, upper = plan[0], plan[1]
    for k in range(q.shape[0]):
        q[k] = min(max(start[k], lower[k]), upper[k])
    total = 0
    for i in range(first_stage, len(STAGES)):
        settle = i >= len(STAGES) - SETTLE_STAGES  # the last stages converge; the others choose the branch
        total += _stage(q, STAGES[i], frame, preferred, pull_base, max_iterations, initial_damping, plan, kin,
                        scratch, STAGE_QUIET if settle else EARLY_QUIET, STEP_QUIET if settle else EARLY_STEP)
    return total


@_jit_leaf
def _anchored_attempt(q: FloatArray, start: FloatArray, frame: Frame, anchor: FloatArray, pull_base: FloatArray,
                      max_iterations: int, initial_damping: float, plan: Plan, kin: Kinematics,
                      scratch: Scratch) -> int:
    """``_Frame.anchored_attempt``: the stages of :data:`.tree_solver.FIRST_STAGES` from ``start``
    (clamped) into ``q``, each pulling toward the pose it starts from (copied into ``anchor``);
    returns the iterations."""
    lower, upper = plan[0], plan[1]
    for k in range(q.shape[0]):
        q[k] = min(max(start[k], lower[k]), upper[k])
    total = 0
    for i in range(len(FIRST_STAGES)):
        settle = i >= len(FIRST_STAGES) - SETTLE_STAGES
        _copy(q, anchor)
        total += _stage(q, FIRST_STAGES[i], frame, anchor, pull_base, max_iterations, initial_damping, plan, kin,
                        scratch, STAGE_QUIET if settle else EARLY_QUIET, STEP_QUIET if settle else EARLY_STEP)
    return total


@_jit_leaf
def _bent_start(preferred: FloatArray, frame: Frame, plan: Plan, kin: Kinematics, far_off: float,
                distance: FloatArray, rotation: FloatArray, out: FloatArray) -> None:
    """``_Frame.bent_start`` into ``out``: the preferred pose, each angle on a limit turned into its
    range by up to :data:`.tree_solver.BEND` (at most :data:`.tree_solver.BEND_ROOM` of the range),
    times ``min(1, d / far_off)``, ``d`` the largest distance of an effector it moves (of positive
    weight) from its target; ``far_off`` is the reach times :data:`.tree_solver.BEND_REACH`."""
    lower, upper, geometry, effectors = plan[0], plan[1], plan[2], plan[3]
    sqrt_weights, moves = effectors[1], effectors[2]
    _errors(preferred, frame, geometry, effectors[4], kin, distance, rotation)
    for k in range(preferred.shape[0]):
        share = 0.0  # the farthest effector it moves, in far_off, at most 1
        for e in range(sqrt_weights.shape[0]):
            if sqrt_weights[e] > 0.0 and moves[e, k]:
                share = max(share, min(distance[e] / far_off, 1.0))
        p = preferred[k]
        bend = share * min(BEND, BEND_ROOM * (upper[k] - lower[k]))
        at_lower = p <= lower[k] + LIMIT_EPS
        at_upper = p >= upper[k] - LIMIT_EPS and not at_lower
        value = p + (bend if at_lower else 0.0) - (bend if at_upper else 0.0)
        out[k] = min(max(value, lower[k]), upper[k])


@_jit_leaf
def _copy(source: FloatArray, out: FloatArray) -> None:
    """``out[:] = source`` (a loop: numba's slice assignment compiles its error messages' string
    formatting, seconds of compile time)."""
    for k in range(source.shape[0]):
        out[k] = source[k]


@_jit
def _kinematics(m: int, n: int, count_e: int) -> Kinematics:
    return (np.empty((n, 3)), np.empty((n, 3, 3)), np.zeros((m, 3)), np.empty((count_e, 3)), np.empty((3, 3)),
            np.empty((n, 3, 3)), np.empty((m, 3)))


@_jit
def _scratch(m: int, count_e: int, pole_rows: int) -> Scratch:
    """The LM's scratch: 0 pull, 1 step, 2 trial, 3 the free variables, 4 the normal matrix, 5 its
    copy, 6 the right-hand side, 7 rows and 8 their Jacobian (two slots each: the current pose's and
    the trial's; the effectors' rows, then ``pole_rows``), 9 the free variables' Jacobian columns
    (``(m, rows)``, see :func:`_active_set`)."""
    rows = 6 * count_e + pole_rows
    return (np.empty(m), np.empty(m), np.empty(m), np.empty(m, dtype=np.int64), np.empty((m, m)), np.empty((m, m)),
            np.empty(m), np.zeros((2, rows)), np.zeros((2, rows, m)), np.empty((m, rows)))


@_jit
def solve_frames(plan: Plan, targets: FloatArray, orientations: FloatArray, follow: AnyArray, preferred: FloatArray,
                 pull_base: FloatArray, seeds: FloatArray, settings: tuple[float, float, float, int, float, float],
                 poles: FloatArray, has_pole: AnyArray, pole_weight: float,
                 out_q: FloatArray, out_errors: FloatArray, out_orientation_errors: FloatArray,
                 out_iterations: AnyArray) -> None:
    """``tree_solver._solve_numpy`` over ``F`` frames.

    Args:
        plan: The tree (:func:`.compiled.tree_plan_of`).
        targets: ``(F, E, 3)`` world target positions.
        orientations: ``(F, E, 3, 3)`` tree-space target rotations (read where ``follow``).
        follow: ``(E,)`` bool, the effector follows its target's orientation.
        preferred: ``(m,)`` the preferred pose, inside the limits.
        pull_base: ``(m,)`` ``reach * sqrt(comfort weight)`` per variable.
        seeds: ``(R, m)`` the restarts' start poses.
        settings: ``(tolerance, orientation tolerance, orientation weight * reach, max iterations
            per stage, initial damping, reach)`` (``Tree.reach``).
        poles: ``(F, E, 3)`` world pole positions (read where ``has_pole``).
        has_pole: ``(E,)`` bool, the effector's chain bends toward its pole.
        pole_weight: the poles' weight (``pole_weight * POLE_GAIN``).
        out_q, out_errors, out_orientation_errors, out_iterations: ``(F, m)``, ``(F, E)``,
            ``(F, E)``, ``(F,)`` int64: filled.
    """
    tolerance, orientation_tolerance, orientation_scale, max_iterations, initial_damping, reach = settings
    geometry, effectors, bends = plan[2], plan[3], plan[4]
    base, sqrt_weights = effectors[4], effectors[1]
    m, n, count_e = preferred.shape[0], geometry[1].shape[0], sqrt_weights.shape[0]
    kin, scratch = _kinematics(m, n, count_e), _scratch(m, count_e, _pole_row_count(has_pole, bends[1]))
    q, best, rows = np.empty(m), np.empty(m), np.empty(6 * count_e)
    start, anchor = np.empty(m), np.empty(m)
    distance, rotation = np.empty(count_e), np.empty(count_e)
    far_off = BEND_REACH * reach  # as _Frame.bent_start
    poled = False
    for e in range(has_pole.shape[0]):
        poled = poled or has_pole[e]
    for f in range(targets.shape[0]):
        frame = (targets[f], orientations[f], follow, orientation_scale, poles[f], has_pole, pole_weight)
        if poled:  # (tree_solver: a tree with a pole) the stages pulling toward the preferred pose
            iterations = _attempt(best, preferred, frame, preferred, pull_base, max_iterations, initial_damping, plan,
                                  kin, scratch, 0)
        else:
            _bent_start(preferred, frame, plan, kin, far_off, distance, rotation, start)
            iterations = _anchored_attempt(best, start, frame, anchor, pull_base, max_iterations, initial_damping,
                                           plan, kin, scratch)
        _errors(best, frame, geometry, base, kin, distance, rotation)
        reached = _reached(distance, rotation, sqrt_weights, tolerance, orientation_tolerance)
        if not reached and not poled:  # the second attempt: the stages pulling toward the preferred pose
            best_cost = _primary(best, frame, geometry, effectors, kin, rows)  # _Frame.primary_cost
            iterations += _attempt(q, preferred, frame, preferred, pull_base, max_iterations, initial_damping, plan,
                                   kin, scratch, 0)
            cost = _primary(q, frame, geometry, effectors, kin, rows)
            _errors(q, frame, geometry, base, kin, distance, rotation)
            reached = _reached(distance, rotation, sqrt_weights, tolerance, orientation_tolerance)
            if reached or cost < (1.0 - RESTART_GAIN) * best_cost:
                _copy(q, best)
                best_cost = cost
        if not reached:
            fruitless = 0
            for r in range(seeds.shape[0]):
                iterations += _attempt(q, seeds[r], frame, preferred, pull_base, max_iterations, initial_damping,
                                       plan, kin, scratch, RESTART_STAGE)
                cost = _primary(q, frame, geometry, effectors, kin, rows)
                _errors(q, frame, geometry, base, kin, distance, rotation)
                if _reached(distance, rotation, sqrt_weights, tolerance, orientation_tolerance):
                    _copy(q, best)
                    break
                gained = cost < (1.0 - RESTART_GAIN) * best_cost  # only a clear gain replaces it
                fruitless = 0 if gained else fruitless + 1
                if gained:
                    _copy(q, best)
                    best_cost = cost
                if fruitless >= FRUITLESS_TREE_RESTARTS:
                    break
        _copy(best, out_q[f])
        _errors(best, frame, geometry, base, kin, out_errors[f], out_orientation_errors[f])
        out_iterations[f] = iterations
