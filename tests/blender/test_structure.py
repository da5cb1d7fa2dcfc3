"""The live pass's chain cache (``blender.structure``): a chain is read once, re-used while only
the rotations the solve writes change, and read again on every change of what it depends on."""

from __future__ import annotations

import math
from collections.abc import Callable

import bpy
import numpy as np
import pytest
from blender_rigs import add_chain, empty, limit_rotation, straight_chain, world_tail

from blender_ik_addon.blender import structure
from blender_ik_addon.blender.keys import iter_fcurves
from blender_ik_addon.blender.status import get_status


def _arm() -> tuple[bpy.types.Object, bpy.types.Object]:
    """Three Euler bones; the middle one a hinge (IK-locked Y and Z, as most elbows and knees)."""
    rig = straight_chain(3)
    for pbone in rig.pose.bones:
        pbone.rotation_mode = "XYZ"
    rig.pose.bones["b1"].lock_ik_y = rig.pose.bones["b1"].lock_ik_z = True
    target = empty(location=(0.8, 1.6, 0.9))
    for frame, location in ((1, (0.8, 1.6, 0.9)), (40, (-0.9, 1.2, 1.1))):
        target.location = location
        target.keyframe_insert("location", frame=frame)
    add_chain(rig, "b2", 3, target, name="arm")
    return rig, target


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every chain the cache reads from the rig, by tip bone."""
    seen: list[str] = []
    original = structure.read_chain

    def spy(obj, tip_bone, length):  # type: ignore[no-untyped-def]
        seen.append(tip_bone)
        return original(obj, tip_bone, length)

    monkeypatch.setattr(structure, "read_chain", spy)
    return seen


def _play(frames: range) -> None:
    for frame in frames:
        bpy.context.scene.frame_set(frame)


def test_the_chain_is_read_once_while_only_the_solved_rotations_change(reads: list[str]) -> None:
    rig, target = _arm()
    for frame in range(1, 31):
        bpy.context.scene.frame_set(frame)
        np.testing.assert_allclose(world_tail(rig, "b2"), target.matrix_world.translation, atol=1e-4)
    assert reads == ["b2"]  # the elbow's rotation changed on every frame: the solve wrote it


def _ik_limit(rig: bpy.types.Object) -> None:
    elbow = rig.pose.bones["b1"]
    elbow.use_ik_limit_x, elbow.ik_min_x, elbow.ik_max_x = True, -0.2, 0.3


_LOCKED_AT: dict[str, float] = {}


def _lock(rig: bpy.types.Object) -> None:
    rig.pose.bones["b0"].lock_ik_x = True  # the shoulder's X keeps the value it has now
    _LOCKED_AT["b0"] = rig.pose.bones["b0"].rotation_euler[0]


def _locked_value(rig: bpy.types.Object) -> None:
    rig.pose.bones["b1"].rotation_euler[1] = 0.4  # the elbow's locked Y: the chain keeps it


def _constraint(rig: bpy.types.Object) -> None:
    limit_rotation(rig, "b2", x=(-10.0, 10.0))


def _rotation_mode(rig: bpy.types.Object) -> None:
    rig.pose.bones["b2"].rotation_mode = "QUATERNION"


def _rest(rig: bpy.types.Object) -> None:
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    rig.data.edit_bones["b2"].tail = (0.0, 3.5, 0.0)  # the hand gets longer
    bpy.ops.object.mode_set(mode="OBJECT")


def _honoured(rig: bpy.types.Object, edit: str) -> bool:
    bones = rig.pose.bones
    if edit == "ik limit":
        return -0.2 - 1e-6 <= bones["b1"].rotation_euler[0] <= 0.3 + 1e-6
    if edit == "lock":
        return abs(bones["b0"].rotation_euler[0] - _LOCKED_AT["b0"]) < 1e-6
    if edit == "locked value":
        return abs(bones["b1"].rotation_euler[1] - 0.4) < 1e-6
    if edit == "constraint":
        return abs(bones["b2"].rotation_euler[0]) <= math.radians(10.0) + 1e-6
    if edit == "rotation mode":
        return bones["b2"].rotation_quaternion[:] != (1.0, 0.0, 0.0, 0.0)
    return abs(rig.data.bones["b2"].length - 1.5) < 1e-5


EDITS: dict[str, Callable[[bpy.types.Object], None]] = {
    "ik limit": _ik_limit, "lock": _lock, "locked value": _locked_value, "constraint": _constraint,
    "rotation mode": _rotation_mode, "rest": _rest,
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_every_change_the_chain_depends_on_reads_it_again(edit: str, reads: list[str]) -> None:
    """An edit from Python right before a frame change (no other evaluation in between), and one the
    UI would make (an evaluation first, which only the depsgraph handler sees)."""
    rig, _target = _arm()
    _play(range(1, 6))
    assert reads == ["b2"]
    EDITS[edit](rig)
    bpy.context.scene.frame_set(6)
    assert reads == ["b2", "b2"], f"{edit}: not read again"
    assert get_status(rig.name, "arm").solved
    assert _honoured(rig, edit), edit
    _play(range(7, 12))
    assert reads == ["b2", "b2"], f"{edit}: read again although nothing changed"
    assert _honoured(rig, edit), edit


def test_an_edit_seen_only_by_the_depsgraph_handler_is_not_missed(reads: list[str]) -> None:
    rig, _target = _arm()
    _play(range(1, 4))
    _ik_limit(rig)
    bpy.context.view_layer.update()  # the edit is evaluated (depsgraph_update_post), not by the next frame
    _play(range(4, 8))
    assert reads == ["b2", "b2"]
    assert _honoured(rig, "ik limit")


def test_animated_limits_and_locked_values_hold_on_every_frame(reads: list[str]) -> None:
    rig, _target = _arm()
    elbow = rig.pose.bones["b1"]
    elbow.use_ik_limit_x = True
    elbow.ik_min_x = -1.0
    for frame, high in ((1, 0.1), (20, 0.8)):
        elbow.ik_max_x = high
        elbow.keyframe_insert("ik_max_x", frame=frame)
    for frame, locked in ((1, 0.0), (20, 0.5)):
        elbow.rotation_euler[1] = locked
        elbow.keyframe_insert("rotation_euler", index=1, frame=frame)
    locked_curve = next(fc for fc in iter_fcurves(rig) if fc.data_path.endswith("rotation_euler"))
    for frame in range(1, 21):
        bpy.context.scene.frame_set(frame)
        high = elbow.ik_max_x
        assert elbow.rotation_euler[0] <= high + 1e-6, frame
        assert abs(elbow.rotation_euler[1] - locked_curve.evaluate(frame)) < 1e-5, frame
    assert len(reads) > 2  # animated values the chain depends on: read again as they change


def test_a_keyed_rotation_mode_is_read_again_when_it_switches() -> None:
    """A key on a chain bone's rotation mode is not one of the channels the solve writes: when it
    switches the bone to quaternions, the chain is read again and solved into the new channel."""
    rig, target = _arm()
    elbow = rig.pose.bones["b1"]
    for frame in (1, 2):
        bpy.context.scene.frame_set(frame)
    elbow.rotation_mode = "XYZ"
    elbow.keyframe_insert("rotation_mode", frame=3)
    elbow.rotation_mode = "QUATERNION"
    elbow.keyframe_insert("rotation_mode", frame=6)
    for frame in range(3, 10):
        bpy.context.scene.frame_set(frame)
        goal = np.array(target.evaluated_get(bpy.context.evaluated_depsgraph_get()).matrix_world.translation)
        assert np.linalg.norm(world_tail(rig, "b2") - goal) < 1e-3, frame


def test_callers_outside_the_handlers_compare_the_whole_chain() -> None:
    rig, _ = _arm()
    bpy.context.scene.frame_set(2)
    first = structure.chain_binding(rig, "b2", 3, trust_edits=True)
    assert structure.chain_binding(rig, "b2", 3, trust_edits=False) is first
    rig.pose.bones["b1"].ik_max_x = 0.5  # no depsgraph has seen it yet
    rig.pose.bones["b1"].use_ik_limit_x = True
    assert structure.chain_binding(rig, "b2", 3, trust_edits=True) is first  # the handlers wait for the tag
    again = structure.chain_binding(rig, "b2", 3, trust_edits=False)
    assert again is not first and again.chain.joints[1].upper[0] == pytest.approx(0.5)


def _limited_elbow_rig() -> tuple[bpy.types.Object, bpy.types.Object, bpy.types.Constraint]:
    """Target placed so that reaching it needs the elbow (b1) bent about X past 20 degrees."""
    rig = straight_chain(3)
    for pbone in rig.pose.bones:
        pbone.rotation_mode = "XYZ"
    target = empty(location=(0.0, 1.2, 1.4))
    limit = limit_rotation(rig, "b1", x=(-80.0, 80.0))
    return rig, target, limit


def _elbow_within_its_limit(rig: bpy.types.Object, limit: bpy.types.Constraint) -> bool:
    return rig.pose.bones["b1"].rotation_euler[0] <= limit.max_x + 1e-6


def test_a_limit_keyed_after_the_chain_was_read_holds_on_every_frame() -> None:
    rig, target, limit = _limited_elbow_rig()
    rig.keyframe_insert("location", frame=1)  # the rig already plays an action
    add_chain(rig, "b2", 3, target, name="arm")
    scene = bpy.context.scene
    scene.frame_set(3)
    limit.keyframe_insert("max_x", frame=3)  # keyed the usual way: a value, a key, another frame
    scene.frame_set(10)
    limit.max_x = math.radians(20.0)
    limit.keyframe_insert("max_x", frame=10)
    for frame in range(3, 12):
        scene.frame_set(frame)
        assert _elbow_within_its_limit(rig, limit), frame


def test_a_limit_animated_by_an_nla_strip_holds_on_every_frame() -> None:
    rig, target, limit = _limited_elbow_rig()
    limit.keyframe_insert("max_x", frame=1)
    limit.max_x = math.radians(20.0)
    limit.keyframe_insert("max_x", frame=10)
    anim = rig.animation_data
    anim.nla_tracks.new().strips.new("limits", 1, anim.action)  # "Push Down"
    anim.action = None
    add_chain(rig, "b2", 3, target, name="arm")
    for frame in range(1, 12):
        bpy.context.scene.frame_set(frame)
        assert _elbow_within_its_limit(rig, limit), frame


def test_other_armature_data_is_read_even_with_the_same_edit_count() -> None:
    rig, _ = _arm()
    _play(range(1, 4))
    first = structure.chain_binding(rig, "b2", 3, trust_edits=True)
    short = straight_chain(3, link=0.6, name="Short").data  # the same bone names, shorter bones
    structure._GENERATION[short.name] = structure._GENERATION.get(rig.data.name, 0)  # counts can coincide
    rig.data = short
    again = structure.chain_binding(rig, "b2", 3, trust_edits=True)
    assert again is not first and again.chain.length == pytest.approx(1.8, abs=1e-5)
