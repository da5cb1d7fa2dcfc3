"""Bone targets and poles, as production rigs have them: the hand and foot controls are bones of the
same armature (or of another), keyed, constrained or driven. Live, Key Current Frame and Bake must
put the tip on the control bone as Blender plays the result back, and refuse, naming the bone, a
control that the chain itself moves.
"""

from __future__ import annotations

import re

import bpy
import numpy as np
import pytest
from blender_rigs import BoneDef, add_chain, empty, make_armature, world_head, world_tail
from mathutils import Matrix

from blender_ik_addon.blender import RigSetupError, bake_chains, get_status, key_chains
from blender_ik_addon.blender.keys import iter_fcurves

TOLERANCE = 1e-4
PLAYED = 2e-4  # the tolerance plus float32 rounding
FRAMES = (1, 12)


def limb(name: str = "Rig") -> bpy.types.Object:
    """A root, a two-bone arm (length 1.0 + 0.9) hanging from it, a hand, and three control bones
    parented to the root only: the IK control, the pole, and a spare control for constraints."""
    return make_armature([
        BoneDef("root", (0, 0, 0), (0, 0.3, 0)),
        BoneDef("upper_arm", (0, 0, 1.5), (1.0, 0, 1.5), roll=0.0, parent="root"),
        BoneDef("forearm", (1.0, 0, 1.5), (1.9, 0.05, 1.5), parent="upper_arm", connect=True),
        BoneDef("hand", (1.9, 0.05, 1.5), (2.1, 0.05, 1.5), parent="forearm", connect=True),
        BoneDef("hand.ik", (1.4, 0.4, 1.2), (1.6, 0.4, 1.2), parent="root"),
        BoneDef("arm.pole", (0.9, -1.0, 1.5), (0.9, -1.2, 1.5), parent="root"),
        BoneDef("spare", (0, 0, 0), (0, 0, 0.2), parent="root"),
    ], name)


def key_control(rig: bpy.types.Object, bone: str = "hand.ik") -> None:
    """Keys the control bone through three places within the arm's reach over ``FRAMES``."""
    pose_bone = rig.pose.bones[bone]
    for frame, offset in ((FRAMES[0], (0.0, 0.0, 0.0)), (6, (-0.3, -0.1, 0.3)), (FRAMES[1], (-0.2, -0.3, -0.2))):
        pose_bone.location = offset
        pose_bone.keyframe_insert("location", frame=frame)


def control_world(rig: bpy.types.Object, bone: str = "hand.ik", head_tail: float = 0.0) -> np.ndarray:
    head, tail = world_head(rig, bone), world_tail(rig, bone)
    return np.asarray(head + head_tail * (tail - head))


def arm_error(rig: bpy.types.Object, bone: str = "hand.ik", head_tail: float = 0.0) -> float:
    return float(np.linalg.norm(world_tail(rig, "forearm") - control_world(rig, bone, head_tail)))


def arm_chain(rig: bpy.types.Object, target: bpy.types.Object | None = None, **settings: object) -> object:
    settings.setdefault("target_bone", "hand.ik")
    return add_chain(rig, "forearm", 2, target if target is not None else rig, name="arm", tolerance=TOLERANCE,
                     **settings)


@pytest.mark.parametrize("head_tail", [0.0, 1.0])
def test_live_reaches_a_keyed_control_bone_of_its_own_armature(head_tail: float) -> None:
    rig = limb()
    key_control(rig)
    arm_chain(rig, target_head_tail=head_tail)
    scene = bpy.context.scene
    for frame in range(FRAMES[0], FRAMES[1] + 1):
        scene.frame_set(frame)
        assert arm_error(rig, head_tail=head_tail) < PLAYED, frame
        status = get_status(rig.name, "arm")
        assert status is not None and status.converged, (frame, status)
    assert not any(fc.data_path.startswith('pose.bones["forearm"]') for fc in iter_fcurves(rig))  # live keys nothing


