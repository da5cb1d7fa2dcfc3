"""Reading chains: the core's FK must equal Blender's own pose evaluation, and setup mistakes must
come back as errors that name the bone, constraint or axis."""

from __future__ import annotations

import math

import bpy
import numpy as np
import pytest
from blender_rigs import BoneDef, empty, evaluated, limit_rotation, make_armature, straight_chain
from mathutils import Euler, Matrix, Quaternion

from blender_ik_addon.blender.errors import RigSetupError
from blender_ik_addon.blender.read import chain_base, read_chain
from blender_ik_addon.blender.solving import current_pose
from blender_ik_addon.core import forward

MODES = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX", "QUATERNION", "AXIS_ANGLE")


def set_rotation(pbone: bpy.types.PoseBone, mode: str, quat: Quaternion) -> None:
    """Give a bone the rotation ``quat`` in rotation mode ``mode``."""
    pbone.rotation_mode = mode
    if mode == "QUATERNION":
        pbone.rotation_quaternion = quat
    elif mode == "AXIS_ANGLE":
        axis, angle = quat.to_axis_angle()
        pbone.rotation_axis_angle = (angle, *axis)
    else:
        pbone.rotation_euler = quat.to_euler(mode)


def awkward_rig() -> bpy.types.Object:
    """A rig under a rotated, scaled, parented object: an offset (non-connected) chain root under a
    posed parent bone, a rolled connected bone, a non-connected bone with a pose location, and a
    scaled tip."""
    holder = empty("Holder", (0.5, -1.0, 2.0))
    holder.rotation_euler = (0.3, -0.5, 1.1)
    holder.scale = (1.5, 1.5, 1.5)
    rig = make_armature([
        BoneDef("root", (0, 0, 0), (0, 0.5, 0.2)),
        BoneDef("b0", (0.2, 0.7, 0.1), (0.3, 1.5, 0.4), roll=0.4, parent="root"),
        BoneDef("b1", (0.3, 1.5, 0.4), (0.1, 2.4, 0.0), roll=0.7, parent="b0", connect=True),
        BoneDef("b2", (0.2, 2.6, 0.1), (0.5, 3.2, 0.6), roll=-1.2, parent="b1"),
        BoneDef("b3", (0.5, 3.2, 0.6), (0.5, 3.9, 1.1), roll=2.0, parent="b2", connect=True),
    ])
    rig.parent = holder
    rig.location = (0.1, 0.2, -0.3)
    rig.rotation_euler = (-0.4, 0.2, 0.9)
    rig.scale = (0.8, 1.2, 1.0)  # non-uniform: the base is a general affine
    pose = rig.pose.bones
    pose["root"].rotation_mode = "XYZ"
    pose["root"].rotation_euler = (0.3, 0.2, -0.5)
    pose["root"].location = (0.1, 0.0, -0.2)
    pose["b2"].location = (0.05, -0.1, 0.2)
    pose["b3"].scale = (0.7, 1.3, 0.9)
    return rig


