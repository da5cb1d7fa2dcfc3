"""Adopting Blender's IK constraints (issue 12): settings carried, mute and restore, refusals, and the
adopted chains landing on Blender's pose (blender/adopt.py, the pole rule "turn" in solving.py)."""

from __future__ import annotations

import math
from typing import Any

import bpy
import numpy as np
import pytest
from blender_rigs import BoneDef, add_chain, empty, limit_rotation, make_armature
from metarig_limbs import LIMBS, angles_between, animate_controls, chain_matrices, metarig_limbs

from blender_ik_addon.blender import adopt_constraints, bake_chains, get_status, restore_constraints
from blender_ik_addon.blender.adopt import blender_pole_angle, label

FRAMES = range(1, 25)
TIP_TOLERANCE = 1e-4  # world units: the chains' default tolerance

TREE_IK = ("adopting IK constraints that share bones (Blender's tree IK) is not supported yet: add those chains by "
           "hand (chains that share bones are solved together, with a Weight each)")


def arm_rig() -> bpy.types.Object:
    """Upper arm, forearm (bent at rest), hand; a control bone and a pole bone."""
    return make_armature([
        BoneDef("upper", (0, 0, 0), (0, 0.1, 1), roll=0.3),
        BoneDef("fore", (0, 0.1, 1), (0, 0, 2), roll=0.2, parent="upper", connect=True),
        BoneDef("hand", (0, 0, 2), (0, 0, 2.3), parent="fore", connect=True),
        BoneDef("ctl", (0.3, 0.4, 1.6), (0.3, 0.4, 1.9)),
        BoneDef("pole", (0, 2, 1), (0, 2, 1.3)),
    ])


def ik(rig: bpy.types.Object, bone: str, **settings: Any) -> bpy.types.Constraint:
    con = rig.pose.bones[bone].constraints.new("IK")
    for key, value in settings.items():
        setattr(con, key, value)
    return con


def constraint_state(rig: bpy.types.Object) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {(p.name, c.name): tuple(getattr(c, k) for k in ("mute", "influence", "chain_count", "pole_angle"))
            for p in rig.pose.bones for c in p.constraints}


def rotations(rig: bpy.types.Object) -> dict[str, tuple[float, ...]]:
    return {p.name: (*p.rotation_quaternion, *p.rotation_euler) for p in rig.pose.bones}


def test_every_setting_is_carried() -> None:
    rig = arm_rig()
    pole = empty("Pole", (0, 3, 1))
    con = ik(rig, "fore", target=rig, subtarget="ctl", pole_target=pole, chain_count=2, pole_angle=0.7,
             iterations=77, use_rotation=True, orient_weight=0.4, use_stretch=False, influence=0.6)
    report = adopt_constraints(rig)
    name = label("fore", "IK")
    assert report.adopted == {name: "fore/IK"} and not report.refused
    # Everything carries; the one note: an influence below 1 blends with keys these bones lack.
    assert report.not_carried == {name: ("Influence 0.6 blends with the bones' keys, and they have none: the chain "
                                         "blends with the rest pose where Blender blended with the current pose "
                                         "(key the pose first)",)}
    chain = rig.ik_chains.chains["fore/IK"]
    assert (chain.tip_bone, chain.chain_length) == ("fore", 2)
    assert (chain.target, chain.target_bone, chain.target_head_tail) == (rig, "ctl", 0.0)
    assert (chain.pole, chain.pole_bone, chain.pole_rule) == (pole, "", "TURN")
    assert chain.pole_angle == pytest.approx(blender_pole_angle(rig, ["upper", "fore"], 0.7), abs=1e-6)
    assert (chain.max_iterations, chain.follow_orientation, chain.use_stretch) == (77, True, False)
    assert chain.orientation_weight == pytest.approx(0.4) and chain.influence == pytest.approx(0.6)
    assert (chain.adopted_bone, chain.adopted_constraint, chain.enabled, con.mute) == ("fore", "IK", True, True)


