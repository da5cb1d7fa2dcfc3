"""Rotation helpers, batched over any leading axes.

Conventions (the same as Blender's ``mathutils``):

* Euler order ``"XYZ"`` means the rotation about X is applied first, then Y, then Z, so the
  matrix is ``Rz(z) @ Ry(y) @ Rx(x)``. Angles are stored as ``(x, y, z)`` whatever the order.
* Quaternions are ``(w, x, y, z)``.
* Matrices act on column vectors.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import ArrayLike

from .types import FloatArray as FloatArray  # re-exported: older imports use it from here

EULER_ORDERS: Final = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")
AXIS_INDEX: Final = {"X": 0, "Y": 1, "Z": 2}


def order_indices(order: str) -> tuple[int, int, int]:
    """Axis indices in application order: ``"ZXY"`` -> ``(2, 0, 1)`` (Z applied first)."""
    if order not in EULER_ORDERS:
        raise ValueError(f"unknown Euler order {order!r}; expected one of {', '.join(EULER_ORDERS)}")
    return (AXIS_INDEX[order[0]], AXIS_INDEX[order[1]], AXIS_INDEX[order[2]])


# Where cos/sin go in each elementary rotation, as flat indices into a 3x3 matrix:
# Rx = [[1,0,0],[0,c,-s],[0,s,c]], Ry = [[c,0,s],[0,1,0],[-s,0,c]], Rz = [[c,-s,0],[s,c,0],[0,0,1]].
_ONE = np.array([0, 4, 8])  # R_axis[axis, axis] = 1
_COS = np.array([[4, 8], [0, 8], [0, 4]])
_SIN_POS = np.array([7, 2, 3])
_SIN_NEG = np.array([5, 6, 1])


def axis_rotations(angles: ArrayLike) -> FloatArray:
    """Elementary rotations about X, Y and Z for each angle triple.

    Args:
        angles: ``(..., 3)`` angles in radians, ``(x, y, z)``.

    Returns:
        ``(..., 3, 3, 3)``: ``[..., 0, :, :]`` is ``Rx(x)``, then ``Ry(y)``, then ``Rz(z)``.
    """
    a = np.asarray(angles, dtype=np.float64)
    if a.shape == (1, 3):  # one frame (the live pass): the same values, placed without numpy's indexing
        (cx, cy, cz), (sx, sy, sz) = np.cos(a)[0].tolist(), np.sin(a)[0].tolist()
        return np.array([[[[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]],
                          [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]],
                          [[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]]]])
    c, s = np.cos(a), np.sin(a)
    flat = np.zeros((*a.shape, 9))
    axis = np.arange(3)
    flat[..., axis, _ONE] = 1.0
    flat[..., axis, _COS[:, 0]] = c
    flat[..., axis, _COS[:, 1]] = c
    flat[..., axis, _SIN_POS] = s
    flat[..., axis, _SIN_NEG] = -s
    return flat.reshape(*a.shape, 3, 3)


def single_axis_rotations(angles: ArrayLike, axes: ArrayLike) -> FloatArray:
    """Rotations about one coordinate axis each: ``(F, P)`` angles, ``(P,)`` axis indices ->
    ``(F, P, 3, 3)``."""
    a = np.asarray(angles, dtype=np.float64)
    axis = np.asarray(axes, dtype=np.intp)
    c, s = np.cos(a), np.sin(a)
    flat = np.zeros((*a.shape, 9))
    pair = np.arange(axis.size)
    flat[:, pair, _ONE[axis]] = 1.0
    flat[:, pair, _COS[axis, 0]] = c
    flat[:, pair, _COS[axis, 1]] = c
    flat[:, pair, _SIN_POS[axis]] = s
    flat[:, pair, _SIN_NEG[axis]] = -s
    return flat.reshape(*a.shape, 3, 3)


def euler_to_matrix(angles: ArrayLike, order: str = "XYZ") -> FloatArray:
    """Rotation matrices ``(..., 3, 3)`` from Euler angles ``(..., 3)`` in the given order."""
    first, second, third = order_indices(order)
    rot = axis_rotations(angles)
    return np.asarray(rot[..., third, :, :] @ rot[..., second, :, :] @ rot[..., first, :, :])


def matrix_to_euler(matrix: ArrayLike, order: str = "XYZ") -> FloatArray:
    """Euler angles ``(..., 3)`` (``x, y, z``) of rotation matrices ``(..., 3, 3)``.

    The middle angle is in ``[-pi/2, pi/2]``; at gimbal lock the first-applied angle is set to 0.
    """
    m = np.asarray(matrix, dtype=np.float64)
    i, j, k = order_indices(order)
    # For R = R_k(c) R_j(b) R_i(a) with (i, j, k) an even permutation, R[k, i] = -sin(b);
    # odd permutations flip the sign. This is the classic Shoemake decomposition.
    parity = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    sin_b = np.clip(-parity * m[..., k, i], -1.0, 1.0)
    b = np.arcsin(sin_b)
    cos_b = np.sqrt(np.maximum(0.0, 1.0 - sin_b * sin_b))
    regular = cos_b > 1e-9
    a = np.where(regular, np.arctan2(parity * m[..., k, j], m[..., k, k]), 0.0)
    c = np.where(
        regular,
        np.arctan2(parity * m[..., j, i], m[..., i, i]),
        np.arctan2(-parity * m[..., i, j], m[..., j, j]),
    )
    out = np.empty((*m.shape[:-2], 3))
    out[..., i] = a
    out[..., j] = b
    out[..., k] = c
    return out


def quaternion_to_matrix(quaternion: ArrayLike) -> FloatArray:
    """Rotation matrices ``(..., 3, 3)`` from quaternions ``(..., 4)`` as ``(w, x, y, z)``.

    The quaternion is normalised first, as Blender does when it evaluates a pose.
    """
    q = np.asarray(quaternion, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    out = np.empty((*q.shape[:-1], 3, 3))
    out[..., 0, 0] = 1 - 2 * (y * y + z * z)
    out[..., 0, 1] = 2 * (x * y - w * z)
    out[..., 0, 2] = 2 * (x * z + w * y)
    out[..., 1, 0] = 2 * (x * y + w * z)
    out[..., 1, 1] = 1 - 2 * (x * x + z * z)
    out[..., 1, 2] = 2 * (y * z - w * x)
    out[..., 2, 0] = 2 * (x * z - w * y)
    out[..., 2, 1] = 2 * (y * z + w * x)
    out[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return out


def matrix_to_quaternion(matrix: ArrayLike) -> FloatArray:
    """Unit quaternions ``(..., 4)`` ``(w, x, y, z)`` with ``w >= 0`` from rotation matrices."""
    m = np.asarray(matrix, dtype=np.float64)
    xx, yy, zz = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    zy, yz, xz, zx, yx, xy = m[..., 2, 1], m[..., 1, 2], m[..., 0, 2], m[..., 2, 0], m[..., 1, 0], m[..., 0, 1]
    # Four candidate formulas (Shepperd's method); per element, use the one with the largest
    # pivot (the first entry of each row below, up to scale) for numerical stability.
    candidates = np.stack(
        [
            np.stack([1 + xx + yy + zz, zy - yz, xz - zx, yx - xy], -1),
            np.stack([zy - yz, 1 + xx - yy - zz, xy + yx, xz + zx], -1),
            np.stack([xz - zx, xy + yx, 1 - xx + yy - zz, yz + zy], -1),
            np.stack([yx - xy, xz + zx, yz + zy, 1 - xx - yy + zz], -1),
        ],
        axis=-2,
    )
    pivots = np.stack([1 + xx + yy + zz, 1 + xx - yy - zz, 1 - xx + yy - zz, 1 - xx - yy + zz], -1)
    best = np.argmax(pivots, axis=-1)
    q = np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def rotation_vector(matrix: ArrayLike) -> FloatArray:
    """Axis-angle vectors ``(..., 3)`` (axis times angle in radians, angle in ``[0, pi]``)."""
    q = matrix_to_quaternion(matrix)
    vec = q[..., 1:]
    sin_half = np.linalg.norm(vec, axis=-1)
    angle = 2.0 * np.arctan2(sin_half, q[..., 0])
    # angle / sin(angle/2) -> 2 as the angle -> 0
    scale = np.where(sin_half > 1e-12, angle / np.maximum(sin_half, 1e-300), 2.0)
    return np.asarray(vec * scale[..., None])


def orthonormalize(matrix: ArrayLike) -> FloatArray:
    """The nearest rotation to each ``(..., 3, 3)`` matrix (polar decomposition via SVD)."""
    u, _, vt = np.linalg.svd(np.asarray(matrix, dtype=np.float64))
    r = u @ vt
    flip = np.linalg.det(r) < 0
    if np.any(flip):
        u = u.copy()
        u[flip, :, -1] *= -1
        r = u @ vt
    return np.asarray(r)
