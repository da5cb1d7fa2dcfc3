"""Chains that share bones, solved together (blender/groups.py): live, Key Current Frame, Bake."""

from __future__ import annotations

import math

import bpy
import numpy as np
import pytest
from blender_rigs import LEFT, RIGHT, SPINE, add_chain, empty, evaluated, limit_rotation, torso, torso_arms, world_tail

from blender_ik_addon.blender.bake import bake_chains, key_chains
from blender_ik_addon.blender.errors import RigSetupError
from blender_ik_addon.blender.status import get_status


def arms(rig: bpy.types.Object, left: tuple[float, ...], right: tuple[float, ...], **settings: object) -> tuple:
    return torso_arms(rig, left, right, **settings)


def test_two_arms_through_the_spine_reach_together_live() -> None:
    rig = torso()
    t_left, t_right = arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    for frame, shift in ((1, 0.0), (2, 0.05), (3, 0.1)):
        t_left.location.y = 0.25 + shift
        t_right.location.z = 1.6 - shift
        bpy.context.scene.frame_set(frame)
        for chain, target, tip in (("arm.L", t_left, "forearm.L"), ("arm.R", t_right, "forearm.R")):
            status = get_status(rig.name, chain)
            assert status.solved and status.converged, status.describe()
            assert "shares bones with" in status.message
            np.testing.assert_allclose(world_tail(rig, tip), target.location, atol=1e-4)
    # the shared spine bones moved (the chains reach through them), the bones below did not
    assert rig.pose.bones["spine.3"].rotation_quaternion.angle > 1e-4 or any(rig.pose.bones["spine.3"].rotation_euler)
    assert rig.pose.bones["spine.1"].matrix_basis == rig.pose.bones["spine.0"].matrix_basis  # identity both


def test_elbow_limits_and_a_limit_rotation_on_a_shared_bone_hold() -> None:
    rig = torso()
    limit_rotation(rig, "spine.3", x=(-5.0, 5.0), y=(-5.0, 5.0), z=(-5.0, 5.0))
    arms(rig, (0.35, 0.35, 1.3), (-0.3, 0.35, 1.75))
    bpy.context.scene.frame_set(1)
    ev = evaluated(rig)
    for name in ("forearm.L", "forearm.R"):
        basis = ev.pose.bones[name].matrix_basis.to_euler()
        assert abs(basis.x) < 1e-4 and abs(basis.y) < 1e-4  # locked IK axes
        lo, hi = (-math.radians(150), 0.0) if name.endswith("L") else (0.0, math.radians(150))
        assert lo - 1e-4 <= basis.z <= hi + 1e-4
    spine = ev.pose.bones["spine.3"].matrix_basis.to_euler()
    assert max(abs(a) for a in spine) <= math.radians(5.0) + 1e-4  # Limit Rotation held inside the solve
    for chain in ("arm.L", "arm.R"):
        assert get_status(rig.name, chain).converged, get_status(rig.name, chain).describe()


def test_an_unreachable_pair_gives_the_weighted_compromise_and_says_so() -> None:
    rig = torso()
    arms(rig, (2.0, 0.0, 1.55), (-2.0, 0.0, 1.55))
    bpy.context.scene.frame_set(1)
    left, right = get_status(rig.name, "arm.L"), get_status(rig.name, "arm.R")
    assert left.solved and right.solved and not left.converged and not right.converged
    assert "cannot all be reached at once" in left.message and "group residual" in left.message
    np.testing.assert_allclose(left.residual, right.residual, rtol=0.05)  # equal weights: a fair split
    rig.ik_chains.chains["arm.R"].weight = 0.1  # the left target counts ten times more
    bpy.context.scene.frame_set(2)
    assert get_status(rig.name, "arm.L").residual < 0.8 * get_status(rig.name, "arm.R").residual


def test_weight_zero_everywhere_is_refused_by_name_and_nothing_moves() -> None:
    rig = torso()
    t_left, _ = arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6), weight=0.0)
    before = [pb.matrix_basis.copy() for pb in rig.pose.bones]  # (the first chain solved alone when added)
    t_left.location.z += 0.1
    bpy.context.scene.frame_set(1)
    for chain in ("arm.L", "arm.R"):
        status = get_status(rig.name, chain)
        assert not status.solved
        assert "has Weight 0" in status.message and "'arm.L', 'arm.R'" in status.message
    assert [pb.matrix_basis for pb in rig.pose.bones] == before


