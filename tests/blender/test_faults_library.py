"""Library data: an armature linked from another .blend is read-only (refused with a message, nothing
written); a library override is local and works, except keying into an action still linked."""

from __future__ import annotations

import re
from pathlib import Path

import bpy
import numpy as np
import pytest
from blender_rigs import world_tail
from fault_helpers import (
    TOLERANCE,
    assert_playback,
    bystander_rig,
    key_table,
    keyed_location,
    run_operator,
    select_chain,
    status_message,
    undocumented,
    user_sees,
)

from blender_ik_addon.blender import RigSetupError, bake_chains
from blender_ik_addon.blender.keys import iter_fcurves

LINKED = ("armature 'Rig' is linked from library 'rigs.blend' and is read-only: a pose or keys written to it would be "
          "lost; make a library override to solve or bake it")
POLL = "Active armature is linked from a library (read-only); make a library override"


def write_library(folder: Path) -> Path:
    """A .blend holding the bystander rig and its targets in a collection "RigKit"; the session is left
    in a new empty file."""
    scene = bystander_rig()
    kit = bpy.data.collections.new("RigKit")
    for obj in (scene.rig, scene.good_target, scene.bad_target):
        bpy.context.scene.collection.objects.unlink(obj)
        kit.objects.link(obj)
    bpy.context.scene.collection.children.link(kit)
    path = folder / "rigs.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_homefile(use_empty=True)
    return path


def link_objects(path: Path) -> dict[str, bpy.types.Object]:
    """Link the rig and its targets (read-only) straight into the scene."""
    with bpy.data.libraries.load(str(path), link=True) as (_source, linked):
        linked.objects = ["Rig", "GoodTarget", "BadTarget"]
    for obj in linked.objects:
        bpy.context.scene.collection.objects.link(obj)
    return {obj.name: obj for obj in linked.objects}


def pose_values(rig: bpy.types.Object) -> list[tuple[float, ...]]:
    """Rotations of the bones no key animates (what only a write could change)."""
    return [(*p.rotation_quaternion, *p.rotation_euler) for p in rig.pose.bones if p.name not in ("bad.1", "other")]


def test_linked_armature_is_refused(tmp_path: Path, capfd) -> None:
    objects = link_objects(write_library(tmp_path))
    rig = objects["Rig"]
    assert rig.library is not None
    library_keys = key_table(rig)
    pose = pose_values(rig)
    for frame in (3, 8):
        bpy.context.scene.frame_set(frame)  # playback goes on
        assert bpy.context.scene.frame_current == frame
    for chain in ("good", "bad"):
        assert status_message("Rig", chain) == f"Error: {LINKED}"
    assert pose_values(rig) == pose  # nothing written (it would be lost on save)
    bpy.context.view_layer.objects.active = rig
    chains = len(rig.ik_chains.chains)
    for operator in (bpy.ops.ikchains.bake, bpy.ops.ikchains.key_frame, bpy.ops.ikchains.chain_add,
                     bpy.ops.ikchains.chain_remove, bpy.ops.ikchains.capture_comfort, bpy.ops.ikchains.create_target):
        assert not operator.poll()
        out = run_operator(capfd, operator)
        assert out.result == frozenset() and out.report.endswith(POLL), out
    with pytest.raises(RigSetupError, match=re.escape(LINKED)):
        bake_chains(rig, None, 1, 20)
    assert key_table(rig) == library_keys and rig.animation_data.action.library is not None
    assert len(rig.ik_chains.chains) == chains and pose_values(rig) == pose
    user_sees("linked-armature", given="An armature linked from a library .blend (read-only), with live chains",
              where="panel status; every operator's poll message (greyed out); bake_chains() exception",
              message=f"{LINKED}\n{POLL}",
              preserved="the linked rig, its chains, action and pose are not written; frame changes keep working")


