"""Chains that follow other chains: a target parented to (or Child Of) a bone another chain solves, a
prop rig parented to a hand, and the cycles between chains. Live, Key Current Frame and Bake must
solve them in dependency order, so the tip is on the target at the frame shown (no frame of lag),
and say so only when it is.
"""

from __future__ import annotations

import itertools

import bpy
import numpy as np
import pytest
from blender_rigs import BoneDef, add_chain, empty, make_armature, world_tail
from mathutils import Matrix, Vector

from blender_ik_addon.blender import RigSetupError, bake_chains, get_status, key_chains
from blender_ik_addon.blender.keys import iter_fcurves

TOLERANCE = 1e-4
PLAYED = 2e-4  # the tolerance plus float32 rounding


def torso() -> bpy.types.Object:
    """Hips, a spine of three bones up +Z ending in the chest, and an arm of three bones hanging from
    the hips (not from the chest: the arm's *target* follows the spine, not its root)."""
    return make_armature([
        BoneDef("hips", (0, 0, 0), (0, 0, 0.5)),
        BoneDef("spine", (0, 0, 0.5), (0, 0, 1.0), parent="hips", connect=True),
        BoneDef("spine.1", (0, 0, 1.0), (0, 0, 1.5), parent="spine", connect=True),
        BoneDef("chest", (0, 0, 1.5), (0, 0, 2.0), parent="spine.1", connect=True),
        BoneDef("arm", (0.5, 0, 0.5), (1.0, 0, 0.5), parent="hips"),
        BoneDef("forearm", (1.0, 0, 0.5), (1.5, 0, 0.5), parent="arm", connect=True),
        BoneDef("hand", (1.5, 0, 0.5), (1.7, 0, 0.5), parent="forearm", connect=True),
    ], "Body")


