"""Rotation and constraint setup: every rotation mode (changed after setup too), scaled, parented
and animated armatures, drivers and constraints on the chain, NLA strips and shared actions."""

from __future__ import annotations

import math
from typing import Any

import bpy
import pytest
from blender_rigs import limit_rotation, straight_chain, torso, torso_arms
from fault_helpers import (
    BAD_BONES,
    KEPT,
    Scene,
    Snapshot,
    after_at,
    assert_bakes_and_plays,
    assert_playback,
    assert_preserved,
    assert_refused,
    bystander_rig,
    key_table,
    keyed_empty,
    rotation_paths,
    run_operator,
    select_chain,
    snapshot,
    status_message,
    undocumented,
    user_sees,
)
from mathutils import Matrix

from blender_ik_addon.blender.keys import iter_fcurves

MODES = ("QUATERNION", "XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX", "AXIS_ANGLE")
CHANNEL = {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}


def channel(mode: str) -> str:
    return CHANNEL.get(mode, "rotation_euler")


@pytest.mark.parametrize("mode", MODES)
def test_every_rotation_mode_also_when_changed_after_setup(capfd, mode: str) -> None:
    scene = bystander_rig()
    rig = scene.rig
    for bone in BAD_BONES:
        rig.pose.bones[bone].rotation_mode = mode
    assert_playback(rig, scene.bad_target, frames=(3, 8), chain="bad", tip="bad.2")
    changed = MODES[(MODES.index(mode) + 3) % len(MODES)]
    for bone in BAD_BONES:  # the animator switches mode while the chain is live
        rig.pose.bones[bone].rotation_mode = changed
    before = after_at(rig)
    assert_playback(rig, scene.bad_target, frames=(11, 5), chain="bad", tip="bad.2")
    message = status_message("Rig", "bad")
    assert message.startswith("Converged")
    assert {rig.pose.bones[b].rotation_mode for b in BAD_BONES} == {changed}
    assert_bakes_and_plays(capfd, rig, scene.bad_target, "bad", "bad.2")
    rig.ik_chains.chains["bad"].enabled = True
    assert_preserved(before, after_at(rig), rekeyed=rotation_paths(rig, BAD_BONES), baked=(1, 20))
    baked = {path for path, _ in key_table(rig) if path.startswith('pose.bones["bad')}
    assert baked == {f'pose.bones["{b}"].{channel(changed)}' for b in BAD_BONES} | {
        'pose.bones["bad.1"].rotation_euler', 'pose.bones["bad.0"].scale'}  # the user's keys, untouched
    if mode == "QUATERNION":
        user_sees("rotation-modes", given="Chain bones in each of the 8 rotation modes, switched to another mode "
                  "while live", where="panel status", message=message,
                  preserved="each bone keeps the mode the user chose; only that mode's channel is written and keyed; "
                  + KEPT)


@pytest.mark.parametrize("scale", [(1.0, 2.0, 0.5), (-1.0, 1.0, 1.0)], ids=["non-uniform", "mirrored"])
def test_non_uniform_and_negative_armature_scale(capfd, scale: tuple[float, float, float]) -> None:
    scene = bystander_rig()
    scene.rig.scale = scale
    scene.rig.rotation_euler = (0.3, -0.2, 0.4)
    bpy.context.view_layer.update()
    for target, keys in ((scene.good_target, (0.5, 1.8, 0.5)), (scene.bad_target, (2.0, 1.5, 1.0))):
        target.animation_data_clear()
        target.matrix_world = scene.rig.matrix_world @ Matrix.Translation(keys)
    before = snapshot(scene.rig)
    assert_playback(scene.rig, scene.good_target)
    assert_playback(scene.rig, scene.bad_target, chain="bad", tip="bad.2")
    message = status_message("Rig", "bad")
    assert_preserved(before, after_at(scene.rig))
    assert_bakes_and_plays(capfd, scene.rig, scene.bad_target, "bad", "bad.2")
    if scale[0] > 0:
        user_sees("armature-non-uniform-scale", given="Armature scale (1, 2, 0.5) (and mirrored, (-1, 1, 1)), rotated",
                  where="panel status", message=message, preserved="the tip reaches the target, live and baked; "
                  + KEPT)