def test_a_chain_at_weight_zero_does_not_pull_and_the_other_reaches_without_a_compromise_note() -> None:
    rig = torso()
    t_left, _ = arms(rig, (0.45, 0.25, 1.45), (-1.5, 0.3, 1.6))  # the right target out of reach
    rig.ik_chains.chains["arm.R"].weight = 0.0
    bpy.context.scene.frame_set(1)
    left, right = get_status(rig.name, "arm.L"), get_status(rig.name, "arm.R")
    assert left.solved and left.converged, left.describe()
    np.testing.assert_allclose(world_tail(rig, "forearm.L"), t_left.location, atol=1e-4)
    assert right.solved and not right.converged  # its residual is what it is: it does not pull
    assert "Weight 0: its target does not pull" in right.message
    for status in (left, right):  # nothing fights: no compromise is reported
        assert "cannot all be reached" not in status.message, status.message


def test_a_shared_bone_takes_the_comfort_pose_of_the_chain_that_captured_one() -> None:
    from blender_ik_addon.blender.groups import group_comfort, group_tree
    from blender_ik_addon.blender.read import read_chain
    from blender_ik_addon.blender.settings import chain_specs
    from blender_ik_addon.blender.solving import prepare

    rig = torso()
    arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    bpy.context.view_layer.objects.active = rig
    rig.pose.bones["spine.3"].rotation_mode = "XYZ"
    rig.pose.bones["spine.3"].rotation_euler = (0.2, 0.0, 0.0)
    rig.ik_chains.active_index = list(rig.ik_chains.chains.keys()).index("arm.R")  # the second chain
    assert bpy.ops.ikchains.capture_comfort() == {"FINISHED"}
    specs = {spec.name: spec for spec in chain_specs(rig)}
    assert "spine.3" in specs["arm.R"].comfort and not specs["arm.L"].comfort
    members = [prepare(rig, specs[name], read_chain(rig, specs[name].tip_bone, specs[name].length))
               for name in ("arm.L", "arm.R")]
    group = group_tree(members)
    angles = group_comfort(group, members).angles
    spine = list(group.tree.joints.names).index("spine.3")
    right = members[1]
    np.testing.assert_allclose(angles[spine], right.comfort_angles[right.binding.bone_names.index("spine.3")])
    assert abs(angles[spine]).max() > 0.1  # arm.R's captured lean, not arm.L's rest pose


def test_a_chain_that_leaves_its_group_says_so_though_its_target_stands_still() -> None:
    rig = torso()
    arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    bpy.context.scene.frame_set(1)
    assert "shares bones with 'arm.L'" in get_status(rig.name, "arm.R").message
    rig.ik_chains.chains["arm.L"].chain_length = 3  # up to the clavicle: no bone shared any more
    bpy.context.scene.frame_set(2)  # nothing moves: the right arm's last pose still holds
    right = get_status(rig.name, "arm.R")
    assert right.solved and right.converged, right.describe()
    assert "shares bones" not in right.message, right.message
    assert "shares bones" not in get_status(rig.name, "arm.L").message


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_a_pole_bends_its_own_chain_of_the_group_toward_it(side: float) -> None:
    rig = torso()
    pole = empty("Pole", (0.35, side * 1.5, 1.45))  # in front of or behind the left arm
    t_left, _ = arms(rig, (0.4, 0.0, 1.3), (-0.4, 0.3, 1.6))
    rig.ik_chains.chains["arm.L"].pole = pole
    rig.ik_chains.chains["arm.L"].pole_weight = 1.0
    bpy.context.scene.frame_set(1)
    assert get_status(rig.name, "arm.L").converged and get_status(rig.name, "arm.R").converged
    ev = evaluated(rig)
    # As a pole is defined: the chain's interior joints, off the line from its root (spine.2's head)
    # to the target, point toward the pole's side of that line.
    root = np.array(ev.matrix_world @ ev.pose.bones["spine.2"].head)
    axis = np.array(t_left.location) - root
    axis /= np.linalg.norm(axis)
    toward = np.array(pole.location) - root
    toward -= axis * float(toward @ axis)
    for bone in ("upper_arm.L", "forearm.L"):
        offset = np.array(ev.matrix_world @ ev.pose.bones[bone].head) - root
        offset -= axis * float(offset @ axis)
        assert float(offset @ toward) > 0.0, bone


def test_pole_rule_turn_on_a_shared_chain_is_refused_by_name() -> None:
    rig = torso()
    arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    rig.ik_chains.chains["arm.L"].pole = empty("Pole", (0.5, -1.0, 1.5))
    rig.ik_chains.chains["arm.L"].pole_rule = "TURN"
    bpy.context.scene.frame_set(1)
    message = get_status(rig.name, "arm.R").message
    assert "chain 'arm.L' shares bone(s) 'spine.2', 'spine.3'" in message
    assert "has Pole Rule Turn Toward Pole" in message


