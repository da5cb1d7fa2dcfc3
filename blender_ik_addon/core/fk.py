"""Forward kinematics, vectorised over configurations (the leading axis ``F``).

The loop runs over joints (the chain is sequential) and every step is batched over ``F``. Frames
are computed in chain space, where every rest transform is rigid; the chain's ``base`` (which may
scale) is applied to the results that are reported in world space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chain import Chain
from .rotations import euler_to_matrix, single_axis_rotations
from .types import FloatArray


@dataclass(frozen=True)
class Kinematics:
    """The evaluated chain for ``F`` configurations.

    Attributes:
        tip: ``(F, 3)`` tip position in world space.
        tip_chain: ``(F, 3)`` tip position in chain space.
        tip_rotation: ``(F, 3, 3)`` rotation of the last joint's frame, chain space.
        origins: ``(F, n, 3)`` joint origins in chain space.
        axes: ``(F, m, 3)`` chain-space axis of each free angle's elementary rotation, or None
            when it was not requested. Rotating angle ``k`` by ``d`` turns everything after it by
            ``d`` radians about ``axes[:, k]`` through ``origins[:, free_joint[k]]``.
        frames: ``(F, n, 3, 3)`` chain-space rotation of each joint's frame after its rest
            transform, before the joint turns.
        joint_rotations: ``(F, n, 3, 3)`` each joint's own rotation (its Euler angles, locked axes
            included), in that frame.
    """

    tip: FloatArray
    tip_chain: FloatArray
    tip_rotation: FloatArray
    origins: FloatArray
    axes: FloatArray | None
    frames: FloatArray
    joint_rotations: FloatArray


def forward(chain: Chain, q: FloatArray, *, with_axes: bool = True) -> Kinematics:
    """Evaluate the chain for free angles ``q`` of shape ``(F, m)``."""
    n = chain.n_joints
    count = q.shape[0]
    angles = chain.expand(q)  # (F, n, 3)
    # Only the rotations that are not always identity (see Chain's FK plan), plus one identity
    # at index P for the padding slots: a 1-DOF robot joint costs one rotation and no products.
    factors = np.empty((count, chain.factor_joint.size + 1, 3, 3))
    factors[:, :-1] = single_axis_rotations(angles[:, chain.factor_joint, chain.factor_axis], chain.factor_axis)
    factors[:, -1] = np.eye(3)
    slots = [factors[:, chain.slot_factor[:, s]] for s in range(chain.slot_factor.shape[1])]  # (F, n, 3, 3)
    joint_rotation = slots[-1]
    for slot in reversed(slots[:-1]):
        joint_rotation = joint_rotation @ slot  # the last-applied factor is the outermost

    rest_rot = chain.rest[:, :3, :3]
    rest_pos = chain.rest[:, :3, 3]
    before = np.empty((count, n, 3, 3))  # frame rotation after `rest`, before the joint turns
    origins = np.empty((count, n, 3))
    rot = np.broadcast_to(np.eye(3), (count, 3, 3))
    pos = np.zeros((count, 3))
    for j in range(n):
        pos = pos + rot @ rest_pos[j]
        if chain.rest_rotates[j]:
            rot = rot @ rest_rot[j]
        before[:, j] = rot
        origins[:, j] = pos
        rot = rot @ joint_rotation[:, j]
    tip_chain = pos + rot @ chain.tip_offset
    tip = tip_chain @ chain.base[:3, :3].T + chain.base[:3, 3]

    axes = None
    if with_axes:
        # A factor turns about an axis of the frame `before @ (the factors applied after it)`:
        # the last slot turns in `before` itself, each earlier slot inside the later ones.
        frames = [before]
        for slot in reversed(slots[1:]):
            frames.insert(0, frames[0] @ slot)
        by_slot = np.stack(frames, axis=2)  # (F, n, slot, 3, 3)
        fj, fa = chain.free_joint, chain.free_axis
        # Column `fa` of the frame the angle turns in: (m, F, 3) -> (F, m, 3).
        axes = by_slot[:, fj, chain.free_slot, :, fa].transpose(1, 0, 2)
    return Kinematics(tip, tip_chain, rot, origins, axes, before, joint_rotation)


def cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """Row-wise cross product of ``(..., 3)`` arrays (cheaper than ``np.cross`` on small arrays)."""
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]
    out[..., 1] = a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2]
    out[..., 2] = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    return out


def joint_pose(chain: Chain, q: FloatArray, joint: int) -> FloatArray:
    """``(F, 4, 4)`` joint ``joint``'s frame after it turns, in chain space (the base not applied):
    for a bone chain, that bone's pose matrix relative to the chain's base. The joints past it are
    not computed (a chain stacked on another needs one bone of it, every live frame)."""
    angles = chain.expand(q)
    count = angles.shape[0]
    out = np.broadcast_to(np.eye(4), (count, 4, 4)).copy()
    turn = np.broadcast_to(np.eye(4), (count, 4, 4)).copy()
    for j in range(joint + 1):
        turn[:, :3, :3] = euler_to_matrix(angles[:, j], chain.joints[j].order)
        out = out @ chain.rest[j] @ turn
    return out


def tip_positions(chain: Chain, q: FloatArray) -> FloatArray:
    """World tip positions ``(F, 3)`` for free angles ``(F, m)``."""
    return forward(chain, q, with_axes=False).tip


def position_jacobian(chain: Chain, kin: Kinematics) -> FloatArray:
    """World-space Jacobian of the tip position, ``(F, 3, m)``."""
    assert kin.axes is not None, "forward(..., with_axes=True) is needed for Jacobians"
    lever = kin.tip_chain[:, None, :] - kin.origins[:, chain.free_joint]  # (F, m, 3)
    columns = cross(kin.axes, lever)  # (F, m, 3), chain space
    return np.asarray(np.einsum("ij,fmj->fim", chain.base[:3, :3], columns))


def point_jacobian(chain: Chain, kin: Kinematics, joint: int) -> FloatArray:
    """World-space Jacobian ``(F, 3, m)`` of joint ``joint``'s origin (moved only by earlier joints)."""
    assert kin.axes is not None, "forward(..., with_axes=True) is needed for Jacobians"
    lever = kin.origins[:, joint][:, None, :] - kin.origins[:, chain.free_joint]
    columns = cross(kin.axes, lever) * (chain.free_joint < joint)[None, :, None]
    return np.asarray(np.einsum("ij,fmj->fim", chain.base[:3, :3], columns))
