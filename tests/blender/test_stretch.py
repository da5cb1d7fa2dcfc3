"""IK Stretch (issue 12): bones that stretch to reach, written, keyed and played back by Blender."""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from blender_rigs import add_chain, empty, pose_matrices, straight_chain, world_tail
from test_bake import key_table, rotation_paths

from blender_ik_addon.blender import RigSetupError, bake_chains, get_status, key_chains, read_chain
from blender_ik_addon.blender.keys import iter_fcurves

TOLERANCE = 2e-4  # world units: the solver's 1e-4, plus float32 keys played back
BONES = ("b0", "b1", "b2")
FAR = np.array([0.0, 0.6, 4.2])  # 4.24 from the root: beyond the 3 m chain


def stretch_rig(stretch: tuple[float, ...] = (0.5, 0.0, 1.0)) -> bpy.types.Object:
    """Three 1 m bones along +Y, Euler XYZ, each with the given IK Stretch."""
    rig = straight_chain(3)
    for name, amount in zip(BONES, stretch, strict=True):
        rig.pose.bones[name].rotation_mode = "XYZ"
        rig.pose.bones[name].ik_stretch = amount
    return rig


def scale_columns(rig: bpy.types.Object) -> np.ndarray:
    """``(3, 3)`` each chain bone's evaluated pose matrix column lengths (its scale as played)."""
    return np.linalg.norm(pose_matrices(rig, BONES)[:, :3, :3], axis=1)


def scale_paths(bone: str) -> list[tuple[str, int]]:
    return [(f'pose.bones["{bone}"].scale', i) for i in range(3)]


def test_live_a_target_beyond_reach_is_reached_by_stretching_the_bones_that_stretch() -> None:
    rig = stretch_rig()
    target = empty(location=FAR.tolist())
    add_chain(rig, "b2", 3, target, name="arm", use_stretch=True)
    bpy.context.scene.frame_set(1)
    assert get_status(rig.name, "arm").converged
    np.testing.assert_allclose(world_tail(rig, "b2"), FAR, atol=TOLERANCE)
    columns = scale_columns(rig)
    np.testing.assert_allclose(columns - columns[:, :1], 0.0, atol=1e-5)  # uniform, as Blender's IK scales
    assert columns[0, 0] > 1.01 and columns[2, 0] > 1.01
    np.testing.assert_allclose(columns[1], columns[0])  # b1 does not stretch: it inherits b0's scale
    pose = rig.pose.bones
    assert tuple(pose["b1"].scale) == (1.0, 1.0, 1.0)  # and keeps its own channels
    np.testing.assert_allclose(tuple(pose["b2"].scale), columns[2, 0] / columns[0, 0], rtol=1e-5)


def test_live_within_reach_the_chain_bends_without_stretching() -> None:
    rig = stretch_rig((1.0, 1.0, 1.0))
    target = empty(location=(0.0, 1.2, 1.5))
    add_chain(rig, "b2", 3, target, name="arm", use_stretch=True)
    bpy.context.scene.frame_set(1)
    np.testing.assert_allclose(world_tail(rig, "b2"), (0.0, 1.2, 1.5), atol=TOLERANCE)
    for name in BONES:
        assert tuple(rig.pose.bones[name].scale) == (1.0, 1.0, 1.0)


def test_key_current_frame_keys_the_rotations_and_the_scale_of_stretching_bones_only() -> None:
    rig = stretch_rig()
    target = empty(location=FAR.tolist())
    add_chain(rig, "b2", 3, target, name="arm", use_stretch=True, enabled=False)
    bpy.context.scene.frame_set(7)
    status = key_chains(rig, ["arm"])["arm"]
    assert status.converged, status.message
    keys = key_table(rig)
    expected = {key for bone in BONES for key in rotation_paths(bone, "XYZ")} | {
        key for bone in ("b0", "b2") for key in scale_paths(bone)}
    assert set(keys) == expected
    for key in expected:
        np.testing.assert_array_equal(keys[key][:, 0], [7.0])
    # The keys alone (live off) play the tip onto the target.
    rig.pose.bones["b0"].scale = rig.pose.bones["b2"].scale = (1.0, 1.0, 1.0)
    bpy.context.scene.frame_set(8)
    bpy.context.scene.frame_set(7)
    np.testing.assert_allclose(world_tail(rig, "b2"), FAR, atol=TOLERANCE)


def keyed_far_target() -> bpy.types.Object:
    """A target that moves from within reach (frame 1) to beyond it (frames 10-20)."""
    target = empty()
    for frame, location in {1: (0.0, 1.0, 2.0), 10: (0.5, 1.0, 3.5), 20: (-0.5, 2.0, 4.0)}.items():
        target.location = location
        target.keyframe_insert("location", frame=frame)
    return target