def test_comfort_blend_on_a_shared_chain_is_refused_by_name_and_nothing_moves() -> None:
    # A blend after the solve, chain by chain, would give a shared bone two values and leave the
    # blended tip off the target the status reports reached.
    rig = torso()
    arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    bpy.context.scene.frame_set(1)
    before = [pb.matrix_basis.copy() for pb in rig.pose.bones]
    rig.ik_chains.chains["arm.L"].comfort_blend = 0.5
    bpy.context.scene.frame_set(2)
    for chain in ("arm.L", "arm.R"):
        status = get_status(rig.name, chain)
        assert not status.solved
        assert "chain 'arm.L' shares bone(s) 'spine.2', 'spine.3'" in status.message
        assert "has Comfort Blend above 0" in status.message
    assert [pb.matrix_basis for pb in rig.pose.bones] == before


def test_a_target_that_moves_with_the_other_chain_is_a_cycle_refused_by_name() -> None:
    rig = torso()
    _, t_right = arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    t_right.parent = rig
    t_right.parent_type = "BONE"
    t_right.parent_bone = "forearm.L"
    bpy.context.scene.frame_set(1)
    assert "solved together" in get_status(rig.name, "arm.R").message
    assert not get_status(rig.name, "arm.R").solved


def test_key_current_frame_keys_the_group_and_plays_back() -> None:
    rig = torso()
    t_left, t_right = arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6), enabled=False)
    scene = bpy.context.scene
    scene.frame_set(4)
    key_chains(rig, ["arm.L", "arm.R"])
    fcurves = {(fc.data_path, fc.array_index) for fc in _fcurves(rig)}
    bones = {path.split('"')[1] for path, _ in fcurves}
    assert bones == set(SPINE[2:] + LEFT[:3] + RIGHT[:3])  # the chains' bones, nothing else
    scene.frame_set(4)
    np.testing.assert_allclose(world_tail(rig, "forearm.L"), t_left.location, atol=1e-4)
    np.testing.assert_allclose(world_tail(rig, "forearm.R"), t_right.location, atol=1e-4)


def test_key_current_frame_on_one_chain_of_a_live_group_is_refused() -> None:
    rig = torso()
    arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    rig.ik_chains.chains["arm.L"].enabled = False
    status = key_chains(rig, ["arm.L"])["arm.L"]
    assert not status.solved and "solve or key them together" in status.message
    assert not _fcurves(rig)


@pytest.mark.parametrize("continuous", [False, True])
def test_bake_keys_the_group_and_playback_reaches_every_frame(continuous: bool) -> None:
    rig = torso()
    t_left, t_right = arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    for frame, (y, z) in ((1, (0.25, 1.6)), (10, (0.4, 1.45))):
        t_left.location.y, t_right.location.z = y, z
        t_left.keyframe_insert("location", frame=frame)
        t_right.keyframe_insert("location", frame=frame)
    report = bake_chains(rig, None, 1, 10, disable_live=True, continuous=continuous)
    assert report.not_converged == 0, report.summary()
    scene = bpy.context.scene
    for frame in range(1, 11):
        scene.frame_set(frame)
        np.testing.assert_allclose(world_tail(rig, "forearm.L"), np.array(t_left.matrix_world.translation), atol=2e-4)
        np.testing.assert_allclose(world_tail(rig, "forearm.R"), np.array(t_right.matrix_world.translation), atol=2e-4)
    steps = []
    previous = None
    for frame in range(1, 11):
        scene.frame_set(frame)
        bones = evaluated(rig).pose.bones
        quats = np.array([list(bones[b].matrix_basis.to_quaternion()) for b in SPINE[2:] + LEFT[:3]])
        if previous is not None:
            steps.append(np.abs(np.abs(np.einsum("ij,ij->i", quats, previous)) - 1.0).max())
        previous = quats
    assert max(steps) < 0.01  # smooth targets, smooth joints: no pop


def test_baking_one_chain_of_a_group_is_refused_by_name() -> None:
    rig = torso()
    arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    with pytest.raises(RigSetupError, match=r"shares bones with chain 'arm\.R'"):
        bake_chains(rig, ["arm.L"], 1, 3)


