"""Reference chains used by the tests, the benchmark and the demo.

All three point their links along +Y (Blender's bone axis) with unit ``base``.
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
