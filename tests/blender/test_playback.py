"""What the add-on reports is what Blender plays: keys at action time (Time Stretching, NLA tweak mode),
and every bake and Key Current Frame measured again as it plays back.

Each test sets the situation up through bpy as the UI does, bakes or keys, then plays the frames back
itself with the chain switched off (the keys alone) and measures the tip against the target.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
import pytest
from blender_rigs import BoneDef, add_chain, empty, make_armature, world_tail
from mathutils import Vector

from blender_ik_addon.blender import RigSetupError, bake_chains, get_status, key_chains
from blender_ik_addon.blender.goals import Goal
from blender_ik_addon.blender.keys import fcurve_collection, iter_fcurves
from blender_ik_addon.blender.outputs import playback_problems
from blender_ik_addon.blender.verify import PlayedChain, diagnose, played_errors

TOLERANCE = 1e-4  # the chains' default, world units
PLAYED = 2e-4  # what the test accepts back: the tolerance plus float32 rounding of keys and matrices
BONES = ("b0", "b1", "b2")


def gliding_target(frames: tuple[int, int], name: str = "Target") -> bpy.types.Object:
    """An Empty keyed at both ends of ``frames`` on a path within reach of a 3-unit chain."""
    target = empty(name)
    for frame, location in zip(frames, ((1.2, 1.6, 0.5), (-0.8, 2.0, 1.0)), strict=True):
        target.location = location
        target.keyframe_insert("location", frame=frame)
    return target


def chain_rig(target: bpy.types.Object) -> bpy.types.Object:
    """A 3-bone chain along +Y (quaternion bones) plus a bone "other" in no chain, with its chain."""
    rig = make_armature([*(BoneDef(f"b{i}", (0, i, 0), (0, i + 1, 0), parent=f"b{i - 1}" if i else None,
                                   connect=bool(i)) for i in range(3)), BoneDef("other", (0, 0, 0), (1, 0, 0))])
    add_chain(rig, "b2", 3, target, name="arm")
    return rig


def misses(rig: bpy.types.Object, target: bpy.types.Object, frames: range) -> dict[int, float]:
    """Frames whose played-back tip (the keys alone: chains off) is more than :data:`PLAYED` from the target."""
    for chain in rig.ik_chains.chains:
        chain.enabled = False
    out = {}
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        distance = float(np.linalg.norm(world_tail(rig, "b2") - np.array(target.matrix_world.translation)))
        if distance > PLAYED:
            out[frame] = distance
    return out


def rotation_key_frames(rig: bpy.types.Object) -> dict[str, list[float]]:
    """Bone -> the frames of its rotation_quaternion[0] keys (action time)."""
    out = {}
    for fcurve in iter_fcurves(rig):
        if fcurve.data_path.endswith("rotation_quaternion") and fcurve.array_index == 0:
            bone = fcurve.data_path.split('"')[1]
            out[bone] = sorted(round(k.co[0], 4) for k in fcurve.keyframe_points)
    return out


# --------------------------------------------------------------------------- Time Stretching


def test_time_stretching_keys_play_at_the_solved_frames() -> None:
    scene = bpy.context.scene
    target = gliding_target((1, 80))
    rig = chain_rig(target)
    scene.render.frame_map_old, scene.render.frame_map_new = 100, 200  # frame f plays animation time f / 2
    report = bake_chains(rig, ["arm"], 1, 40)
    assert report.not_converged == 0 and report.chains[0].findings.verified == 40
    assert rotation_key_frames(rig)["b0"] == [f / 2 for f in range(1, 41)]  # where Blender reads them
    assert misses(rig, target, range(1, 41)) == {}


def test_key_current_frame_under_time_stretching_plays_at_that_frame() -> None:
    scene = bpy.context.scene
    target = gliding_target((1, 80))
    rig = chain_rig(target)
    scene.render.frame_map_old, scene.render.frame_map_new = 100, 200
    scene.frame_set(40)
    status = key_chains(rig, ["arm"])["arm"]
    assert status.converged, status.describe()
    assert rotation_key_frames(rig)["b0"] == [20.0]
    assert misses(rig, target, range(40, 41)) == {}


# --------------------------------------------------------------------------- NLA tweak mode


def rig_in_tweak_mode(target: bpy.types.Object, *, scale: float = 1.0, repeat: float = 1.0,
                      reverse: bool = False) -> tuple[bpy.types.Object, bpy.types.NlaStrip]:
    """The chain rig whose action (keys at action frames 1 and 20 on every bone, "other" included) is
    pushed down onto an NLA strip starting at scene frame 101, and that strip entered in tweak mode."""
    rig = chain_rig(target)
    for chain in rig.ik_chains.chains:
        chain.enabled = False
    for frame in (1, 20):
        for bone in (*BONES, "other"):
            rig.pose.bones[bone].keyframe_insert("rotation_quaternion", frame=frame)
    anim = rig.animation_data
    action = anim.action
    track = anim.nla_tracks.new()
    strip = track.strips.new(action.name, 101, action)  # Push Down: the strip plays it, the rig has none
    anim.action = None
    strip.scale, strip.repeat, strip.use_reverse = scale, repeat, reverse
    anim.nla_tracks.active = track
    strip.select = True
    anim.use_tweak_mode = True  # Tab in the NLA editor
    assert anim.use_tweak_mode and anim.action == action
    return rig, strip


def other_keys(rig: bpy.types.Object) -> dict[tuple[str, int], list[tuple[float, float]]]:
    return {(f.data_path, f.array_index): [tuple(k.co) for k in f.keyframe_points]
            for f in iter_fcurves(rig) if '"other"' in f.data_path}


def test_tweak_mode_keys_land_in_the_strip_and_play_there() -> None:
    target = gliding_target((101, 120))
    rig, _strip = rig_in_tweak_mode(target)
    before = other_keys(rig)
    report = bake_chains(rig, ["arm"], 101, 120)
    assert report.not_converged == 0, report.summary()
    assert rotation_key_frames(rig)["b0"] == [float(f) for f in range(1, 21)]  # the strip's action frames
    assert other_keys(rig) == before
    assert misses(rig, target, range(101, 121)) == {}
    rig.animation_data.use_tweak_mode = False  # the strip plays them as well
    assert misses(rig, target, range(101, 121)) == {}


@pytest.mark.parametrize(("scale", "reverse"), [(2.0, False), (0.5, False), (1.0, True)])
def test_scaled_and_reversed_strips_map_each_frame(scale: float, reverse: bool) -> None:
    target = gliding_target((101, 110))
    rig, strip = rig_in_tweak_mode(target, scale=scale, reverse=reverse)
    end = min(110, int(strip.frame_end))
    report = bake_chains(rig, ["arm"], 101, end)
    assert report.not_converged == 0, report.summary()
    assert misses(rig, target, range(101, end + 1)) == {}


def test_a_range_over_two_repeats_of_a_strip_is_refused() -> None:
    target = gliding_target((101, 160))
    rig, strip = rig_in_tweak_mode(target, repeat=2.0)  # action 1-20 played twice: 101-120, 120-139
    assert strip.frame_end == pytest.approx(139.0)
    before = {(f.data_path, f.array_index): [tuple(k.co) for k in f.keyframe_points] for f in iter_fcurves(rig)}
    with pytest.raises(RigSetupError, match=r"NLA strip 'RigAction' of 'Rig' repeats its action \(2 times\): scene "
                                            r"frames 101 and 120 both play action frame 1"):
        bake_chains(rig, ["arm"], 101, 130)
    assert before == {(f.data_path, f.array_index): [tuple(k.co) for k in f.keyframe_points]
                      for f in iter_fcurves(rig)}
    report = bake_chains(rig, ["arm"], 121, 135)  # inside the second repeat: one action frame each
    assert report.not_converged == 0, report.summary()
    assert misses(rig, target, range(121, 136)) == {}


def test_frames_outside_the_tweaked_strip_are_refused() -> None:
    target = gliding_target((90, 130))
    rig, _strip = rig_in_tweak_mode(target)
    with pytest.raises(RigSetupError, match=r"'Rig' is in NLA tweak mode on strip 'RigAction', which plays scene "
                                            r"frames 101 to 120: frame 121 is outside it"):
        bake_chains(rig, ["arm"], 110, 125)


def test_key_current_frame_in_tweak_mode_keys_the_strips_action_frame() -> None:
    target = gliding_target((101, 140))
    rig, _strip = rig_in_tweak_mode(target, scale=2.0)  # scene 101-139 plays action 1-20
    bpy.context.scene.frame_set(111)
    status = key_chains(rig, ["arm"])["arm"]
    assert status.converged, status.describe()
    assert 6.0 in rotation_key_frames(rig)["b0"]  # 1 + (111 - 101) / 2
    assert misses(rig, target, range(111, 112)) == {}


# --------------------------------------------------------------------------- verification


def test_playback_is_measured_and_a_miss_is_explained() -> None:
    """The verifier itself: keys that do not play (a channel muted after the bake) are caught, with
    the bone and channel named."""
    scene = bpy.context.scene
    target = gliding_target((1, 10))
    rig = chain_rig(target)
    bake_chains(rig, ["arm"], 1, 10, disable_live=True)
    chain = PlayedChain("arm", "b2", 3, Goal(target), TOLERANCE)
    assert played_errors(scene, rig, [chain], np.arange(1.0, 11.0))["arm"].ok.all()
    fcurve_collection(rig, create=False).find('pose.bones["b1"].rotation_quaternion', index=1).mute = True
    played = played_errors(scene, rig, [chain], np.arange(1.0, 11.0))["arm"]
    assert not played.ok.all() and played.distance.max() > 0.01
    frame = float(played.misses()[0])
    keyed = {"b1": ("rotation_quaternion", np.array(rig.pose.bones["b1"].rotation_quaternion))}
    scene.frame_set(int(frame))
    keyed["b1"] = ("rotation_quaternion", np.array([fc.evaluate(frame) for fc in sorted(
        (f for f in iter_fcurves(rig) if f.data_path == 'pose.bones["b1"].rotation_quaternion'),
        key=lambda f: f.array_index)]))
    cause = diagnose(scene, rig, chain, frame, np.array(target.matrix_world.translation), keyed)
    assert cause.startswith("bone 'b1' plays rotation_quaternion (") and "something overrides its keys" in cause


def test_a_bake_that_does_not_play_as_solved_is_not_reported_converged() -> None:
    """A user's frame handler puts the target half a unit beside the tip (a "sticky" prop script, a
    loop through Python no check can see): the solve reached the target where it was sampled, playback
    moves it with the keyed tip, and the report says so instead of "converged"."""
    target = gliding_target((1, 10))
    rig = chain_rig(target)

    def sticky_prop(_scene: bpy.types.Scene, depsgraph: bpy.types.Depsgraph | None = None) -> None:
        rig_eval = rig.evaluated_get(depsgraph or bpy.context.evaluated_depsgraph_get())
        target.location = rig_eval.matrix_world @ rig_eval.pose.bones["b2"].tail + Vector((0.5, 0.0, 0.0))

    bpy.app.handlers.frame_change_post.append(sticky_prop)
    try:
        report = bake_chains(rig, ["arm"], 1, 10, disable_live=True)
    finally:
        bpy.app.handlers.frame_change_post.remove(sticky_prop)
    findings = report.chains[0].findings
    assert report.not_converged > 0 and findings.played_misses
    assert "plays back off target at frames" in report.summary()
    status = get_status("Rig", "arm")
    assert status is not None and not status.converged and "plays back off target" in status.message


# --------------------------------------------------------------------------- outputs that do not play


def all_keys(rig: bpy.types.Object) -> dict[tuple[str, int], list[tuple[float, float]]]:
    return {(f.data_path, f.array_index): [tuple(k.co) for k in f.keyframe_points] for f in iter_fcurves(rig)}


def test_bake_and_key_refuse_a_muted_chain_channel_and_write_nothing() -> None:
    scene = bpy.context.scene
    target = gliding_target((1, 10))
    rig = chain_rig(target)
    for frame in (1, 10):
        rig.pose.bones["b1"].keyframe_insert("rotation_quaternion", frame=frame)
    fcurve_collection(rig, create=False).find('pose.bones["b1"].rotation_quaternion', index=2).mute = True
    before = all_keys(rig)
    expected = ("chain 'arm': F-curve pose.bones[\"b1\"].rotation_quaternion[2] is muted, so keys written there would "
                "not play; unmute it")
    with pytest.raises(RigSetupError) as refused:
        bake_chains(rig, ["arm"], 1, 10)
    assert str(refused.value) == expected
    scene.frame_set(5)
    status = key_chains(rig, ["arm"])["arm"]
    assert not status.solved and status.message == expected
    assert all_keys(rig) == before


def test_bake_refuses_an_action_blended_below_full_influence() -> None:
    """The action at influence 0.5 over an NLA strip that animates the chain: keys would play half-way."""
    target = gliding_target((1, 10))
    rig = chain_rig(target)
    rig.pose.bones["b0"].keyframe_insert("rotation_quaternion", frame=1)
    anim = rig.animation_data
    below = anim.action
    anim.nla_tracks.new().strips.new("Below", 1, below)
    anim.action = bpy.data.actions.new("Top")
    anim.action_influence = 0.5
    with pytest.raises(RigSetupError, match=r"chain 'arm': .*plays at influence 0.5 over NLA track 'NlaTrack', "
                                            r"so keys on .* would play blended with them; set the action's "
                                            r"influence to 1"):
        bake_chains(rig, ["arm"], 1, 10)
    anim.action_influence = 1.0  # Replace at full influence plays what is written, strips below or not
    report = bake_chains(rig, ["arm"], 1, 10)
    assert report.not_converged == 0, report.summary()
    assert misses(rig, target, range(1, 11)) == {}


# --------------------------------------------------------------------------- objects held by reference


@pytest.mark.parametrize("followed", ["linked", "local"])
def test_a_target_named_like_a_linked_object_is_followed_itself(tmp_path: Path, followed: str) -> None:
    """A linked file brings an Empty named "Target" beside a local "Target": the chain follows the
    one it points at, live, keyed and baked, never the other one found by name."""
    library = tmp_path / "props.blend"
    empty("Target", (1.2, 1.6, 0.5))
    bpy.ops.wm.save_as_mainfile(filepath=str(library))
    bpy.ops.wm.read_homefile(use_empty=True)
    local = empty("Target", (-1.0, 2.0, 0.4))
    with bpy.data.libraries.load(str(library), link=True) as (_source, linked_data):
        linked_data.objects = ["Target"]
    linked = linked_data.objects[0]
    bpy.context.scene.collection.objects.link(linked)
    assert linked.library is not None and linked.name == local.name == "Target"
    target, other = (linked, local) if followed == "linked" else (local, linked)
    rig = chain_rig(target)
    scene = bpy.context.scene
    scene.frame_set(2)
    assert np.linalg.norm(world_tail(rig, "b2") - np.array(target.matrix_world.translation)) < PLAYED
    assert np.linalg.norm(world_tail(rig, "b2") - np.array(other.matrix_world.translation)) > 1.0
    assert key_chains(rig, ["arm"])["arm"].converged
    report = bake_chains(rig, ["arm"], 1, 3)
    assert report.not_converged == 0, report.summary()
    assert misses(rig, target, range(1, 4)) == {}


# --------------------------------------------------------------------------- found by a break-it pass


def test_an_action_another_rig_plays_on_an_nla_strip_is_not_keyed() -> None:
    target = gliding_target((1, 10))
    rig = chain_rig(target)
    rig.pose.bones["b0"].keyframe_insert("rotation_quaternion", frame=1)
    action = rig.animation_data.action
    twin = make_armature([BoneDef("b0", (5, 0, 0), (5, 1, 0))], "Twin")
    strip = twin.animation_data_create().nla_tracks.new().strips.new("Shared", 1, action)
    if hasattr(strip, "action_slot"):  # 4.4+: the same slot the rig plays
        strip.action_slot = rig.animation_data.action_slot
    before = all_keys(rig)
    with pytest.raises(RigSetupError, match=rf"action {action.name!r} is also played by NLA strip 'Shared' of 'Twin': "
                                            r"keys baked for 'Rig' would change 'Twin' too"):
        bake_chains(rig, ["arm"], 1, 10)
    assert all_keys(rig) == before


def test_key_current_frame_on_a_subframe_keys_that_subframe() -> None:
    target = gliding_target((1, 20))
    rig = chain_rig(target)
    bpy.context.scene.frame_set(10, subframe=0.5)
    status = key_chains(rig, ["arm"])["arm"]
    assert status.converged, status.describe()
    assert rotation_key_frames(rig)["b0"] == [10.5]


def test_a_blend_ramp_or_an_upper_strip_outside_the_baked_frames_is_not_refused() -> None:
    target = gliding_target((101, 120))
    rig, strip = rig_in_tweak_mode(target)
    strip.blend_in = 3.0  # 101-104 blend in
    other_action = bpy.data.actions.new("Wave")  # another take on the same bones, far down the timeline
    rig.animation_data.use_tweak_mode = False
    rig.animation_data.action = other_action
    rig.pose.bones["b0"].keyframe_insert("rotation_quaternion", frame=1)
    rig.animation_data.action = None
    upper = rig.animation_data.nla_tracks.new()
    far = upper.strips.new("Far", 500, other_action)
    far.extrapolation = "NOTHING"
    rig.animation_data.nla_tracks.active = rig.animation_data.nla_tracks[0]
    strip.select = True
    rig.animation_data.use_tweak_mode = True
    with pytest.raises(RigSetupError, match="blends in over 3 and out over 0 frames"):
        bake_chains(rig, ["arm"], 101, 110)
    bones = [rig.pose.bones[b] for b in BONES]
    assert any("NLA strip 'Far' on track" in p for p in playback_problems(rig, bones, (500.0, 505.0)))
    assert not any("'Far'" in p for p in playback_problems(rig, bones, (106.0, 114.0)))
    report = bake_chains(rig, ["arm"], 106, 114)
    assert report.not_converged == 0, report.summary()
    assert misses(rig, target, range(106, 115)) == {}


def test_a_synced_strip_clipped_inside_its_action_keys_where_blender_plays() -> None:
    """Sync Length on (the default) and the strip clipped to action frames 5-15 of keys 1-20: while
    tweaked, Blender plays the whole action anchored at the strip's start, so scene frame 115 plays
    action frame 19; the keys go there and play, in tweak mode and after it."""
    target = gliding_target((101, 115))
    rig, strip = rig_in_tweak_mode(target)
    rig.animation_data.use_tweak_mode = False
    strip.action_frame_start, strip.action_frame_end = 5.0, 15.0  # scene 101-111 plays 5-15
    strip.frame_start = 101.0
    assert strip.use_sync_length and strip.frame_end == pytest.approx(111.0)
    rig.animation_data.use_tweak_mode = True
    report = bake_chains(rig, ["arm"], 101, 115)
    assert report.not_converged == 0, report.summary()
    assert rotation_key_frames(rig)["b0"][:2] == [1.0, 5.0] and rotation_key_frames(rig)["b0"][-2:] == [19.0, 20.0]
    assert misses(rig, target, range(101, 116)) == {}
    rig.animation_data.use_tweak_mode = False
    assert misses(rig, target, range(101, 116)) == {}