@pytest.mark.parametrize("how", ["parented", "animated"])
def test_parented_or_animated_armature(capfd, how: str) -> None:
    scene = bystander_rig()
    rig = scene.rig
    if how == "parented":
        rig.parent = keyed_empty("Carrier", {1: (0.0, 0.0, 0.0), 20: (0.5, -0.3, 0.4)})
    else:
        for frame, (x, angle) in {1: (0.0, 0.0), 20: (0.4, 0.3)}.items():
            rig.location, rig.rotation_euler = (x, 0.0, 0.0), (0.0, 0.0, angle)
            rig.keyframe_insert("location", frame=frame)
            rig.keyframe_insert("rotation_euler", frame=frame)
    before = snapshot(rig)
    assert_playback(rig, scene.good_target, frames=(5, 15, 9))
    assert_playback(rig, scene.bad_target, frames=(5, 15, 9), chain="bad", tip="bad.2")
    message = status_message("Rig", "bad")
    assert_preserved(before, after_at(rig))
    assert_bakes_and_plays(capfd, rig, scene.bad_target, "bad", "bad.2", frames=(1, 6, 13, 20))
    if how == "parented":
        user_sees("armature-parented-animated", given="The armature object is parented to an animated Empty, or "
                  "its own transform is keyed", where="panel status", message=message,
                  preserved="the tip reaches the target on every frame, live and baked; " + KEPT)


def test_driver_on_a_chain_rotation_channel(capfd) -> None:
    scene = bystander_rig()
    driver = scene.rig.pose.bones["bad.1"].driver_add("rotation_euler", 2)
    driver.driver.expression = "0.25"
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "bone 'bad.1': a driver sets rotation_euler[2], so the solved pose would "
                   "be overridden; remove or mute the driver", case="driver-on-chain",
                   given="A driver on a chain bone's rotation channel")
    driver.mute = True  # the fix the message points to
    assert_playback(scene.rig, scene.bad_target, chain="bad", tip="bad.2")


def test_constraint_on_a_chain_bone(capfd) -> None:
    scene = bystander_rig()
    con = scene.rig.pose.bones["bad.1"].constraints.new("COPY_ROTATION")
    con.target = scene.good_target
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "bone 'bad.1': constraint 'Copy Rotation' (Copy Rotation) would change "
                   "the solved pose; mute or remove it", case="constraint-on-chain",
                   given="A Copy Rotation constraint on a chain bone")
    con.mute = True
    assert_playback(scene.rig, scene.bad_target, chain="bad", tip="bad.2")


def test_blender_ik_constraint_on_the_chain(capfd) -> None:
    scene = bystander_rig()
    con = scene.rig.pose.bones["bad.2"].constraints.new("IK")
    con.target, con.chain_count = scene.bad_target, 2
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "bone 'bad.1' is also moved by Blender's IK constraint 'IK' on bone "
                   "'bad.2'; mute or remove it", case="blender-ik-on-chain",
                   given="Blender's own IK constraint on the chain's tip bone")


def test_limit_rotation_in_world_space(capfd) -> None:
    scene = bystander_rig()
    limit_rotation(scene.rig, "bad.1", space="WORLD", x=(-10.0, 10.0))
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "bone 'bad.1': Limit Rotation constraint 'Limit Rotation' uses owner space "
                   "'WORLD'; only Local Space is supported", case="limit-world-space",
                   given="A Limit Rotation constraint in World Space")


def test_bone_that_does_not_inherit_rotation(capfd) -> None:
    scene = bystander_rig()
    scene.rig.data.bones["bad.1"].use_inherit_rotation = False
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "bone 'bad.1': 'Inherit Rotation' is off; chain bones must inherit rotation",
                   case="no-inherit-rotation", given="A chain bone with Inherit Rotation off")


def _group_sharing_bones(scene: Scene) -> Any:
    """``scene``'s chain 'bad' and a chain 'overlap' on its bones: a group solved together."""
    chain = scene.rig.ik_chains.chains.add()
    chain.name, chain.tip_bone, chain.chain_length, chain.target = "overlap", "bad.1", 2, scene.good_target
    return scene.rig.ik_chains.chains


def _group_refused_everywhere(capfd: Any, scene: Scene, before: Snapshot, message: str, case: str,
                              given: str) -> None:
    """Both chains of the group show ``message`` as an error, the other chain plays on, Bake reports
    it, and nothing the user did not ask for changed."""
    assert status_message("Rig", "bad") == f"Error: {message}"
    assert status_message("Rig", "overlap") == f"Error: {message}"
    assert_playback(scene.rig, scene.good_target)
    select_chain(scene.rig, "bad")
    baked = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=20, chains="ALL")
    assert (baked.result, baked.level, baked.report) == (frozenset(), "ERROR", message)
    assert_preserved(before, after_at(scene.rig))
    user_sees(case, given=given, where="panel status; Bake report", message=message,
              preserved="the group writes nothing; the other chains solve; " + KEPT)