def test_bake_keys_scale_only_for_stretching_bones_and_the_keys_play_onto_the_target() -> None:
    rig = stretch_rig()
    rig.pose.bones["b1"].keyframe_insert("scale", frame=30)  # a non-stretching bone's own scale key
    target = keyed_far_target()
    add_chain(rig, "b2", 3, target, name="arm", use_stretch=True, enabled=False)
    before = key_table(rig)
    report = bake_chains(rig, ["arm"], 1, 20, disable_live=True)
    assert report.not_converged == 0, report.summary()
    keys = key_table(rig)
    baked = {key for bone in BONES for key in rotation_paths(bone, "XYZ")} | {
        key for bone in ("b0", "b2") for key in scale_paths(bone)}
    assert set(keys) == set(before) | baked
    for key in baked:
        np.testing.assert_array_equal(keys[key][:, 0], np.arange(1.0, 21.0))
    for key, values in before.items():
        np.testing.assert_array_equal(keys[key], values)  # b1's scale key untouched
    for index in range(3):  # one value in the three channels: the uniform scale Blender's IK gives
        np.testing.assert_array_equal(keys[('pose.bones["b2"].scale', index)], keys[('pose.bones["b2"].scale', 0)])
    assert keys[('pose.bones["b0"].scale', 0)][:, 1].max() > 1.05
    assert keys[('pose.bones["b0"].scale', 0)][0, 1] == 1.0  # frame 1 is within reach: no stretch
    for frame in (1, 10, 15, 20):
        bpy.context.scene.frame_set(frame)
        np.testing.assert_allclose(world_tail(rig, "b2"), np.array(target.matrix_world.translation), atol=TOLERANCE)


def test_switch_off_no_scale_is_keyed_and_the_tip_stops_at_full_reach() -> None:
    rig = stretch_rig()
    target = keyed_far_target()
    add_chain(rig, "b2", 3, target, name="arm", use_stretch=False, enabled=False)
    report = bake_chains(rig, ["arm"], 1, 20, disable_live=True)
    assert report.not_converged > 0
    keys = key_table(rig)
    assert not any(path.endswith(".scale") for path, _ in keys)
    bpy.context.scene.frame_set(20)
    goal = np.array(target.matrix_world.translation)
    np.testing.assert_allclose(np.linalg.norm(world_tail(rig, "b2") - goal), np.linalg.norm(goal) - 3.0, atol=1e-3)


def test_an_ik_stretch_edit_is_noticed_live() -> None:
    rig = stretch_rig((0.0, 0.0, 0.0))
    target = empty(location=FAR.tolist())
    add_chain(rig, "b2", 3, target, name="arm", use_stretch=True)
    bpy.context.scene.frame_set(1)
    assert not get_status(rig.name, "arm").converged  # nothing stretches yet
    rig.pose.bones["b2"].ik_stretch = 0.5
    bpy.context.scene.frame_set(2)
    assert get_status(rig.name, "arm").converged
    np.testing.assert_allclose(world_tail(rig, "b2"), FAR, atol=TOLERANCE)
    assert rig.pose.bones["b2"].scale[0] > 1.3


def test_a_bone_that_does_not_inherit_scale_below_a_stretching_bone_is_refused() -> None:
    rig = stretch_rig()
    rig.data.bones["b1"].inherit_scale = "NONE"
    with pytest.raises(RigSetupError, match="Inherit Scale 'None' below the stretching bone 'b0'"):
        read_chain(rig, "b2", 3, stretch=True)
    read_chain(rig, "b2", 3)  # without stretch nothing is scaled: fine


def test_a_scale_left_by_stretch_is_named_when_the_switch_is_off() -> None:
    rig = stretch_rig()
    target = empty(location=FAR.tolist())
    chain = add_chain(rig, "b2", 3, target, name="arm", use_stretch=True)
    bpy.context.scene.frame_set(1)
    chain.use_stretch = False  # nothing about scale is written any more
    bpy.context.scene.frame_set(2)
    status = get_status(rig.name, "arm")
    assert not status.solved and "Alt+S" in status.message