def fk_world(rig: bpy.types.Object, tip: str, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(joint origins (n, 3), tip (3,)) in world space from the core's FK of the read chain."""
    binding = read_chain(rig, tip, length)
    chain = binding.chain.with_base(chain_base(evaluated(rig), binding))
    q = chain.compress(current_pose(rig, binding))[None]
    kin = forward(chain, q, with_axes=False)
    origins = kin.origins[0] @ chain.base[:3, :3].T + chain.base[:3, 3]
    return origins, kin.tip[0]


def blender_world(rig: bpy.types.Object, bones: list[str]) -> tuple[np.ndarray, np.ndarray]:
    ev = evaluated(rig)
    heads = np.array([np.array(ev.matrix_world @ ev.pose.bones[b].head) for b in bones])
    return heads, np.array(ev.matrix_world @ ev.pose.bones[bones[-1]].tail)


def test_fk_matches_blender_for_random_configurations_and_every_rotation_mode() -> None:
    rig = awkward_rig()
    bones = ["b0", "b1", "b2", "b3"]
    # b1's solver order comes from a Limit Rotation constraint (limits off), unlike its own mode.
    limit_rotation(rig, "b1", order="ZXY")
    rng = np.random.default_rng(0)
    for config in range(24):
        for i, name in enumerate(bones):
            quat = Quaternion(rng.normal(size=4)).normalized()
            set_rotation(rig.pose.bones[name], MODES[(config + 3 * i) % len(MODES)], quat)
        origins, tip = fk_world(rig, "b3", 4)
        heads, tail = blender_world(rig, bones)
        np.testing.assert_allclose(origins, heads, atol=1e-5)
        np.testing.assert_allclose(tip, tail, atol=1e-5)


def test_chain_root_parent_may_be_animated_and_length_zero_reaches_the_root() -> None:
    rig = awkward_rig()
    rig.pose.bones["root"].rotation_euler = (1.0, -0.3, 0.4)  # the base follows the parent's pose
    _, tip = fk_world(rig, "b3", 4)
    _, tail = blender_world(rig, ["b0", "b1", "b2", "b3"])
    np.testing.assert_allclose(tip, tail, atol=1e-5)
    whole = read_chain(rig, "b3", 0)
    assert whole.bone_names == ("root", "b0", "b1", "b2", "b3")
    assert whole.root_parent is None


def test_limits_orders_and_locks_are_read_in_radians() -> None:
    rig = straight_chain(3)
    pose = rig.pose.bones
    pose["b1"].rotation_mode = "ZYX"
    limit_rotation(rig, "b1", order="AUTO", x=(-30, 60), z=(10, 80))
    pose["b1"].use_ik_limit_x = True
    pose["b1"].ik_min_x, pose["b1"].ik_max_x = math.radians(-10), math.radians(90)
    pose["b2"].lock_ik_y = True
    muted = limit_rotation(rig, "b2", x=(0, 0))
    muted.mute = True  # ignored
    zero = limit_rotation(rig, "b0", y=(0, 0))
    zero.influence = 0.0  # ignored
    binding = read_chain(rig, "b2", 3)
    b0, b1, b2 = binding.chain.joints
    assert b1.order == "ZYX"  # AUTO -> the bone's own order
    np.testing.assert_allclose(b1.lower[[0, 2]], np.radians([-10, 10]))
    np.testing.assert_allclose(b1.upper[[0, 2]], np.radians([60, 80]))
    assert np.isinf(b1.lower[1])
    assert b2.free == (True, False, True)
    assert np.all(np.isinf(b2.lower)) and np.all(np.isinf(b0.lower))


@pytest.mark.parametrize("space", ["WORLD", "POSE", "LOCAL_WITH_PARENT", "CUSTOM"])
def test_other_owner_spaces_are_refused_naming_bone_and_constraint(space: str) -> None:
    rig = straight_chain(3)
    con = limit_rotation(rig, "b1", space=space, x=(-10, 10))
    con.name = "Elbow Limit"
    if space == "CUSTOM":
        con.space_object = empty("Space")  # without one the constraint is invalid and ignored
    assert con.is_valid
    with pytest.raises(RigSetupError, match=r"'b1'.*'Elbow Limit'.*Local"):
        read_chain(rig, "b2", 3)


def test_limits_that_leave_nothing_name_bone_and_axis() -> None:
    rig = straight_chain(3)
    limit_rotation(rig, "b1", x=(20, 80))
    rig.pose.bones["b1"].use_ik_limit_x = True
    rig.pose.bones["b1"].ik_max_x = math.radians(10)
    with pytest.raises(RigSetupError, match=r"'b1', axis X"):
        read_chain(rig, "b2", 3)


def test_partial_lock_in_another_euler_order_is_refused() -> None:
    rig = straight_chain(3)
    rig.pose.bones["b1"].rotation_mode = "XYZ"
    rig.pose.bones["b1"].lock_rotation[0] = True
    limit_rotation(rig, "b1", order="ZXY", z=(-10, 10))
    with pytest.raises(RigSetupError, match=r"'b1'.*XYZ.*ZXY"):
        read_chain(rig, "b2", 3)
    rig.pose.bones["b1"].lock_rotation = (True, True, True)  # a fully locked joint is fine in any order
    assert not any(read_chain(rig, "b2", 3).chain.joints[1].free)


def test_locked_axis_keeps_its_current_value() -> None:
    rig = straight_chain(3)
    rig.pose.bones["b1"].rotation_mode = "YXZ"
    rig.pose.bones["b1"].rotation_euler = (0.3, -0.2, 0.1)
    rig.pose.bones["b1"].lock_rotation[1] = True
    joint = read_chain(rig, "b2", 3).chain.joints[1]
    assert joint.free == (True, False, True)
    assert joint.fixed[1] == pytest.approx(-0.2, abs=1e-7)


def test_setup_errors_name_what_is_wrong() -> None:
    rig = straight_chain(3)
    mesh = bpy.data.objects.new("Mesh", bpy.data.meshes.new("Mesh"))
    with pytest.raises(RigSetupError, match="'Mesh' is a mesh, not an armature"):
        read_chain(mesh, "b2", 2)
    with pytest.raises(RigSetupError, match="no bone 'nope'"):
        read_chain(rig, "nope", 2)
    with pytest.raises(RigSetupError, match="chain length 5 is longer than the hierarchy"):
        read_chain(rig, "b2", 5)
    rig.pose.bones["b1"].scale = (1.0, 2.0, 1.0)
    with pytest.raises(RigSetupError, match="'b1': pose scale"):
        read_chain(rig, "b2", 3)
    rig.pose.bones["b1"].scale = (1.0, 1.0, 1.0)
    copy = rig.pose.bones["b1"].constraints.new("COPY_ROTATION")
    copy.name, copy.target = "Copy", empty("Other")
    with pytest.raises(RigSetupError, match="'b1': constraint 'Copy'"):
        read_chain(rig, "b2", 3)


def test_blender_ik_constraint_over_the_chain_is_refused() -> None:
    rig = straight_chain(4)
    target = empty()
    con = rig.pose.bones["b3"].constraints.new("IK")
    con.target, con.chain_count = target, 2
    with pytest.raises(RigSetupError, match="Blender's IK constraint"):
        read_chain(rig, "b2", 2)  # b2 is in the IK's chain (b3, b2)
    assert read_chain(rig, "b1", 2).bone_names == ("b0", "b1")  # out of its reach: fine


def test_rest_of_connected_bone_ignores_pose_location() -> None:
    rig = straight_chain(3)
    rig.pose.bones["b1"].location = (1.0, 0.0, 0.0)  # connected: Blender ignores it
    _, tip = fk_world(rig, "b2", 3)
    np.testing.assert_allclose(tip, blender_world(rig, ["b0", "b1", "b2"])[1], atol=1e-6)
    np.testing.assert_allclose(tip, (0, 3, 0), atol=1e-6)


def test_euler_matrix_helpers_agree_with_mathutils() -> None:
    # Guards the convention the whole adapter relies on: core Euler "XYZ" == mathutils "XYZ".
    from blender_ik_addon.core.rotations import euler_to_matrix

    for order in MODES[:6]:
        angles = (0.3, -1.1, 2.0)
        np.testing.assert_allclose(euler_to_matrix(angles, order), np.array(Euler(angles, order).to_matrix()),
                                   atol=1e-6)
    np.testing.assert_allclose(np.array(Matrix.Identity(4)), np.eye(4))
