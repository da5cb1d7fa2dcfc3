"""Unusable input: nothing left to move, limits that allow nothing, targets that are nowhere or that
the chain itself moves, ranges that are empty, targets out of reach."""

from __future__ import annotations

import math

import bpy
import numpy as np
import pytest
from blender_rigs import limit_rotation
from fault_helpers import (
    KEPT,
    Scene,
    after_at,
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

from blender_ik_addon.blender import RigSetupError, bake_chains

LOCKED = "every rotation axis of every joint is locked ('bad.0', 'bad.1', 'bad.2'): nothing to solve"


@pytest.mark.parametrize("lock", ["lock_rotation", "lock_ik"])
def test_every_dof_locked(capfd, lock: str) -> None:
    scene = bystander_rig()
    for name in ("bad.0", "bad.1", "bad.2"):
        pbone = scene.rig.pose.bones[name]
        if lock == "lock_rotation":
            pbone.lock_rotation = (True, True, True)
        else:
            pbone.lock_ik_x = pbone.lock_ik_y = pbone.lock_ik_z = True
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, LOCKED, case=f"all-locked-{lock.replace('_', '-')}",
                   given=f"Every axis of every chain bone locked ({lock.replace('lock_ik', 'IK locks')})")


def test_limits_with_min_above_max(capfd) -> None:
    scene = bystander_rig()
    limit_rotation(scene.rig, "bad.1", order="XYZ", x=(30.0, -30.0))
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "bone 'bad.1', axis X: Limit Rotation 'Limit Rotation' has min 30° > max "
                   "-30°", case="limit-min-above-max", given="A Limit Rotation constraint with min X 30° > max X -30°")


def test_limits_that_together_allow_no_angle(capfd) -> None:
    scene = bystander_rig()
    limit_rotation(scene.rig, "bad.1", order="XYZ", x=(10.0, 30.0))
    pbone = scene.rig.pose.bones["bad.1"]
    pbone.use_ik_limit_x, pbone.ik_min_x, pbone.ik_max_x = True, math.radians(-20.0), 0.0
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "bone 'bad.1', axis X: the limits leave no allowed angle (min 10° > max 0°)",
                   case="limits-disjoint", given="Limit Rotation X 10°..30° and IK limit X -20°..0° on one bone")


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_target_at_a_non_finite_location(capfd, value: float) -> None:
    scene = bystander_rig()
    scene.bad_target.animation_data_clear()
    scene.bad_target.location = (value, 1.6, 0.6)
    shown = "nan" if math.isnan(value) else "3.40282e+38"  # Blender clamps inf to the largest float
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, f"chain 'bad': target 'BadTarget' is at ({shown}, 1.6, 0.6), which is not "
                   "a usable location (NaN, infinite or farther than 1e+15); move it",
                   case=f"target-{'nan' if math.isnan(value) else 'inf'}",
                   given=f"The target's location X is {'NaN' if math.isnan(value) else 'inf'}")


def test_target_is_the_armature_itself(capfd) -> None:
    scene = bystander_rig()
    scene.rig.ik_chains.chains["bad"].target = scene.rig  # the rig itself, with no bone picked
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "chain 'bad': its target is the armature 'Rig' itself, which the chain "
                   "moves; pick another object, or a control bone of the armature as its Bone",
                   case="target-is-armature", given="The target is the armature object itself, with no bone")


def test_target_parented_to_a_bone_of_the_chain(capfd) -> None:
    scene = bystander_rig()
    target = scene.bad_target
    target.parent, target.parent_type, target.parent_bone = scene.rig, "BONE", "bad.2"
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "chain 'bad': target 'BadTarget' is parented to the armature 'Rig' and "
                   "would move with the chain that follows it; unparent it", case="target-child-of-chain",
                   given="The target is parented to the chain's own tip bone")


def bone_target(scene: Scene, bone: str) -> None:
    chain = scene.rig.ik_chains.chains["bad"]
    chain.target_bone = bone
    chain.target = scene.rig


def test_target_bone_missing(capfd) -> None:
    scene = bystander_rig()
    bone_target(scene, "hand.ik")
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "chain 'bad': target bone 'hand.ik' is not in armature 'Rig' (renamed or "
                   "deleted?); pick the bone again", case="target-bone-missing",
                   given="The target bone names a bone the armature does not have (typed from a script)")


def test_target_bone_renamed(capfd) -> None:
    scene = bystander_rig()
    bone_target(scene, "other")
    scene.rig.data.bones["other"].name = "other.renamed"
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "chain 'bad': target bone 'other' is not in armature 'Rig' (renamed or "
                   "deleted?); pick the bone again", case="target-bone-renamed",
                   given="The target bone was renamed after the chain was set up")


def test_target_bone_in_the_chain(capfd) -> None:
    scene = bystander_rig()
    bone_target(scene, "bad.1")
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "chain 'bad': its target bone 'bad.1' is a bone of the chain, which would "
                   "chase itself; pick a control bone outside the chain", case="target-bone-in-chain",
                   given="The target bone is a bone of the chain itself")


