"""The tutorial solver does exactly what Zucconi's tutorial code does, on its 3-joint arm."""

import math

import numpy as np
import pytest

from blender_ik_addon.core import ComfortPose, SolverOptions, solve, solve_batch, tip_positions
from blender_ik_addon.core.examples import tutorial_arm

SAMPLING_DISTANCE = 1e-3
LEARNING_RATE = 0.1
THRESHOLD = 1e-3


def _forward_kinematics(angles: list[float]) -> tuple[float, float, float]:
    """The tutorial arm by hand: yaw about Z at the base, then pitches about X, links of 1 on Y."""
    yaw, pitch1, pitch2 = angles
    # Pitches stack in the arm's vertical plane; the yaw turns that plane about Z.
    a1, a2 = pitch1, pitch1 + pitch2
    local_y = 1.0 + math.cos(a1) + math.cos(a2)
    local_z = math.sin(a1) + math.sin(a2)
    return (-math.sin(yaw) * local_y, math.cos(yaw) * local_y, local_z)


def _distance_from_target(target: np.ndarray, angles: list[float]) -> float:
    return math.dist(_forward_kinematics(angles), target)


def _partial_gradient(target: np.ndarray, angles: list[float], i: int) -> float:
    angle = angles[i]
    f_x = _distance_from_target(target, angles)
    angles[i] += SAMPLING_DISTANCE
    f_x_plus_d = _distance_from_target(target, angles)
    gradient = (f_x_plus_d - f_x) / SAMPLING_DISTANCE
    angles[i] = angle
    return gradient


def _inverse_kinematics(target: np.ndarray, angles: list[float], lower: np.ndarray, upper: np.ndarray) -> None:
    """One call of the tutorial's ``InverseKinematics`` (one sweep, tip to base)."""
    if _distance_from_target(target, angles) < THRESHOLD:
        return
    for i in range(len(angles) - 1, -1, -1):
        gradient = _partial_gradient(target, angles, i)
        angles[i] -= LEARNING_RATE * gradient
        angles[i] = min(max(angles[i], lower[i]), upper[i])
        if _distance_from_target(target, angles) < THRESHOLD:
            return


OPTIONS = SolverOptions(method="tutorial", learning_rate=LEARNING_RATE, sampling_distance=SAMPLING_DISTANCE,
                        tolerance=THRESHOLD)


def test_hand_written_arm_matches_the_chain() -> None:
    chain = tutorial_arm()
    rng = np.random.default_rng(0)
    for q in rng.uniform(chain.lower, chain.upper, (20, 3)):
        np.testing.assert_allclose(tip_positions(chain, q[None])[0], _forward_kinematics(list(q)), atol=1e-12)


@pytest.mark.parametrize("sweeps", [1, 2, 5, 40])
def test_sweeps_match_a_literal_transliteration_of_the_tutorial(sweeps: int) -> None:
    chain = tutorial_arm()
    rng = np.random.default_rng(1)
    targets = tip_positions(chain, rng.uniform(chain.lower, chain.upper, (12, 3)))
    ours = solve_batch(chain, targets, options=SolverOptions(**{**OPTIONS.__dict__, "max_iterations": sweeps}))
    for f, target in enumerate(targets):
        angles = [0.0, 0.0, 0.0]
        for _ in range(sweeps):
            _inverse_kinematics(target, angles, chain.lower, chain.upper)
        np.testing.assert_allclose(ours.q[f], angles, atol=1e-12)


def test_one_sweep_per_call_gives_the_follow_look_from_the_previous_pose() -> None:
    chain = tutorial_arm()
    target = np.array([1.0, 1.5, 0.5])
    one_sweep = SolverOptions(**{**OPTIONS.__dict__, "max_iterations": 1})
    pose = np.zeros(3)
    distances = []
    for _ in range(200):  # 200 "frames", each continuing from the previous frame's pose
        result = solve(chain, target, initial=pose, options=one_sweep)
        assert result.iterations <= 1
        pose = result.q
        distances.append(result.error)
    assert distances[-1] < distances[0] * 0.25  # fixed-rate descent: slow, and it oscillates
    assert chain.limit_violation(pose) == 0.0


def test_stops_at_once_under_the_distance_threshold() -> None:
    chain = tutorial_arm()
    pose = np.array([0.2, 0.3, -0.4])
    result = solve(chain, tip_positions(chain, pose[None])[0], initial=pose, options=OPTIONS)
    assert result.iterations == 0 and result.converged
    np.testing.assert_array_equal(result.q, pose)


def test_angles_are_clamped_to_each_joints_limits() -> None:
    chain = tutorial_arm()
    greedy = SolverOptions(**{**OPTIONS.__dict__, "learning_rate": 50.0, "max_iterations": 20})
    result = solve(chain, (0.0, -0.5, 2.5), options=greedy)
    assert chain.limit_violation(result.q) == 0.0


def test_comfort_term_pulls_the_tutorial_solver_too() -> None:
    chain = tutorial_arm()
    target = np.array([0.0, 0.0, 5.0])  # out of reach: only comfort decides the final pose
    comfort_angles = np.array([0.0, 0.5, 0.5])
    runs = SolverOptions(**{**OPTIONS.__dict__, "max_iterations": 300})
    free = solve(chain, target, initial=comfort_angles, options=runs)
    held = solve(chain, target, comfort=ComfortPose(comfort_angles, weights=1.0), options=runs)
    assert np.linalg.norm(held.q - comfort_angles) < np.linalg.norm(free.q - comfort_angles)
