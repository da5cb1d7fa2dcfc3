"""Broken references: a target or bone that went away, changed name or hierarchy, or hides from
Blender's evaluation. Each case: the message where the user looks, and nothing lost."""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from blender_rigs import world_tail
from fault_helpers import (
    KEPT,
    TOLERANCE,
    after_at,
    assert_bakes_and_plays,
    assert_playback,
    assert_preserved,
    assert_refused,
    bystander_rig,
    keyed_empty,
    keyed_location,
    run_operator,
    snapshot,
    status_message,
    undocumented,
    user_sees,
)

from blender_ik_addon.blender import get_status


def edit_bones(rig: bpy.types.Object) -> bpy.types.ArmatureEditBones:
    """Enter Edit mode on ``rig`` (leave it with :func:`object_mode`)."""
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    return rig.data.edit_bones


def object_mode() -> None:
    bpy.ops.object.mode_set(mode="OBJECT")


def test_deleted_target(capfd) -> None:
    scene = bystander_rig()
    bpy.data.objects.remove(scene.bad_target)
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "chain 'bad' has no target object (set one; was it deleted?)",
                   case="target-deleted", given="The chain's target object is deleted")


def test_renamed_target_is_still_followed(capfd) -> None:
    scene = bystander_rig()
    scene.bad_target.name = "Renamed"
    before = snapshot(scene.rig)
    assert_playback(scene.rig, scene.bad_target, chain="bad", tip="bad.2")
    message = status_message("Rig", "bad")
    assert message.startswith("Converged, residual")
    assert_preserved(before, after_at(scene.rig), posed=("good.0", "good.1", "good.2", *before.modes))
    assert_bakes_and_plays(capfd, scene.rig, scene.bad_target, "bad", "bad.2")
    user_sees("target-renamed", given="The target object is renamed", where="panel status", message=message,
              preserved="the chain follows the renamed target, live and baked; " + KEPT)


def test_target_hidden_in_the_viewport_is_still_followed(capfd) -> None:
    scene = bystander_rig()
    target = scene.bad_target
    target.hide_set(True)  # the eye icon: evaluated, not drawn
    bpy.context.scene.frame_set(5)
    np.testing.assert_allclose(world_tail(scene.rig, "bad.2"), keyed_location(target, 5), atol=TOLERANCE)
    target.hide_set(False)
    target.hide_viewport = True  # "Disable in Viewports": Blender no longer evaluates it at all
    for frame in (9, 3, 17):
        bpy.context.scene.frame_set(frame)
        np.testing.assert_allclose(world_tail(scene.rig, "bad.2"), keyed_location(target, frame), atol=TOLERANCE,
                                   err_msg=f"frame {frame}")
    message = status_message("Rig", "bad")
    assert message.startswith("Converged")
    user_sees("target-hidden", given="The target is hidden (eye icon) or disabled in viewports, and keyed",
              where="panel status", message=message,
              preserved="the chain follows the target's keys on every frame, as if it were visible")


def test_target_in_an_excluded_collection_is_still_followed() -> None:
    scene = bystander_rig()
    hidden = bpy.data.collections.new("Controls")
    bpy.context.scene.collection.children.link(hidden)
    bpy.context.scene.collection.objects.unlink(scene.bad_target)
    hidden.objects.link(scene.bad_target)
    bpy.context.view_layer.layer_collection.children["Controls"].exclude = True
    for frame in (12, 4):
        bpy.context.scene.frame_set(frame)
        np.testing.assert_allclose(world_tail(scene.rig, "bad.2"), keyed_location(scene.bad_target, frame),
                                   atol=TOLERANCE, err_msg=f"frame {frame}")
    message = status_message("Rig", "bad")
    assert message.startswith("Converged")
    user_sees("target-excluded", given="The keyed target is in a collection excluded from the view layer",
              where="panel status", message=message, preserved="the chain follows the target's keys on every frame")


def test_target_blender_does_not_evaluate_gives_a_message(capfd) -> None:
    scene = bystander_rig()
    holder = keyed_empty("Holder", {1: (0.0, 0.0, 0.0), 20: (0.0, 0.0, 0.5)})
    scene.bad_target.parent = holder  # moved by its parent: its keys alone do not say where it is
    scene.bad_target.hide_viewport = True
    before = snapshot(scene.rig)
    message = ("object 'BadTarget' is disabled in viewports, so Blender does not evaluate it here and "
               "the chain cannot see where it is; enable it (hide it with the eye icon instead)")
    assert_refused(capfd, scene, before, message, case="target-unevaluated",
                   given="The target is disabled in viewports and moved by a parent")


def test_bone_renamed_after_setup(capfd) -> None:
    scene = bystander_rig()
    scene.rig.data.bones["bad.2"].name = "claw"
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "armature 'Rig' has no bone 'bad.2' (renamed or deleted?)",
                   case="bone-renamed", given="The chain's tip bone is renamed after setup")
    scene.rig.ik_chains.chains["bad"].tip_bone = "claw"  # the fix the message points to
    scene.rig.ik_chains.chains["bad"].enabled = True
    bpy.context.scene.frame_set(6)
    assert get_status("Rig", "bad").converged


