"""What both compiled kernels (:mod:`.kernel`, the single chain's, and :mod:`.tree_kernel`, the
tree's) are built from: numba's three ways of compiling a function here, the kinematics (one
forward pass over joints with parents, :func:`forward_joints`: a chain is the tree whose every
joint hangs from the one before, and one Jacobian column, :func:`position_column`), and the small
numeric pieces both call (a frame turned about one of its axes, a rotation's axis-angle vector, a
small linear solve by Gaussian elimination).

Imported only by the kernels (numba is there by then). numba caches each kernel by its own file,
so :func:`.compiled.forget_stale_kernel_cache` counts this file among each kernel's sources: a
change here compiles both again.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .types import AnyArray, FloatArray

__all__ = ["forward_joints", "jit", "jit_inline", "jit_leaf", "position_column", "rotation_vector",
           "solve_small", "turn"]


def can_skip_runtime() -> bool:
    """Whether this numba has the option to compile a function without its runtime (``_nrt``, see
    :data:`jit_leaf`)."""
    try:
        from numba.core.cpu import CPUTargetOptions
    except ImportError:
        return False
    return hasattr(CPUTargetOptions, "_nrt")


# The entry points and the workspaces allocate arrays: numba's runtime (NRT) counts their references.
jit = njit(cache=True, nogil=True, fastmath=False)
# Everything else only reads and writes arrays its caller holds (the plan, the workspaces, the
# inputs and outputs), and is compiled without the runtime. With it, every array a function is
# passed (each array of a tuple: the chain kernel's plan and workspaces hold ~60) is reference
# counted on entry and again on exit, an atomic operation each, and LLVM's pruning of those pairs
# gives up in functions with loops: ~40 % of a chain solve's time (a 3-bone arm with comfort, 13
# iterations: thousands of atomic operations). numba refuses to compile such a function if it
# allocates or returns a new array, so nothing can leak, and what it is passed stays alive in its
# caller. A numba without the option compiles them with the runtime, as before: the same answers,
# slower. (numba's type stubs do not list the option.)
jit_leaf = jit
if can_skip_runtime():
    jit_leaf = njit(cache=True, nogil=True, fastmath=False, _nrt=False)  # type: ignore[call-overload]
# For small functions called every iteration with tuples of arrays: numba passes a tuple of arrays
# by value (each array's fields), so a call that hands on many arrays costs more than the few
# values it computes. Inlined (into a function compiled without the runtime, and they allocate
# nothing), it costs nothing.
jit_inline = njit(cache=True, nogil=True, fastmath=False, inline="always")


@jit_inline
def turn(frame: FloatArray, axis: int, angle: float) -> None:
    """``frame = frame @ R_axis(angle)`` in place (right-handed, active)."""
    c, s = np.cos(angle), np.sin(angle)
    i, k = (axis + 1) % 3, (axis + 2) % 3
    for r in range(3):
        a, b = frame[r, i], frame[r, k]
        frame[r, i] = c * a + s * b
        frame[r, k] = c * b - s * a


@jit_inline
def forward_joints(q: FloatArray, parents: AnyArray, rest_rot: FloatArray, rest_pos: FloatArray,
                   rest_rotates: AnyArray, slot_count: AnyArray, slot_axis: AnyArray, slot_dof: AnyArray,
                   slot_fixed: FloatArray, dof_joint: AnyArray, angle_count: int, frame: FloatArray,
                   origins: FloatArray, before: FloatArray, rotations: FloatArray, axes: FloatArray,
                   dof_origins: FloatArray) -> float:
    """Forward kinematics of both kernels (as :func:`.fk.forward` and :func:`.tree.tree_forward`):
    every joint's origin (``origins[j]``), its frame after its rest transform (``before[j]``) and
    after it turns (``rotations[j]``), in the space of the root's parent; each variable's axis
    (``axes[k]``) and the origin it turns about (``dof_origins[k]``). Returns the last joint's frame
    scale (1.0 but for a chain that stretches).

    A joint hangs from ``parents[j]`` (``-1``: the root; a parent comes before its children): its
    origin is the parent's plus the parent's frame times its rest offset (times the parent's frame
    scale), its frame the parent's times its rest rotation (where ``rest_rotates``; else the parent's
    as it is). Its slots turn it in application order, the last applied outermost, so an angle turns
    about an axis of the frame after the slots applied after it; a slot without a variable
    (``slot_dof`` -1) turns by its locked value. A chain is the tree with ``parents[j] = j - 1``.

    Length factors (the variables from ``angle_count`` on, :mod:`.stretch`; a chain only, trees
    refuse stretch) come in joint order: factor ``k`` scales what hangs below joint ``dof_joint[k]``
    and turns nothing (a zero axis). The running scale is the parent's because in a chain the
    parent is the joint before. ``frame`` is a ``(3, 3)`` scratch that is left holding the last
    joint's turned frame (the chain kernel's tip frame).

    Inlined into each kernel's caller (numba passes arrays by their fields: a call with 17 arrays
    would cost more than a small chain's whole pass).
    """
    m = axes.shape[0]
    sigma = 1.0  # the frame scale of the joint before (a chain that stretches; else 1.0, exact)
    factor = angle_count  # the next length factor's variable
    for j in range(rest_pos.shape[0]):
        p = parents[j]
        rx, ry, rz = sigma * rest_pos[j, 0], sigma * rest_pos[j, 1], sigma * rest_pos[j, 2]
        if p < 0:
            ox, oy, oz = rx, ry, rz
            for a in range(3):
                for b in range(3):
                    frame[a, b] = rest_rot[j, a, b] if rest_rotates[j] else (1.0 if a == b else 0.0)
        else:
            ox = origins[p, 0] + (rotations[p, 0, 0] * rx + rotations[p, 0, 1] * ry + rotations[p, 0, 2] * rz)
            oy = origins[p, 1] + (rotations[p, 1, 0] * rx + rotations[p, 1, 1] * ry + rotations[p, 1, 2] * rz)
            oz = origins[p, 2] + (rotations[p, 2, 0] * rx + rotations[p, 2, 1] * ry + rotations[p, 2, 2] * rz)
            if rest_rotates[j]:
                for a in range(3):
                    for b in range(3):
                        frame[a, b] = (rotations[p, a, 0] * rest_rot[j, 0, b] + rotations[p, a, 1] * rest_rot[j, 1, b]
                                       + rotations[p, a, 2] * rest_rot[j, 2, b])
            else:
                for a in range(3):
                    for b in range(3):
                        frame[a, b] = rotations[p, a, b]
        origins[j, 0], origins[j, 1], origins[j, 2] = ox, oy, oz
        for a in range(3):
            for b in range(3):
                before[j, a, b] = frame[a, b]
        for s in range(slot_count[j] - 1, -1, -1):  # outermost (applied last) first
            axis, dof = slot_axis[j, s], slot_dof[j, s]
            if dof >= 0:
                axes[dof, 0], axes[dof, 1], axes[dof, 2] = frame[0, axis], frame[1, axis], frame[2, axis]
                dof_origins[dof, 0], dof_origins[dof, 1], dof_origins[dof, 2] = ox, oy, oz
                turn(frame, axis, q[dof])
            else:
                turn(frame, axis, slot_fixed[j, s])
        for a in range(3):
            for b in range(3):
                rotations[j, a, b] = frame[a, b]
        if factor < m and dof_joint[factor] == j:  # a length factor: scales what follows, turns nothing
            sigma = float(q[factor])
            axes[factor, 0], axes[factor, 1], axes[factor, 2] = 0.0, 0.0, 0.0
            dof_origins[factor, 0], dof_origins[factor, 1], dof_origins[factor, 2] = ox, oy, oz
            factor += 1
    return sigma


@jit_inline
def position_column(base: FloatArray, ax: float, ay: float, az: float, lx: float, ly: float,
                    lz: float) -> tuple[float, float, float]:
    """A Jacobian column of a point: ``base @ (axis x lever)``, the world motion of a point at
    ``lever`` from the origin an angle turns about, per radian (both kernels' position rows)."""
    col0, col1, col2 = ay * lz - az * ly, az * lx - ax * lz, ax * ly - ay * lx
    return (base[0, 0] * col0 + base[0, 1] * col1 + base[0, 2] * col2,
            base[1, 0] * col0 + base[1, 1] * col1 + base[1, 2] * col2,
            base[2, 0] * col0 + base[2, 1] * col1 + base[2, 2] * col2)


@jit_leaf
def rotation_vector(m: FloatArray) -> tuple[float, float, float]:
    """The axis-angle vector of rotation ``m``, as ``rotations.rotation_vector``: Shepperd's
    quaternion (largest pivot, first on ties), ``w >= 0``, then ``axis * angle``."""
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
    return x * scale, y * scale, z * scale


@jit_leaf
def solve_small(matrix: FloatArray, rhs: FloatArray, size: int) -> None:
    """Solve ``matrix[:size, :size] x = rhs[:size]`` in place (Gaussian elimination, partial
    pivoting, as LAPACK's LU); the answer is left in ``rhs``."""
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
