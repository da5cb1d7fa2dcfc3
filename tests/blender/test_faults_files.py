"""Undo and redo, save and reload, appending the rig into another file, turning the add-on off and on
mid-session, and scrubbing frames backwards."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from fault_helpers import (
    BAD_BONES,
    GOOD_BONES,
    KEPT,
    assert_playback,
    assert_preserved,
    bystander_rig,
    pose_at,
    run_operator,
    select_chain,
    snapshot,
    status_message,
    undocumented,
    user_sees,
)

import blender_ik_addon
from blender_ik_addon import handlers
from blender_ik_addon.blender import get_status


def rig() -> bpy.types.Object:
    """The rig, looked up again (references do not survive undo or file loads)."""
    return bpy.data.objects["Rig"]


def test_undo_and_redo_a_bake(capfd) -> None:
    scene = bystander_rig()
    before = snapshot(scene.rig)
    bpy.ops.ed.undo_push(message="before bake")
    select_chain(scene.rig, "bad")
    # 'EXEC_DEFAULT', True: with an undo step, as a click in the UI.
    out = run_operator(capfd, bpy.ops.ikchains.bake, "EXEC_DEFAULT", True, frame_start=1, frame_end=20,
                       chains="ALL", disable_live=True)
    assert out.result == {"FINISHED"}
    baked = snapshot(rig())
    assert baked.keys != before.keys and not rig().ik_chains.chains["bad"].enabled
    bpy.ops.ed.undo()
    assert_preserved(before, snapshot(rig()))  # every key and setting as before the bake
    assert rig().ik_chains.chains["bad"].enabled
    bpy.ops.ed.redo()
    assert snapshot(rig()).keys == baked.keys and not rig().ik_chains.chains["bad"].enabled
    bpy.ops.ed.undo()
    assert_playback(rig(), bpy.data.objects["GoodTarget"])
    assert_playback(rig(), bpy.data.objects["BadTarget"], chain="bad", tip="bad.2")
    user_sees("undo-redo-bake", given="Undo, then redo, right after Bake Range", where="the rig itself",
              message=out.report, preserved="undo restores every key, channel and chain setting (live back on); "
              "redo brings the baked keys back; live solving works after both")


def test_undo_and_redo_capturing_a_comfort_pose(capfd) -> None:
    scene = bystander_rig()
    chain = scene.rig.ik_chains.chains["bad"]
    chain.enabled = False
    scene.rig.pose.bones["bad.1"].rotation_euler = (0.4, 0.0, 0.2)
    bpy.ops.ed.undo_push(message="posed")
    select_chain(scene.rig, "bad")
    out = run_operator(capfd, bpy.ops.ikchains.capture_comfort, "EXEC_DEFAULT", True)
    assert (out.result, out.report) == ({"FINISHED"}, "Captured the comfort pose of 3 bone(s)")
    captured = [tuple(b.rotation) for b in rig().ik_chains.chains["bad"].comfort_bones]
    assert len(captured) == 3
    bpy.ops.ed.undo()
    assert len(rig().ik_chains.chains["bad"].comfort_bones) == 0
    assert tuple(rig().pose.bones["bad.1"].rotation_euler) == tuple(np.float32((0.4, 0.0, 0.2)))
    bpy.ops.ed.redo()
    assert [tuple(b.rotation) for b in rig().ik_chains.chains["bad"].comfort_bones] == captured
    rig().ik_chains.chains["bad"].enabled = True
    assert_playback(rig(), bpy.data.objects["BadTarget"], chain="bad", tip="bad.2")
    user_sees("undo-redo-comfort", given="Undo, then redo, right after Capture from Current Pose",
              where="operator report", message=out.report,
              preserved="undo forgets the capture and keeps the pose; redo restores the same captured rotations")


def test_save_and_reload(tmp_path: Path, capfd) -> None:
    scene = bystander_rig()
    select_chain(scene.rig, "bad")
    run_operator(capfd, bpy.ops.ikchains.bake, frame_start=5, frame_end=15)
    before = snapshot(scene.rig)
    poses = {frame: pose_at(scene.rig, frame) for frame in (3, 9)}
    path = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    assert get_status("Rig", "bad") is None  # statuses are per session
    assert bpy.app.handlers.frame_change_post.count(handlers.on_frame_change_post) == 1
    bpy.context.scene.frame_set(1)
    assert_preserved(before, snapshot(rig()), posed=())
    for frame, pose in poses.items():
        again = pose_at(rig(), frame)
        for bone in (*GOOD_BONES, *BAD_BONES):
            np.testing.assert_allclose(again[bone], pose[bone], atol=1e-6, err_msg=f"{bone} at {frame}")
    message = status_message("Rig", "bad")
    user_sees("save-reload", given="Save the file and open it again", where="panel status", message=message,
              preserved="chains, settings, keys and the live handler; every frame's pose is the same as before")


def test_append_the_rig_into_another_file(tmp_path: Path) -> None:
    bystander_rig()
    source = tmp_path / "source.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(source))
    bpy.ops.wm.read_homefile(use_empty=True)
    with bpy.data.libraries.load(str(source), link=False) as (_from, appended):
        appended.objects = ["Rig"]
    rig_copy = appended.objects[0]
    bpy.context.scene.collection.objects.link(rig_copy)
    bpy.context.scene.frame_set(3)
    message = "chain 'good': target object 'GoodTarget' is not in scene 'Scene'"
    assert status_message("Rig", "good") == f"Error: {message}"  # appended with the rig, not linked to the scene
    for name in ("GoodTarget", "BadTarget"):
        bpy.context.scene.collection.objects.link(bpy.data.objects[name])
    assert rig_copy.library is None and rig_copy.ik_chains.chains["good"].target.name == "GoodTarget"
    assert_playback(rig_copy, bpy.data.objects["GoodTarget"])
    assert_playback(rig_copy, bpy.data.objects["BadTarget"], chain="bad", tip="bad.2")
    user_sees("append-rig", given="Append only the rig object into another file (its targets come along, "
              "unlinked from the scene)", where="panel status", message=message,
              preserved="the chains and their target pointers; once the targets are in the scene the chains solve")


def test_append_the_rig_with_its_collection(tmp_path: Path) -> None:
    scene = bystander_rig()
    kit = bpy.data.collections.new("Kit")
    bpy.context.scene.collection.children.link(kit)
    for obj in (scene.rig, scene.good_target, scene.bad_target):
        kit.objects.link(obj)
        bpy.context.scene.collection.objects.unlink(obj)
    source = tmp_path / "source.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(source))
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.append(directory=f"{source}/Collection/", filename="Kit")
    assert_playback(rig(), bpy.data.objects["GoodTarget"])
    assert_playback(rig(), bpy.data.objects["BadTarget"], chain="bad", tip="bad.2")
    message = status_message("Rig", "bad")
    assert message.startswith("Converged")
    user_sees("append-collection", given="Append the rig's collection (rig and targets) with File > Append",
              where="panel status", message=message, preserved="the chains solve at once, live and baked")


def test_disable_and_re_enable_the_addon() -> None:
    scene = bystander_rig()
    bpy.context.scene.frame_set(6)
    before = snapshot(scene.rig)
    blender_ik_addon.unregister()
    try:
        assert not hasattr(scene.rig, "ik_chains")
        frozen = {b: tuple(scene.rig.pose.bones[b].rotation_quaternion) for b in GOOD_BONES}
        bpy.context.scene.frame_set(12)  # playback without the add-on: nothing solves, nothing fails
        assert {b: tuple(scene.rig.pose.bones[b].rotation_quaternion) for b in GOOD_BONES} == frozen
    finally:
        blender_ik_addon.register()
    bpy.context.scene.frame_set(6)
    assert_preserved(before, snapshot(scene.rig))
    assert_playback(scene.rig, scene.good_target)
    message = status_message("Rig", "good")
    user_sees("addon-off-on", given="Disable the add-on mid-session, change frames, enable it again",
              where="panel status", message=message,
              preserved="every chain setting (stored in the file's data); live solving resumes; " + KEPT)


def test_scrubbing_backwards_gives_the_same_poses_as_forwards() -> None:
    scene = bystander_rig()
    chain = scene.rig.ik_chains.chains["bad"]
    chain.comfort_weight = 0.5
    item = chain.comfort_bones.add()
    item.name, item.rotation = "bad.1", (0.95, 0.3, 0.0, 0.0)
    frames = range(1, 21, 3)
    forwards = {frame: pose_at(scene.rig, frame) for frame in frames}
    backwards = {frame: pose_at(scene.rig, frame) for frame in reversed(frames)}
    shuffled = {frame: pose_at(scene.rig, frame) for frame in (7, 19, 4, 13, 1, 16)}
    for frame in frames:
        for bone in (*GOOD_BONES, *BAD_BONES):
            np.testing.assert_allclose(backwards[frame][bone], forwards[frame][bone], atol=1e-6,
                                       err_msg=f"{bone} at frame {frame}")
            if frame in shuffled:
                np.testing.assert_allclose(shuffled[frame][bone], forwards[frame][bone], atol=1e-6)
    message = status_message("Rig", "bad")
    user_sees("scrub-backwards",
              given="Scrub frames 1-19 forwards, then backwards, then in random order (a comfort pose set)",
              where="the viewport pose; panel status", message=message,
              preserved="every frame's pose is identical (1e-6) whichever way the frames were visited")


def test_the_table_lists_these_cases() -> None:
    assert undocumented("tests/blender/test_faults_files.py") == []

