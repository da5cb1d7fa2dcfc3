"""Writing angles back: each bone keeps its rotation mode, values stay continuous, no-op writes skip."""

from __future__ import annotations

import math

import numpy as np
import pytest
from blender_rigs import limit_rotation, straight_chain
from mathutils import Euler, Quaternion

from blender_ik_addon.blender.read import current_angles, read_chain, rotation_quaternion
from blender_ik_addon.blender.write import angles_to_channels, read_channel, write_pose
from blender_ik_addon.core import euler_to_matrix

MODES = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX", "QUATERNION", "AXIS_ANGLE")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("constraint_order", ["AUTO", "ZYX"])
def test_every_rotation_mode_round_trips(mode: str, constraint_order: str) -> None:
    rig = straight_chain(3)
    for name in ("b0", "b1", "b2"):
        rig.pose.bones[name].rotation_mode = mode
        limit_rotation(rig, name, order=constraint_order)  # sets the solver's order, limits nothing
    binding = read_chain(rig, "b2", 3)
    rng = np.random.default_rng(1)
    for _ in range(10):
        angles = rng.uniform(-1.4, 1.4, size=(3, 3))
        assert write_pose(rig, binding, angles)
        for bone, joint_angles in zip(binding.bones, angles, strict=False):
            pbone = rig.pose.bones[bone.name]
            assert pbone.rotation_mode == mode  # never changed
            want = euler_to_matrix(joint_angles, bone.order)
            got = np.array(rotation_quaternion(pbone).to_matrix())
            np.testing.assert_allclose(got, want, atol=1e-6)
            back = current_angles(pbone, bone.order)  # read -> same rotation in the solver's order
            np.testing.assert_allclose(euler_to_matrix(back, bone.order), want, atol=1e-6)


def test_noop_write_is_skipped() -> None:
    rig = straight_chain(3)
    binding = read_chain(rig, "b2", 3)
    angles = np.array([[0.1, 0.2, 0.3], [0.0, 0.5, 0.0], [0.2, 0.0, 0.0]])
    assert write_pose(rig, binding, angles)
    assert not write_pose(rig, binding, angles + 1e-8)


def test_euler_of_another_order_stays_compatible_with_the_current_value() -> None:
    rig = straight_chain(2)
    pbone = rig.pose.bones["b1"]
    pbone.rotation_mode = "XYZ"
    pbone.rotation_euler = (2 * math.pi + 0.1, 0.0, 0.0)  # the animator's value is past a full turn
    limit_rotation(rig, "b1", order="ZXY")
    binding = read_chain(rig, "b1", 2)
    joint_angles = np.array(Euler((0.2, 0.0, 0.0), "XYZ").to_matrix().to_euler("ZXY"))
    values = angles_to_channels(binding.bones[1], binding.chain.joints[1], joint_angles[None], read_channel(pbone))
    np.testing.assert_allclose(values[0], (2 * math.pi + 0.2, 0.0, 0.0), atol=1e-6)  # no 360° jump


def test_unlimited_euler_axes_unwrap_but_limited_ones_stay_exact() -> None:
    rig = straight_chain(2)
    rig.pose.bones["b1"].rotation_mode = "XYZ"  # bones are created in QUATERNION mode
    limit_rotation(rig, "b1", x=(-170, 170))
    binding = read_chain(rig, "b1", 2)
    bone, joint = binding.bones[1], binding.chain.joints[1]
    previous = np.array([0.0, 3.1, 0.0])
    angles = np.array([[0.5, -3.1, 0.0], [-2.9, -3.0, 0.0]])
    values = angles_to_channels(bone, joint, angles, previous)
    np.testing.assert_allclose(values[:, 1], [2 * math.pi - 3.1, 2 * math.pi - 3.0])  # Y: no jump
    np.testing.assert_allclose(values[:, 0], [0.5, -2.9])  # X is limited: written as solved


def test_quaternion_and_axis_angle_keys_do_not_flip() -> None:
    rig = straight_chain(2)
    binding = read_chain(rig, "b1", 2)
    joint = binding.chain.joints[1]
    # A rotation about X sweeping through 180°: matrix_to_quaternion flips sign there.
    angles = np.stack([np.linspace(2.5, 3.8, 20), np.zeros(20), np.zeros(20)], axis=1)
    for mode in ("QUATERNION", "AXIS_ANGLE"):
        rig.pose.bones["b1"].rotation_mode = mode
        binding = read_chain(rig, "b1", 2)
        values = angles_to_channels(binding.bones[1], joint, angles, read_channel(rig.pose.bones["b1"]))
        assert np.max(np.abs(np.diff(values, axis=0))) < 0.2, mode
        for value, angle in zip(values, angles, strict=False):
            quat = Quaternion(value) if mode == "QUATERNION" else Quaternion(value[1:], value[0])
            np.testing.assert_allclose(np.array(quat.to_matrix()), euler_to_matrix(angle, "XYZ"), atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_one_frame_and_batch_conversions_agree(mode: str) -> None:
    # Live writes convert one frame with mathutils, bakes many with numpy: same numbers.
    rig = straight_chain(2)
    rig.pose.bones["b1"].rotation_mode = mode
    limit_rotation(rig, "b1", order="YZX")
    binding = read_chain(rig, "b1", 2)
    bone, joint = binding.bones[1], binding.chain.joints[1]
    angles = np.random.default_rng(2).uniform(-3, 3, size=(40, 3))
    previous = read_channel(rig.pose.bones["b1"])
    batch = angles_to_channels(bone, joint, angles, previous)
    for f in range(len(angles)):
        one = angles_to_channels(bone, joint, angles[f:f + 1], previous)[0]
        np.testing.assert_allclose(one, batch[f], atol=1e-6)  # mathutils works in float32
        previous = batch[f]
