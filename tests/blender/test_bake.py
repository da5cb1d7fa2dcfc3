"""Baking: one batch solve per chain, keys written straight into F-curves, only where they belong."""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from blender_rigs import BoneDef, add_chain, empty, make_armature, world_tail

from blender_ik_addon.blender import RigSetupError, bake_chains
from blender_ik_addon.blender.keys import iter_fcurves

TARGET_KEYS = {1: (1.0, 1.5, 0.5), 12: (-0.5, 2.0, 1.0), 25: (0.3, 1.0, -1.2), 40: (1.2, 2.2, 0.0)}


def keyed_target(name: str = "Target") -> bpy.types.Object:
    target = empty(name)
    for frame, location in TARGET_KEYS.items():
        target.location = location
        target.keyframe_insert("location", frame=frame)
    return target


def rig_with_bystanders() -> bpy.types.Object:
    """A 3-bone chain (three rotation modes) plus a bone that is not in it."""
    rig = make_armature([
        BoneDef("b0", (0, 0, 0), (0, 1, 0)),
        BoneDef("b1", (0, 1, 0), (0, 2, 0), parent="b0", connect=True),
        BoneDef("b2", (0, 2, 0), (0, 3, 0), parent="b1", connect=True),
        BoneDef("other", (0, 0, 0), (1, 0, 0)),
    ])
    rig.pose.bones["b0"].rotation_mode = "ZXY"
    rig.pose.bones["b1"].rotation_mode = "XYZ"
    rig.pose.bones["b2"].rotation_mode = "AXIS_ANGLE"
    return rig


def key_table(obj: bpy.types.Object) -> dict[tuple[str, int], np.ndarray]:
    """(data path, index) -> (k, 2) keyframe (frame, value) pairs."""
    out = {}
    for fcurve in iter_fcurves(obj):
        co = np.empty(2 * len(fcurve.keyframe_points), dtype=np.float32)
        fcurve.keyframe_points.foreach_get("co", co)
        out[(fcurve.data_path, fcurve.array_index)] = co.reshape(-1, 2)
    return out


def rotation_paths(bone: str, mode: str) -> list[tuple[str, int]]:
    path = {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}.get(mode, "rotation_euler")
    size = 3 if path == "rotation_euler" else 4
    return [(f'pose.bones["{bone}"].{path}', i) for i in range(size)]


def play_without_addon(rig: bpy.types.Object, frames: range) -> dict[int, np.ndarray]:
    for chain in rig.ik_chains.chains:
        chain.enabled = False
    out = {}
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        out[frame] = world_tail(rig, "b2")
    return out


def test_bake_keys_exactly_the_range_and_the_chain_rotation_channels() -> None:
    rig = rig_with_bystanders()
    target = keyed_target()
    pose = rig.pose.bones
    pose["b1"].rotation_euler = (0.1, 0.2, 0.3)
    for frame in (-5, 10, 50):  # outside, inside, outside the baked range
        pose["b1"].keyframe_insert("rotation_euler", frame=frame)
    pose["b0"].location = (0.0, 0.1, 0.0)
    pose["b0"].keyframe_insert("location", frame=10)  # another channel of a chain bone
    pose["other"].rotation_quaternion = (0.9, 0.1, 0.2, 0.0)
    pose["other"].keyframe_insert("rotation_quaternion", frame=10)  # a bone outside the chain
    pose["b0"].location = (0.0, 0.0, 0.0)
    add_chain(rig, "b2", 3, target, name="arm", enabled=False)
    before = key_table(rig)

    report = bake_chains(rig, ["arm"], 5, 30)

    after = key_table(rig)
    baked = {key for bone in ("b0", "b1", "b2") for key in rotation_paths(bone, pose[bone].rotation_mode)}
    assert set(after) == set(before) | baked  # no other channel appeared
    for key, keys in before.items():
        if key not in baked:
            np.testing.assert_array_equal(after[key], keys)  # untouched
    for key in baked:
        frames = after[key][:, 0]
        if key[0].startswith('pose.bones["b1"]'):
            np.testing.assert_array_equal(frames, [-5, *range(5, 31), 50])
            np.testing.assert_array_equal(after[key][[0, -1]], before[key][[0, -1]])  # outside keys survive
        else:
            np.testing.assert_array_equal(frames, list(range(5, 31)))
    assert report.frames == 26 and report.not_converged == 0
    assert report.summary().startswith("26 frames solved, 0 not converged (worst residual")
    # The keys alone (add-on off) put the tip on the target.
    tails = play_without_addon(rig, range(5, 31, 5))
    for frame, tail in tails.items():
        bpy.context.scene.frame_set(frame)
        np.testing.assert_allclose(tail, np.array(target.matrix_world.translation), atol=2e-4)