def test_use_tail_off_and_what_does_not_carry() -> None:
    rig = arm_rig()
    rig.pose.ik_solver = "ITASC"
    ik(rig, "hand", target=rig, subtarget="ctl", use_tail=False, chain_count=2, weight=0.5, reference_axis="TARGET",
       lock_rotation_y=False)
    rig.pose.bones["fore"].rotation_mode = "XYZ"
    rig.pose.bones["fore"].rotation_euler = (0.1, 0, 0)
    report = adopt_constraints(rig)
    chain = rig.ik_chains.chains["hand/IK"]
    assert (chain.tip_bone, chain.chain_length) == ("fore", 2)  # the hand's head is the forearm's tail
    notes = report.not_carried[label("hand", "IK")]
    assert any(n.startswith("the armature's iTaSC solver settings") for n in notes)
    assert "Axis Reference 'Target' (iTaSC)" in notes
    assert any(n.startswith("iTaSC axes left unconstrained (lock_rotation_y)") for n in notes)
    assert not any(n.startswith("Weight Position") for n in notes)
    assert chain.weight == pytest.approx(0.5)  # carried: it counts where chains share bones
    assert any(n.startswith("bone(s) 'fore' are rotated away from their rest pose") for n in notes)
    assert all(f"{label('hand', 'IK')}: not carried: {n}" in report.lines() for n in notes)


def test_adopt_and_restore_round_trip_exactly() -> None:
    rig = arm_rig()
    target = empty("Target", (0.4, 0.5, 1.5))
    kept_off = ik(rig, "hand", target=target, chain_count=1)
    kept_off.mute = True  # muted before: not adopted, stays muted
    ik(rig, "fore", target=target, pole_target=empty("Pole", (0, 3, 1)), chain_count=2, influence=0.8)
    rig.pose.bones["upper"].rotation_mode = "XYZ"
    rig.pose.bones["upper"].rotation_euler = (0.05, 0.0, 0.02)
    bpy.context.view_layer.update()
    constraints, channels = constraint_state(rig), rotations(rig)
    report = adopt_constraints(rig)
    assert report.skipped == (label("hand", "IK"),) and list(report.adopted) == [label("fore", "IK")]
    assert rig.pose.bones["fore"].constraints["IK"].mute and kept_off.mute
    assert rotations(rig) != channels  # the chain solved and wrote the pose
    restored = restore_constraints(rig)
    assert restored.restored == {label("fore", "IK"): "fore/IK"} and not restored.kept
    assert constraint_state(rig) == constraints and rotations(rig) == channels
    assert len(rig.ik_chains.chains) == 0 and kept_off.mute and get_status(rig.name, "fore/IK") is None


def test_refusals_are_named_and_leave_the_constraints_on() -> None:
    rig = make_armature([
        *(BoneDef(f"a{i}", (0, i, 0), (0, i + 1, 0), parent=f"a{i - 1}" if i else None, connect=bool(i))
          for i in range(4)),
        *(BoneDef(f"b{i}", (2, i, 0), (2, i + 1, 0), parent=f"b{i - 1}" if i else None, connect=bool(i))
          for i in range(3)),
        BoneDef("c0", (4, 0, 0), (4, 1, 0)), BoneDef("c1", (4, 1, 0), (4, 2, 0), parent="c0"),
        BoneDef("d0", (6, 0, 0), (6, 1, 0)), BoneDef("e0", (8, 0, 0), (8, 1, 0)), BoneDef("f0", (10, 0, 0), (10, 1, 0)),
    ])
    target = empty("Target", (1, 1, 1))
    gone = empty("Gone", (1, 1, 1))
    cons = {
        "a3": ik(rig, "a3", target=target, chain_count=3),  # shares a1, a2 with the one on a2
        "a2": ik(rig, "a2", target=target, chain_count=2),
        "b2": ik(rig, "b2", target=rig, subtarget="b1", chain_count=3),  # target inside its chain
        "c1": ik(rig, "c1", target=target, pole_target=rig, pole_subtarget="nope", use_tail=False, chain_count=1),
        "d0": ik(rig, "d0", target=gone, chain_count=1, ik_type="DISTANCE"),
        "e0": ik(rig, "e0", target=target, chain_count=1, use_location=False, use_rotation=True),
        "f0": ik(rig, "f0", target=target, chain_count=1),
    }
    driver = cons["f0"].driver_add("mute")
    driver.driver.expression = "0"
    bpy.data.objects.remove(gone)
    report = adopt_constraints(rig)
    assert not report.adopted
    assert report.refused == {
        label("a3", "IK"): "its chain 'a1', 'a2', 'a3' shares bones with constraint 'IK' on bone 'a2'; " + TREE_IK,
        label("a2", "IK"): "its chain 'a1', 'a2' shares bones with constraint 'IK' on bone 'a3'; " + TREE_IK,
        label("b2", "IK"): "its target bone 'b1' is a bone of its own chain, so the chain would chase itself; use a "
                           "control bone outside the chain",
        label("c1", "IK"): "Use Tail is off and the bone is not connected to a parent, so no bone's tail lies at "
                           "its head; connect it, or turn Use Tail on",
        label("d0", "IK"): "it is in Distance mode (iTaSC), which keeps the tip at a distance; chains only reach",
        label("e0", "IK"): "its Position is off (only rotation is followed); chains always reach for the location",
        label("f0", "IK"): "its Mute is driven, so muting it would not hold; remove that animation first (an IK/FK "
                           "switch: adopt the rig's constraints one way)",
    }
    assert not any(c.mute for c in cons.values()) and len(rig.ik_chains.chains) == 0
    cons["d0"].ik_type, cons["d0"].target = "COPY_POSE", None
    cons["c1"].use_tail = True
    assert adopt_constraints(rig).refused[label("d0", "IK")] == (
        "its target is gone: no target object; set one or remove the constraint")
    assert adopt_constraints(rig).refused[label("c1", "IK")] == (
        "its pole bone 'nope' is gone from armature 'Rig' (renamed or deleted?); pick it again")


