"""Live solving as Blender evaluates it: reach, limits honoured, locks kept, determinism, comfort."""

from __future__ import annotations

import itertools
import math

import bpy
import numpy as np
import pytest
from blender_rigs import (
    add_chain,
    empty,
    evaluated,
    limit_rotation,
    pose_matrices,
    straight_chain,
    world_head,
    world_tail,
)
from mathutils import Matrix

from blender_ik_addon.blender.read import chain_base, current_angles, read_chain
from blender_ik_addon.blender.status import get_status
from blender_ik_addon.core import tip_positions


def solve_at(frame: int = 1) -> None:
    bpy.context.scene.frame_set(frame)  # fires the live handler


def local_rotation_angle(obj: bpy.types.Object, bone: str) -> float:
    """Angle (radians) of a bone's evaluated rotation relative to its parent and rest."""
    ev = evaluated(obj)
    pbone = ev.pose.bones[bone]
    parent = pbone.parent
    rest = obj.data.bones[bone].matrix_local
    if parent is not None:
        rest = parent.matrix @ obj.data.bones[parent.name].matrix_local.inverted() @ rest
    return (rest.inverted() @ pbone.matrix).to_quaternion().angle


def pose_matrices_unconstrained(obj: bpy.types.Object, bones: list[str]) -> np.ndarray:
    """Pose matrices with every constraint muted (live solving paused so nothing re-solves)."""
    chains = obj.ik_chains.chains
    live = [c.enabled for c in chains]
    for chain in chains:
        chain.enabled = False
    constraints = [c for pbone in obj.pose.bones for c in pbone.constraints]
    for con in constraints:
        con.mute = True
    out = pose_matrices(obj, bones)
    for con in constraints:
        con.mute = False
    for chain, was in zip(chains, live, strict=False):
        chain.enabled = was
    return out


def reachable_targets(obj: bpy.types.Object, tip: str, length: int, count: int, seed: int) -> np.ndarray:
    """World targets the chain can reach within its limits (FK of random in-limit poses)."""
    binding = read_chain(obj, tip, length)
    chain = binding.chain.with_base(chain_base(evaluated(obj), binding))
    rng = np.random.default_rng(seed)
    low = np.where(np.isfinite(chain.lower), chain.lower, -math.pi)
    high = np.where(np.isfinite(chain.upper), chain.upper, math.pi)
    return tip_positions(chain, rng.uniform(low, high, size=(count, chain.n_dofs)))


def test_chain_reaches_a_target_on_frame_change() -> None:
    rig = straight_chain(3)
    target = empty(location=(1.0, 1.5, 0.7))
    add_chain(rig, "b2", 3, target, name="arm")
    solve_at(1)
    np.testing.assert_allclose(world_tail(rig, "b2"), target.location, atol=1e-4)
    status = get_status(rig.name, "arm")
    assert status.solved and status.converged and status.residual < 1e-4


def limited_rig() -> bpy.types.Object:
    """Three bones with Limit Rotation constraints (several orders) and IK limits/locks."""
    rig = straight_chain(3)
    pose = rig.pose.bones
    pose["b0"].rotation_mode = "YXZ"
    limit_rotation(rig, "b0", x=(-60, 60), y=(-90, 90), z=(-45, 45))
    pose["b1"].rotation_mode = "QUATERNION"
    limit_rotation(rig, "b1", order="ZXY", x=(0, 150), y=(-10, 10), z=(-20, 20))
    pose["b2"].rotation_mode = "XZY"
    limit_rotation(rig, "b2", y=(-30, 30))
    pose["b2"].use_ik_limit_x = True
    pose["b2"].ik_min_x, pose["b2"].ik_max_x = math.radians(-40), math.radians(35)
    pose["b2"].use_ik_limit_z = True
    pose["b2"].ik_min_z, pose["b2"].ik_max_z = math.radians(-25), math.radians(25)
    return rig


def test_limits_hold_as_blender_evaluates_them_and_reachable_targets_are_reached() -> None:
    rig = limited_rig()
    target = empty()
    add_chain(rig, "b2", 3, target, name="arm")
    bones = ["b0", "b1", "b2"]
    for point in reachable_targets(rig, "b2", 3, 12, seed=3):
        target.location = point
        solve_at(1)
        np.testing.assert_allclose(world_tail(rig, "b2"), point, atol=2e-4)
        np.testing.assert_allclose(pose_matrices_unconstrained(rig, bones), pose_matrices(rig, bones), atol=1e-5)
        b2 = current_angles(rig.pose.bones["b2"], "XZY")
        assert math.radians(-40) - 1e-6 <= b2[0] <= math.radians(35) + 1e-6
        assert math.radians(-25) - 1e-6 <= b2[2] <= math.radians(25) + 1e-6