def bake_keys(force_frame_path: bool) -> tuple[dict, str]:
    bpy.ops.wm.read_homefile(use_empty=True)
    rig = rig_with_bystanders()
    target = keyed_target()
    if force_frame_path:  # a static parent at the origin: same motion, but not F-curves alone
        target.parent = empty("Holder")
    add_chain(rig, "b2", 3, target, name="arm", enabled=False)
    report = bake_chains(rig, None, 1, 40)
    return key_table(rig), report.path


def test_fcurve_path_and_frame_path_give_the_same_keys() -> None:
    fast, fast_path = bake_keys(False)
    slow, slow_path = bake_keys(True)
    assert (fast_path, slow_path) == ("fcurves", "frames")
    assert fast.keys() == slow.keys()
    for key in fast:
        np.testing.assert_allclose(fast[key], slow[key], atol=1e-6)


def test_bake_follows_an_animated_armature_and_chain_parent() -> None:
    rig = make_armature([
        BoneDef("hips", (0, 0, 0), (0, 0.5, 0)),
        BoneDef("b0", (0, 0.5, 0), (0, 1.5, 0), parent="hips", connect=True),
        BoneDef("b1", (0, 1.5, 0), (0, 2.5, 0), parent="b0", connect=True),
        BoneDef("b2", (0, 2.5, 0), (0, 3.5, 0), parent="b1", connect=True),
    ])
    for frame, (x, angle) in {1: (0.0, 0.0), 20: (0.5, 0.4), 40: (-0.3, -0.3)}.items():
        rig.location = (x, 0.0, 0.2 * x)
        rig.keyframe_insert("location", frame=frame)
        rig.pose.bones["hips"].rotation_mode = "XYZ"
        rig.pose.bones["hips"].rotation_euler = (angle, 0.0, angle / 2)
        rig.pose.bones["hips"].keyframe_insert("rotation_euler", frame=frame)
    target = empty(location=(0.8, 2.0, 0.6))
    add_chain(rig, "b2", 3, target, name="arm", enabled=False)
    report = bake_chains(rig, ["arm"], 1, 40, 3, disable_live=True)
    assert report.path == "frames" and report.not_converged == 0
    assert bpy.context.scene.frame_current == 1  # the frame is restored
    for frame, tail in play_without_addon(rig, range(1, 41, 3)).items():
        np.testing.assert_allclose(tail, target.location, atol=2e-4, err_msg=f"frame {frame}")


def test_step_replaces_every_key_inside_the_range() -> None:
    rig = rig_with_bystanders()
    target = keyed_target()
    add_chain(rig, "b2", 3, target, name="arm", enabled=False)
    bake_chains(rig, None, 1, 40)
    bake_chains(rig, None, 10, 20, 5)
    frames = key_table(rig)[('pose.bones["b1"].rotation_euler', 0)][:, 0]
    np.testing.assert_array_equal(frames, [*range(1, 10), 10, 15, 20, *range(21, 41)])


def test_bake_operator_is_undoable() -> None:
    rig = rig_with_bystanders()
    target = keyed_target()
    add_chain(rig, "b2", 3, target, name="arm", enabled=True)
    rig.pose.bones["b1"].keyframe_insert("rotation_euler", frame=100)
    bpy.context.view_layer.objects.active = rig
    before = key_table(rig)
    bpy.ops.ed.undo_push(message="before bake")
    # 'EXEC_DEFAULT', True: run with an undo push, as a click in the UI does (scripts skip it by default).
    result = bpy.ops.ikchains.bake("EXEC_DEFAULT", True, frame_start=1, frame_end=20, chains="ALL", disable_live=True)
    assert result == {"FINISHED"}
    rig = bpy.data.objects["Rig"]
    assert len(key_table(rig)[('pose.bones["b1"].rotation_euler', 0)]) == 21
    assert not rig.ik_chains.chains["arm"].enabled
    bpy.ops.ed.undo()
    rig = bpy.data.objects["Rig"]  # references do not survive undo
    after = key_table(rig)
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    assert rig.ik_chains.chains["arm"].enabled


def test_undoing_a_bake_drops_its_findings_and_undoing_something_else_keeps_them() -> None:
    """The panel's notes about a bake (where its keys switch or play off target) are about its keys:
    undone, the keys are gone and so are the notes; an undo of anything else keeps them."""
    from blender_ik_addon.blender.status import get_findings

    rig = rig_with_bystanders()
    add_chain(rig, "b2", 3, keyed_target(), name="arm", enabled=False)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.ed.undo_push(message="before bake")
    assert bpy.ops.ikchains.bake("EXEC_DEFAULT", True, frame_start=1, frame_end=20, chains="ALL") == {"FINISHED"}
    assert get_findings("Rig", "arm") is not None
    bpy.data.objects["Rig"].location.x = 1.0
    bpy.ops.ed.undo_push(message="moved")
    bpy.ops.ed.undo()  # the move: the bake's keys stay, and its findings
    assert get_findings("Rig", "arm") is not None
    bpy.ops.ed.undo()  # the bake
    assert get_findings("Rig", "arm") is None


