"""A chain's Influence: the IK/FK blend animators key (issue 12).

The rig: a 3-bone arm whose first two bones are keyed "down" at frames 1 and 20 (the FK pose; the
third bone has no keys: its FK pose is the rest pose), a static target, and the chain's influence
keyed 0 at frame 1 and 1 at frame 20 (linear). Live solving, Key Current Frame and the bake must
give exactly the FK pose at influence 0, the IK pose (tip on target) at 1, and per bone the
quaternion slerp of the two in between; a frame's pose never depends on the frames played before.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy
import numpy as np
import pytest
from blender_rigs import add_chain, empty, limit_rotation, straight_chain, world_tail
from mathutils import Euler, Quaternion

from blender_ik_addon.blender import RigSetupError, bake_chains, get_status, key_chains, live
from blender_ik_addon.blender import influence as influence_module
from blender_ik_addon.blender.guard import suspended
from blender_ik_addon.blender.keys import fcurve_collection, iter_fcurves
from blender_ik_addon.ui import panels

BONES = ("b0", "b1", "b2")
TARGET = (1.2, 1.6, 0.5)
FK_KEYS = {1: {"b0": (-1.2, 0.0, 0.3), "b1": (-0.6, 0.0, 0.2)}, 20: {"b0": (-0.8, 0.0, -0.4), "b1": (-0.3, 0.0, 0.5)}}
INFLUENCE = "ik_chains.chains[0].influence"  # the path Insert Keyframe on the slider writes
REACHED = 2e-4  # the chain's tolerance (1e-4) plus float32 rounding


def set_linear(rig: bpy.types.Object) -> None:
    for fcurve in iter_fcurves(rig):
        for point in fcurve.keyframe_points:
            point.interpolation = "LINEAR"


def arm(mode: str = "XYZ", *, animated: bool = True, influence: float = 1.0) -> tuple[bpy.types.Object, Any]:
    """The keyed arm and its chain (influence keyed 0 -> 1 over frames 1-20 when ``animated``)."""
    target = empty("Target", TARGET)
    rig = straight_chain(3)
    for name in BONES:
        pbone = rig.pose.bones[name]
        pbone.rotation_mode = mode
        limit_rotation(rig, name, x=(-170, 170), y=(-170, 170), z=(-170, 170))  # every axis limited: Euler rows
    for frame, poses in FK_KEYS.items():
        for name, angles in poses.items():
            pbone = rig.pose.bones[name]
            if mode == "QUATERNION":
                pbone.rotation_quaternion = Euler(angles, "XYZ").to_quaternion()
                pbone.keyframe_insert("rotation_quaternion", frame=frame)
            else:
                pbone.rotation_euler = angles
                pbone.keyframe_insert("rotation_euler", frame=frame)
    for name in BONES:  # back to rest before the chain writes anything (b2 is never keyed)
        rig.pose.bones[name].rotation_euler = (0, 0, 0)
        rig.pose.bones[name].rotation_quaternion = (1, 0, 0, 0)
    chain = add_chain(rig, "b2", 3, None, name="arm", enabled=False)
    chain.influence = influence
    if animated:
        chain.influence = 0.0
        chain.keyframe_insert("influence", frame=1)  # what I / right-click Insert Keyframe do on the slider
        chain.influence = 1.0
        chain.keyframe_insert("influence", frame=20)
    set_linear(rig)
    chain.target = target
    return rig, chain


def channels(rig: bpy.types.Object) -> dict[str, np.ndarray]:
    """The chain bones' rotation channels as they stand (float32 values, as stored)."""
    out = {}
    for name in BONES:
        pbone = rig.pose.bones[name]
        path = "rotation_quaternion" if pbone.rotation_mode == "QUATERNION" else "rotation_euler"
        out[name] = np.array(getattr(pbone, path), dtype=np.float32)
    return out


def quaternions(rig: bpy.types.Object) -> dict[str, Quaternion]:
    out = {}
    for name, values in channels(rig).items():
        if rig.pose.bones[name].rotation_mode == "QUATERNION":
            out[name] = Quaternion(values.tolist()).normalized()
        else:
            out[name] = Euler(values.tolist(), rig.pose.bones[name].rotation_mode).to_quaternion()
    return out