def test_chains_that_share_bones_all_at_weight_zero(capfd) -> None:
    scene = bystander_rig()
    chains = _group_sharing_bones(scene)
    for name in ("bad", "overlap"):
        chains[name].weight = 0.0
    before = snapshot(scene.rig)
    bpy.context.scene.frame_set(4)
    message = ("every chain of the group 'bad', 'overlap' (they share bones and are solved together) has Weight 0: "
               "nothing pulls them; give one chain a Weight above 0")
    _group_refused_everywhere(capfd, scene, before, message, "group-weight-zero",
                              "Chains that share bones, every one at Weight 0")


def test_a_chain_with_comfort_blend_that_shares_bones(capfd) -> None:
    scene = bystander_rig()
    _group_sharing_bones(scene)["overlap"].comfort_blend = 0.5
    before = snapshot(scene.rig)
    bpy.context.scene.frame_set(4)
    message = status_message("Rig", "bad").removeprefix("Error: ")
    assert message.startswith("chain 'overlap' shares bone(s) ") and "has Comfort Blend above 0" in message
    _group_refused_everywhere(capfd, scene, before, message, "group-comfort-blend",
                              "Chains that share bones, one with Comfort Blend above 0")


def test_groups_that_follow_each_other_in_a_circle() -> None:
    rig = torso(("A.", "B."))
    a_left, _ = torso_arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6), prefix="A.")
    b_left, _ = torso_arms(rig, (2.45, 0.25, 1.45), (1.6, 0.3, 1.6), prefix="B.")
    for target, bone in ((a_left, "B.hand.R"), (b_left, "A.hand.R")):  # each group's target on the other's hand
        matrix = target.matrix_world.copy()
        target.parent, target.parent_type, target.parent_bone = rig, "BONE", bone
        target.matrix_world = matrix
    before = [pb.matrix_basis.copy() for pb in rig.pose.bones]
    bpy.context.scene.frame_set(2)
    message = ("chain 'A.arm.L' is solved together with 'A.arm.R' (they share bones), and that group and another "
               "follow each other in a circle (a target of each moves with bones the other solves): neither can be "
               "solved first; break one link")
    assert status_message("Rig", "A.arm.L") == f"Error: {message}"
    for name in ("A.arm.R", "B.arm.L", "B.arm.R"):
        assert "follow each other in a circle" in status_message("Rig", name)
    assert [pb.matrix_basis for pb in rig.pose.bones] == before
    user_sees("group-cycle", given="Two groups of chains that share bones, each with a target on the other's bones",
              where="panel status", message=message, preserved="neither group writes; " + KEPT)


def test_a_target_pair_no_pose_reaches_at_once() -> None:
    rig = torso()
    torso_arms(rig, (2.0, 0.0, 1.55), (-2.0, 0.0, 1.55))
    bpy.context.scene.frame_set(2)
    status = status_message("Rig", "arm.L")
    assert status.startswith("Not converged, residual ")
    assert "shares bones with 'arm.R': solved together; the group's targets ('arm.L', 'arm.R') cannot all be " \
           "reached at once: weighted compromise, group residual " in status
    message = status[status.index("the group's"):]
    user_sees("group-unreachable", given="Chains solved together whose targets no pose reaches at once",
              where="panel status", message=message,
              preserved="the weighted least-squares compromise is written, limits held; each chain shows its "
                        "own residual")


def test_nla_strip_under_the_bake(capfd) -> None:
    scene = bystander_rig()
    rig = scene.rig
    anim = rig.animation_data
    strip_action = anim.action
    track = anim.nla_tracks.new()
    track.strips.new("user anim", 1, strip_action)
    anim.action = None  # the user's animation now plays from an NLA strip
    before_strip = key_table(rig) if iter_fcurves(rig) else None
    assert before_strip is None
    strip_keys = {(fc.data_path, fc.array_index): [tuple(k.co) for k in fc.keyframe_points]
                  for fc in _action_fcurves(strip_action)}
    bpy.context.scene.frame_set(7)
    other = rig.pose.bones["other"].rotation_euler[0]
    assert other > 0.1  # the strip animates the bone
    out = assert_bakes_and_plays(capfd, rig, scene.bad_target, "bad", "bad.2")
    assert anim.action is not None and anim.action != strip_action
    assert {(fc.data_path, fc.array_index): [tuple(k.co) for k in fc.keyframe_points]
            for fc in _action_fcurves(strip_action)} == strip_keys
    assert len(track.strips) == 1 and track.strips[0].action == strip_action
    bpy.context.scene.frame_set(7)
    assert math.isclose(rig.pose.bones["other"].rotation_euler[0], other, abs_tol=1e-6)  # and still does
    user_sees("nla-strip", given="The rig's animation plays from an NLA strip (no active action)",
              where="Bake report", message=out.report,
              preserved="the strip and its action are untouched; the baked keys go to a new active action "
              "that plays on top, and the strip still animates the other bones")


