"""What plays back: keys at action time (Time Stretching, NLA tweak mode), channels that would not
play what is keyed, targets that move with their own chain or with another one, and a loop no check
can see. Each case: what the user sees, that the keys play where they were solved (or that nothing
was written), and nothing lost."""

from __future__ import annotations

import itertools
from pathlib import Path

import bpy
import numpy as np
from blender_rigs import BoneDef, add_chain, empty, make_armature, world_tail
from fault_helpers import (
    BAD_BONES,
    KEPT,
    TOLERANCE,
    Scene,
    after_at,
    assert_bakes_and_plays,
    assert_playback,
    assert_preserved,
    assert_refused,
    bystander_rig,
    rotation_paths,
    run_operator,
    select_chain,
    snapshot,
    status_message,
    undocumented,
    user_sees,
)
from mathutils import Matrix, Vector

from blender_ik_addon.blender.keys import fcurve_collection

NOT_WRITTEN = "nothing is written; " + KEPT
KEYS_KEPT = ("keys (also outside any range), other channels and bones, rotation modes, constraints, drivers, locks "
             "and chain settings")


def baking_rig() -> Scene:
    """The bystander rig with only the bad chain live (the cases below are about its keys)."""
    scene = bystander_rig()
    scene.rig.ik_chains.chains["good"].enabled = False
    return scene


def key_frames(rig: bpy.types.Object, path: str) -> list[float]:
    """The frames (action time) of the keys of F-curve ``path``[0]."""
    fcurve = fcurve_collection(rig, create=False).find(path, index=0)
    return [round(k.co[0], 4) for k in fcurve.keyframe_points]


def push_down(rig: bpy.types.Object, start: int) -> tuple[bpy.types.NlaTrack, bpy.types.NlaStrip]:
    """Push the rig's action down onto an NLA strip starting at scene frame ``start`` (no active action left)."""
    anim = rig.animation_data
    action = anim.action
    track = anim.nla_tracks.new()
    strip = track.strips.new(action.name, start, action)
    anim.action = None
    return track, strip


def tweak(rig: bpy.types.Object, track: bpy.types.NlaTrack, strip: bpy.types.NlaStrip) -> None:
    """Enter tweak mode on ``strip`` (select it, Tab in the NLA editor)."""
    anim = rig.animation_data
    anim.nla_tracks.active = track
    strip.select = True
    anim.use_tweak_mode = True
    assert anim.use_tweak_mode and anim.action == strip.action
    bpy.context.scene.frame_set(1)


def other_action(rig: bpy.types.Object, name: str, bone: str) -> bpy.types.Action:
    """A second action that keys ``bone``'s rotation at frames 1 and 20; the rig keeps its own action."""
    anim = rig.animation_data
    own, slot = anim.action, getattr(anim, "action_slot", None)
    action = anim.action = bpy.data.actions.new(name)
    pbone = rig.pose.bones[bone]
    for frame, angle in ((1, 0.3), (20, 0.5)):
        pbone.rotation_euler = (angle, 0.0, 0.0)
        pbone.keyframe_insert("rotation_euler", frame=frame, group=bone)
    anim.action = own
    if slot is not None:  # 4.4+: back to the rig's slot of its own action
        anim.action_slot = slot
    return action


def assert_keys_refused(capfd, scene: Scene, before, message: str, *, case: str, given: str) -> None:
    """Bake and Key Current Frame refuse the bad chain with ``message`` and write nothing; live solving
    goes on (it writes no keys), so the panel shows the error only after the refused key."""
    rig = scene.rig
    assert_playback(rig, scene.good_target, frames=(4, 1))  # the key below is at frame 1
    select_chain(rig, "bad")
    baked = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=20, chains="ACTIVE")
    assert (baked.result, baked.level, baked.report) == (frozenset(), "ERROR", message)
    keyed = run_operator(capfd, bpy.ops.ikchains.key_frame, chains="ACTIVE")
    named = message if message.startswith("chain 'bad'") else f"chain 'bad': {message}"
    assert (keyed.result, keyed.level, keyed.report) == (frozenset(), "ERROR", named)
    assert status_message(rig.name, "bad") == f"Error: {message}"
    assert_preserved(before, after_at(rig))
    user_sees(case, given=given, where="Bake and Key Current Frame: error report (then the panel status)",
              message=message, preserved=NOT_WRITTEN)


# --------------------------------------------------------------------------- keys at action time