def test_report_counts_frames_that_did_not_converge() -> None:
    rig = rig_with_bystanders()
    target = empty()
    for frame, location in {1: (0.0, 2.0, 1.0), 10: (0.0, 9.0, 0.0)}.items():  # 9 is out of reach
        target.location = location
        target.keyframe_insert("location", frame=frame)
    add_chain(rig, "b2", 3, target, name="arm", enabled=False)
    report = bake_chains(rig, None, 1, 10)
    assert 0 < report.not_converged < 10
    assert report.worst_error == pytest.approx(6.0, abs=1e-3)
    assert f"10 frames solved, {report.not_converged} not converged (worst residual 6)" == report.summary()


def test_bake_setup_errors_are_clear() -> None:
    rig = rig_with_bystanders()
    target = keyed_target()
    add_chain(rig, "b2", 3, target, name="arm", enabled=False)
    add_chain(rig, "b1", 2, target, name="upper", enabled=False)
    with pytest.raises(RigSetupError, match=r"no chain\(s\) 'leg'; its chains: 'arm', 'upper'"):
        bake_chains(rig, ["leg"], 1, 10)
    bake_chains(rig, ["arm"], 1, 2)  # 'upper' shares its bones but is not live: 'arm' is baked alone
    rig.ik_chains.chains["upper"].enabled = True  # live now: a group, baked whole or not at all
    with pytest.raises(RigSetupError, match=r"shares bones with chain 'upper', which is not in this bake"):
        bake_chains(rig, ["arm"], 1, 10)
    with pytest.raises(RigSetupError, match="bad frame range"):
        bake_chains(rig, ["arm"], 10, 1)
    mesh = bpy.data.objects.new("Mesh", bpy.data.meshes.new("Mesh"))
    with pytest.raises(RigSetupError, match="not an armature"):
        bake_chains(mesh, None, 1, 10)


def test_scripts_can_bake_plain_specs_without_stored_settings() -> None:
    from blender_ik_addon.blender import ChainSpec

    rig = rig_with_bystanders()
    keyed_target()
    report = bake_chains(rig, None, 1, 12, specs=[ChainSpec("arm", "b2", 3, target="Target")])
    assert report.frames == 12 and report.not_converged == 0 and report.path == "fcurves"
    assert len(rig.ik_chains.chains) == 0
    tails = play_without_addon(rig, range(1, 13, 11))
    np.testing.assert_allclose(tails[12], np.array(TARGET_KEYS[12]), atol=2e-4)


def test_baked_keys_equal_the_live_pose_at_every_frame() -> None:
    rig = rig_with_bystanders()
    keyed_target()
    chain = add_chain(rig, "b2", 3, bpy.data.objects["Target"], name="arm", enabled=False)
    bake_chains(rig, None, 1, 40)
    curves = {(fc.data_path, fc.array_index): fc for fc in iter_fcurves(rig)}
    chain.enabled = True
    for frame in (1, 7, 12, 26, 40):
        bpy.context.scene.frame_set(frame)  # the keys are evaluated, then the live handler solves
        for bone in ("b0", "b1", "b2"):
            for path, index in rotation_paths(bone, rig.pose.bones[bone].rotation_mode):
                live_value = getattr(rig.pose.bones[bone], path.rsplit(".", 1)[1])[index]
                assert curves[(path, index)].evaluate(frame) == pytest.approx(live_value, abs=2e-6), (frame, path)


def test_a_limit_keyed_to_change_inside_the_range_is_refused_and_still_keys_are_not() -> None:
    """A bake reads limits once: a Limit Rotation value of a chain bone keyed to change inside the
    range is refused by name. Keys that hold one value, keys outside the range and keys on a bone
    below the chain (fingers under a hand) bake as before."""
    from blender_rigs import straight_chain

    rig = straight_chain(4)
    add_chain(rig, "b2", 3, empty(location=(1.0, 1.5, 0.5)), name="arm")
    limit = rig.pose.bones["b1"].constraints.new("LIMIT_ROTATION")
    limit.use_limit_x, limit.owner_space = True, "LOCAL"
    for frame, value in ((1, 0.5), (10, 0.5), (30, 0.1)):  # still over 1-10, changes after
        limit.max_x = value
        limit.keyframe_insert("max_x", frame=frame)
    tail = rig.pose.bones["b3"]  # below the chain: its animation does not change the chain
    for frame, angle in ((1, 0.0), (10, 0.4)):
        tail.rotation_euler = (angle, 0.0, 0.0)
        tail.keyframe_insert("rotation_euler", frame=frame)
        tail.keyframe_insert("scale", frame=frame)
    bpy.context.scene.frame_set(1)
    bake_chains(rig, ["arm"], 1, 10)  # the limit holds still at 0.5 over 1-10
    with pytest.raises(RigSetupError, match=r"chain 'arm': the constraints\[\"Limit Rotation\"\]\.max_x of bone 'b1' "
                                            r"is animated \(keys that change inside the baked range: "):
        bake_chains(rig, ["arm"], 1, 40)