def test_a_chain_already_there_is_not_shared() -> None:
    rig = arm_rig()
    add_chain(rig, "fore", 2, empty("Mine", (0.5, 0.5, 1.5)), name="mine")
    con = ik(rig, "fore", target=empty("Target", (0.4, 0.5, 1.5)), chain_count=2)
    report = adopt_constraints(rig)
    assert report.refused[label("fore", "IK")].startswith("its chain 'upper', 'fore' shares bones with chain 'mine';")
    assert not con.mute and [c.name for c in rig.ik_chains.chains] == ["mine"]


@pytest.fixture
def limbs() -> tuple[bpy.types.Object, dict[int, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """The metarig's limbs with IK constraints, animated; Blender's pose at every frame."""
    rig, _ = metarig_limbs()
    animate_controls(rig, len(FRAMES), FRAMES[0])
    scene = bpy.context.scene
    blender = {}
    for frame in FRAMES:
        scene.frame_set(frame)
        blender[frame] = {owner: (chain_matrices(rig, [root, owner]), np.array(rig.pose.bones[owner].tail))
                          for owner, (root, _, _) in LIMBS.items()}
    return rig, blender


def assert_as_blender(rig: bpy.types.Object, blender: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]],
                      label_: str) -> None:
    scene = bpy.context.scene
    for frame in FRAMES:
        scene.frame_set(frame)
        for owner, (root, control, _) in LIMBS.items():
            matrices, _ = blender[frame][owner]
            worst = angles_between(matrices, chain_matrices(rig, [root, owner])).max()
            assert worst < 1.0, f"{label_}: {owner} frame {frame}: {worst:.3f}° from Blender's pose"
            goal = np.array(rig.pose.bones[control].head)
            tip = np.array(rig.pose.bones[owner].tail)
            assert np.linalg.norm(tip - goal) < TIP_TOLERANCE, f"{label_}: {owner} frame {frame}"


def test_adopted_limbs_play_as_blender_did(limbs: Any) -> None:
    """The acceptance: the metarig's arms and legs (free and hinged, pole bones, controls animated over
    24 frames) give Blender's pose within 1° per bone, live and baked."""
    rig, blender = limbs
    report = adopt_constraints(rig)
    assert len(report.adopted) == 4 and not report.refused and not report.not_carried
    assert_as_blender(rig, blender, "live")
    names = [c.name for c in rig.ik_chains.chains]
    baked = bake_chains(rig, names, FRAMES[0], FRAMES[-1], disable_live=True)
    assert baked.not_converged == 0
    assert not any(c.enabled for c in rig.ik_chains.chains)
    assert_as_blender(rig, blender, "baked")


