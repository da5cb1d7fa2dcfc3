"""What a solve aims for, as weighted residual blocks with analytic Jacobians.

Every objective is a residual vector ``r(q)`` with Jacobian ``J = dr/dq``; the solver minimises
``0.5 * |r|^2``. Weights are unitless: residuals that are angles are multiplied by the chain's
world length ("reach"), so weight 1 on one radian costs as much as one whole reach of tip error.

* Tip position (always): ``r = tip(q) - target``, world units.
* Tip orientation (optional): ``r = w * reach * log(R_tip(q) R_target^T)``; ``J = w * reach * axes``.
* Pole hint (optional): each interior joint's offset from the base-to-target line should point
  toward the pole: ``r_i = w * (m_i - |m_i| d)`` with ``m_i`` the joint's perpendicular offset and
  ``d`` the pole's unit perpendicular direction.
* Comfort pose (optional): how far each joint has turned from its comfort pose, three rows per
  joint, and each length factor of a chain that stretches from 1 (see :mod:`.posture`, :mod:`.stretch`).
  Either a soft pull (stacked
  with the tip residual, so it can cost reach) or "reach first" (applied only in the null space of
  the tip task, so the tip still arrives: the reaching pose nearest the comfort pose).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike

from .chain import Chain
from .errors import IKInputError
from .fk import Kinematics, forward, point_jacobian, position_jacobian
from .posture import Posture, posture_of, posture_terms
from .rotations import orthonormalize, rotation_vector
from .types import AnyArray, FloatArray


@dataclass(frozen=True)
class ComfortPose:
    """A preferred posture, pulled toward as a secondary objective.

    Attributes:
        angles: Preferred angles in radians: ``(m,)`` free angles or ``(n, 3)`` per joint. On a
            chain that stretches, ``(m,)`` may hold the free angles alone (the length factors
            prefer 1) or every variable.
        weights: Scalar, ``(m,)`` or ``(n, 3)`` unitless weights (see module docstring). A chain
            that stretches weighs its length factors by its joints' stretch
            (:attr:`.chain.Chain.stretch_weights`) unless ``weights`` gives every variable's.
        reach_first: True: act only where it does not cost reach (null space of the tip task).
            False: a soft pull that trades tip error for comfort.
    """

    angles: ArrayLike
    weights: ArrayLike = 0.1
    reach_first: bool = True

    def resolve(self, chain: Chain) -> tuple[FloatArray, FloatArray]:
        """Free-angle ``(target, weights)`` arrays of shape ``(m,)``, validated (and remembered on
        the chain: a frame handler resolves the same pose every frame)."""
        angles, weights = np.asarray(self.angles, dtype=np.float64), np.asarray(self.weights, dtype=np.float64)
        key = (angles.shape, angles.tobytes(), weights.shape, weights.tobytes())
        return chain.memo("comfort", key, lambda: self._resolve(chain))

    def _resolve(self, chain: Chain) -> tuple[FloatArray, FloatArray]:
        target = np.array(_per_dof(chain, self.angles, "comfort angles"))  # our own copy: memos key on it
        weights = np.array(np.broadcast_to(_per_dof(chain, self.weights, "comfort weights", scalar_ok=True),
                                           target.shape))
        if chain.n_stretch and np.shape(self.weights) != (chain.n_dofs,):
            weights[chain.n_angles:] = chain.stretch_weights
        if np.any(weights < 0):
            raise IKInputError("comfort weights must be >= 0")
        target.flags.writeable = weights.flags.writeable = False  # shared by every solve that resolves them
        return target, weights


def _per_dof(chain: Chain, value: ArrayLike, what: str, *, scalar_ok: bool = False) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if scalar_ok and arr.ndim == 0:
        out = np.full(chain.n_dofs, float(arr))
    elif arr.shape == (chain.n_joints, 3):
        out = chain.compress(arr)
    elif arr.shape == (chain.n_dofs,):
        out = arr
    elif chain.n_stretch and arr.shape == (chain.n_angles,):
        out = np.concatenate([arr, chain.neutral[chain.n_angles:]])
    else:
        raise IKInputError(f"{what} must have shape ({chain.n_dofs},) free angles or "
                           f"({chain.n_joints}, 3) per joint, got {arr.shape}")
    if not np.all(np.isfinite(out)):
        raise IKInputError(f"{what} contain NaN or infinite values")
    return out


def reach(chain: Chain) -> float:
    """The chain's length in world units (its chain-space length times the base's mean scale)."""
    return chain.world_length


@dataclass(frozen=True)
class Problem:
    """``F`` solve problems on one chain: validated targets plus weights, ready to evaluate.

    Attributes:
        chain: The chain.
        positions: ``(F, 3)`` world target positions.
        orientations: ``(F, 3, 3)`` chain-space target rotations of the tip frame, or None.
        orientation_weight: Unitless weight of the orientation residual.
        poles: ``(F, 3)`` world pole positions, or None.
        pole_weight: Unitless weight of the pole residual.
        comfort: ``(target (m,), weights (m,), reach_first)`` or None.
    """

    chain: Chain
    positions: FloatArray
    orientations: FloatArray | None = None
    orientation_weight: float = 1.0
    poles: FloatArray | None = None
    pole_weight: float = 0.1
    comfort: tuple[FloatArray, FloatArray, bool] | None = None
    reach: float = field(default=0.0)
    """The chain's world length (see :func:`reach`); filled in when left at 0."""
    posture: Posture | None = None
    """With a comfort pose: ``(comfort rotations (n, 3, 3), residual scale per joint (n,), ball
    joints (n,), residual scale per length factor (k,))`` (see :mod:`.posture`); filled in when left None."""

    def __post_init__(self) -> None:
        if self.reach <= 0:
            object.__setattr__(self, "reach", reach(self.chain))
        if self.comfort is not None and self.posture is None:
            target, weights, _ = self.comfort
            object.__setattr__(self, "posture", posture_of(self.chain, target, weights, self.reach))

    @property
    def count(self) -> int:
        """Number of problems ``F``."""
        return int(self.positions.shape[0])

    @cached_property
    def has_secondary(self) -> bool:
        """True if a null-space (reach-first) secondary task exists."""
        comfort_secondary = self.comfort is not None and self.comfort[2] and self.chain.memo_of(
            "any_weight", (self.comfort[1],), lambda: bool((self.comfort[1] > 0).any()))  # type: ignore[index]
        return comfort_secondary or (self.poles is not None and self.pole_weight > 0)

    def take(self, index: AnyArray) -> Problem:
        """The sub-problem for the given target indices."""
        return Problem(
            self.chain, self.positions[index],
            None if self.orientations is None else self.orientations[index], self.orientation_weight,
            None if self.poles is None else self.poles[index], self.pole_weight, self.comfort, self.reach,
            self.posture)