def fk_poses(rig: bpy.types.Object, frames: list[int]) -> dict[int, dict[str, np.ndarray]]:
    """What the keys alone play (the chain off), per frame: the FK pose."""
    chain = rig.ik_chains.chains["arm"]
    was = chain.enabled
    chain.enabled = False
    out = {}
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        out[frame] = channels(rig)
    chain.enabled = was
    return out


def ik_poses(rig: bpy.types.Object, frames: list[int]) -> dict[int, dict[str, Quaternion]]:
    """The pose at influence 1 (the influence curve muted), per frame."""
    chain = rig.ik_chains.chains["arm"]
    fcurve = fcurve_collection(rig, create=False).find(INFLUENCE)
    fcurve.mute = True
    chain.influence = 1.0
    chain.enabled = True
    out = {}
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        out[frame] = quaternions(rig)
    fcurve.mute = False
    return out


def angle(a: Quaternion, b: Quaternion) -> float:
    return float(a.rotation_difference(b).angle)


def tip_distance(rig: bpy.types.Object) -> float:
    return float(np.linalg.norm(world_tail(rig, "b2") - np.array(TARGET)))


def influence_at(frame: float) -> float:
    return (frame - 1.0) / 19.0


def assert_blend(rig: bpy.types.Object, fk: dict[str, np.ndarray], ik: dict[str, Quaternion], t: float,
                 where: str) -> None:
    got = quaternions(rig)
    for name in BONES:
        mode = rig.pose.bones[name].rotation_mode
        fk_quat = (Quaternion(fk[name].tolist()).normalized() if mode == "QUATERNION"
                   else Euler(fk[name].tolist(), mode).to_quaternion())
        assert angle(got[name], fk_quat.slerp(ik[name], t)) < 2e-5, f"{where}: bone {name} at influence {t}"


# --------------------------------------------------------------------------- live


def test_live_gives_the_keys_at_0_the_ik_pose_at_1_and_the_slerp_between() -> None:
    rig, chain = arm()
    fk = fk_poses(rig, [1, 5, 10, 20])
    ik = ik_poses(rig, [5, 10])
    chain.enabled = True
    bpy.context.scene.frame_set(1)  # influence 0: exactly what the keys play (b2: its rest pose)
    assert all(np.array_equal(channels(rig)[b], fk[1][b]) for b in BONES), (channels(rig), fk[1])
    assert np.array_equal(channels(rig)["b2"], np.zeros(3, dtype=np.float32))
    status = get_status(rig.name, "arm")
    assert status.solved and "blended at influence 0 with the bones' keys" in status.message
    bpy.context.scene.frame_set(20)  # influence 1: the IK pose
    assert tip_distance(rig) < REACHED
    assert "blended" not in get_status(rig.name, "arm").message
    for frame in (5, 10):
        bpy.context.scene.frame_set(frame)
        assert_blend(rig, fk[frame], ik[frame], influence_at(frame), f"frame {frame}")
        assert f"blended at influence {influence_at(frame):.3g}" in get_status(rig.name, "arm").message
        assert tip_distance(rig) > 0.01  # a blended pose leaves the target, by design


def test_a_frame_does_not_depend_on_the_frames_played_before() -> None:
    rig, chain = arm()
    chain.enabled = True
    bpy.context.scene.frame_set(5)
    alone = channels(rig)
    for frame in (*range(6, 21), 10):  # play on (the unkeyed b2 would creep if its channel were read back)
        bpy.context.scene.frame_set(frame)
    bpy.context.scene.frame_set(5)
    again = channels(rig)
    for name in BONES:
        np.testing.assert_array_equal(again[name], alone[name], err_msg=name)


def test_an_animated_influence_is_never_still() -> None:
    rig, chain = arm()
    chain.enabled = True
    for frame in (10, 11):
        bpy.context.scene.frame_set(frame)
        assert rig.name not in live._STILL_RIGS
        assert f"blended at influence {influence_at(frame):.3g}" in get_status(rig.name, "arm").message


def test_quaternion_bones_blend_the_same_way() -> None:
    rig, chain = arm("QUATERNION")
    fk = fk_poses(rig, [1, 10])
    ik = ik_poses(rig, [10])
    chain.enabled = True
    bpy.context.scene.frame_set(1)
    for name in BONES:
        np.testing.assert_allclose(channels(rig)[name], fk[1][name], atol=1e-6, err_msg=name)
    bpy.context.scene.frame_set(10)
    assert_blend(rig, fk[10], ik[10], influence_at(10), "frame 10")