@pytest.mark.parametrize("roll", [math.radians(30), math.radians(-75)])
def test_rolled_limbs_land_on_blenders_pose(roll: float) -> None:
    """Bones rolled (mirrored on the right) change what Blender's pole angle means; the conversion follows."""
    rig, _ = metarig_limbs(rigify=False, roll=roll)
    animate_controls(rig, len(FRAMES), FRAMES[0])
    scene = bpy.context.scene
    sampled = FRAMES[::4]
    blender = {}
    for frame in sampled:
        scene.frame_set(frame)
        blender[frame] = {o: chain_matrices(rig, [r, o]) for o, (r, _, _) in LIMBS.items()}
    adopt_constraints(rig)
    for frame in sampled:
        scene.frame_set(frame)
        for owner, (root, _, _) in LIMBS.items():
            worst = angles_between(blender[frame][owner], chain_matrices(rig, [root, owner])).max()
            assert worst < 1.0, f"{owner} frame {frame}: {worst:.3f}°"


def test_a_limit_blender_ignores_is_honoured(limbs: Any) -> None:
    rig, _ = limbs
    limit = limit_rotation(rig, "forearm.L", y=(-1.0, 1.0), z=(-1.0, 1.0))  # a hinge about X
    scene = bpy.context.scene
    frame = 13  # the hand far in front: Blender bends the elbow about another axis
    scene.frame_set(frame)
    pbone = rig.pose.bones["forearm.L"]

    def local_yz() -> np.ndarray:
        local = rig.convert_space(pose_bone=pbone, matrix=pbone.matrix, from_space="POSE", to_space="LOCAL")
        return np.degrees(np.abs(np.array(local.to_euler("XYZ"))[1:]))

    assert local_yz().max() > 1.5  # Blender's IK ignores the Limit Rotation
    adopt_constraints(rig)
    for frame in FRAMES:
        scene.frame_set(frame)
        assert local_yz().max() <= 1.0 + 1e-3, frame
        goal, tip = np.array(rig.pose.bones["hand_ik.L"].head), np.array(pbone.tail)
        assert np.linalg.norm(tip - goal) < TIP_TOLERANCE, frame
    assert limit.mute is False


def test_operators_adopt_and_restore() -> None:
    rig = arm_rig()
    con = ik(rig, "fore", target=empty("Target", (0.4, 0.5, 1.5)), chain_count=2)
    bpy.context.view_layer.objects.active = rig
    assert bpy.ops.ikchains.restore_constraints() == {"CANCELLED"}  # nothing adopted yet
    assert bpy.ops.ikchains.adopt_constraints() == {"FINISHED"}
    assert con.mute and rig.ik_chains.chains[0].name == "fore/IK"
    assert bpy.ops.ikchains.adopt_constraints() == {"CANCELLED"}  # only muted ones left
    assert bpy.ops.ikchains.restore_constraints() == {"FINISHED"}
    assert not con.mute and len(rig.ik_chains.chains) == 0


def test_removing_an_adopted_chain_gives_its_constraint_back() -> None:
    """Remove on an adopted chain restores its constraint (else the limb's IK would stay off, muted,
    with nothing left to restore it); the other adopted chain stays."""
    rig = arm_rig()
    first = ik(rig, "fore", target=empty("Target", (0.4, 0.5, 1.5)), chain_count=2)
    bpy.context.view_layer.objects.active = rig
    assert bpy.ops.ikchains.adopt_constraints() == {"FINISHED"} and first.mute
    rig.ik_chains.active_index = 0
    assert bpy.ops.ikchains.chain_remove() == {"FINISHED"}
    assert not first.mute and len(rig.ik_chains.chains) == 0
    assert rotations(rig)["fore"] == (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # the pose before adoption


def test_without_a_pole_the_adopting_frame_keeps_blenders_pose_and_says_why_elsewhere_may_differ() -> None:
    rig = arm_rig()
    ik(rig, "fore", target=empty("Target", (0.6, 0.7, 1.4)), chain_count=2)
    bpy.context.scene.frame_set(1)
    before = {b: np.array(rig.evaluated_get(bpy.context.evaluated_depsgraph_get()).pose.bones[b].matrix)
              for b in ("upper", "fore")}
    report = adopt_constraints(rig)
    assert report.not_carried[label("fore", "IK")][-1].startswith("no pole: Blender's pose then depends on")
    bpy.context.scene.frame_set(1)
    after = rig.evaluated_get(bpy.context.evaluated_depsgraph_get()).pose.bones
    for bone, matrix in before.items():
        np.testing.assert_allclose(np.array(after[bone].matrix), matrix, atol=2e-3, err_msg=bone)