def test_time_stretching_keys_play_at_the_solved_frames(capfd) -> None:
    scene = baking_rig()
    bpy.context.scene.render.frame_map_old, bpy.context.scene.render.frame_map_new = 100, 200
    bpy.context.scene.frame_set(1)
    before = snapshot(scene.rig)
    out = assert_bakes_and_plays(capfd, scene.rig, scene.bad_target, "bad", "bad.2", frames=(7, 20))
    assert key_frames(scene.rig, 'pose.bones["bad.2"].rotation_quaternion') == [f / 2 for f in range(1, 21)]
    scene.rig.ik_chains.chains["bad"].enabled = True
    assert_preserved(before, after_at(scene.rig), rekeyed=rotation_paths(scene.rig, BAD_BONES), baked=(0.5, 10.0))
    user_sees("time-stretching", given="Output > Time Stretching 100 -> 200 (frame f plays animation time f / 2); "
              "Bake 1-20", where="Bake report", message=out.report,
              preserved="keys at action times 0.5-10, where Blender plays frames 1-20: the keys alone put the tip "
              "on the target; " + KEYS_KEPT)


def test_tweak_mode_keys_land_in_the_strip(capfd) -> None:
    scene = baking_rig()
    rig = scene.rig
    track, strip = push_down(rig, -30)  # action frames -10..200 at scene frames -30..180: scene 1 plays 21
    tweak(rig, track, strip)
    before = snapshot(rig)
    out = assert_bakes_and_plays(capfd, rig, scene.bad_target, "bad", "bad.2", frames=(7, 20))
    assert key_frames(rig, 'pose.bones["bad.2"].rotation_quaternion') == [float(f) for f in range(21, 41)]
    rig.ik_chains.chains["bad"].enabled = True
    assert_preserved(before, after_at(rig), rekeyed=rotation_paths(rig, BAD_BONES), baked=(21.0, 40.0))
    assert (strip.frame_start, strip.frame_end, strip.action_frame_start, strip.action_frame_end) == (
        -30.0, 180.0, -10.0, 200.0)
    rig.ik_chains.chains["bad"].enabled = False
    rig.animation_data.use_tweak_mode = False  # the strip plays the keys as well
    bpy.context.scene.frame_set(14)
    np.testing.assert_allclose(world_tail(rig, "bad.2"), np.array(scene.bad_target.matrix_world.translation),
                               atol=2 * TOLERANCE)
    user_sees("nla-tweak-mode", given="The rig's action on an NLA strip that plays action frame 21 at scene frame 1, "
              "in tweak mode; Bake 1-20", where="Bake report", message=out.report,
              preserved="keys at the strip's action frames 21-40, so they play at scene frames 1-20, in tweak mode "
              "and after it; the strip is unchanged; " + KEYS_KEPT)


def test_frames_outside_the_tweaked_strip(capfd) -> None:
    scene = bystander_rig()
    track, strip = push_down(scene.rig, 5)  # plays scene frames 5..215
    tweak(scene.rig, track, strip)
    before = snapshot(scene.rig)
    assert_keys_refused(capfd, scene, before, "'Rig' is in NLA tweak mode on strip 'RigAction', which plays scene "
                        "frames 5 to 215: frame 1 is outside it, where the strip holds its end pose and keys would "
                        "not play; key inside the strip, or lengthen the strip first", case="nla-tweak-outside-strip",
                        given="NLA tweak mode on a strip that starts at frame 5; Bake 1-20, Key Current Frame at 1")


def test_a_range_over_two_repeats_of_a_strip(capfd) -> None:
    scene = baking_rig()
    rig = scene.rig
    action = rig.animation_data.action
    action.use_frame_range, action.frame_start, action.frame_end = True, 1, 11  # a cycle of 10 frames
    track, strip = push_down(rig, 1)
    strip.repeat = 2.0  # scene frames 1-11 and 11-21
    tweak(rig, track, strip)
    before = snapshot(rig)
    message = ("NLA strip 'RigAction' of 'Rig' repeats its action (2 times): scene frames 1 and 11 both play action "
               "frame 1, so one key cannot serve both; bake one repeat at a time (the first plays from frame 1 up to, "
               "not including, frame 11)")
    select_chain(rig, "bad")
    refused = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=20, chains="ACTIVE")
    assert (refused.result, refused.level, refused.report) == (frozenset(), "ERROR", message)
    assert_preserved(before, after_at(rig))
    one = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=10, chains="ACTIVE", disable_live=True)
    assert one.result == {"FINISHED"} and one.report.startswith("10 frames solved, 0 not converged"), one
    bpy.context.scene.frame_set(10)  # the keys alone (the bake turned the chain off)
    np.testing.assert_allclose(world_tail(rig, "bad.2"), np.array(scene.bad_target.matrix_world.translation),
                               atol=2 * TOLERANCE)
    user_sees("nla-strip-repeats", given="NLA tweak mode on a strip that repeats its 10-frame action twice; Bake 1-20",
              where="Bake report", message=message,
              preserved=f"nothing is written; a bake of one repeat (1-10) works: {one.report}; " + KEYS_KEPT)