def test_influence_1_reads_nothing_and_writes_the_ik_pose_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    plain, plain_chain = arm(animated=False)
    plain_chain.enabled = True
    bpy.context.scene.frame_set(7)
    before = channels(plain)
    keyed, keyed_chain = arm(animated=False)  # a second rig (Rig.001), its influence keyed at 1 throughout
    keyed_chain.influence = 1.0
    keyed_chain.keyframe_insert("influence", frame=1)
    keyed_chain.enabled = True

    def fail(*_args: Any, **_kw: Any) -> None:
        raise AssertionError("the keys were read at influence 1")

    monkeypatch.setattr(influence_module, "fk_channels", fail)
    monkeypatch.setattr(influence_module, "require_own_keys", fail)
    bpy.context.scene.frame_set(6)
    bpy.context.scene.frame_set(7)
    for name in BONES:
        np.testing.assert_array_equal(channels(plain)[name], before[name], err_msg=name)
        np.testing.assert_array_equal(channels(keyed)[name], before[name], err_msg=name)
    assert tip_distance(plain) < REACHED
    report = bake_chains(keyed, ["arm"], 1, 5)
    assert report.not_converged == 0 and "blended" not in report.summary()


# --------------------------------------------------------------------------- keys


def rotation_keys(rig: bpy.types.Object) -> dict[tuple[str, int], list[float]]:
    """(data path, index) -> key frames, every F-curve of the rig's action."""
    return {(f.data_path, f.array_index): sorted(round(k.co[0], 4) for k in f.keyframe_points)
            for f in iter_fcurves(rig)}


def test_bake_blends_each_frame_with_the_keys_read_before_it_replaces_them() -> None:
    rig, chain = arm()
    fk = fk_poses(rig, list(range(1, 21)))
    ik = ik_poses(rig, [10])
    chain.enabled = True
    bpy.context.scene.frame_set(10)
    live_10 = channels(rig)
    report = bake_chains(rig, ["arm"], 1, 20, disable_live=True)
    assert report.not_converged == 0, report.summary()
    summary = report.summary()
    assert "chain 'arm': blended with its keys at influence 0-0.947 on frames 1-19: the bake replaced its rotation " \
           "keys there by the blended pose" in summary, summary
    keys = rotation_keys(rig)
    rotation = {k: v for k, v in keys.items() if k[0].startswith("pose.bones")}
    assert set(rotation) == {(f'pose.bones["{b}"].rotation_euler', i) for b in BONES for i in range(3)}
    assert all(frames == [float(f) for f in range(1, 21)] for frames in rotation.values()), rotation
    assert keys[(INFLUENCE, 0)] == [1.0, 20.0]  # the influence keys are the animator's
    assert not chain.enabled
    bpy.context.scene.frame_set(1)  # the keys alone now
    for name in BONES:
        np.testing.assert_array_equal(channels(rig)[name], fk[1][name], err_msg=name)
    bpy.context.scene.frame_set(20)
    assert tip_distance(rig) < REACHED
    bpy.context.scene.frame_set(10)
    assert_blend(rig, fk[10], ik[10], influence_at(10), "baked frame 10")
    for name in BONES:
        np.testing.assert_allclose(channels(rig)[name], live_10[name], atol=2e-6, err_msg=name)
    status = get_status(rig.name, "arm")
    assert status.converged and "blended with its keys" in status.message, status


def test_bake_of_part_of_the_range_reads_each_frame_on_its_own() -> None:
    rig, chain = arm()
    chain.enabled = True
    bpy.context.scene.frame_set(12)
    live_12 = channels(rig)
    with pytest.raises(RigSetupError, match=r"chain 'arm' blends with its bones' own keys .* and solves live: live "
                       r"solving would blend the baked keys again as they play; bake with Turn Live Solving Off"):
        bake_chains(rig, ["arm"], 12, 12)
    assert rotation_keys(rig)[('pose.bones["b0"].rotation_euler', 0)] == [1.0, 20.0]  # nothing written
    bake_chains(rig, ["arm"], 12, 12, disable_live=True)
    assert not chain.enabled
    keys = rotation_keys(rig)
    assert keys[('pose.bones["b0"].rotation_euler', 0)] == [1.0, 12.0, 20.0]  # the animator's keys kept outside
    assert keys[('pose.bones["b2"].rotation_euler', 0)] == [12.0]
    chain.enabled = False
    bpy.context.scene.frame_set(12)
    for name in BONES:
        np.testing.assert_allclose(channels(rig)[name], live_12[name], atol=2e-6, err_msg=name)