def test_target_parented_to_the_armature_object_is_followed() -> None:
    scene = bystander_rig()
    target = scene.bad_target
    target.animation_data_clear()
    target.parent = scene.rig  # moves with the character, not with the pose
    target.matrix_parent_inverse = scene.rig.matrix_world.inverted()
    target.location = (3.8, 1.6, 0.6)
    assert_playback(scene.rig, target, chain="bad", tip="bad.2")
    message = status_message("Rig", "bad")
    assert message.startswith("Converged, residual")
    user_sees("target-child-of-armature-object", given="The target is parented to the armature object (not to a bone)",
              where="panel status", message=message,
              preserved="the chain follows the target, which moves with the character, not with the pose")


def test_target_constrained_to_a_bone_of_the_chain(capfd) -> None:
    scene = bystander_rig()
    con = scene.bad_target.constraints.new("COPY_LOCATION")
    con.target, con.subtarget, con.head_tail = scene.rig, "bad.2", 1.0
    before = snapshot(scene.rig)
    assert_refused(capfd, scene, before, "chain 'bad': target 'BadTarget' follows the armature 'Rig' through its "
                   "constraint 'Copy Location' and would move with the chain that follows it; remove that constraint",
                   case="target-constrained-to-chain", given="The target has a Copy Location to the chain's tip bone")


def test_zero_armature_scale(capfd) -> None:
    scene = bystander_rig()
    scene.rig.scale = (0.0, 1.0, 1.0)
    before = snapshot(scene.rig)
    message = ("chain 'bad': armature 'Rig' (or a bone above the chain) has a zero scale, so the chain has no "
               "size to solve; give it a non-zero scale")
    select_chain(scene.rig, "bad")
    bpy.context.scene.frame_set(3)
    assert status_message("Rig", "bad") == f"Error: {message}"
    assert status_message("Rig", "good") == f"Error: {message.replace('bad', 'good')}"
    baked = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=20, chains="ACTIVE")
    assert (baked.result, baked.level, baked.report) == (frozenset(), "ERROR", message)
    assert_preserved(before, after_at(scene.rig))
    scene.rig.scale = (1.0, 1.0, 1.0)
    assert_playback(scene.rig, scene.good_target)
    user_sees("armature-zero-scale", given="The armature object's scale X is 0", where="panel status; Bake report",
              message=message, preserved=KEPT)


def test_bake_range_that_ends_before_it_starts(capfd) -> None:
    scene = bystander_rig()
    before = snapshot(scene.rig)
    select_chain(scene.rig, "bad")
    baked = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=12, frame_end=3)
    message = "bad frame range 12..3 step 1: need start <= end and step >= 1"
    assert (baked.result, baked.level, baked.report) == (frozenset(), "ERROR", message)
    assert_preserved(before, after_at(scene.rig))
    user_sees("bake-empty-range", given="Bake Range with end frame 3 before start frame 12", where="Bake report",
              message=message, preserved=KEPT)


def test_target_out_of_reach_is_baked_with_a_warning(capfd) -> None:
    scene = bystander_rig()
    scene.bad_target.animation_data_clear()
    scene.bad_target.location = (3.0, 9.0, 0.0)  # the chain is 3 long, its root at the origin: 6 short
    before = snapshot(scene.rig)
    bpy.context.scene.frame_set(2)
    assert status_message("Rig", "bad") == "Not converged, residual 6 (frame 2)"
    select_chain(scene.rig, "bad")
    baked = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=10)
    assert (baked.result, baked.level) == ({"FINISHED"}, "WARNING")
    assert baked.report == "10 frames solved, 10 not converged (worst residual 6)"
    assert_preserved(before, after_at(scene.rig), rekeyed=rotation_paths(scene.rig, ("bad.0", "bad.1", "bad.2")),
                     baked=(1, 10))
    bpy.context.scene.frame_set(5)
    tip = np.array(scene.rig.matrix_world @ scene.rig.pose.bones["bad.2"].tail)
    assert np.linalg.norm(tip - np.array([3.0, 9.0, 0.0])) == pytest.approx(6.0, abs=1e-3)  # reaches toward it
    user_sees("target-out-of-reach", given="A target 6 units beyond the chain's reach",
              where="panel status; Bake report (a warning)",
              message=f"Not converged, residual 6 (frame 2)\n{baked.report}",
              preserved="the chain stretches toward the target and is keyed so; " + KEPT)


def test_chains_on_a_non_armature_are_refused(capfd) -> None:
    mesh = bpy.data.objects.new("Mesh", bpy.data.meshes.new("Mesh"))
    bpy.context.scene.collection.objects.link(mesh)
    bpy.context.view_layer.objects.active = mesh
    out = run_operator(capfd, bpy.ops.ikchains.chain_add)
    assert (out.result, out.report) == (frozenset(), "Operator bpy.ops.ikchains.chain_add.poll() Active object is "
                                        "not an armature")
    with pytest.raises(RigSetupError, match="object 'Mesh' is a mesh, not an armature"):
        bake_chains(mesh, None, 1, 10)
    user_sees("not-an-armature", given="Add chain / Bake with a mesh active; bake_chains() on a mesh",
              where="operator poll message; exception",
              message=f"{out.report}\nobject 'Mesh' is a mesh, not an armature", preserved="nothing is written")


def test_the_table_lists_these_cases() -> None:
    assert undocumented("tests/blender/test_faults_input.py") == []
