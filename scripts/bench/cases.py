"""What every solver is asked (targets, a path, a cold start) and how its answers are scored."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blender_ik_addon.core import Chain, euler_to_matrix, tip_positions
from blender_ik_addon.core.examples import random_reachable_targets
from blender_ik_addon.core.rotations import FloatArray

SUCCESS_FACTOR = 1e-3
"""A solve succeeds when the tip is within ``SUCCESS_FACTOR x chain length`` of the target..."""
VIOLATION_TOLERANCE = 1e-9
"""...and no angle leaves its limits (or, for a locked axis, its fixed value) by more than this
many radians."""
VIOLATION_TOLERANCE_FLOAT32 = 1e-6
"""The same for a peer that computes in float32 (Blender): 1e-9 rad is below float32's
resolution, and Blender's own limits come back with ~1e-7 rad of rounding."""
TOLERANCE_FACTOR = 0.1
"""Solvers with a distance tolerance are asked for ``TOLERANCE_FACTOR x`` the success threshold."""


@dataclass(frozen=True)
class Cases:
    """One chain's workload.

    Attributes:
        targets: ``(N, 3)`` reachable targets (FK of uniform random poses within the limits).
        path: ``(F, 3)`` a smooth closed target path (FK of a smooth closed loop in joint space).
        start: ``(m,)`` the cold start: zero, projected onto the limits.
        threshold: Success threshold on the tip error, world units.
    """

    targets: FloatArray
    path: FloatArray
    start: FloatArray
    threshold: float

    @property
    def tolerance(self) -> float:
        """The tip tolerance requested from solvers that take one."""
        return TOLERANCE_FACTOR * self.threshold


def make_cases(chain: Chain, targets: int, frames: int, seed: int) -> Cases:
    """The targets and the path for ``chain``, deterministic for a seed."""
    points, _ = random_reachable_targets(chain, targets, seed)
    path = tip_positions(chain, smooth_joint_loop(chain, frames, seed + 1))
    return Cases(points, path, chain.clamp(np.zeros(chain.n_dofs)), SUCCESS_FACTOR * chain.length)


def smooth_joint_loop(chain: Chain, frames: int, seed: int) -> FloatArray:
    """``(frames, m)`` poses on a closed loop: each angle swings about the middle of its range
    (unlimited: ``[-pi, pi]``) with two harmonics of random phase, over at most 80 % of it."""
    rng = np.random.default_rng(seed)
    low = np.where(np.isfinite(chain.lower), chain.lower, -np.pi)
    high = np.where(np.isfinite(chain.upper), chain.upper, np.pi)
    middle, half = (low + high) / 2, (high - low) / 2
    phase1, phase2 = rng.uniform(0, 2 * np.pi, (2, chain.n_dofs))
    turn = 2 * np.pi * np.arange(frames)[:, None] / frames
    return np.asarray(middle + half * (0.6 * np.sin(turn + phase1) + 0.2 * np.sin(2 * turn + phase2)))


@dataclass(frozen=True)
class Answers:
    """A solver's answers to the first ``k`` targets of a sequence.

    Attributes:
        angles: ``(k, n, 3)`` per-joint Euler angles in the chain's own parameterisation.
        tips: ``(k, 3)`` the tip where the solver itself put it, world units.
        seconds: ``(k,)`` time of each solve.
    """

    angles: FloatArray
    tips: FloatArray
    seconds: FloatArray


def locked_drift(chain: Chain, angles: FloatArray) -> FloatArray:
    """``(k,)`` how far (radians) locked axes moved from their fixed value; only a peer that
    rotates about other axes than the chain's (Blender's swing-twist IK) can make this non-zero."""
    locked = ~np.array([joint.free for joint in chain.joints])
    delta = np.angle(np.exp(1j * (angles - chain.fixed)))  # wrapped to [-pi, pi]
    return np.asarray(np.where(locked, np.abs(delta), 0.0).max(axis=(-2, -1)))


def score(chain: Chain, targets: FloatArray, answers: Answers, threshold: float, violation_tolerance: float
          ) -> dict[str, float | int]:
    """Success and timing figures of ``answers`` against the first ``k`` of ``targets``."""
    count = answers.seconds.shape[0]
    error = np.linalg.norm(answers.tips - targets[:count], axis=-1)
    violation = chain.limit_violation(chain.compress(answers.angles))
    drift = locked_drift(chain, answers.angles)
    reached = error < threshold
    success = reached & (violation <= violation_tolerance) & (drift <= violation_tolerance)
    # The angles must reproduce the solver's own tip; Blender's can differ (see locked_drift).
    model_gap = np.linalg.norm(tip_positions(chain, chain.compress(answers.angles)) - answers.tips, axis=-1)
    ms = answers.seconds * 1e3
    return {
        "n": count,
        "success_rate": float(success.mean()),
        "reach_rate": float(reached.mean()),
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "solves_per_s": float(count / answers.seconds.sum()),
        "median_error": float(np.median(error)),
        "max_error": float(error.max()),
        "max_limit_violation_deg": float(np.degrees(violation.max())),
        "max_locked_drift_deg": float(np.degrees(drift.max())),
        "max_angles_vs_tip_gap": float(model_gap.max()),
    }


def rotation_between_deg(chain: Chain, first: FloatArray, second: FloatArray) -> FloatArray:
    """``(k,)`` the largest rotation of any joint from poses ``first`` to ``second`` (both
    ``(k, n, 3)`` per-joint Euler angles), degrees.

    Measured on the joints' rotation matrices, so two Euler triples of one rotation (which a
    matrix-based peer may return on alternate frames, or an unlimited angle a whole turn apart)
    are no rotation.
    """
    if first.shape[0] == 0:
        return np.zeros(0)
    a = np.stack([euler_to_matrix(first[:, j], joint.order) for j, joint in enumerate(chain.joints)], axis=1)
    b = np.stack([euler_to_matrix(second[:, j], joint.order) for j, joint in enumerate(chain.joints)], axis=1)
    trace = np.einsum("knij,knij->kn", a, b)  # trace(A^T B)
    return np.asarray(np.degrees(np.arccos(np.clip((trace - 1) / 2, -1.0, 1.0)).max(axis=1)))


def frame_steps_deg(chain: Chain, angles: FloatArray) -> FloatArray:
    """``(k - 1,)`` per-frame joint step: entry ``i`` is the largest rotation of any joint from
    frame ``i`` to frame ``i + 1`` of ``angles`` ``(k, n, 3)``, degrees (see
    :func:`rotation_between_deg`)."""
    return rotation_between_deg(chain, angles[:-1], angles[1:])


def max_jump_deg(chain: Chain, angles: FloatArray) -> float:
    """The largest rotation of any joint between consecutive frames, degrees.

    Measured on the joints' rotation matrices, so two Euler triples of one rotation (which a
    matrix-based peer may return on alternate frames) are no jump.
    """
    steps = frame_steps_deg(chain, angles)
    return float(steps.max()) if steps.size else 0.0