# --------------------------------------------------------------------------- channels that would not play


def test_muted_rotation_fcurve(capfd) -> None:
    scene = bystander_rig()
    fcurve_collection(scene.rig, create=False).find('pose.bones["bad.1"].rotation_euler', index=2).mute = True
    before = snapshot(scene.rig)
    assert_keys_refused(capfd, scene, before, "chain 'bad': F-curve pose.bones[\"bad.1\"].rotation_euler[2] is "
                        "muted, so keys written there would not play; unmute it", case="muted-rotation-fcurve",
                        given="A chain bone's rotation F-curve is muted (the channel's speaker icon in the Graph "
                        "Editor)")


def test_noise_modifier_on_a_rotation_fcurve(capfd) -> None:
    scene = bystander_rig()
    fcurve_collection(scene.rig, create=False).find('pose.bones["bad.1"].rotation_euler', index=0).modifiers.new(
        "NOISE")
    before = snapshot(scene.rig)
    assert_keys_refused(capfd, scene, before, "chain 'bad': F-curve pose.bones[\"bad.1\"].rotation_euler[0] has "
                        "modifier 'Noise' (Noise), which changes the values it plays, so keys written there would "
                        "not play as written; mute or remove the modifier", case="fcurve-modifier",
                        given="A Noise modifier on a chain bone's rotation F-curve")


def test_action_below_full_influence_over_nla_strips(capfd) -> None:
    scene = bystander_rig()
    rig = scene.rig
    rig.animation_data.nla_tracks.new().strips.new("Base", 1, other_action(rig, "Base", "bad.1"))
    rig.animation_data.action_influence = 0.5
    bpy.context.scene.frame_set(1)
    before = snapshot(rig)
    assert_keys_refused(capfd, scene, before, "chain 'bad': action 'RigAction' plays at influence 0.5 over NLA track "
                        "'NlaTrack', so keys on pose.bones[\"bad.0\"].rotation_euler, pose.bones[\"bad.1\"]."
                        "rotation_euler, pose.bones[\"bad.2\"].rotation_quaternion would play blended with them; set "
                        "the action's influence to 1", case="action-influence",
                        given="The rig's action at influence 0.5 over an NLA track whose strip animates a chain bone")


def test_upper_nla_track_animates_a_chain_channel(capfd) -> None:
    scene = bystander_rig()
    rig = scene.rig
    wave = other_action(rig, "Wave", "bad.1")
    track, strip = push_down(rig, -10)  # Push Down: the strip plays the action at its own frames
    rig.animation_data.nla_tracks.new().strips.new("Wave", 1, wave)  # a track above it
    tweak(rig, track, strip)
    before = snapshot(rig)
    assert_keys_refused(capfd, scene, before, "chain 'bad': NLA strip 'Wave' on track 'NlaTrack.001' above the "
                        "tweaked strip animates pose.bones[\"bad.1\"].rotation_euler, so it overrides keys there "
                        "(with the upper stack evaluated, and once tweak mode is left); mute the track or move the "
                        "strip below it", case="nla-upper-track",
                        given="NLA tweak mode on the rig's strip, under a track whose strip animates a chain bone")


# --------------------------------------------------------------------------- what the target moves with


def test_target_with_an_armature_constraint_to_the_tip(capfd) -> None:
    scene = bystander_rig()
    item = scene.bad_target.constraints.new("ARMATURE").targets.new()
    item.target, item.subtarget = scene.rig, "bad.2"
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "chain 'bad': target 'BadTarget' moves with bone 'bad.2' of the chain "
                   "through 'BadTarget' -> Armature constraint 'Armature' -> bone 'bad.2' of 'Rig', so the chain "
                   "would chase its own pose; remove that link", case="target-armature-constraint",
                   given="The target has an Armature constraint bound to the chain's tip bone")


