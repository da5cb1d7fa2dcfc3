import numpy as np
import pytest

from blender_ik_addon.core import (
    EULER_ORDERS,
    euler_to_matrix,
    matrix_to_euler,
    matrix_to_quaternion,
    quaternion_to_matrix,
    rotation_vector,
)
from blender_ik_addon.core.rotations import axis_rotations


def _axis(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return {
        0: np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        1: np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        2: np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


@pytest.mark.parametrize("order", EULER_ORDERS)
def test_euler_order_applies_first_letter_first(order: str) -> None:
    angles = np.array([0.3, -0.5, 0.7])
    index = ["XYZ".index(c) for c in order]
    expected = _axis(index[2], angles[index[2]]) @ _axis(index[1], angles[index[1]]) @ _axis(index[0], angles[index[0]])
    np.testing.assert_allclose(euler_to_matrix(angles, order), expected, atol=1e-15)


@pytest.mark.parametrize("order", EULER_ORDERS)
def test_euler_round_trip(order: str) -> None:
    rng = np.random.default_rng(0)
    angles = rng.uniform([-np.pi, -1.5, -np.pi], [np.pi, 1.5, np.pi], (200, 3))
    angles = angles[:, ["XYZ".index(c) for c in order]]  # keep the middle angle in range
    middle = "XYZ".index(order[1])
    angles[:, middle] = rng.uniform(-1.5, 1.5, 200)
    back = matrix_to_euler(euler_to_matrix(angles, order), order)
    np.testing.assert_allclose(euler_to_matrix(back, order), euler_to_matrix(angles, order), atol=1e-12)
    np.testing.assert_allclose(back, angles, atol=1e-9)


def test_quaternion_round_trip_and_convention() -> None:
    # 90 degrees about Z: w = cos 45, z = sin 45 (w, x, y, z order)
    q = np.array([np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])
    np.testing.assert_allclose(quaternion_to_matrix(q), _axis(2, np.pi / 2), atol=1e-15)
    rng = np.random.default_rng(1)
    quats = rng.normal(size=(100, 4))
    mats = quaternion_to_matrix(quats)
    np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(mats)), mats, atol=1e-12)
    assert np.all(matrix_to_quaternion(mats)[:, 0] >= 0)


def test_rotation_vector_is_axis_times_angle() -> None:
    axis = np.array([1.0, 2.0, -2.0]) / 3.0
    for angle in (0.0, 1e-9, 0.5, 3.0):
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        rot = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
        np.testing.assert_allclose(rotation_vector(rot), axis * angle, atol=1e-9)


def test_one_frame_of_axis_rotations_is_the_batched_answer_bit_for_bit() -> None:
    """The live pass's shape ``(1, 3)`` takes a shortcut; its matrices are the general path's, to the
    bit and the sign of zero (a live frame and a bake of it must agree)."""
    rng = np.random.default_rng(3)
    for draw in range(2000):
        angles = rng.uniform(-7.0, 7.0, (1, 3))
        if draw % 5 == 0:
            angles[0, draw % 3] = 0.0 if draw % 2 else -0.0
        one = axis_rotations(angles)
        batched = axis_rotations(np.vstack([angles, angles]))[:1]
        np.testing.assert_array_equal(one, batched)
        assert (np.signbit(one) == np.signbit(batched)).all()
