"""The distance from the preferred pose, joint by joint.

The solver returns, among the poses that reach, the one nearest the preferred pose ``p`` (see
:mod:`.rules`), in the distance ``d(q)^2 = sum_j w_j d_j(q)^2`` (``w_j`` the mean comfort weight of
joint ``j``'s free angles) where a joint's own term is:

* for a **ball joint** (all three axes free, none limited): ``|log(C_j^T R_j(q))|``, the single
  angle that turns the joint from its comfort rotation ``C_j`` to its rotation ``R_j(q)``. Its Euler
  angles are mere coordinates there, and measured in them "nearest" would depend on the rotation
  order (an elbow would bend in whichever plane the order makes cheap, and jump between planes as
  the target moves); measured as a rotation, the joint turns as little as it can.
* for every other joint (a hinge, or axes with limits): the Euler distance ``|q_j - c_j|`` over its
  free angles, the coordinates its limits are written in.

As residuals for Gauss-Newton, three rows per joint, scaled by ``sqrt(w_j) * reach``: the rotation
vector, with the exact Jacobian ``J_l^-1(r_j) C_j^T a_k`` for each free angle ``k`` (``a_k`` its axis
in the joint's frame, ``J_l^-1`` the inverse left Jacobian of SO(3)); or the angle differences, row
``3j + axis``, with a unit Jacobian.

A chain that stretches adds one row per length factor after the ``3n`` rows of the joints:
``sqrt(w_s) * length * (s - 1)`` (see :mod:`.stretch`: ``w_s`` the factor's comfort weight,
``length`` its segment's world length), with the constant Jacobian ``sqrt(w_s) * length``.
"""

from __future__ import annotations

import numpy as np

from .chain import Chain
from .fk import Kinematics, forward
from .rotations import rotation_vector
from .types import AnyArray, FloatArray


def comfort_rotations(chain: Chain, angles: FloatArray) -> FloatArray:
    """``(n, 3, 3)`` each joint's own rotation at the free angles ``angles`` ``(m,)``."""
    return np.asarray(forward(chain, np.asarray(angles, dtype=np.float64)[None], with_axes=False).joint_rotations[0])


def joint_scales(chain: Chain, weights: FloatArray, reach: float) -> FloatArray:
    """``(n,)`` residual scale per joint: ``sqrt(mean weight of its free angles) * reach`` (0 for a
    joint without free angles: nothing to choose there)."""
    weights = weights[:chain.n_angles]
    total = np.bincount(chain.free_joint, weights=weights, minlength=chain.n_joints)
    count = np.bincount(chain.free_joint, minlength=chain.n_joints)
    mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return np.asarray(np.sqrt(mean) * reach)


def stretch_scales(chain: Chain, weights: FloatArray, reach: float) -> FloatArray:
    """``(k,)`` residual scale per length factor: ``sqrt(its weight) * its segment's world length``
    (``weights`` ``(m,)``: the factors' after the angles'; ``reach`` / ``chain.length`` is the base's
    mean scale)."""
    lengths = np.maximum(chain.stretch_lengths, 1e-3 * chain.length) * (reach / chain.length)
    return np.asarray(np.sqrt(weights[chain.n_angles:]) * lengths)


Posture = tuple[FloatArray, FloatArray, AnyArray, FloatArray]
"""``(comfort rotations (n, 3, 3), scale per joint (n,), ball joints (n,), scale per length factor (k,))``."""


def posture_of(chain: Chain, angles: FloatArray, weights: FloatArray, reach: float) -> Posture:
    """The :data:`Posture` of a comfort pose, remembered on the chain (every live frame asks again
    for the same pose)."""
    def by_value() -> Posture:
        key = (angles.tobytes(), weights.tobytes(), float(reach))
        return chain.memo("posture", key, lambda: (
            comfort_rotations(chain, angles), joint_scales(chain, weights, reach), chain.ball_joints,
            stretch_scales(chain, weights, reach)))

    # A resolved comfort pose hands out the same arrays every solve: look them up by identity first.
    return chain.memo_of("posture of", (angles, weights), by_value, extra=(reach,))


def inverse_left_jacobian(phi: FloatArray) -> FloatArray:
    """``(..., 3, 3)`` the inverse left Jacobian of SO(3) at rotation vectors ``phi`` ``(..., 3)``:
    ``d log(exp(delta) exp(phi)) / d delta`` at ``delta = 0``."""
    theta = np.linalg.norm(phi, axis=-1)
    small = theta < 1e-4
    t = np.where(small, 1.0, theta)
    # (1/t^2 - (1 + cos t) / (2 t sin t)), -> 1/12 as t -> 0; capped near a half turn, where the
    # rotation vector itself jumps (a joint half a turn from its comfort pose).
    coefficient = np.where(small, 1.0 / 12.0 + theta**2 / 720.0,
                           1.0 / t**2 - (1.0 + np.cos(t)) / (2.0 * t * np.maximum(np.sin(t), 1e-6)))
    skew = _skew(phi)
    eye = np.broadcast_to(np.eye(3), skew.shape)
    return np.asarray(eye - 0.5 * skew + coefficient[..., None, None] * (skew @ skew))