def test_live_frames_do_not_read_a_stretching_chain_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # The scale the solve writes is not part of what the chain depends on (blender/structure.py).
    from blender_ik_addon.blender import structure

    reads: list[str] = []
    original = structure.read_chain

    def spy(obj, tip_bone, length, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(tip_bone)
        return original(obj, tip_bone, length, **kwargs)

    monkeypatch.setattr(structure, "read_chain", spy)
    rig = stretch_rig()
    target = keyed_far_target()
    add_chain(rig, "b2", 3, target, name="arm", use_stretch=True)
    for frame in range(1, 21):
        bpy.context.scene.frame_set(frame)
        np.testing.assert_allclose(world_tail(rig, "b2"), np.array(target.matrix_world.translation), atol=TOLERANCE)
    assert reads == ["b2"]
    assert rig.pose.bones["b2"].scale[0] > 1.5


def test_below_influence_1_the_stretch_blends_toward_the_rest_length_too() -> None:
    """Influence 0.5, no keys on the bones (the keys' pose: rest, unstretched): the length factors
    are halfway from 1 to the solved ones, and Key Current Frame's playback check, which measures
    the blended pose's tip, finds the keys playing what was meant."""
    full = stretch_rig()
    add_chain(full, "b2", 3, empty(location=FAR.tolist()), name="arm", use_stretch=True)
    bpy.context.scene.frame_set(1)
    solved = scale_columns(full)[:, 0]
    bpy.data.objects.remove(full)
    rig = stretch_rig()
    add_chain(rig, "b2", 3, empty("Far", location=FAR.tolist()), name="arm", use_stretch=True, enabled=False,
              influence=0.5)
    status = key_chains(rig, ["arm"])["arm"]
    assert status.converged and "blended at influence 0.5" in status.message, status
    np.testing.assert_allclose(scale_columns(rig)[:, 0], 1.0 + 0.5 * (solved - 1.0), rtol=1e-5)


@pytest.mark.parametrize("how", ["live", "bake", "key"])
def test_a_chain_hanging_below_a_stretching_chain_sees_the_stretch(how: str) -> None:
    """An arm hanging from the top bone of a spine that stretches: the arm's base is where the
    stretched spine puts it (and scaled with it), live, baked and keyed."""
    from blender_rigs import BoneDef, make_armature
    rig = make_armature([BoneDef("sp0", (0, 0, 0), (0, 0, 1)),
                         BoneDef("sp1", (0, 0, 1), (0, 0, 2), parent="sp0", connect=True),
                         BoneDef("upper", (0, 0, 2), (1, 0, 2), parent="sp1"),
                         BoneDef("fore", (1, 0, 2), (2, 0, 2), parent="upper", connect=True)])
    for pbone in rig.pose.bones:
        pbone.rotation_mode = "XYZ"
    rig.pose.bones["sp0"].ik_stretch = rig.pose.bones["sp1"].ik_stretch = 0.5
    head, hand = empty("Head", (0.3, 0.0, 3.0)), empty("Hand", (1.2, 0.5, 3.0))  # the spine's reach is 2
    live = how == "live"
    add_chain(rig, "sp1", 2, head, name="spine", use_stretch=True, enabled=live)
    add_chain(rig, "fore", 2, hand, name="arm", enabled=live)
    if how == "bake":
        assert bake_chains(rig, ["spine", "arm"], 1, 1, disable_live=True).not_converged == 0
    elif how == "key":
        assert all(s.converged for s in key_chains(rig, ["spine", "arm"]).values())
    bpy.context.scene.frame_set(1)
    spine_scale = np.linalg.norm(pose_matrices(rig, ["sp0"])[0, :3, :3], axis=0)
    assert spine_scale.min() > 1.4  # the spine stretched
    for name, tip, target in (("spine", "sp1", head), ("arm", "fore", hand)):
        assert get_status(rig.name, name).converged
        np.testing.assert_allclose(world_tail(rig, tip), np.array(target.location), atol=TOLERANCE, err_msg=name)


def test_a_scale_key_that_puts_the_stretch_back_is_solved_again_on_every_frame() -> None:
    """A scale key left on the stretching tip (from earlier work) resets its scale on each frame
    change while the target stands still: the live pass must write the stretch again, not take the
    unchanged inputs for an unchanged pose."""
    rig = stretch_rig((0.0, 0.0, 1.0))
    rig.pose.bones["b2"].keyframe_insert("scale", frame=1)
    target = empty(location=(0.3, 1.0, 4.6))
    add_chain(rig, "b2", 3, target, name="arm", use_stretch=True)
    for frame in (1, 2, 3, 2, 1):
        bpy.context.scene.frame_set(frame)
        assert get_status(rig.name, "arm").converged
        np.testing.assert_allclose(world_tail(rig, "b2"), (0.3, 1.0, 4.6), atol=TOLERANCE, err_msg=str(frame))


def test_scale_channels_that_would_not_play_are_refused_by_name() -> None:
    """A stretching bone's scale channels are checked as rotation channels are: a driver on them,
    or a muted F-curve, is refused before anything is written."""
    rig = stretch_rig((0.0, 0.0, 1.0))
    target = empty(location=FAR.tolist())
    add_chain(rig, "b2", 3, target, name="arm", use_stretch=True, enabled=False)
    fcurve = rig.pose.bones["b2"].driver_add("scale", 1)
    fcurve.driver.expression = "1.0"
    with pytest.raises(RigSetupError, match=r"^bone 'b2': a driver sets scale\[1\], so the solved pose would be "):
        bake_chains(rig, ["arm"], 1, 3)
    rig.animation_data.drivers.remove(fcurve)
    rig.pose.bones["b2"].keyframe_insert("scale", frame=1)
    muted = next(fc for fc in iter_fcurves(rig) if fc.data_path == 'pose.bones["b2"].scale' and fc.array_index == 0)
    muted.mute = True
    with pytest.raises(RigSetupError, match=r"^chain 'arm': F-curve pose.bones\[\"b2\"\].scale\[0\] is muted"):
        bake_chains(rig, ["arm"], 1, 3)
