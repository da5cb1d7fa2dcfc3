"""Reference chains used by the tests, the benchmark and the demo.

All of them point their links along +Y (Blender's bone axis) with unit ``base``, so the rest pose
(all angles zero) is the straight chain.
"""

from __future__ import annotations

import numpy as np

from .chain import Chain
from .types import FloatArray


def translation(x: float, y: float, z: float) -> FloatArray:
    """A ``(4, 4)`` pure translation."""
    out = np.eye(4)
    out[:3, 3] = (x, y, z)
    return out


def tutorial_arm(link: float = 1.0) -> Chain:
    """The tutorial's 3-joint robot arm: a base yaw about Z, then two pitch joints about X.

    Limits: +-180 deg (yaw), +-90 deg and +-150 deg (pitches); three links of ``link``.
    """
    deg = np.radians
    return Chain.from_arrays(
        np.stack([np.eye(4), translation(0, link, 0), translation(0, link, 0)]),
        free=[[False, False, True], [True, False, False], [True, False, False]],
        lower=[[0, 0, -deg(180)], [-deg(90), 0, 0], [-deg(150), 0, 0]],
        upper=[[0, 0, deg(180)], [deg(90), 0, 0], [deg(150), 0, 0]],
        tip_offset=(0, link, 0),
        names=("base_yaw", "shoulder_pitch", "elbow_pitch"),
    )


def human_arm() -> Chain:
    """A 6-DOF human arm in metres: shoulder (3 axes), elbow (1 axis, 0-150 deg), wrist (2 axes).

    Upper arm 0.30, forearm 0.26, hand 0.09 (to the fingertips' centre). The elbow's range starts
    at the straight arm, so a cold start at zero sits on a limit at a singular pose.
    """
    deg = np.radians
    return Chain.from_arrays(
        np.stack([np.eye(4), translation(0, 0.30, 0), translation(0, 0.26, 0)]),
        orders=("YXZ", "XYZ", "XYZ"),
        free=[[True, True, True], [True, False, False], [True, False, True]],
        lower=[[-deg(60), -deg(90), -deg(30)], [0, 0, 0], [-deg(70), 0, -deg(20)]],
        upper=[[deg(170), deg(90), deg(120)], [deg(150), 0, 0], [deg(80), 0, deg(35)]],
        tip_offset=(0, 0.09, 0),
        names=("shoulder", "elbow", "wrist"),
    )


def tentacle(segments: int = 20, segment_length: float = 0.25, limit_deg: float = 30.0) -> Chain:
    """A tentacle of ``segments`` joints bending about X and Z (2 DOF each), +-``limit_deg``."""
    limit = np.radians(limit_deg)
    rest = np.stack([np.eye(4)] + [translation(0, segment_length, 0)] * (segments - 1))
    return Chain.from_arrays(
        rest,
        free=np.tile([True, False, True], (segments, 1)),
        lower=np.full((segments, 3), -limit),
        upper=np.full((segments, 3), limit),
        tip_offset=(0, segment_length, 0),
        names=[f"segment{i:02d}" for i in range(segments)],
    )


def ball_limb(bone: float = 1.0) -> Chain:
    """A 2-bone limb with two ball joints: every axis free and unlimited, no pole.

    Two bones of ``bone`` along +Y (reach ``2 * bone``). The tip lies on the second bone's Y
    axis, so that bone's twist never moves it, and any bend of the elbow can be turned about the
    shoulder-tip line: every target has a whole family of solutions.
    """
    return Chain.from_arrays(
        np.stack([np.eye(4), translation(0, bone, 0)]),
        tip_offset=(0, bone, 0),
        names=("shoulder", "elbow"),
    )


def hinge_limb(bone: float = 1.0) -> Chain:
    """A 2-bone limb: a ball shoulder (every axis free, unlimited) and a hinge elbow, X only,
    0-150 deg (a knee or an elbow bending one way only), no pole.

    Two bones of ``bone`` along +Y: the tip can be from ``2 * bone * cos(75 deg)`` (about
    ``0.52 * bone``) to ``2 * bone`` from the shoulder.
    """
    deg = np.radians
    return Chain.from_arrays(
        np.stack([np.eye(4), translation(0, bone, 0)]),
        free=[[True, True, True], [True, False, False]],
        lower=np.array([[-np.inf, -np.inf, -np.inf], [0.0, 0.0, 0.0]]),
        upper=np.array([[np.inf, np.inf, np.inf], [deg(150), 0.0, 0.0]]),
        tip_offset=(0, bone, 0),
        names=("shoulder", "elbow"),
    )


def rope(segments: int = 100, segment_length: float = 0.05, limit_deg: float = 30.0) -> Chain:
    """A long rope: :func:`tentacle` with 100 short segments (200 DOF, reach 5), +-``limit_deg``
    about X and Z per joint."""
    return tentacle(segments, segment_length, limit_deg)


def random_reachable_targets(chain: Chain, count: int, seed: int = 0) -> tuple[FloatArray, FloatArray]:
    """``(targets (count, 3), poses (count, m))``: FK of uniform random poses within the limits.

    Unlimited axes are sampled in ``[-pi, pi]``.
    """
    rng = np.random.default_rng(seed)
    low = np.where(np.isfinite(chain.lower), chain.lower, -np.pi)
    high = np.where(np.isfinite(chain.upper), chain.upper, np.pi)
    poses = rng.uniform(low, high, size=(count, chain.n_dofs))
    from .fk import tip_positions

    return tip_positions(chain, poses), poses