def swaying_target(name: str, frames: int = 10) -> bpy.types.Object:
    """The spine's target: it sways left and right over ``frames``."""
    target = empty(name)
    for frame, x in ((1, -0.3), (frames // 2, 0.3), (frames, -0.15)):
        target.location = (x, 0.2, 1.9)
        target.keyframe_insert("location", frame=frame)
    return target


def hand_target_on_chest(rig: bpy.types.Object, how: str) -> bpy.types.Object:
    """A hand target that rides on the chest: parented to the bone, or through a Child Of, or a Copy
    Location (a route the live pass cannot carry)."""
    target = empty("HandTarget", (0.9, 0.3, 1.0))  # within the arm's reach of 1.2 from (0.5, 0, 0.5)
    if how == "parent":
        target.parent, target.parent_type, target.parent_bone = rig, "BONE", "chest"
        bpy.context.view_layer.update()
        target.matrix_world = Matrix.Translation((0.9, 0.3, 1.0))  # kept where it was, as Ctrl+P does
    elif how == "child_of":
        con = target.constraints.new("CHILD_OF")
        con.target, con.subtarget = rig, "chest"
        con.set_inverse_pending = True
    else:
        con = target.constraints.new("COPY_LOCATION")
        con.target, con.subtarget = rig, "chest"
        con.use_offset = True  # the chest's head (0, 0, 1.5) plus its own location
        target.location = (0.9, 0.3, -0.5)
    return target


def body(how: str) -> tuple[bpy.types.Object, bpy.types.Object]:
    rig = torso()
    add_chain(rig, "chest", 3, swaying_target("SpineTarget"), name="spine")
    hand = hand_target_on_chest(rig, how)
    add_chain(rig, "hand", 3, hand, name="arm")
    return rig, hand


def tip_error(rig: bpy.types.Object, target: bpy.types.Object, tip: str = "hand") -> float:
    return float(np.linalg.norm(world_tail(rig, tip) - np.array(target.matrix_world.translation)))


@pytest.mark.parametrize("how", ["parent", "child_of"])
def test_live_target_riding_a_solved_chain_is_reached_on_the_frame_shown(how: str) -> None:
    rig, hand = body(how)
    scene = bpy.context.scene
    chest_moves = []
    for frame in range(1, 11, 2):
        scene.frame_set(frame)
        chest_moves.append(np.array(hand.matrix_world.translation))
        assert tip_error(rig, hand) < PLAYED, frame  # before: a frame behind the chest
        status = get_status("Body", "arm")
        assert status is not None and status.converged, status
    assert max(np.linalg.norm(a - b) for a, b in itertools.pairwise(chest_moves)) > 0.05


def test_live_route_that_cannot_be_carried_says_it_lags() -> None:
    body("copy_location")
    scene = bpy.context.scene
    scene.frame_set(1)
    scene.frame_set(3)
    status = get_status("Body", "arm")
    assert status is not None and not status.converged
    assert ("lags a frame behind live: target 'HandTarget' moves with chain 'spine' ('HandTarget' -> Copy Location "
            "constraint") in status.message
    assert "Key Current Frame and Bake solve it exactly" in status.message


@pytest.mark.parametrize("how", ["parent", "copy_location"])
def test_key_current_frame_solves_the_follower_after_what_it_follows(how: str) -> None:
    rig, hand = body(how)
    scene = bpy.context.scene
    scene.frame_set(4)
    statuses = key_chains(rig)
    assert statuses["spine"].converged and statuses["arm"].converged, statuses
    for chain in rig.ik_chains.chains:
        chain.enabled = False
    scene.frame_set(4)  # the keys alone
    assert tip_error(rig, hand) < PLAYED


@pytest.mark.parametrize("how", ["parent", "copy_location"])
def test_bake_keys_the_follower_where_the_followed_keys_put_its_target(how: str) -> None:
    rig, hand = body(how)
    report = bake_chains(rig, None, 1, 10, disable_live=True)
    assert report.not_converged == 0, report.summary()
    scene = bpy.context.scene
    for frame in range(1, 11):
        scene.frame_set(frame)
        assert tip_error(rig, hand) < PLAYED, frame


def test_prop_rig_parented_to_a_hand_moves_with_it_live() -> None:
    """A second armature (a prop with a 2-bone chain) parented to the first rig's hand bone: its chain's
    base moves with the hand the first rig's chain solves, on the same frame."""
    rig = torso()
    reach = empty("ReachTarget", (1.2, 0.3, 0.8))
    for frame, z in ((1, 0.8), (7, 0.4)):
        reach.location.z = z
        reach.keyframe_insert("location", index=2, frame=frame)
    add_chain(rig, "hand", 3, reach, name="arm")
    prop = make_armature([BoneDef("p0", (0, 0, 0), (0, 0.3, 0)),
                          BoneDef("p1", (0, 0.3, 0), (0, 0.6, 0), parent="p0", connect=True)], "Prop")
    prop.parent, prop.parent_type, prop.parent_bone = rig, "BONE", "hand"
    grip = empty("Grip", (1.6, 0.2, 0.6))
    add_chain(prop, "p1", 2, grip, name="grip")
    scene = bpy.context.scene
    for frame in range(1, 8, 2):
        scene.frame_set(frame)
        assert tip_error(prop, grip, "p1") < PLAYED, frame
        status = get_status("Prop", "grip")
        assert status is not None and status.converged, status


def cyclic_body() -> bpy.types.Object:
    """The arm's target rides the chest; the spine's target rides the hand: neither can go first."""
    rig = torso()
    hand_target = hand_target_on_chest(rig, "parent")
    spine_target = empty("SpineTarget", (0.3, 0.2, 1.8))
    spine_target.parent, spine_target.parent_type, spine_target.parent_bone = rig, "BONE", "hand"
    add_chain(rig, "chest", 3, spine_target, name="spine")
    add_chain(rig, "hand", 3, hand_target, name="arm")
    return rig


def test_chains_following_each_other_are_refused_as_a_cycle() -> None:
    """The arm's target rides the chest; the spine's target rides the hand: neither can go first."""
    rig = cyclic_body()
    bpy.context.scene.frame_set(2)
    for name in ("spine", "arm"):
        status = get_status("Body", name)
        assert status is not None and not status.solved
        assert status.message.startswith(f"chain {name!r} is part of a cycle of chains following each other (")
        assert "break one of these links" in status.message
    with pytest.raises(RigSetupError, match="is part of a cycle of chains following each other"):
        bake_chains(rig, None, 1, 5)


def test_baking_a_follower_without_the_live_chain_it_follows_is_refused() -> None:
    """Only the arm would be baked while the spine it follows stays live: its keys would be made for
    the spine's keyed pose, which live solving changes. Refused; baked together, both play."""
    rig, hand = body("parent")
    with pytest.raises(RigSetupError, match=r"chain 'arm' follows chain 'spine', which solves live and is not in "
                                            r"this bake \(target 'HandTarget' moves with chain 'spine' "):
        bake_chains(rig, ["arm"], 1, 5)
    rig.ik_chains.chains["spine"].enabled = False  # its keys (none: the rest pose) are what plays
    assert bake_chains(rig, ["arm"], 1, 5).not_converged == 0
    rig.ik_chains.chains["spine"].enabled = True
    both = bake_chains(rig, None, 1, 5, disable_live=True)
    assert both.not_converged == 0, both.summary()
    for frame in range(1, 6):
        bpy.context.scene.frame_set(frame)
        assert tip_error(rig, hand) < PLAYED, frame


# --------------------------------------------------------------------------- found by a break-it pass


def loose_holder(rig: bpy.types.Object, how: str) -> None:
    """A "holder" bone below the chest that does not move rigidly with it: no inherited rotation, or
    a Damped Track of its own."""
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    holder = rig.data.edit_bones.new("holder")
    holder.head, holder.tail = (0, 0, 2.0), (0, 0.3, 2.0)
    holder.parent = rig.data.edit_bones["chest"]
    bpy.ops.object.mode_set(mode="OBJECT")
    if how == "no_inherit":
        rig.data.bones["holder"].use_inherit_rotation = False
    else:
        con = rig.pose.bones["holder"].constraints.new("DAMPED_TRACK")
        con.target = empty("Aim", (0.0, 3.0, 2.0))


@pytest.mark.parametrize("how", ["no_inherit", "damped_track"])
def test_target_riding_a_loose_bone_below_the_chest_lags_live_and_bakes_exactly(how: str) -> None:
    """The hand target rides a bone below the chest that moves on its own: carrying it with the chest
    would be wrong, so live says the arm lags; the bake reads it where Blender puts it."""
    rig = torso()
    loose_holder(rig, how)
    add_chain(rig, "chest", 3, swaying_target("SpineTarget"), name="spine")
    hand = empty("HandTarget")
    hand.parent, hand.parent_type, hand.parent_bone = rig, "BONE", "holder"
    bpy.context.view_layer.update()
    hand.matrix_world = Matrix.Translation((0.9, 0.3, 1.0))
    add_chain(rig, "hand", 3, hand, name="arm")
    scene = bpy.context.scene
    scene.frame_set(1)
    scene.frame_set(3)
    status = get_status("Body", "arm")
    assert status is not None and not status.converged and "lags a frame behind live" in status.message
    report = bake_chains(rig, None, 1, 6, disable_live=True)
    assert report.not_converged == 0, report.summary()
    for frame in range(1, 7):
        scene.frame_set(frame)
        assert tip_error(rig, hand) < PLAYED, frame


def test_chain_hanging_from_a_loose_bone_lags_live_and_bakes_exactly() -> None:
    """An arm chain whose root hangs from a shoulder that does not inherit the chest's rotation."""
    rig = torso()
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    bones = rig.data.edit_bones
    shoulder = bones.new("shoulder")
    shoulder.head, shoulder.tail, shoulder.parent = (0, 0, 1.8), (0.3, 0, 1.8), bones["chest"]
    bones["arm"].use_connect = False
    bones["arm"].parent = shoulder
    bpy.ops.object.mode_set(mode="OBJECT")
    rig.data.bones["shoulder"].use_inherit_rotation = False
    add_chain(rig, "chest", 3, swaying_target("SpineTarget"), name="spine")
    reach = empty("Reach", (1.2, 0.3, 1.0))
    add_chain(rig, "hand", 3, reach, name="arm")
    scene = bpy.context.scene
    scene.frame_set(1)
    scene.frame_set(3)
    status = get_status("Body", "arm")
    assert status is not None and not status.converged
    assert "it hangs below chain 'spine', but bone 'shoulder' does not inherit its parent's rotation" in status.message
    report = bake_chains(rig, None, 1, 6, disable_live=True)
    assert report.not_converged == 0, report.summary()
    scene.frame_set(4)
    assert tip_error(rig, reach) < PLAYED


def test_dragging_the_spine_target_moves_the_arm_that_follows_it() -> None:
    """Moving the spine's target outside playback (a drag: depsgraph updates) re-solves the arm whose
    target rides the chest too, and Auto Keying keys both."""
    rig, hand = body("parent")
    scene = bpy.context.scene
    scene.tool_settings.use_keyframe_insert_auto = True
    scene.frame_set(5)
    spine_target = rig.ik_chains.chains["spine"].target
    spine_target.animation_data_clear()
    for x in (-0.1, 0.1, 0.25):
        spine_target.location.x = x
        bpy.context.view_layer.update()
    assert tip_error(rig, hand) < PLAYED
    status = get_status("Body", "arm")
    assert status is not None and status.converged, status
    keyed = {f.data_path.split('"')[1] for f in iter_fcurves(rig)}
    assert {"hand", "forearm", "arm", "chest"} <= keyed


def prop_rig(body_rig: bpy.types.Object, how: str) -> tuple[bpy.types.Object, bpy.types.Object]:
    """A three-bone prop armature whose chain's target follows the body's chest: through a Copy
    Location (a route the live pass cannot carry) or parented to the bone."""
    prop = make_armature([BoneDef("p0", (1, 0, 1), (1, 0.5, 1)),
                          BoneDef("p1", (1, 0.5, 1), (1, 1.0, 1), parent="p0", connect=True),
                          BoneDef("p2", (1, 1.0, 1), (1, 1.5, 1), parent="p1", connect=True)], "Prop")
    target = empty("PropTarget")
    if how == "copy_location":
        con = target.constraints.new("COPY_LOCATION")
        con.target, con.subtarget, con.use_offset = body_rig, "chest", True
        target.location = (1.0, 0.8, -0.7)
    else:
        target.parent, target.parent_type, target.parent_bone = body_rig, "BONE", "chest"
        bpy.context.view_layer.update()
        target.matrix_world = Matrix.Translation((1.0, 0.8, 1.3))
    add_chain(prop, "p2", 3, target, name="reach")
    return prop, target


def test_a_follower_on_another_rig_says_it_lags_where_it_cannot_be_carried() -> None:
    rig = torso()
    add_chain(rig, "chest", 3, swaying_target("SpineTarget"), name="spine")
    prop_rig(rig, "copy_location")
    scene = bpy.context.scene
    scene.frame_set(1)
    scene.frame_set(3)
    status = get_status("Prop", "reach")
    assert status is not None and not status.converged
    assert "lags a frame behind live: target 'PropTarget' moves with chain 'spine'" in status.message


def test_baking_a_prop_rig_without_the_live_body_chain_it_follows_is_refused() -> None:
    rig = torso()
    add_chain(rig, "chest", 3, swaying_target("SpineTarget"), name="spine")
    prop, _target = prop_rig(rig, "parent")
    with pytest.raises(RigSetupError, match=r"chain 'reach' follows chain 'spine' of 'Body', which solves live and "
                                            r"is not in this bake"):
        bake_chains(prop, None, 1, 5)


def test_key_current_frame_on_one_chain_of_a_cycle_is_refused() -> None:
    rig = cyclic_body()
    status = key_chains(rig, ["arm"])["arm"]
    assert not status.solved and "is part of a cycle of chains following each other" in status.message
    assert key_chains(rig, ["arm"])["arm"].message == status.message  # the same words each time
    assert not iter_fcurves(rig)


# --------------------------------------------------------------------------- found by a second break-it pass


def rides(obj: bpy.types.Object, rig: bpy.types.Object, bone: str, world: object) -> bpy.types.Object:
    """Parent ``obj`` to ``bone`` and keep it at ``world`` (a location), as Ctrl+P does."""
    obj.parent, obj.parent_type, obj.parent_bone = rig, "BONE", bone
    bpy.context.view_layer.update()
    obj.matrix_world = Matrix.Translation(world)
    bpy.context.view_layer.update()
    return obj


def test_a_follower_of_a_follower_is_carried_once() -> None:
    """spine -> an arm (hanging below the chest) whose target rides the chest -> a finger chain
    (hanging below the hand) whose target rides the hand: three levels, each on the frame shown."""
    rig = make_armature([
        BoneDef("hips", (0, 0, 0), (0, 0, 0.5)),
        BoneDef("spine", (0, 0, 0.5), (0, 0, 1.0), parent="hips", connect=True),
        BoneDef("chest", (0, 0, 1.0), (0, 0, 1.5), parent="spine", connect=True),
        BoneDef("arm", (0.2, 0, 1.5), (0.7, 0, 1.5), parent="chest"),
        BoneDef("forearm", (0.7, 0, 1.5), (1.2, 0, 1.5), parent="arm", connect=True),
        BoneDef("hand", (1.2, 0, 1.5), (1.4, 0, 1.5), parent="forearm", connect=True),
        BoneDef("f1", (1.4, 0, 1.5), (1.5, 0, 1.5), parent="hand", connect=True),
        BoneDef("f2", (1.5, 0, 1.5), (1.6, 0, 1.5), parent="f1", connect=True),
        BoneDef("f3", (1.6, 0, 1.5), (1.7, 0, 1.5), parent="f2", connect=True)], "Body")
    spine_target = empty("SpineTarget")
    for frame, x in ((1, -0.3), (5, 0.3), (10, -0.15)):
        spine_target.location = (x, 0.2, 1.3)
        spine_target.keyframe_insert("location", frame=frame)
    add_chain(rig, "chest", 2, spine_target, name="spine")
    hand = rides(empty("HandTarget"), rig, "chest", (0.9, 0.5, 1.2))
    add_chain(rig, "hand", 3, hand, name="arm")
    bpy.context.view_layer.update()
    finger = rides(empty("FingerTarget"), rig, "hand",
                   tuple(rig.matrix_world @ rig.pose.bones["f2"].tail + Vector((0, 0.05, 0))))
    add_chain(rig, "f3", 3, finger, name="finger")
    scene = bpy.context.scene
    for frame in (1, 3, 5, 8, 10):  # the spine sways between every two of them
        scene.frame_set(frame)
        for chain, target, tip in (("arm", hand, "hand"), ("finger", finger, "f3")):
            status = get_status("Body", chain)
            error = tip_error(rig, target, tip)
            assert status is not None and status.converged == (error < PLAYED), (frame, chain, error, status)
            assert error < PLAYED, (frame, chain, error)


def test_baking_a_chain_below_a_live_chain_left_out_is_refused() -> None:
    rig = torso()
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    rig.data.edit_bones["arm"].use_connect = False
    rig.data.edit_bones["arm"].parent = rig.data.edit_bones["chest"]
    bpy.ops.object.mode_set(mode="OBJECT")
    add_chain(rig, "chest", 3, swaying_target("SpineTarget"), name="spine")
    add_chain(rig, "hand", 3, empty("Reach", (1.2, 0.3, 1.6)), name="arm")
    with pytest.raises(RigSetupError, match=r"chain 'arm' hangs below bone 'chest' of chain 'spine', which solves "
                                            r"live and is not in this bake"):
        bake_chains(rig, ["arm"], 1, 5)


def test_two_chains_with_one_name_are_both_refused() -> None:
    rig, _hand = body("parent")
    rig.ik_chains.chains["spine"].name = "arm"  # the list lets a name be typed twice
    message = "two chains of 'Body' are named 'arm'; chains are told apart by name, so neither is solved: rename one"
    bpy.context.scene.frame_set(3)
    status = get_status("Body", "arm")
    assert status is not None and not status.solved and status.message == message
    with pytest.raises(RigSetupError, match=message):
        bake_chains(rig, None, 1, 5)


def test_a_cycle_across_two_rigs_with_same_named_chains_names_each_rig() -> None:
    """Each rig's chain 'arm' has its target riding the other rig's chain: the cycle's message
    names the armature of each chain, which the chain names alone cannot tell apart."""
    from blender_rigs import torso_bones

    rigs = []
    for name, x in (("RigA", 0.0), ("RigB", 2.0)):
        rig = make_armature(torso_bones("", x), name)
        rigs.append(rig)
    targets = []
    for rig, other in ((rigs[0], rigs[1]), (rigs[1], rigs[0])):
        target = empty(f"T{rig.name}", (rig.location.x + 0.45, 0.25, 1.45))
        target.parent, target.parent_type, target.parent_bone = other, "BONE", "spine.3"
        targets.append(target)
        add_chain(rig, "forearm.L", 5, target, name="arm")
    bpy.context.scene.frame_set(2)
    message = get_status("RigA", "arm").message
    assert message.startswith("chain 'arm' of 'RigA' is part of a cycle of chains following each other ("), message
    assert "moves with chain 'arm' of 'RigB'" in message and "moves with chain 'arm' of 'RigA'" in message, message