def test_a_chain_whose_group_mate_is_not_live_keys_and_bakes_alone_as_it_solves_live() -> None:
    """With arm.R's Live off, arm.L solves alone live; Key Current Frame and Bake of arm.L alone
    agree with that (the bake refused, asking for arm.R)."""
    rig = torso()
    t_left, _ = arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    rig.ik_chains.chains["arm.R"].enabled = False
    bpy.context.scene.frame_set(1)
    live = world_tail(rig, "forearm.L")
    assert key_chains(rig, ["arm.L"])["arm.L"].converged
    report = bake_chains(rig, ["arm.L"], 1, 3, disable_live=True)
    assert report.not_converged == 0, report.summary()
    bpy.context.scene.frame_set(2)
    bpy.context.scene.frame_set(1)
    np.testing.assert_allclose(world_tail(rig, "forearm.L"), live, atol=1e-5)
    np.testing.assert_allclose(world_tail(rig, "forearm.L"), t_left.location, atol=1e-4)


def _fcurves(obj: bpy.types.Object) -> list:
    from blender_ik_addon.blender.keys import iter_fcurves

    return list(iter_fcurves(obj))


@pytest.mark.parametrize("order", [("arm.R", "arm.L", "spine"), ("spine", "arm.L", "arm.R")])
def test_a_group_hanging_below_another_chain_follows_it_live_and_baked(order: tuple[str, ...]) -> None:
    rig = torso()
    targets = {"arm.L": empty("T.L", (0.45, 0.25, 1.45)), "arm.R": empty("T.R", (-0.4, 0.3, 1.6)),
               "spine": empty("T.spine", (0.08, 0.04, 1.28))}
    chains = {"arm.L": ("forearm.L", 5), "arm.R": ("forearm.R", 4), "spine": ("spine.1", 2)}  # arm.R from spine.3
    for name in order:  # the list order must not matter: the spine is solved first, then the arms' group
        tip, length = chains[name]
        add_chain(rig, tip, length, targets[name], name=name)
    scene = bpy.context.scene
    tips = {"arm.L": "forearm.L", "arm.R": "forearm.R", "spine": "spine.1"}
    scene.frame_set(2)
    for name, tip in tips.items():
        assert get_status(rig.name, name).converged, get_status(rig.name, name).describe()
        np.testing.assert_allclose(world_tail(rig, tip), targets[name].location, atol=1e-4)
    for frame, z in ((1, 1.28), (8, 1.25)):
        targets["spine"].location.z = z
        targets["spine"].keyframe_insert("location", frame=frame)
    report = bake_chains(rig, None, 1, 8, disable_live=True)
    assert report.not_converged == 0, report.summary()
    for frame in (1, 4, 8):
        scene.frame_set(frame)
        for name, tip in tips.items():
            np.testing.assert_allclose(world_tail(rig, tip), np.array(targets[name].matrix_world.translation),
                                       atol=2e-4)


def test_a_followed_rotation_no_pose_matches_is_named_in_the_group_note() -> None:
    """A member that follows its target's rotation, turned where the arm cannot turn: the rotation
    pulls the shared bones too, so the note names the rotation as part of the fight."""
    rig = torso()
    t_left, _ = arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    rig.ik_chains.chains["arm.L"].follow_orientation = True
    t_left.rotation_euler = (math.pi, 0.0, 0.0)
    bpy.context.scene.frame_set(1)
    left = get_status(rig.name, "arm.L")
    assert left.solved and not left.converged
    assert "cannot all be reached at once" in left.message
    assert "target rotations followed, off by: 'arm.L' " in left.message, left.message
    assert "'arm.R'" not in left.message.split("off by:")[1]


def test_dragging_one_members_target_solves_the_group_and_auto_keys_every_member() -> None:
    """A target dragged between frame changes (the depsgraph handler) re-solves its chain's whole
    group: the other member stays on its target, and Auto Keying keys its bones too."""
    from blender_ik_addon.blender.keys import fcurve_collection

    rig = torso()
    t_left, t_right = arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    scene = bpy.context.scene
    scene.frame_set(1)
    scene.tool_settings.use_keyframe_insert_auto = True
    try:
        scene.frame_set(5)
        for step in range(1, 4):  # dragged in a few steps, no frame change
            t_left.location = (0.45 - 0.05 * step, 0.25 + 0.05 * step, 1.45 - 0.07 * step)
            bpy.context.view_layer.update()
            for chain, target, tip in (("arm.L", t_left, "forearm.L"), ("arm.R", t_right, "forearm.R")):
                status = get_status(rig.name, chain)
                assert status.converged and "solved together" in status.message, status.describe()
                np.testing.assert_allclose(world_tail(rig, tip), target.location, atol=1e-4)
    finally:
        scene.tool_settings.use_keyframe_insert_auto = False
    keyed = {fcurve.data_path.split('"')[1] for fcurve in fcurve_collection(rig, create=False)}
    assert {*SPINE[2:], *LEFT[:3], *RIGHT[:3]} <= keyed, keyed  # the chains: spine.2 to each forearm