def test_bake_of_a_bone_target_plays_back_on_it() -> None:
    rig = limb()
    key_control(rig)
    arm_chain(rig)
    report = bake_chains(rig, ["arm"], *FRAMES, disable_live=True)
    assert report.not_converged == 0, report
    assert report.path == "frames" and "bone 'hand.ik' of 'Rig'" in report.reason  # read by evaluating frames
    keyed = {(fc.data_path, fc.array_index) for fc in iter_fcurves(rig) if "rotation" in fc.data_path}
    assert {path for path, _ in keyed} == {'pose.bones["upper_arm"].rotation_quaternion',
                                           'pose.bones["forearm"].rotation_quaternion'}
    scene = bpy.context.scene
    for frame in range(FRAMES[0], FRAMES[1] + 1):  # live off: the keys alone
        scene.frame_set(frame)
        assert arm_error(rig) < PLAYED, frame
    # The control bone's own keys are untouched: still three location keys on each axis.
    control = [fc for fc in iter_fcurves(rig) if fc.data_path.startswith('pose.bones["hand.ik"]')]
    assert len(control) == 3 and all(len(fc.keyframe_points) == 3 for fc in control)


def test_key_current_frame_on_a_bone_target() -> None:
    rig = limb()
    key_control(rig)
    arm_chain(rig, enabled=False)
    scene = bpy.context.scene
    scene.frame_set(6)
    statuses = key_chains(rig, ["arm"])
    assert statuses["arm"].converged, statuses
    scene.frame_set(1)
    scene.frame_set(6)
    assert arm_error(rig) < PLAYED


def test_follow_orientation_matches_the_control_bone_rotation() -> None:
    """The hand (a three-bone chain's tip) takes the control bone's rotation, its tail on the
    control's head."""
    rig = limb()
    control = rig.pose.bones["hand.ik"]
    control.rotation_mode = "XYZ"
    control.rotation_euler = (0.3, -0.2, 0.4)
    add_chain(rig, "hand", 3, rig, name="arm", target_bone="hand.ik", tolerance=TOLERANCE, follow_orientation=True)
    bpy.context.scene.frame_set(1)
    status = get_status(rig.name, "arm")
    assert status is not None and status.converged, status
    evaluated = rig.evaluated_get(bpy.context.evaluated_depsgraph_get())
    tip = np.array(evaluated.pose.bones["hand"].matrix.to_3x3().normalized())
    goal = np.array(evaluated.pose.bones["hand.ik"].matrix.to_3x3().normalized())
    angle = np.degrees(np.arccos(np.clip((np.trace(tip.T @ goal) - 1) / 2, -1, 1)))
    assert angle < 0.1
    assert np.linalg.norm(world_tail(rig, "hand") - control_world(rig)) < PLAYED


def test_bone_pole_bends_the_elbow_toward_it() -> None:
    rig = limb()
    arm_chain(rig, pole=rig, pole_bone="arm.pole", pole_weight=1.0)
    bpy.context.scene.frame_set(1)
    assert arm_error(rig) < PLAYED
    rig.pose.bones["arm.pole"].location = (0.0, 0.0, 0.0)
    elbow = world_tail(rig, "upper_arm")
    pole = world_head(rig, "arm.pole")
    shoulder, hand = world_head(rig, "upper_arm"), control_world(rig)
    axis = (hand - shoulder) / np.linalg.norm(hand - shoulder)

    def off_axis(point: np.ndarray) -> np.ndarray:
        return (point - shoulder) - np.dot(point - shoulder, axis) * axis
    assert np.dot(off_axis(elbow), off_axis(pole)) > 0  # the elbow points to the pole's side
    # Moving the pole bone to the other side moves the elbow with it, live.
    rig.pose.bones["arm.pole"].location = (0.0, 0.0, -2.0)  # along its own axis (-Y world): toward +Y
    bpy.context.scene.frame_set(1)
    pole = world_head(rig, "arm.pole")
    assert np.dot(off_axis(world_tail(rig, "upper_arm")), off_axis(pole)) > 0
    assert arm_error(rig) < PLAYED


def mover_empty() -> bpy.types.Object:
    mover = empty("Mover", (1.3, 0.3, 1.4))
    for frame, where in ((FRAMES[0], (1.3, 0.3, 1.4)), (FRAMES[1], (1.0, -0.4, 1.8))):
        mover.location = where
        mover.keyframe_insert("location", frame=frame)
    return mover