def test_out_of_limit_target_gives_a_pose_within_limits_not_convergence() -> None:
    rig = limited_rig()
    target = empty(location=(0.0, -2.5, 0.0))  # behind the root: needs angles the limits forbid
    add_chain(rig, "b2", 3, target, name="arm")
    solve_at(1)
    status = get_status(rig.name, "arm")
    assert status.solved and not status.converged and status.residual > 0.1
    bones = ["b0", "b1", "b2"]
    np.testing.assert_allclose(pose_matrices_unconstrained(rig, bones), pose_matrices(rig, bones), atol=1e-5)


def test_middle_joint_locked_by_limit_rotation_stays_straight_where_blender_ik_bends_it() -> None:
    target = empty(location=(0.0, 0.0, 0.0))
    ours = straight_chain(3, name="Ours")
    limit_rotation(ours, "b1", x=(0, 0), y=(0, 0), z=(0, 0))
    theirs = straight_chain(3, name="Blender", origin=(5.0, 0.0, 0.0))
    limit_rotation(theirs, "b1", x=(0, 0), y=(0, 0), z=(0, 0))
    # A target the root and tip joints reach with the middle joint straight.
    goal = np.array(Matrix.Rotation(0.6, 4, "Z") @ Matrix.Rotation(0.4, 4, "X") @ Matrix.Translation((0, 2, 0))
                    @ Matrix.Rotation(1.1, 4, "X") @ Matrix.Translation((0, 1, 0)))[:3, 3]
    target.location = goal
    blender_target = empty("BlenderTarget", goal + np.array([5.0, 0.0, 0.0]))
    ik = theirs.pose.bones["b2"].constraints.new("IK")
    ik.target, ik.chain_count = blender_target, 3
    add_chain(ours, "b2", 3, target, name="leg")
    solve_at(1)
    np.testing.assert_allclose(world_tail(ours, "b2"), goal, atol=1e-4)
    assert local_rotation_angle(ours, "b1") < 1e-4
    np.testing.assert_allclose(world_tail(theirs, "b2"), blender_target.location, atol=1e-2)
    assert math.degrees(local_rotation_angle(theirs, "b1")) > 5.0  # Blender's IK ignores the limit


def test_limit_range_excluding_zero_is_respected() -> None:
    rig = straight_chain(3)
    rig.pose.bones["b1"].rotation_mode = "XYZ"
    rig.pose.bones["b1"].lock_rotation = (False, True, True)
    limit_rotation(rig, "b1", x=(20, 80))
    target = empty()
    add_chain(rig, "b2", 3, target, name="arm")
    for point, reachable in (((0.0, 2.2, 1.2), True), ((0.0, 3.0, 0.0), False)):  # straight needs 0°
        target.location = point
        solve_at(1)
        x = rig.pose.bones["b1"].rotation_euler[0]
        assert math.radians(20) - 1e-6 <= x <= math.radians(80) + 1e-6
        assert rig.pose.bones["b1"].rotation_euler[1] == 0 and rig.pose.bones["b1"].rotation_euler[2] == 0
        assert get_status(rig.name, "arm").converged is reachable


def test_shuffled_frame_order_gives_identical_poses() -> None:
    rig = limited_rig()
    target = empty()
    points = reachable_targets(rig, "b2", 3, 4, seed=5)
    for frame, point in zip((1, 8, 15, 22), points, strict=False):
        target.location = point
        target.keyframe_insert("location", frame=frame)
    add_chain(rig, "b2", 3, target, name="arm")
    bones = ["b0", "b1", "b2"]
    frames = list(range(1, 23))

    def poses(order: list[int]) -> dict[int, np.ndarray]:
        out = {}
        for frame in order:
            solve_at(frame)
            out[frame] = pose_matrices(rig, bones)
        return out

    forward = poses(frames)
    shuffled = poses(list(np.random.default_rng(0).permutation(frames)))
    backward = poses(frames[::-1])
    for frame in frames:
        np.testing.assert_allclose(shuffled[frame], forward[frame], atol=1e-6)
        np.testing.assert_allclose(backward[frame], forward[frame], atol=1e-6)