def _skew(v: FloatArray) -> FloatArray:
    out = np.zeros((*v.shape, 3))
    out[..., 0, 1], out[..., 0, 2] = -v[..., 2], v[..., 1]
    out[..., 1, 0], out[..., 1, 2] = v[..., 2], -v[..., 0]
    out[..., 2, 0], out[..., 2, 1] = -v[..., 1], v[..., 0]
    return out


def posture_terms(chain: Chain, kin: Kinematics, q: FloatArray, comfort: FloatArray, angles: FloatArray,
                  scales: FloatArray, ball: AnyArray, with_jacobian: bool,
                  stretch: FloatArray | None = None) -> tuple[FloatArray, FloatArray | None]:
    """Residual ``(F, 3n)`` and Jacobian ``(F, 3n, m)`` of the distance from the comfort pose
    (rows of joint ``j``: ``3j..3j+2``): ``comfort`` ``(n, 3, 3)`` its rotations, ``angles`` ``(m,)``
    its variables, ``scales`` ``(n,)`` per joint, ``ball`` ``(n,)`` which joints are ball joints.
    A chain that stretches adds ``k`` rows (``3n + i`` for factor ``i``), scaled by ``stretch`` ``(k,)``."""
    if chain.n_stretch:
        return _with_stretch_rows(chain, kin, q, comfort, angles, scales, ball, with_jacobian, stretch)
    return _angle_rows(chain, kin, q, comfort, angles, scales, ball, with_jacobian)


def _angle_rows(chain: Chain, kin: Kinematics, q: FloatArray, comfort: FloatArray, angles: FloatArray,
                scales: FloatArray, ball: AnyArray, with_jacobian: bool) -> tuple[FloatArray, FloatArray | None]:
    """The joints' ``3n`` rows of :func:`posture_terms` on the free angles ``q`` ``(F, m_a)``."""
    count, n, m = q.shape[0], chain.n_joints, chain.n_angles
    fj, fa = chain.free_joint, chain.free_axis
    turn = np.swapaxes(comfort, -1, -2)[None] @ kin.joint_rotations  # C_j^T R_j, (F, n, 3, 3)
    phi = np.where(ball[None, :, None], rotation_vector(turn), 0.0)  # (F, n, 3)
    euler = ~ball[fj]  # free angles measured in their own coordinates
    phi[:, fj[euler], fa[euler]] = (q - angles)[:, euler]
    residual = (scales[None, :, None] * phi).reshape(count, 3 * n)
    if not with_jacobian:
        return residual, None
    jacobian = np.zeros((count, n, 3, m))
    dofs = np.arange(m)
    jacobian[:, fj[euler], fa[euler], dofs[euler]] = scales[fj[euler]]
    turning = ~euler
    if turning.any():
        assert kin.axes is not None
        tj = fj[turning]
        # Each free angle's axis in its joint's frame, then in the comfort rotation's frame.
        local = np.einsum("fmji,fmj->fmi", kin.frames[:, tj], kin.axes[:, turning])  # frames^T axes
        in_comfort = np.einsum("mji,fmj->fmi", comfort[tj], local)  # C^T a
        columns = np.einsum("fmij,fmj->fmi", inverse_left_jacobian(phi[:, tj]), in_comfort) * scales[tj][None, :, None]
        jacobian[:, tj, :, dofs[turning]] = columns.transpose(1, 0, 2)  # (k, F, 3) into joint tj[k]'s rows, column k
    return residual, jacobian.reshape(count, 3 * n, m)


def _with_stretch_rows(chain: Chain, kin: Kinematics, q: FloatArray, comfort: FloatArray, angles: FloatArray,
                       scales: FloatArray, ball: AnyArray, with_jacobian: bool,
                       stretch: FloatArray | None) -> tuple[FloatArray, FloatArray | None]:
    """:func:`posture_terms` of a chain that stretches: the joints' rows on its angles, then the factors'."""
    assert stretch is not None, "a chain that stretches needs its factors' scales"
    m_a, k, count = chain.n_angles, chain.n_stretch, q.shape[0]
    axes = None if kin.axes is None else kin.axes[:, :m_a]
    angle_kin = Kinematics(kin.tip, kin.tip_chain, kin.tip_rotation, kin.origins, axes, kin.frames,
                           kin.joint_rotations)
    rows, rows_jacobian = _angle_rows(chain, angle_kin, q[:, :m_a], comfort, angles[:m_a], scales, ball,
                                      with_jacobian)
    factor_rows = stretch[None] * (q[:, m_a:] - 1.0)
    residual = np.concatenate([rows, factor_rows], axis=1)
    if rows_jacobian is None:
        return residual, None
    jacobian = np.zeros((count, 3 * chain.n_joints + k, m_a + k))
    jacobian[:, :-k, :m_a] = rows_jacobian
    jacobian[:, 3 * chain.n_joints + np.arange(k), m_a + np.arange(k)] = stretch
    return residual, jacobian
