"""Forward kinematics, vectorised over configurations (the leading axis ``F``).

The loop runs over joints (the chain is sequential) and every step is batched over ``F``. Frames
are computed in chain space, where every rest transform is rigid; the chain's ``base`` (which may
scale) is applied to the results that are reported in world space.

A chain that stretches (:mod:`.stretch`) scales each joint's links by its frame scale; rotations
stay rotations, so every angle's Jacobian column keeps its form ``axis x lever``, and a length
factor's column is its segment divided by the factor (:func:`stretch_columns`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chain import Chain
from .rotations import euler_to_matrix, single_axis_rotations
from .types import AnyArray, FloatArray


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
        factors: ``(F, k)`` the length factors (a chain that stretches), else None. ``axes`` then
            has a zero row for each (a factor turns nothing).
        segment_ends: ``(F, k, 3)`` chain-space end of each factor's segment (the next stretching
            joint's origin, or the tip), else None.
    """

    tip: FloatArray
    tip_chain: FloatArray
    tip_rotation: FloatArray
    origins: FloatArray
    axes: FloatArray | None
    frames: FloatArray
    joint_rotations: FloatArray
    factors: FloatArray | None = None
    segment_ends: FloatArray | None = None


def forward(chain: Chain, q: FloatArray, *, with_axes: bool = True) -> Kinematics:
    """Evaluate the chain for the variables ``q`` of shape ``(F, m)``: :func:`forward_joints` on the
    tree whose joints each hang from the one before, then the tip."""
    joints = forward_joints(chain, q, chain.parents, with_axes=with_axes)
    origins, last = joints.origins, joints.turned[-1]
    if chain.n_stretch:
        assert joints.scales is not None
        tip_chain = origins[:, -1] + (last @ chain.tip_offset) * joints.scales[:, -1, None]
        ends = np.concatenate([origins, tip_chain[:, None]], axis=1)[:, chain.stretch_end]
    else:
        tip_chain = origins[:, -1] + last @ chain.tip_offset
        ends = None
    tip = tip_chain @ chain.base[:3, :3].T + chain.base[:3, 3]
    return Kinematics(tip, tip_chain, last, origins, joints.axes, joints.before, joints.joint_rotations,
                      joints.factors, ends)


@dataclass(frozen=True)
class JointFrames:
    """Every joint of a chain or a tree for ``F`` configurations, in the space of the root's parent.

    Attributes:
        origins: ``(F, n, 3)`` joint origins.
        before: ``(F, n, 3, 3)`` each joint's frame after its rest transform, before it turns.
        turned: Each joint's frame after it turns (what its children hang from), ``(F, 3, 3)`` each,
            as arrays of their own: a slice of a joint-major array is strided, and matmul sums a
            strided operand in another order (a chain's tip would move by rounding, and with it every
            answer). :attr:`rotations` stacks them, for a caller that wants them all.
        joint_rotations: ``(F, n, 3, 3)`` each joint's own rotation, in ``before``.
        axes: ``(F, m, 3)`` each variable's axis (a zero row per length factor), or None.
        factors: ``(F, k)`` the length factors (a chain that stretches), else None.
        scales: ``(F, n)`` each joint's frame scale (a chain that stretches), else None.
    """

    origins: FloatArray
    before: FloatArray
    turned: tuple[FloatArray, ...]
    joint_rotations: FloatArray
    axes: FloatArray | None
    factors: FloatArray | None
    scales: FloatArray | None

    @property
    def rotations(self) -> FloatArray:
        """``(F, n, 3, 3)`` each joint's frame after it turns (stacked on each call: a chain's FK,
        the solver's inner loop, needs only the last)."""
        return np.stack(self.turned, axis=1)


def forward_joints(chain: Chain, q: FloatArray, parents: AnyArray, *, with_axes: bool = True) -> JointFrames:
    """Forward kinematics of joints that hang from ``parents`` (``-1`` the root; a parent before its
    children), for ``q`` of shape ``(F, m)``: the one pass behind :func:`forward` (a chain:
    ``parents[j] = j - 1``) and :func:`.tree.tree_forward` (a tree's joints, ``chain`` holding them),
    as :func:`.kernel_base.forward_joints` is both kernels'.

    A joint's frame is ``parent frame @ rest @ R`` (its origin ``parent origin + parent frame @ rest
    offset``, times the parent's frame scale where a chain stretches), ``R`` its Euler rotation, the
    last applied factor outermost.
    """
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
    turned: list[FloatArray] = []  # each joint's turned frame, an array of its own (see JointFrames)
    identity, zero = np.broadcast_to(np.eye(3), (count, 3, 3)), np.zeros((count, 3))
    stretch: FloatArray | None = None
    scales: FloatArray | None = None
    if chain.n_stretch:
        stretch = q[:, chain.n_angles:]
        scales = chain.frame_scales(q)  # (F, n)
    for j in range(n):
        p = int(parents[j])
        rot, pos = (turned[p], origins[:, p]) if p >= 0 else (identity, zero)
        offset = rot @ rest_pos[j]
        if scales is not None and p >= 0:
            offset = offset * scales[:, p, None]
        pos = pos + offset
        if chain.rest_rotates[j]:
            rot = rot @ rest_rot[j]
        before[:, j] = rot
        origins[:, j] = pos
        turned.append(rot @ joint_rotation[:, j])

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
        if chain.n_stretch:
            axes = np.concatenate([axes, np.zeros((count, chain.n_stretch, 3))], axis=1)
    return JointFrames(origins, before, tuple(turned), joint_rotation, axes, stretch, scales)


def cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """Row-wise cross product of ``(..., 3)`` arrays (cheaper than ``np.cross`` on small arrays)."""
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]
    out[..., 1] = a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2]
    out[..., 2] = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    return out


def _identities(count: int) -> FloatArray:
    """``(count, 4, 4)`` identity matrices, writable (one frame, the live pass's: a fresh ``eye``)."""
    if count == 1:
        return np.eye(4)[None]
    return np.broadcast_to(np.eye(4), (count, 4, 4)).copy()


def joint_pose(chain: Chain, q: FloatArray, joint: int) -> FloatArray:
    """``(F, 4, 4)`` joint ``joint``'s frame after it turns, in chain space (the base not applied):
    for a bone chain, that bone's pose matrix relative to the chain's base (with its uniform scale,
    for a chain that stretches). The joints past it are not computed (a chain stacked on another
    needs one bone of it, every live frame)."""
    angles = chain.expand(q)
    count = angles.shape[0]
    out, turn = _identities(count), _identities(count)
    scales = chain.channel_scales(q) if chain.n_stretch else None
    for j in range(joint + 1):
        turn[:, :3, :3] = euler_to_matrix(angles[:, j], chain.joints[j].order)
        if scales is not None:
            turn[:, :3, :3] *= scales[:, j, None, None]
        out = out @ chain.rest[j] @ turn
    return out


def tip_positions(chain: Chain, q: FloatArray) -> FloatArray:
    """World tip positions ``(F, 3)`` for free angles ``(F, m)``."""
    return forward(chain, q, with_axes=False).tip


def lever_columns(axes: FloatArray, origins: FloatArray, point: FloatArray) -> FloatArray:
    """``axes x (point - origins)``: how ``point`` moves per radian of each variable that turns about
    ``axes`` through ``origins`` (``(..., m, 3)`` each; the Jacobian columns of a chain's tip and of a
    tree's effectors and joints, before the base)."""
    return cross(axes, point - origins)


def tip_columns(chain: Chain, kin: Kinematics) -> FloatArray:
    """``(F, m, 3)`` chain-space derivative of the tip by each variable."""
    assert kin.axes is not None, "forward(..., with_axes=True) is needed for Jacobians"
    columns = lever_columns(kin.axes, kin.origins[:, chain.dof_joint], kin.tip_chain[:, None, :])  # (F, m, 3)
    if chain.n_stretch:
        columns[:, chain.n_angles:] = stretch_columns(chain, kin)
    return columns


def stretch_columns(chain: Chain, kin: Kinematics, joint: int | None = None) -> FloatArray:
    """``(F, k, 3)`` chain-space derivative by each length factor of the tip (``joint`` None) or
    of joint ``joint``'s origin. A factor scales its segment (from its joint to the next stretching
    joint or the tip) about its joint's origin and carries what lies past the segment along."""
    assert kin.factors is not None and kin.segment_ends is not None
    start = kin.origins[:, chain.stretch_joint]
    if joint is None:
        end = kin.segment_ends
    else:
        end = np.where((chain.stretch_end <= joint)[None, :, None], kin.segment_ends, kin.origins[:, joint][:, None])
        end = np.where((chain.stretch_joint < joint)[None, :, None], end, start)
    return np.asarray((end - start) / kin.factors[:, :, None])


def position_jacobian(chain: Chain, kin: Kinematics) -> FloatArray:
    """World-space Jacobian of the tip position, ``(F, 3, m)``."""
    return np.asarray(np.einsum("ij,fmj->fim", chain.base[:3, :3], tip_columns(chain, kin)))


def point_jacobian(chain: Chain, kin: Kinematics, joint: int) -> FloatArray:
    """World-space Jacobian ``(F, 3, m)`` of joint ``joint``'s origin (moved only by earlier joints)."""
    assert kin.axes is not None, "forward(..., with_axes=True) is needed for Jacobians"
    columns = lever_columns(kin.axes, kin.origins[:, chain.dof_joint], kin.origins[:, joint][:, None, :])
    columns *= (chain.dof_joint < joint)[None, :, None]
    if chain.n_stretch:
        columns[:, chain.n_angles:] = stretch_columns(chain, kin, joint)
    return np.asarray(np.einsum("ij,fmj->fim", chain.base[:3, :3], columns))