def make_problem(
    chain: Chain,
    positions: ArrayLike,
    *,
    orientations: ArrayLike | None = None,
    orientation_weight: float = 1.0,
    poles: ArrayLike | None = None,
    pole_weight: float = 0.1,
    comfort: ComfortPose | None = None,
) -> Problem:
    """Validate batched inputs into a :class:`Problem`. Raises :class:`IKInputError`."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise IKInputError(f"target positions must have shape (F, 3), got {pos.shape}")
    _require_finite(pos, "target position")
    count = pos.shape[0]
    rot = None
    if orientations is not None:
        rot = np.asarray(orientations, dtype=np.float64)
        if rot.shape == (3, 3):
            rot = np.broadcast_to(rot, (count, 3, 3))
        if rot.shape != (count, 3, 3):
            raise IKInputError(f"target orientations must have shape ({count}, 3, 3), got {rot.shape}")
        _require_finite(rot, "target orientation")
        base_rotation = orthonormalize(chain.base[:3, :3])
        rot = orthonormalize(base_rotation.T @ orthonormalize(rot))
    pole_arr = None
    if poles is not None:
        pole_arr = np.asarray(poles, dtype=np.float64)
        if pole_arr.shape == (3,):
            pole_arr = np.broadcast_to(pole_arr, (count, 3))
        if pole_arr.shape != (count, 3):
            raise IKInputError(f"pole positions must have shape ({count}, 3), got {pole_arr.shape}")
        _require_finite(pole_arr, "pole position")
    for value, what in ((orientation_weight, "orientation_weight"), (pole_weight, "pole_weight")):
        if not math.isfinite(value) or value < 0:
            raise IKInputError(f"{what} must be a finite number >= 0, got {value!r}")
    resolved = None
    if comfort is not None:
        target, weights = comfort.resolve(chain)
        resolved = (target, weights, bool(comfort.reach_first))
    return Problem(chain, pos, rot, float(orientation_weight), pole_arr, float(pole_weight), resolved)


def _require_finite(arr: AnyArray, what: str) -> None:
    if np.isfinite(arr).all():
        return
    bad = ~np.isfinite(arr).reshape(arr.shape[0], -1).all(axis=1)
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        raise IKInputError(f"{what} {first} is not finite (NaN or inf): {arr[first].tolist()}")


@dataclass(frozen=True)
class Evaluation:
    """Residuals and Jacobians at ``F`` configurations.

    ``primary``/``primary_jacobian`` hold the tip task (plus a soft comfort pose, if any);
    ``secondary``/``secondary_jacobian`` hold the reach-first tasks (pole, reach-first comfort),
    or are None. Shapes: residual ``(F, k)``, Jacobian ``(F, k, m)``.
    """

    position_error: FloatArray
    orientation_error: FloatArray
    primary: FloatArray
    primary_jacobian: FloatArray | None
    secondary: FloatArray | None
    secondary_jacobian: FloatArray | None
    primary_cost: FloatArray = field(default_factory=lambda: np.zeros(0))
    """``0.5 * |primary|^2`` per configuration (computed when left empty)."""
    secondary_cost: FloatArray = field(default_factory=lambda: np.zeros(0))
    """``0.5 * |secondary|^2`` per configuration; zeros without a secondary task."""

    def __post_init__(self) -> None:
        count = self.primary.shape[0]
        if self.primary_cost.shape != (count,):
            object.__setattr__(self, "primary_cost", 0.5 * np.einsum("fk,fk->f", self.primary, self.primary))
        if self.secondary_cost.shape != (count,):
            cost = np.zeros(count) if self.secondary is None else 0.5 * np.einsum(
                "fk,fk->f", self.secondary, self.secondary)
            object.__setattr__(self, "secondary_cost", cost)


def evaluate(problem: Problem, q: FloatArray, *, with_jacobian: bool = True, secondary_rows: bool = True) -> Evaluation:
    """Stack every objective's residual (and Jacobian) at free angles ``q`` ``(F, m)``; the
    reach-first (secondary) rows only with ``secondary_rows``."""
    chain = problem.chain
    kin = forward(chain, q, with_axes=with_jacobian or problem.poles is not None)
    length = problem.reach
    delta = kin.tip - problem.positions
    primary = [delta]
    primary_j = [position_jacobian(chain, kin)] if with_jacobian else []
    orientation_error = np.zeros(q.shape[0])
    if problem.orientations is not None and problem.orientation_weight > 0:
        rotvec = rotation_vector(kin.tip_rotation @ np.swapaxes(problem.orientations, -1, -2))
        orientation_error = np.linalg.norm(rotvec, axis=-1)
        scale = problem.orientation_weight * length
        primary.append(scale * rotvec)
        if with_jacobian:
            assert kin.axes is not None
            primary_j.append(scale * np.swapaxes(kin.axes, -1, -2))
    secondary: list[FloatArray] = []
    secondary_j: list[FloatArray] = []
    if problem.poles is not None and problem.pole_weight > 0 and secondary_rows:
        pole_residual, pole_jacobian = _pole_terms(problem, kin, with_jacobian)
        secondary.append(pole_residual)
        secondary_j.extend(pole_jacobian)
    if problem.comfort is not None and (secondary_rows or not problem.comfort[2]):
        assert problem.posture is not None
        angles, _, reach_first = problem.comfort
        rotations, scales, ball, stretch = problem.posture
        comfort_residual, comfort_jacobian = posture_terms(chain, kin, q, rotations, angles, scales, ball,
                                                           with_jacobian, stretch)
        (secondary if reach_first else primary).append(comfort_residual)
        if comfort_jacobian is not None:
            (secondary_j if reach_first else primary_j).append(comfort_jacobian)
    return Evaluation(
        position_error=np.linalg.norm(delta, axis=-1),
        orientation_error=orientation_error,
        primary=np.concatenate(primary, axis=1),
        primary_jacobian=np.concatenate(primary_j, axis=1) if with_jacobian else None,
        secondary=np.concatenate(secondary, axis=1) if secondary else None,
        secondary_jacobian=np.concatenate(secondary_j, axis=1) if (secondary and with_jacobian) else None,
    )


def _pole_geometry(problem: Problem, kin: Kinematics) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``(offsets (F, n-1, 3), projector (F, 3, 3), pole_dir (F, 3), usable (F, 1))`` in world space.

    ``offsets`` are the interior joints' offsets from the base-to-target line; ``pole_dir`` is the
    pole's unit direction off that line. A pole on the line gives no direction (``usable`` = 0).
    """
    chain = problem.chain
    assert problem.poles is not None
    origins = kin.origins @ chain.base[:3, :3].T + chain.base[:3, 3]  # world (F, n, 3)
    root = origins[:, 0]
    axis = problem.positions - root
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
    projector = np.eye(3) - axis[:, :, None] * axis[:, None, :]  # removes the along-line part
    pole_dir = np.einsum("fij,fj->fi", projector, problem.poles - root)
    pole_len = np.linalg.norm(pole_dir, axis=-1, keepdims=True)
    usable = (pole_len > 1e-9).astype(np.float64)
    pole_dir = pole_dir / np.maximum(pole_len, 1e-12)
    offsets = np.einsum("fij,fnj->fni", projector, origins[:, 1:] - root[:, None])
    return offsets, projector, pole_dir, usable