def test_a_locked_axis_of_a_shared_quaternion_bone_keeps_the_group_whole() -> None:
    """A one-axis rotation lock on a shared bone in Quaternion mode: the first chain solves alone
    and turns the bone, then the second joins. Read at the two moments, the locked axis decodes as
    0 and as a rounding off it; the group is solved all the same (it was refused by name)."""
    rig = torso()
    spine = rig.pose.bones["spine.3"]
    spine.rotation_mode, spine.lock_rotation = "QUATERNION", (False, True, False)
    t_left = empty(location=(0.45, 0.25, 1.45))
    add_chain(rig, "forearm.L", 5, t_left, name="arm.L")  # alone: solved, spine.3 turned
    t_right = empty(location=(-0.4, 0.3, 1.6))
    add_chain(rig, "forearm.R", 5, t_right, name="arm.R")
    for frame in (1, 2):
        bpy.context.scene.frame_set(frame)
        for chain, target, tip in (("arm.L", t_left, "forearm.L"), ("arm.R", t_right, "forearm.R")):
            status = get_status(rig.name, chain)
            assert status.converged and "solved together" in status.message, status.describe()
            np.testing.assert_allclose(world_tail(rig, tip), target.location, atol=1e-4)


def test_a_member_whose_own_target_holds_still_is_not_flagged_as_switching() -> None:
    """One hand holds still while the other moves: the still hand's chain turns smoothly with the
    shared spine. The bake's switch check counts the group's targets as what it follows."""
    from blender_ik_addon.blender.status import get_findings

    rig = torso()
    t_left, _ = arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    for frame, location in ((1, (0.45, 0.25, 1.45)), (10, (0.3, 0.4, 1.25))):
        t_left.location = location
        t_left.keyframe_insert("location", frame=frame)
    report = bake_chains(rig, None, 1, 10, disable_live=True)
    assert report.not_converged == 0, report.summary()
    assert get_findings(rig.name, "arm.R").switches == () and get_findings(rig.name, "arm.L").switches == ()
    assert "switches" not in report.summary()


def test_a_shared_bone_turning_on_past_180_degrees_is_not_a_switch() -> None:
    """A hub whose two arms follow targets circling it once: its free angle goes 0..360 degrees. The
    keys go on past 180 (unwrapped), and the switch check sees the same smooth turn."""
    from blender_rigs import BoneDef, make_armature

    from blender_ik_addon.blender.status import get_findings

    rig = make_armature([BoneDef("hub", (0, 0, 0), (0, 0, 0.5)),
                         BoneDef("a1", (0, 0, 0.5), (0.5, 0, 0.5), parent="hub", connect=True),
                         BoneDef("a2", (0.5, 0, 0.5), (1.0, 0, 0.5), parent="a1", connect=True),
                         BoneDef("b1", (0, 0, 0.5), (-0.5, 0, 0.5), parent="hub", connect=True),
                         BoneDef("b2", (-0.5, 0, 0.5), (-1.0, 0, 0.5), parent="b1", connect=True)])
    for name in ("hub", "a1", "a2", "b1", "b2"):
        rig.pose.bones[name].rotation_mode = "XYZ"
        rig.pose.bones[name].lock_rotation = (True, name != "hub", True)  # the hub turns about its Y only
    t_a, t_b = empty("TA", (1, 0, 0.5)), empty("TB", (-1, 0, 0.5))
    for frame in range(1, 26):
        angle = 2 * math.pi * (frame - 1) / 24
        t_a.location = (math.cos(angle), math.sin(angle), 0.5)
        t_b.location = (-math.cos(angle), -math.sin(angle), 0.5)
        t_a.keyframe_insert("location", frame=frame)
        t_b.keyframe_insert("location", frame=frame)
    add_chain(rig, "a2", 3, t_a, name="A", enabled=False)
    add_chain(rig, "b2", 3, t_b, name="B", enabled=False)
    report = bake_chains(rig, None, 1, 25)
    assert report.not_converged == 0, report.summary()
    assert get_findings(rig.name, "A").switches == () and get_findings(rig.name, "B").switches == (), \
        report.summary()