def test_target_parented_to_a_helper_with_child_of_the_tip(capfd) -> None:
    scene = bystander_rig()
    helper = empty("Helper")
    scene.bad_target.parent = helper
    con = helper.constraints.new("CHILD_OF")
    con.target, con.subtarget = scene.rig, "bad.2"
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "chain 'bad': target 'BadTarget' moves with bone 'bad.2' of the chain "
                   "through 'BadTarget' -> parent 'Helper' -> Child Of constraint 'Child Of' -> bone 'bad.2' of "
                   "'Rig', so the chain would chase its own pose; remove that link", case="target-helper-child-of",
                   given="The target is parented to a helper Empty that has a Child Of to the chain's tip bone")


def test_target_on_a_bone_another_chain_solves() -> None:
    """A hand target parented to the chest, which a spine chain solves: the arm is solved after the
    spine, on the same frame."""
    rig = make_armature([
        BoneDef("hips", (0, 0, 0), (0, 0, 0.5)),
        *(BoneDef(name, (0, 0, z), (0, 0, z + 0.5), parent=parent, connect=True)
          for name, parent, z in (("spine", "hips", 0.5), ("spine.1", "spine", 1.0), ("chest", "spine.1", 1.5))),
        BoneDef("arm", (0.5, 0, 0.5), (1.0, 0, 0.5), parent="hips"),
        BoneDef("forearm", (1.0, 0, 0.5), (1.5, 0, 0.5), parent="arm", connect=True),
        BoneDef("hand", (1.5, 0, 0.5), (1.7, 0, 0.5), parent="forearm", connect=True),
    ], "Body")
    sway = empty("SpineTarget")
    for frame, x in ((1, -0.3), (5, 0.3), (10, -0.15)):
        sway.location = (x, 0.2, 1.9)
        sway.keyframe_insert("location", frame=frame)
    add_chain(rig, "chest", 3, sway, name="spine")
    hand = empty("HandTarget")
    hand.parent, hand.parent_type, hand.parent_bone = rig, "BONE", "chest"
    bpy.context.view_layer.update()
    hand.matrix_world = Matrix.Translation((0.9, 0.3, 1.0))  # kept where it was, as Ctrl+P does
    add_chain(rig, "hand", 3, hand, name="arm")
    before = snapshot(rig)
    scene = bpy.context.scene
    held = []
    for frame in (2, 3, 5, 8):
        scene.frame_set(frame)
        held.append(np.array(hand.matrix_world.translation))
        distance = float(np.linalg.norm(world_tail(rig, "hand") - held[-1]))
        assert distance < 2 * TOLERANCE, (frame, distance)  # on the target of this frame, not the last one
        assert status_message("Body", "arm").startswith("Converged"), frame
    assert max(float(np.linalg.norm(b - a)) for a, b in itertools.pairwise(held)) > 0.05  # it rides along
    message = status_message("Body", "arm")
    assert_preserved(before, after_at(rig), posed=before.modes)
    user_sees("target-on-other-chain", given="A hand target parented to the chest bone, which a spine chain solves",
              where="panel status", message=message,
              preserved="the arm is solved after the spine on every frame, so its tip is on the target the chest "
              "carries on the frame shown; bones, keys and constraints are unchanged")


def test_chains_that_follow_each_other(capfd) -> None:
    scene = bystander_rig()
    rig = scene.rig
    for target, bone in ((scene.good_target, "bad.2"), (scene.bad_target, "good.2")):
        world = target.matrix_world.copy()
        target.parent, target.parent_type, target.parent_bone = rig, "BONE", bone
        bpy.context.view_layer.update()
        target.matrix_world = world  # kept where it was, as Ctrl+P does
    before = snapshot(rig)
    steps = {"bad": "chain 'bad': target 'BadTarget' moves with chain 'good' ('BadTarget' -> parent bone 'good.2' "
                    "of 'Rig')",
             "good": "chain 'good': target 'GoodTarget' moves with chain 'bad' ('GoodTarget' -> parent bone 'bad.2' "
                     "of 'Rig')"}

    def refused(chain: str, first: str = "bad") -> str:
        second = "good" if first == "bad" else "bad"
        return (f"chain {chain!r} is part of a cycle of chains following each other ({steps[first]}; "
                f"{steps[second]}), so none of them can be solved first; break one of these links")

    def seen(chain: str, text: str) -> bool:  # the two steps come in either order
        return text in (refused(chain), refused(chain, "good"))

    bpy.context.scene.frame_set(4)
    for chain in ("bad", "good"):
        shown = status_message("Rig", chain)
        assert shown.startswith("Error: ") and seen(chain, shown.removeprefix("Error: ")), shown
    select_chain(rig, "bad")
    baked = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=20, chains="ALL")
    assert (baked.result, baked.level) == (frozenset(), "ERROR") and seen("good", baked.report), baked
    keyed = run_operator(capfd, bpy.ops.ikchains.key_frame, chains="ALL")
    lines = {line.split("'")[1]: line for line in keyed.report.splitlines()}  # "chain 'bad' is part of ..."
    assert (keyed.result, keyed.level, set(lines)) == (frozenset(), "ERROR", {"bad", "good"}), keyed
    assert all(seen(chain, text) for chain, text in lines.items()), keyed
    assert_preserved(before, after_at(rig))
    user_sees("chains-in-a-cycle", given="Each chain's target parented to the other chain's tip bone",
              where="panel status of both chains; Bake and Key Current Frame: error report", message=refused("bad"),
              preserved="neither chain is written (live, keyed or baked); " + KEYS_KEPT)