@pytest.mark.parametrize("how", ["constrained", "driven"])
def test_constrained_and_driven_control_bones_work_live_and_baked(how: str) -> None:
    rig = limb()
    mover = mover_empty()
    if how == "constrained":  # the hand control follows the mover
        control = "hand.ik"
        con = rig.pose.bones[control].constraints.new("COPY_LOCATION")
        con.target = mover
    else:  # the spare control rises and falls with the mover's X, through a driver
        control = "spare"
        driver = rig.pose.bones[control].driver_add("location", 1).driver
        driver.type = "SCRIPTED"
        var = driver.variables.new()
        var.targets[0].id, var.targets[0].data_path = mover, "location[0]"
        driver.expression = "(var - 1.3) * 0.5 + 0.5"
    arm_chain(rig, target_bone=control)
    scene = bpy.context.scene
    heads = []
    for frame in (1, 4, 9, 12):
        scene.frame_set(frame)
        assert arm_error(rig, control) < PLAYED, frame
        heads.append(world_head(rig, control))
    assert np.linalg.norm(heads[0] - heads[-1]) > 0.1  # the control really moves
    report = bake_chains(rig, ["arm"], *FRAMES, disable_live=True)
    assert report.not_converged == 0, report
    for frame in (2, 7, 11):
        scene.frame_set(frame)
        assert arm_error(rig, control) < PLAYED, frame


def test_a_bone_of_another_armature_is_a_target() -> None:
    rig = limb()
    controls = make_armature([BoneDef("ctrl", (0, 0, 0), (0, 0, 0.2))], "Controls",
                             Matrix.Translation((1.4, 0.2, 1.3)))
    for frame, z in ((FRAMES[0], 0.0), (FRAMES[1], 0.4)):
        controls.pose.bones["ctrl"].location = (0.0, z, 0.0)  # along the bone: up
        controls.pose.bones["ctrl"].keyframe_insert("location", frame=frame)
    arm_chain(rig, controls, target_bone="ctrl")
    scene = bpy.context.scene
    for frame in (1, 6, 12):
        scene.frame_set(frame)
        assert np.linalg.norm(world_tail(rig, "forearm") - world_head(controls, "ctrl")) < PLAYED, frame
    report = bake_chains(rig, ["arm"], *FRAMES, disable_live=True)
    assert report.not_converged == 0, report


def test_a_control_bone_on_a_solved_chain_is_followed() -> None:
    """A hand control parented to the chest bone, which a spine chain solves: the arm is solved after
    the spine, on the chest where the spine put it (live and baked)."""
    rig = make_armature([
        BoneDef("hips", (0, 0, 0), (0, 0, 0.5)),
        BoneDef("spine", (0, 0, 0.5), (0, 0, 1.0), parent="hips", connect=True),
        BoneDef("chest", (0, 0, 1.0), (0, 0, 1.5), parent="spine", connect=True),
        BoneDef("arm", (0.5, 0, 0.5), (1.0, 0, 0.5), parent="hips"),
        BoneDef("forearm", (1.0, 0, 0.5), (1.5, 0, 0.5), parent="arm", connect=True),
        BoneDef("hand.ik", (0.8, 0.2, 0.9), (0.8, 0.2, 1.1), parent="chest"),
        BoneDef("spine.ik", (0, 0.2, 1.35), (0, 0.2, 1.55), parent="hips"),
    ], "Body")
    for frame, x in ((1, -0.2), (5, 0.2), (10, -0.1)):  # within reach of both chains
        rig.pose.bones["spine.ik"].location = (x, 0.0, 0.0)
        rig.pose.bones["spine.ik"].keyframe_insert("location", frame=frame)
    add_chain(rig, "chest", 2, rig, name="spine", target_bone="spine.ik", tolerance=TOLERANCE)
    add_chain(rig, "forearm", 2, rig, name="arm", target_bone="hand.ik", tolerance=TOLERANCE)
    scene = bpy.context.scene
    for frame in range(1, 11):
        scene.frame_set(frame)
        assert np.linalg.norm(world_tail(rig, "chest") - world_head(rig, "spine.ik")) < PLAYED, frame
        assert np.linalg.norm(world_tail(rig, "forearm") - world_head(rig, "hand.ik")) < PLAYED, frame
    report = bake_chains(rig, None, 1, 10, disable_live=True)
    assert report.not_converged == 0, report
    for frame in range(1, 11):
        scene.frame_set(frame)
        assert np.linalg.norm(world_tail(rig, "forearm") - world_head(rig, "hand.ik")) < PLAYED, frame