def test_key_current_frame_keys_the_blend_and_plays_it_back_as_meant() -> None:
    rig, chain = arm()
    chain.enabled = True
    bpy.context.scene.frame_set(10)
    live_10 = channels(rig)
    refused = key_chains(rig, ["arm"])["arm"]  # live would blend the new key again as it plays
    assert not refused.solved and refused.message == live.KEY_BLENDED_LIVE
    assert ('pose.bones["b2"].rotation_euler', 1) not in rotation_keys(rig)
    chain.enabled = False
    statuses = key_chains(rig, ["arm"])
    status = statuses["arm"]
    assert status.solved and status.converged, status  # playback matches the blended pose, not a miss
    assert "blended at influence 0.474" in status.message
    keys = rotation_keys(rig)
    assert keys[('pose.bones["b2"].rotation_euler', 1)] == [10.0]
    assert keys[('pose.bones["b0"].rotation_euler', 1)] == [1.0, 10.0, 20.0]
    chain.enabled = False
    bpy.context.scene.frame_set(10)
    for name in BONES:
        np.testing.assert_allclose(channels(rig)[name], live_10[name], atol=2e-6, err_msg=name)


def test_auto_keying_skips_a_blended_chain() -> None:
    rig, chain = arm()
    chain.enabled = True
    bpy.context.scene.frame_set(10)
    with suspended():  # the target dragged: the drag handler's pass, with Auto Keying on
        chain.target.location.x += 0.05
        depsgraph = bpy.context.evaluated_depsgraph_get()
    outcome = live.solve_rig(rig, depsgraph, names={"arm"}, key_frame=10.0, autokey=True)
    assert not outcome["arm"][0].solved and outcome["arm"][0].message == live.AUTOKEY_BLENDED
    assert ('pose.bones["b2"].rotation_euler', 0) not in rotation_keys(rig)


# --------------------------------------------------------------------------- refusals, panel


def test_keys_the_nla_changes_are_refused_by_name_below_1_only() -> None:
    rig, chain = arm()
    anim = rig.animation_data
    track = anim.nla_tracks.new()
    track.name = "Walk"
    extra = bpy.data.actions.new("Walk")
    strip = track.strips.new("WalkStrip", 1, extra)
    strip.name = "WalkStrip"
    fcurves = extra.fcurves if not hasattr(bpy.types, "ActionSlot") else None
    if fcurves is None:  # 4.4+: a slot and channel bag for the armature
        from blender_ik_addon.blender.keys import action_ensure_channelbag_for_slot

        slot = extra.slots.new(id_type="OBJECT", name=rig.name)
        strip.action_slot = slot
        fcurves = action_ensure_channelbag_for_slot(extra, slot).fcurves
    curve = fcurves.new('pose.bones["b1"].rotation_euler', index=0)
    curve.keyframe_points.insert(1, 0.3)
    curve.keyframe_points.insert(30, 0.3)
    chain.enabled = True
    bpy.context.scene.frame_set(10)
    status = get_status(rig.name, "arm")
    assert not status.solved and "NLA strip 'WalkStrip' (track 'Walk') animates " \
        'pose.bones["b1"].rotation_euler' in status.message, status.message
    assert status.message.startswith("chain 'arm': Influence below 1 blends with the bones' own keys")
    with pytest.raises(RigSetupError, match="WalkStrip"):
        bake_chains(rig, ["arm"], 5, 12)
    bpy.context.scene.frame_set(20)  # influence 1: nothing read, nothing refused
    assert get_status(rig.name, "arm").solved and tip_distance(rig) < REACHED


def test_the_chain_panel_draws_a_keyable_influence_slider() -> None:
    from test_panels import draw

    rig, chain = arm(animated=False)
    context = type("Context", (), {"object": rig, "scene": bpy.context.scene, "mode": "POSE"})()
    drawn = draw(panels.VIEW3D_PT_ikchains_chain, context)
    assert ("prop", chain, "influence") in drawn
    assert chain.keyframe_insert("influence", frame=3)
    fcurve = fcurve_collection(rig, create=False).find(INFLUENCE)
    assert fcurve is not None and [tuple(k.co) for k in fcurve.keyframe_points] == [(3.0, 1.0)]


# --------------------------------------------------------------------------- renders