def _action_fcurves(action: bpy.types.Action) -> list[bpy.types.FCurve]:
    if hasattr(action, "layers") and action.layers:  # 4.4+: slotted actions
        return [fc for layer in action.layers for strip in layer.strips for bag in strip.channelbags
                for fc in bag.fcurves]
    return list(action.fcurves)


def test_bake_into_a_rig_without_an_action(capfd) -> None:
    scene = bystander_rig()
    scene.rig.animation_data_clear()  # never keyed: the bake makes the action (and, 4.4+, its slot)
    out = assert_bakes_and_plays(capfd, scene.rig, scene.bad_target, "bad", "bad.2")
    assert_bakes_and_plays(capfd, scene.rig, scene.good_target, "good", "good.2")
    user_sees("bake-new-action", given="Bake a rig that has no animation yet", where="Bake report", message=out.report,
              preserved="the new action is assigned (with its slot on Blender 4.4+) and its keys play with the add-on "
              "off")


def test_action_shared_by_two_armatures(capfd) -> None:
    scene = bystander_rig()
    twin = straight_chain(3, name="Twin", origin=(6.0, 0.0, 0.0))
    twin.animation_data_create()
    twin.animation_data.action = scene.rig.animation_data.action
    if hasattr(twin.animation_data, "action_slot"):
        twin.animation_data.action_slot = scene.rig.animation_data.action_slot
    twin_keys = key_table(twin)
    assert twin_keys  # the twin plays the same keys
    before = snapshot(scene.rig)
    select_chain(scene.rig, "bad")
    message = (f"action {scene.rig.animation_data.action.name!r} is also played by 'Twin': keys baked for 'Rig' would "
               "change 'Twin' too; make the action single-user first")
    baked = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=20)
    assert (baked.result, baked.level, baked.report) == (frozenset(), "ERROR", message)
    keyed = run_operator(capfd, bpy.ops.ikchains.key_frame)
    assert (keyed.result, keyed.level, keyed.report) == (frozenset(), "ERROR", f"chain 'bad': {message}")
    assert key_table(twin) == twin_keys
    assert_preserved(before, after_at(scene.rig))
    assert_playback(scene.rig, scene.good_target)
    user_sees("action-shared", given="The rig's action is also assigned to another armature",
              where="Bake and Key Current Frame: error report", message=message,
              preserved="both armatures' keys are untouched; live solving keeps working")


def test_a_setting_keyed_to_change_inside_the_baked_range(capfd) -> None:
    """A bake reads chain settings and limits once: one keyed to change inside the range is refused
    by name, nothing written; Key Current Frame (one frame, its own value) still works."""
    scene = bystander_rig()
    rig = scene.rig
    chain = rig.ik_chains.chains["bad"]
    for frame, blend in ((1, 0.0), (20, 0.5)):
        chain.comfort_blend = blend
        chain.keyframe_insert("comfort_blend", frame=frame)
    bpy.context.scene.frame_set(1)  # the keyed value, as the snapshot after the bake reads it
    scene_frame = bpy.context.scene.frame_current
    before = snapshot(rig)
    select_chain(rig, "bad")
    message = (f"chain 'bad': its setting 'comfort_blend' is animated (keys that change inside the baked range: "
               f"ik_chains.chains[1].comfort_blend), but a bake reads it once, at the current frame "
               f"({scene_frame:g}), and would bake every frame with that value: bake a range where it holds "
               "still, or remove its animation; live solving follows it frame by frame")
    baked = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=20)
    assert (baked.result, baked.level, baked.report) == (frozenset(), "ERROR", message)
    assert_preserved(before, after_at(rig))
    assert_playback(rig, scene.good_target)
    held = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=1)  # the blend holds still there
    assert held.result == {"FINISHED"}, held.report
    user_sees("bake-animated-setting", given="Bake over a range where a chain setting or a chain bone's limit is "
              "keyed to change (Influence is read per frame)", where="Bake: error report", message=message,
              preserved="nothing is written; live solving follows the setting frame by frame")


def test_the_table_lists_these_cases() -> None:
    assert undocumented("tests/blender/test_faults_setup.py") == []