def pole_alignment(problem: Problem, q: FloatArray) -> FloatArray:
    """Worst cosine, over interior joints, between a joint's bend direction and the pole's: ``(F,)``.

    1 means every joint bends toward the pole, negative means some joint bends away from it.
    Targets without a usable pole (or joints on the line) count as aligned.
    """
    if problem.poles is None or problem.chain.n_joints < 2:
        return np.ones(problem.count)
    offsets, _, pole_dir, usable = _pole_geometry(problem, forward(problem.chain, q, with_axes=False))
    size = np.linalg.norm(offsets, axis=-1)
    cosine = np.einsum("fni,fi->fn", offsets, pole_dir) / np.maximum(size, 1e-12)
    cosine = np.where(size > 1e-9 * problem.reach, cosine, 1.0)
    return np.asarray(np.where(usable[:, 0] > 0, cosine.min(axis=1), 1.0))


def _pole_terms(problem: Problem, kin: Kinematics, with_jacobian: bool) -> tuple[FloatArray, list[FloatArray]]:
    chain = problem.chain
    if chain.n_joints < 2:  # a one-joint chain has no interior joint to aim
        empty_jac = [np.zeros((problem.count, 0, chain.n_dofs))] if with_jacobian else []
        return np.zeros((problem.count, 0)), empty_jac
    offsets, projector, pole_dir, usable = _pole_geometry(problem, kin)
    weight = problem.pole_weight / np.sqrt(chain.n_joints - 1)
    residuals, jacobians = [], []
    for i, joint in enumerate(range(1, chain.n_joints)):
        offset = offsets[:, i]
        size = np.linalg.norm(offset, axis=-1, keepdims=True)
        residuals.append(weight * usable * (offset - size * pole_dir))
        if with_jacobian:
            unit = offset / np.maximum(size, 1e-12)
            shaping = np.eye(3) - pole_dir[:, :, None] * unit[:, None, :]
            jac = weight * usable[:, :, None] * (shaping @ projector @ point_jacobian(chain, kin, joint))
            jacobians.append(jac)
    return np.concatenate(residuals, axis=1), [np.concatenate(jacobians, axis=1)] if with_jacobian else []