def test_comfort_blend_interpolates_toward_the_captured_pose() -> None:
    rig = straight_chain(3)
    bpy.context.view_layer.objects.active = rig
    target = empty(location=(1.2, 1.2, 0.5))
    chain = add_chain(rig, "b2", 3, target, name="arm", enabled=False)
    pose = rig.pose.bones
    pose["b0"].rotation_quaternion = Matrix.Rotation(0.3, 3, "Z").to_quaternion()
    pose["b1"].rotation_quaternion = Matrix.Rotation(0.8, 3, "X").to_quaternion()
    assert bpy.ops.ikchains.capture_comfort() == {"FINISHED"}
    comfort = pose_matrices(rig, ["b0", "b1", "b2"])
    chain.comfort_blend = 1.0
    chain.enabled = True
    solve_at(1)
    np.testing.assert_allclose(pose_matrices(rig, ["b0", "b1", "b2"]), comfort, atol=1e-5)
    chain.comfort_blend = 0.0
    solve_at(1)
    np.testing.assert_allclose(world_tail(rig, "b2"), target.location, atol=1e-4)
    chain.comfort_blend = 0.5
    solve_at(1)
    gap = np.linalg.norm(world_tail(rig, "b2") - np.array(target.location))
    assert 1e-3 < gap < np.linalg.norm(np.array(comfort[2] @ (0, 1, 0, 1))[:3] - np.array(target.location))


def test_comfort_weight_picks_among_reaching_poses_and_still_reaches() -> None:
    rig = straight_chain(3)
    bpy.context.view_layer.objects.active = rig
    target = empty(location=(0.8, 1.8, 0.4))
    chain = add_chain(rig, "b2", 3, target, name="arm", enabled=False)
    rig.pose.bones["b1"].rotation_quaternion = Matrix.Rotation(0.5, 3, "Z").to_quaternion()
    bpy.ops.ikchains.capture_comfort()
    chain.comfort_weight = 1.0
    chain.enabled = True
    solve_at(1)
    np.testing.assert_allclose(world_tail(rig, "b2"), target.location, atol=1e-4)


def test_several_chains_per_armature_each_reach_their_target() -> None:
    from blender_rigs import BoneDef, make_armature

    legs = []
    for i in range(4):
        angle = i * math.pi / 2
        direction = np.array([math.cos(angle), math.sin(angle), 0.0])
        legs += [BoneDef(f"leg{i}.0", (0, 0, 0.5), tuple(direction * 0.8 + (0, 0, 0.8))),
                 BoneDef(f"leg{i}.1", tuple(direction * 0.8 + (0, 0, 0.8)), tuple(direction * 1.6 + (0, 0, 0.3)),
                         parent=f"leg{i}.0", connect=True),
                 BoneDef(f"leg{i}.2", tuple(direction * 1.6 + (0, 0, 0.3)), tuple(direction * 1.9),
                         parent=f"leg{i}.1", connect=True)]
    rig = make_armature([BoneDef("body", (0, 0, 0), (0, 0, 0.5))]
                        + [BoneDef(b.name, b.head, b.tail, parent=b.parent or "body", connect=b.connect) for b in legs])
    targets = []
    for i in range(4):
        tail = world_tail(rig, f"leg{i}.2")
        targets.append(empty(f"foot{i}", tail + np.array([0.2, -0.1, 0.15])))
        add_chain(rig, f"leg{i}.2", 3, targets[-1], name=f"leg{i}")
    rig.pose.bones["body"].location = (0.0, 0.0, 0.1)  # the body moves: every leg's base moves
    solve_at(1)
    for i in range(4):
        np.testing.assert_allclose(world_tail(rig, f"leg{i}.2"), targets[i].location, atol=1e-4)
        assert get_status(rig.name, f"leg{i}").converged


def test_chains_sharing_bones_are_solved_together() -> None:
    rig = straight_chain(4)
    first, second = empty("T1", (0.9, 2.6, 0.6)), empty("T2", (0.3, 1.8, 0.6))  # 1 apart: b3 long
    add_chain(rig, "b3", 3, first, name="long")
    add_chain(rig, "b2", 2, second, name="short")  # its tip is a joint of the long chain
    solve_at(2)
    for name, other in (("long", "short"), ("short", "long")):
        status = get_status(rig.name, name)
        assert status.solved and status.converged, status.describe()
        assert f"shares bones with {other!r}: solved together" in status.message
    np.testing.assert_allclose(world_tail(rig, "b3"), first.location, atol=1e-4)
    np.testing.assert_allclose(world_tail(rig, "b2"), second.location, atol=1e-4)