@dataclass
class Recorder:
    """The chain bones' channels as the render depsgraph evaluated them, per rendered frame."""

    depsgraph: Any = None
    poses: dict[int, dict[str, Quaternion]] = field(default_factory=dict)

    def on_frame(self, scene: Any, depsgraph: Any = None) -> None:
        if depsgraph is not None and depsgraph.mode == "RENDER":
            self.depsgraph = depsgraph

    def on_rendered(self, scene: Any, *_args: Any) -> None:
        rig = bpy.data.objects["Rig"].evaluated_get(self.depsgraph)
        self.poses[scene.frame_current] = {b: Euler(rig.pose.bones[b].rotation_euler, "XYZ").to_quaternion()
                                           for b in BONES}


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    bpy.app.handlers.frame_change_post.append(rec.on_frame)
    bpy.app.handlers.render_post.append(rec.on_rendered)
    yield rec
    bpy.app.handlers.frame_change_post.remove(rec.on_frame)
    bpy.app.handlers.render_post.remove(rec.on_rendered)


def test_renders_read_each_frames_influence_from_the_render_depsgraph(tmp_path: Path, recorder: Recorder) -> None:
    rig, chain = arm()
    chain.enabled = True
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    camera.location = (0.0, 1.5, 9.0)
    bpy.context.scene.collection.objects.link(camera)
    scene = bpy.context.scene
    scene.camera = camera
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y = 32, 24
    scene.frame_start, scene.frame_end, scene.frame_step = 1, 19, 9  # frames 1, 10, 19
    scene.frame_set(20)  # the stored influence: 1 (what the UI's frame flushed); the render must not use it
    scene.render.filepath = str(tmp_path / "frame_")
    assert bpy.ops.render.render(animation=True) == {"FINISHED"}
    assert sorted(recorder.poses) == [1, 10, 19]
    for frame, rendered in recorder.poses.items():
        scene.frame_set(frame)
        viewport = quaternions(rig)
        for name in BONES:
            assert angle(rendered[name], viewport[name]) < 1e-5, f"frame {frame}, bone {name}"
    scene.frame_set(1)
    assert not math.isclose(angle(recorder.poses[1]["b0"], recorder.poses[19]["b0"]), 0.0, abs_tol=1e-3)


def test_a_driven_influence_is_read_live_and_stepped_in_the_bake() -> None:
    rig, chain = arm(animated=False)
    driver = rig.driver_add(INFLUENCE).driver
    driver.type = "SCRIPTED"
    driver.expression = "(frame - 1) / 19"  # a simple expression: no Python auto-run needed
    chain.enabled = True
    live_poses = {}
    for frame in (1, 10, 20):
        bpy.context.scene.frame_set(frame)
        live_poses[frame] = channels(rig)
        assert ("blended" in get_status(rig.name, "arm").message) == (frame < 20)
    report = bake_chains(rig, ["arm"], 1, 20, disable_live=True)
    assert report.not_converged == 0 and "influence 0-0.947 on frames 1-19" in report.summary(), report.summary()
    for frame, pose in live_poses.items():
        bpy.context.scene.frame_set(frame)
        for name in BONES:
            np.testing.assert_allclose(channels(rig)[name], pose[name], atol=2e-6, err_msg=f"{frame} {name}")


def test_removing_a_chain_keeps_each_chains_influence_keys_with_it() -> None:
    """Blender keys the slider by the chain's index in the list: removing a chain must not hand its
    Influence keys to the chain after it (which would then play blended, off its target)."""
    rig, _chain = arm()  # its influence keyed 0 -> 1
    other = add_chain(rig, "b1", 1, empty("Other", (0.3, 0.9, 0.0)), name="other")  # (shares b1: unsolved)
    other.influence = 0.25
    other.keyframe_insert("influence", frame=1)
    paths = {fc.data_path for fc in iter_fcurves(rig) if "influence" in fc.data_path}
    assert paths == {"ik_chains.chains[0].influence", "ik_chains.chains[1].influence"}
    bpy.context.view_layer.objects.active = rig
    rig.ik_chains.active_index = 0
    assert bpy.ops.ikchains.chain_remove() == {"FINISHED"}
    curves = [fc for fc in iter_fcurves(rig) if "influence" in fc.data_path]
    assert [(fc.data_path, fc.evaluate(1.0)) for fc in curves] == [("ik_chains.chains[0].influence", 0.25)]
    bpy.context.scene.frame_set(2)
    assert rig.ik_chains.chains["other"].influence == 0.25