def override_rig(path: Path) -> bpy.types.Object:
    """Link the kit's collection and make a library override of its hierarchy (rig and targets)."""
    with bpy.data.libraries.load(str(path), link=True) as (_source, linked):
        linked.collections = ["RigKit"]
    kit = linked.collections[0]
    overridden = kit.override_hierarchy_create(bpy.context.scene, bpy.context.view_layer, do_fully_editable=True)
    if bpy.context.scene.collection.children.get(overridden.name) is None:
        bpy.context.scene.collection.children.link(overridden)
    rig = next(o for o in overridden.objects if o.type == "ARMATURE")
    assert rig.override_library is not None and rig.library is None
    return rig


def test_library_override_solves_and_bakes_into_a_local_action(tmp_path: Path, capfd) -> None:
    path = write_library(tmp_path)
    rig = override_rig(path)
    good, bad = bpy.data.objects["GoodTarget"], bpy.data.objects["BadTarget"]
    assert good.override_library is not None
    assert_playback(rig, good)
    assert_playback(rig, bad, chain="bad", tip="bad.2")
    linked_action = rig.animation_data.action
    message = (f"action {linked_action.name!r} of 'Rig' is linked from library 'rigs.blend': keys written into it "
               "would be lost on save; give 'Rig' a local action first (make the action local)")
    select_chain(rig, "bad")
    refused = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=20)
    assert (refused.result, refused.level, refused.report) == (frozenset(), "ERROR", message)
    library_keys = key_table(rig)
    rig.animation_data.action = linked_action.copy()  # what "make local" does for the user
    if hasattr(rig.animation_data, "action_slot") and rig.animation_data.action_slot is None:
        rig.animation_data.action_slot = rig.animation_data.action.slots[0]
    baked = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=20, disable_live=True)
    assert (baked.result, baked.level) == ({"FINISHED"}, "INFO")
    assert baked.report.startswith("20 frames solved, 0 not converged")
    assert key_table(rig)[('pose.bones["bad.1"].rotation_euler', 0)][0] == library_keys[
        ('pose.bones["bad.1"].rotation_euler', 0)][0]  # the key at -10 survives
    saved = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(saved))
    bpy.ops.wm.open_mainfile(filepath=str(saved))
    rig = next(o for o in bpy.data.objects if o.type == "ARMATURE" and o.library is None)
    for chain in rig.ik_chains.chains:
        chain.enabled = False  # the keys alone
    for frame in (4, 15):
        bpy.context.scene.frame_set(frame)
        np.testing.assert_allclose(world_tail(rig, "bad.2"), keyed_location(bpy.data.objects["BadTarget"], frame),
                                   atol=2 * TOLERANCE, err_msg=f"frame {frame}")
    assert len(iter_fcurves(rig)) > len(library_keys)
    user_sees("library-override", given="A library override of the rig (its action still linked from the library)",
              where="panel status; Bake report", message=f"{message}\n{baked.report}",
              preserved="live solving works on the override; baking is refused until the rig has a local action, "
              "then the baked keys survive save and reload; the library's action is untouched")


def test_chain_settings_edited_on_an_override_survive_reload(tmp_path: Path) -> None:
    rig = override_rig(write_library(tmp_path))
    rig.ik_chains.chains["bad"].tolerance = 0.005
    rig.ik_chains.chains["bad"].enabled = False
    extra = rig.ik_chains.chains.add()  # a chain added on the override
    extra.name, extra.tip_bone, extra.chain_length = "extra", "other", 1
    saved = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(saved))
    bpy.ops.wm.open_mainfile(filepath=str(saved))
    rig = next(o for o in bpy.data.objects if o.type == "ARMATURE" and o.library is None)
    chains = rig.ik_chains.chains
    assert [c.name for c in chains] == ["good", "bad", "extra"]
    assert (round(chains["bad"].tolerance, 6), chains["bad"].enabled) == (0.005, False)
    assert (chains["extra"].tip_bone, chains["extra"].chain_length) == ("other", 1)
    assert_playback(rig, bpy.data.objects["GoodTarget"])
    user_sees("override-settings", given="Chain settings edited, and a chain added, on a library override; "
              "file saved and opened again", where="the chain list and settings", message="(no message)",
              preserved="the edited settings and the added chain (the add-on's properties are library-overridable)")


def test_the_table_lists_these_cases() -> None:
    assert undocumented("tests/blender/test_faults_library.py") == []
