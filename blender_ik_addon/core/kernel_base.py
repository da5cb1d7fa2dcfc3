"""What both compiled kernels (:mod:`.kernel`, the single chain's, and :mod:`.tree_kernel`, the
tree's) are built from: numba's three ways of compiling a function here, and the small numeric
pieces both call (a frame turned about one of its axes, a rotation's axis-angle vector, a small
linear solve by Gaussian elimination).

Imported only by the kernels (numba is there by then). numba caches each kernel by its own file,
so :func:`.compiled.forget_stale_kernel_cache` counts this file among each kernel's sources: a
change here compiles both again.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .types import FloatArray

__all__ = ["jit", "jit_inline", "jit_leaf", "rotation_vector", "solve_small", "turn"]


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