def test_bone_deleted_after_setup(capfd) -> None:
    scene = bystander_rig()
    edit_bones(scene.rig).remove(scene.rig.data.edit_bones["bad.2"])
    object_mode()
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "armature 'Rig' has no bone 'bad.2' (renamed or deleted?)",
                   case="bone-deleted", given="The chain's tip bone is deleted after setup")


def test_tip_bone_moved_to_another_parent(capfd) -> None:
    scene = bystander_rig()
    bones = edit_bones(scene.rig)
    bones["bad.2"].use_connect = False
    bones["bad.2"].parent = bones["bad.0"]  # skips bad.1: two bones up to the root now
    object_mode()
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "chain length 3 is longer than the hierarchy: bone 'bad.2' has only 2 "
                   "bone(s) up to the root 'bad.0'", case="tip-reparented",
                   given="The tip bone is moved to another parent (the hierarchy above it is now shorter)")


def test_armature_object_renamed(capfd) -> None:
    scene = bystander_rig()
    scene.rig.name = "Centipede"
    before = snapshot(scene.rig)
    assert_playback(scene.rig, scene.good_target)
    assert_playback(scene.rig, scene.bad_target, chain="bad", tip="bad.2")
    message = status_message("Centipede", "bad")
    assert message.startswith("Converged")
    assert_preserved(before, after_at(scene.rig), posed=before.modes)
    out = assert_bakes_and_plays(capfd, scene.rig, scene.bad_target, "bad", "bad.2")
    user_sees("armature-renamed", given="The armature object is renamed", where="panel status; Bake report",
              message=f"{message}\n{out.report}", preserved="chains, keys and live solving carry over to the new name")


def test_chain_longer_than_the_hierarchy(capfd) -> None:
    scene = bystander_rig()
    scene.rig.ik_chains.chains["bad"].chain_length = 5
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "chain length 5 is longer than the hierarchy: bone 'bad.2' has only 3 "
                   "bone(s) up to the root 'bad.0'", case="chain-too-long",
                   given="Chain length 5 on a 3-bone hierarchy")


@pytest.mark.skipif(bpy.app.version < (5, 0, 0), reason="Blender 4.2-4.5 delete zero-length bones when leaving "
                    "Edit mode: such a bone cannot exist there")
def test_zero_length_bone_in_a_chain(capfd) -> None:
    scene = bystander_rig()
    bones = edit_bones(scene.rig)
    stub = bones.new("stub")  # head == tail: Blender keeps it with a tiny length
    stub.head = stub.tail = (3.0, 3.0, 0.0)
    stub.parent, stub.use_connect = bones["bad.2"], True
    object_mode()
    assert scene.rig.data.bones["stub"].length < 1e-5
    chain = scene.rig.ik_chains.chains["bad"]
    chain.tip_bone, chain.chain_length = "stub", 4
    before = snapshot(scene.rig)
    assert_playback(scene.rig, scene.bad_target, chain="bad", tip="stub")
    message = status_message("Rig", "bad")
    assert message.startswith("Converged")
    assert_preserved(before, after_at(scene.rig), posed=before.modes)
    assert_bakes_and_plays(capfd, scene.rig, scene.bad_target, "bad", "stub")
    user_sees("zero-length-bone", given="A zero-length bone (head = tail) at the tip of a chain",
              where="panel status", message=message, preserved="the chain solves (the bone is a point); " + KEPT)


def test_adopting_an_ik_constraint_whose_target_is_gone(capfd) -> None:
    scene = bystander_rig()
    gone = bpy.data.objects.new("Gone", None)
    bpy.context.scene.collection.objects.link(gone)
    con = scene.rig.pose.bones["other"].constraints.new("IK")
    con.name, con.target, con.chain_count = "ArmIK", gone, 1
    bpy.data.objects.remove(gone)
    before = snapshot(scene.rig)
    outcome = run_operator(capfd, bpy.ops.ikchains.adopt_constraints)
    assert (outcome.result, outcome.level) == (frozenset({"CANCELLED"}), "WARNING")
    assert outcome.report == ("constraint 'ArmIK' on bone 'other': not adopted: its target is gone: no target object; "
                              "set one or remove the constraint\nAdopted 0 IK constraint(s) as chains, refused 1")
    assert not con.mute
    assert_preserved(before, after_at(scene.rig))
    assert_playback(scene.rig, scene.good_target)
    user_sees("ik-constraint-target-gone", given="Adopt IK Constraints on an armature whose IK constraint's target "
              "object was deleted", where="report", message=outcome.report,
              preserved="the constraint stays as it was (on, not adopted), no chain is made, the chains keep solving; "
              + KEPT)


def test_the_table_lists_these_cases() -> None:
    assert undocumented("tests/blender/test_faults_references.py") == []