@pytest.mark.parametrize(("bone", "expected"), [
    ("upper_arm", "chain 'arm': its target bone 'upper_arm' is a bone of the chain, which would chase itself; "
                  "pick a control bone outside the chain"),
    ("hand", "chain 'arm': target bone 'hand' of 'Rig' moves with bone 'forearm' of the chain through bone 'hand' "
             "of 'Rig' -> parent bone 'forearm' of 'Rig', so the chain would chase its own pose; parent it outside "
             "the chain"),
    ("gone", "chain 'arm': target bone 'gone' is not in armature 'Rig' (renamed or deleted?); pick the bone again"),
])
def test_a_target_bone_the_chain_moves_or_lacks_is_refused_by_name(bone: str, expected: str) -> None:
    rig = limb()
    arm_chain(rig, target_bone=bone)
    before = np.array([list(p.rotation_quaternion) for p in rig.pose.bones])
    bpy.context.scene.frame_set(2)
    status = get_status(rig.name, "arm")
    assert status is not None and not status.solved and status.message == expected, status
    with pytest.raises(RigSetupError, match="^" + re.escape(expected)):
        bake_chains(rig, ["arm"], 1, 3)
    assert np.array_equal(before, np.array([list(p.rotation_quaternion) for p in rig.pose.bones]))


def test_a_control_constrained_to_the_chain_is_refused_with_the_route() -> None:
    rig = limb()
    con = rig.pose.bones["hand.ik"].constraints.new("COPY_LOCATION")
    con.target, con.subtarget = rig, "forearm"
    arm_chain(rig)
    bpy.context.scene.frame_set(2)
    status = get_status(rig.name, "arm")
    assert status is not None and not status.solved
    assert "target bone 'hand.ik' of 'Rig' moves with bone 'forearm' of the chain" in status.message
    assert "Copy Location constraint" in status.message


def test_a_renamed_target_bone_is_refused_and_nothing_changes() -> None:
    rig = limb()
    key_control(rig)
    arm_chain(rig)
    scene = bpy.context.scene
    scene.frame_set(1)
    assert arm_error(rig) < PLAYED
    rig.data.bones["hand.ik"].name = "hand.control"
    posed = np.array([list(p.rotation_quaternion) for p in rig.pose.bones])
    scene.frame_set(2)
    status = get_status(rig.name, "arm")
    assert status is not None and not status.solved
    assert "target bone 'hand.ik' is not in armature 'Rig'" in status.message
    assert np.array_equal(posed, np.array([list(p.rotation_quaternion) for p in rig.pose.bones]))


def test_dragging_the_control_bone_moves_the_chain_and_auto_keys_only_the_chain() -> None:
    rig = limb()
    arm_chain(rig)
    scene = bpy.context.scene
    scene.frame_set(4)
    rig.pose.bones["hand.ik"].location = (-0.2, 0.1, 0.2)  # as the move tool does: an edit, then an update
    bpy.context.view_layer.update()
    assert arm_error(rig) < PLAYED
    assert not iter_fcurves(rig)  # Auto Keying is off: nothing keyed
    scene.tool_settings.use_keyframe_insert_auto = True
    rig.pose.bones["hand.ik"].location = (-0.4, -0.2, 0.1)
    bpy.context.view_layer.update()
    assert arm_error(rig) < PLAYED
    keyed = {(fc.data_path, tuple(kp.co[0] for kp in fc.keyframe_points)) for fc in iter_fcurves(rig)}
    assert {path for path, _ in keyed} == {'pose.bones["upper_arm"].rotation_quaternion',
                                           'pose.bones["forearm"].rotation_quaternion'}
    assert all(frames == (4.0,) for _, frames in keyed)