# --------------------------------------------------------------------------- what no check sees; names


def test_frame_handler_that_moves_the_target_with_the_tip(capfd) -> None:
    """A script's frame handler holds the target half a unit beside the tip (a "sticky prop"): a loop
    through Python that no check can see. The bake's playback shows it."""
    scene = baking_rig()
    rig, target = scene.rig, scene.bad_target

    def sticky_prop(_scene: bpy.types.Scene, depsgraph: bpy.types.Depsgraph | None = None) -> None:
        rig_eval = rig.evaluated_get(depsgraph or bpy.context.evaluated_depsgraph_get())
        target.location = rig_eval.matrix_world @ rig_eval.pose.bones["bad.2"].tail + Vector((0.5, 0.0, 0.0))

    before = snapshot(rig)
    select_chain(rig, "bad")
    bpy.app.handlers.frame_change_post.append(sticky_prop)
    try:
        out = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=20, chains="ACTIVE",
                           disable_live=True)
    finally:
        bpy.app.handlers.frame_change_post.remove(sticky_prop)
    assert (out.result, out.level) == ({"FINISHED"}, "WARNING"), out
    assert out.report == ("20 frames solved, 20 not converged (worst residual 0.5); chain 'bad': plays back off "
                          "target at frames 1-20 of 20 verified (worst 0.5): target 'BadTarget' plays 0.5 away from "
                          "where it was when the chain was solved: it moves with something the keys changed"), out
    status = status_message("Rig", "bad")
    assert status.startswith("Not converged") and "plays back off target at frames 1-20" in status, status
    rig.ik_chains.chains["bad"].enabled = True
    assert_preserved(before, after_at(rig), rekeyed=rotation_paths(rig, BAD_BONES), baked=(1.0, 20.0))
    user_sees("frame-handler-loop", given="A script's frame-change handler puts the target 0.5 beside the tip on "
              "every frame; Bake 1-20", where="Bake report (a warning); panel status", message=out.report,
              preserved="the keys are written as solved and the report does not call them converged; " + KEYS_KEPT)


def test_linked_target_named_like_a_local_one(tmp_path: Path, capfd) -> None:
    library = tmp_path / "props.blend"
    empty("BadTarget", (2.0, 2.0, 0.5))
    bpy.ops.wm.save_as_mainfile(filepath=str(library))
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = baking_rig()  # a local "BadTarget" again
    with bpy.data.libraries.load(str(library), link=True) as (_source, linked_data):
        linked_data.objects = ["BadTarget"]
    linked = linked_data.objects[0]
    bpy.context.scene.collection.objects.link(linked)
    assert linked.library is not None and linked.name == scene.bad_target.name == "BadTarget"
    rig = scene.rig
    rig.ik_chains.chains["bad"].target = linked
    before = snapshot(rig)
    assert_playback(rig, linked, frames=(9,), chain="bad", tip="bad.2")
    assert np.linalg.norm(world_tail(rig, "bad.2") - np.array(scene.bad_target.matrix_world.translation)) > 1.0
    message = status_message("Rig", "bad")
    assert message.startswith("Converged")
    out = assert_bakes_and_plays(capfd, rig, linked, "bad", "bad.2", frames=(7, 20))
    rig.ik_chains.chains["bad"].enabled = True
    assert_preserved(before, after_at(rig), rekeyed=rotation_paths(rig, BAD_BONES), baked=(1.0, 20.0))
    assert rig.ik_chains.chains["bad"].target == linked
    user_sees("linked-target-same-name", given="The target is an Empty linked from a library, named like a local "
              "object ('BadTarget')", where="panel status; Bake report", message=f"{message}\n{out.report}",
              preserved="the chain follows the object it points at, live and baked, never the local one of that name; "
              + KEYS_KEPT)


def test_the_table_lists_these_cases() -> None:
    assert undocumented("tests/blender/test_faults_playback.py") == []