def test_follow_orientation_turns_the_tip_bone_like_the_target() -> None:
    rig = straight_chain(3)
    target = empty(location=(0.5, 1.8, 0.6))
    target.rotation_euler = (0.4, -0.3, 1.0)
    add_chain(rig, "b2", 3, target, name="arm", follow_orientation=True)
    solve_at(1)
    ev = evaluated(rig)
    tip_rotation = (ev.matrix_world @ ev.pose.bones["b2"].matrix).to_quaternion()
    assert tip_rotation.rotation_difference(target.matrix_world.to_quaternion()).angle < 2e-3
    np.testing.assert_allclose(world_tail(rig, "b2"), target.location, atol=1e-4)


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_pole_picks_the_bend_direction(side: float) -> None:
    rig = straight_chain(2)
    target = empty(location=(0.0, 1.5, 0.0))
    pole = empty("Pole", (0.0, 0.75, 2.0 * side))
    add_chain(rig, "b1", 2, target, name="arm", pole=pole, pole_weight=1.0)
    solve_at(1)
    np.testing.assert_allclose(world_tail(rig, "b1"), target.location, atol=1e-4)
    elbow = world_head(rig, "b1") - np.array([0.0, 0.75, 0.0])
    assert elbow[2] * side > np.cos(np.radians(1.0)) * np.linalg.norm(elbow)  # aimed at the pole (within 1°)


def test_follow_mode_takes_one_step_per_frame_and_says_it_is_history_dependent() -> None:
    rig = straight_chain(3)
    target = empty(location=(1.0, 1.5, 0.5))
    add_chain(rig, "b2", 3, target, name="arm", follow_mode=True, learning_rate=0.2)
    gaps = []
    for frame in range(1, 6):
        solve_at(frame)
        gaps.append(np.linalg.norm(world_tail(rig, "b2") - np.array(target.location)))
    assert all(later < earlier for earlier, later in itertools.pairwise(gaps))
    assert "history-dependent" in get_status(rig.name, "arm").message


def stacked_rig() -> tuple[bpy.types.Object, bpy.types.Object, bpy.types.Object]:
    """A spine chain, a posed clavicle (in no chain) on it, and an arm chain hanging from that."""
    from blender_rigs import BoneDef, make_armature

    rig = make_armature([
        BoneDef("s0", (0, 0, 0), (0, 0, 1)), BoneDef("s1", (0, 0, 1), (0, 0, 2), parent="s0", connect=True),
        BoneDef("clavicle", (0, 0, 2), (0.5, 0, 2), parent="s1", connect=True),
        BoneDef("a0", (0.5, 0, 2), (1.5, 0, 2), parent="clavicle", connect=True),
        BoneDef("a1", (1.5, 0, 2), (2.5, 0, 2), parent="a0", connect=True),
    ])
    rig.pose.bones["clavicle"].rotation_quaternion = Matrix.Rotation(0.3, 3, "Y").to_quaternion()
    chest, hand = empty("Chest", (0.4, 0.3, 1.9)), empty("Hand", (1.2, 1.0, 2.4))
    add_chain(rig, "s1", 2, chest, name="spine")
    add_chain(rig, "a1", 2, hand, name="arm")
    return rig, chest, hand


def test_a_chain_on_a_chain_is_solved_on_the_freshly_solved_pose_in_one_pass() -> None:
    from blender_ik_addon import handlers

    rig, chest, hand = stacked_rig()
    bpy.app.handlers.depsgraph_update_post.remove(handlers.on_depsgraph_update_post)  # the frame handler alone
    try:
        for frame, (chest_at, hand_at) in enumerate([((-0.4, 0.3, 1.8), (0.5, 1.5, 2.8)),
                                                    ((0.6, -0.5, 1.7), (1.6, -0.6, 1.2))], start=2):
            chest.location, hand.location = chest_at, hand_at
            solve_at(frame)
            np.testing.assert_allclose(world_tail(rig, "s1"), chest_at, atol=1e-4)
            np.testing.assert_allclose(world_tail(rig, "a1"), hand_at, atol=1e-4)
    finally:
        bpy.app.handlers.depsgraph_update_post.append(handlers.on_depsgraph_update_post)


def test_a_chain_on_a_chain_bakes_in_one_pass() -> None:
    from blender_ik_addon.blender import bake_chains

    rig, chest, hand = stacked_rig()
    for frame, chest_at, hand_at in ((1, (-0.4, 0.3, 1.8), (0.5, 1.5, 2.8)), (9, (0.6, -0.5, 1.7), (1.6, -0.6, 1.2))):
        chest.location, hand.location = chest_at, hand_at
        chest.keyframe_insert("location", frame=frame)
        hand.keyframe_insert("location", frame=frame)
    report = bake_chains(rig, None, 1, 9, disable_live=True)
    assert report.path == "fcurves" and report.not_converged == 0
    for frame in (1, 4, 9):
        bpy.context.scene.frame_set(frame)
        np.testing.assert_allclose(world_tail(rig, "s1"), chest.matrix_world.translation, atol=2e-4)
        np.testing.assert_allclose(world_tail(rig, "a1"), hand.matrix_world.translation, atol=2e-4)
