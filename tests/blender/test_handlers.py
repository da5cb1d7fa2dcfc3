"""The live handlers: survive save/reload, keep playback alive through errors, follow a dragged
target and auto-key it, and do nothing when no chain is live."""

from __future__ import annotations

import bpy
import numpy as np
from blender_rigs import add_chain, empty, straight_chain, world_tail

from blender_ik_addon import handlers
from blender_ik_addon.blender import settings
from blender_ik_addon.blender.keys import iter_fcurves
from blender_ik_addon.blender.status import get_status


def test_handler_and_settings_survive_save_and_reload(tmp_path) -> None:
    rig = straight_chain(3)
    target = empty(location=(1.0, 1.5, 0.5))
    pole = empty("Pole", (0.0, 1.0, 2.0))
    add_chain(rig, "b2", 3, target, name="arm", pole=pole, solver="TUTORIAL", max_iterations=20, tolerance=0.002,
              follow_orientation=True, orientation_weight=0.5, comfort_weight=0.3, comfort_blend=0.25,
              follow_mode=False, restarts=2)
    comfort = rig.ik_chains.chains["arm"].comfort_bones.add()
    comfort.name, comfort.rotation = "b1", (0.9, 0.1, 0.0, 0.0)
    path = str(tmp_path / "rig.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path)
    bpy.ops.wm.open_mainfile(filepath=path)

    assert handlers.on_frame_change_post in bpy.app.handlers.frame_change_post
    assert bpy.app.handlers.frame_change_post.count(handlers.on_frame_change_post) == 1
    rig = bpy.data.objects["Rig"]
    chain = rig.ik_chains.chains["arm"]
    assert (chain.tip_bone, chain.chain_length, chain.target.name, chain.pole.name) == ("b2", 3, "Target", "Pole")
    assert (chain.solver, chain.max_iterations, chain.restarts, chain.enabled) == ("TUTORIAL", 20, 2, True)
    assert chain.tolerance == np.float32(0.002) and chain.follow_orientation and chain.orientation_weight == 0.5
    assert chain.comfort_weight == np.float32(0.3) and chain.comfort_blend == 0.25
    assert chain.comfort_bones["b1"].rotation[0] == np.float32(0.9)
    # Still live after the reload: switch to the fast solver and move the target.
    chain.solver, chain.follow_orientation, chain.comfort_blend, chain.tolerance = "LM", False, 0.0, 1e-4
    bpy.data.objects["Target"].location = (-1.0, 1.2, 0.8)
    bpy.context.scene.frame_set(3)
    np.testing.assert_allclose(world_tail(rig, "b2"), (-1.0, 1.2, 0.8), atol=1e-4)


def assert_frame_set_still_works(rig: bpy.types.Object, good_target: bpy.types.Object) -> None:
    for frame in (2, 3):
        bpy.context.scene.frame_set(frame)
        assert bpy.context.scene.frame_current == frame
    np.testing.assert_allclose(world_tail(rig, "good.2"), good_target.location, atol=1e-4)
    assert get_status(rig.name, "good").converged


def two_chain_rig() -> tuple[bpy.types.Object, bpy.types.Object, bpy.types.Object]:
    """A rig with a chain that keeps working ("good") next to the one a test breaks ("bad")."""
    from blender_rigs import BoneDef, make_armature

    bones = []
    for prefix, x in (("good", 0.0), ("bad", 3.0)):
        bones += [BoneDef(f"{prefix}.{i}", (x, i, 0), (x, i + 1, 0), parent=f"{prefix}.{i - 1}" if i else None,
                          connect=bool(i)) for i in range(3)]
    rig = make_armature(bones)
    good, bad = empty("GoodTarget", (1.0, 1.5, 0.5)), empty("BadTarget", (3.5, 1.5, 0.5))
    add_chain(rig, "good.2", 3, good, name="good")
    add_chain(rig, "bad.2", 3, bad, name="bad")
    bpy.context.scene.frame_set(1)
    return rig, good, bad


def test_deleted_target_gives_a_message_and_playback_continues() -> None:
    rig, good, bad = two_chain_rig()
    bpy.data.objects.remove(bad)
    assert_frame_set_still_works(rig, good)
    assert "no target object" in get_status(rig.name, "bad").message


def test_renamed_and_deleted_bones_give_messages() -> None:
    rig, good, _ = two_chain_rig()
    rig.data.bones["bad.2"].name = "renamed"
    assert_frame_set_still_works(rig, good)
    assert "no bone 'bad.2' (renamed or deleted?)" in get_status(rig.name, "bad").message
    rig.data.bones["renamed"].name = "bad.2"
    bpy.context.scene.frame_set(4)
    assert get_status(rig.name, "bad").converged
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    rig.data.edit_bones.remove(rig.data.edit_bones["bad.1"])
    bpy.ops.object.mode_set(mode="OBJECT")
    assert_frame_set_still_works(rig, good)
    assert "chain length 3 is longer than the hierarchy" in get_status(rig.name, "bad").message


def test_chain_longer_than_the_hierarchy_gives_a_message() -> None:
    rig, good, _ = two_chain_rig()
    rig.ik_chains.chains["bad"].chain_length = 7
    assert_frame_set_still_works(rig, good)
    assert "chain length 7 is longer than the hierarchy" in get_status(rig.name, "bad").message


def test_chains_on_a_non_armature_object_are_ignored_and_explained() -> None:
    rig, good, _ = two_chain_rig()
    mesh = bpy.data.objects.new("Mesh", bpy.data.meshes.new("Mesh"))
    bpy.context.scene.collection.objects.link(mesh)
    add_chain(mesh, "b2", 2, good, name="odd")  # Object.ik_chains exists on every object type
    assert_frame_set_still_works(rig, good)
    assert get_status("Mesh", "odd") is None
    bpy.context.view_layer.objects.active = mesh
    assert not bpy.ops.ikchains.bake.poll()
    assert not bpy.ops.ikchains.key_frame.poll()


def test_an_unexpected_exception_becomes_a_status_not_a_traceback(monkeypatch) -> None:
    rig, good, _ = two_chain_rig()
    from blender_ik_addon.blender import live, replay

    original = live._frame_of

    def flaky(obj, obj_eval, spec, *args, **kwargs):
        if spec.name == "bad":
            raise ZeroDivisionError("boom")
        return original(obj, obj_eval, spec, *args, **kwargs)

    monkeypatch.setattr(live, "_frame_of", flaky)
    monkeypatch.setattr(replay, "_ENABLED", [False])  # the full pass fails here; test_replay: a failing replay
    replay.invalidate()
    good.location.x += 0.2
    assert_frame_set_still_works(rig, good)
    assert get_status(rig.name, "bad").message == "ZeroDivisionError: boom"


def test_dragging_a_target_moves_the_chain_and_auto_keys_it() -> None:
    rig = straight_chain(3)
    target = empty(location=(1.0, 1.5, 0.5))
    add_chain(rig, "b2", 3, target, name="arm")
    scene = bpy.context.scene
    scene.frame_set(7)
    assert not iter_fcurves(rig)
    target.location = (-0.6, 1.8, 0.4)  # as the move tool does: an edit, then a depsgraph update
    bpy.context.view_layer.update()
    np.testing.assert_allclose(world_tail(rig, "b2"), target.location, atol=1e-4)
    assert not iter_fcurves(rig)  # Auto Keying is off: nothing keyed
    scene.tool_settings.use_keyframe_insert_auto = True
    target.location = (0.4, 1.2, -0.9)
    bpy.context.view_layer.update()
    np.testing.assert_allclose(world_tail(rig, "b2"), target.location, atol=1e-4)
    keyed = {(fc.data_path, tuple(kp.co[0] for kp in fc.keyframe_points)) for fc in iter_fcurves(rig)}
    assert {path for path, _ in keyed} == {f'pose.bones["b{i}"].rotation_quaternion' for i in range(3)}
    assert all(frames == (7.0,) for _, frames in keyed)


def test_no_live_chain_means_the_handler_touches_nothing() -> None:
    rig = straight_chain(3)
    target = empty(location=(1.0, 1.5, 0.5))
    add_chain(rig, "b2", 3, target, name="arm", enabled=False)
    before = [tuple(p.rotation_quaternion) for p in rig.pose.bones]
    assert settings.live_rigs(bpy.context.scene) == []
    bpy.context.scene.frame_set(5)
    assert [tuple(p.rotation_quaternion) for p in rig.pose.bones] == before
    assert get_status(rig.name, "arm") is None


def test_handler_reads_the_depsgraph_it_is_given() -> None:
    from blender_ik_addon.blender.read import read_chain
    from blender_ik_addon.blender.solving import current_pose
    from blender_ik_addon.core import tip_positions

    scene = bpy.context.scene
    rig = straight_chain(3)
    target = empty(location=(1.0, 1.5, 0.5))
    add_chain(rig, "b2", 3, target, name="arm")
    other = scene.view_layers.new("Other")  # a second depsgraph, like a render's
    with bpy.context.temp_override(view_layer=other):
        other_depsgraph = bpy.context.evaluated_depsgraph_get()  # it sees the target at (1, 1.5, 0.5)
    chain = rig.ik_chains.chains["arm"]
    chain.enabled = False
    target.location = (-0.5, 1.0, 1.2)
    bpy.context.view_layer.update()  # the viewport's depsgraph sees the new place
    chain.enabled = True  # solves through the viewport's depsgraph
    handlers.on_frame_change_post(scene, other_depsgraph)

    binding = read_chain(rig, "b2", 3)
    tip = tip_positions(binding.chain, binding.chain.compress(current_pose(rig, binding))[None])[0]
    np.testing.assert_allclose(tip, (1.0, 1.5, 0.5), atol=1e-4)  # the pose written is the other depsgraph's


def test_unchanged_inputs_skip_the_solve_and_a_moved_parent_bone_re_solves(monkeypatch) -> None:
    from blender_rigs import BoneDef, make_armature

    from blender_ik_addon.blender import live

    rig = make_armature([BoneDef("spine", (0, 0, 0), (0, 0, 1)),
                         *(BoneDef(f"b{i}", (0, i, 1), (0, i + 1, 1), parent=f"b{i - 1}" if i else "spine",
                                   connect=bool(i)) for i in range(3))])
    rig.pose.bones["spine"].rotation_mode = "XYZ"
    target = empty(location=(1.0, 1.5, 1.5))
    add_chain(rig, "b2", 3, target, name="arm")
    calls = []
    original = live.solve_jobs
    monkeypatch.setattr(live, "solve_jobs", lambda jobs: calls.extend(jobs) or original(jobs))
    for frame in range(2, 12):
        bpy.context.scene.frame_set(frame)
    assert calls == []  # nothing moved: every frame re-used the last answer
    rig.pose.bones["spine"].rotation_euler = (0.0, 0.4, 0.3)  # the chain's base turns
    bpy.context.view_layer.update()  # the drag handler re-solves
    assert len(calls) == 1
    np.testing.assert_allclose(world_tail(rig, "b2"), target.location, atol=1e-4)
    rig.pose.bones["b1"].rotation_quaternion = (0.7, 0.7, 0.0, 0.0)  # a hand edit of a chain bone
    bpy.context.scene.frame_set(12)
    assert len(calls) == 2
    np.testing.assert_allclose(world_tail(rig, "b2"), target.location, atol=1e-4)


def test_a_target_parented_to_a_chain_bone_is_refused() -> None:
    rig = straight_chain(3)
    target = empty(location=(1.0, 1.5, 0.5))
    target.parent, target.parent_type, target.parent_bone = rig, "BONE", "b1"
    add_chain(rig, "b2", 3, target, name="arm")
    bpy.context.scene.frame_set(2)
    assert "is parented to the armature 'Rig'" in get_status(rig.name, "arm").message


def test_a_target_parented_to_the_armature_object_is_followed() -> None:
    rig = straight_chain(3)
    target = empty(location=(1.0, 1.5, 0.5))
    target.parent = rig  # moves with the character, not with the pose: no feedback
    add_chain(rig, "b2", 3, target, name="arm")
    bpy.context.scene.frame_set(2)
    assert get_status(rig.name, "arm").converged
    np.testing.assert_allclose(world_tail(rig, "b2"), target.matrix_world.translation, atol=1e-4)


def test_an_animation_render_solves_every_frame_through_the_render_depsgraph(tmp_path, monkeypatch) -> None:
    from blender_ik_addon.blender import live
    from blender_ik_addon.blender.read import read_chain
    from blender_ik_addon.blender.solving import current_pose
    from blender_ik_addon.core import tip_positions

    scene = bpy.context.scene
    rig = straight_chain(3)
    target = empty(location=(1.0, 1.5, 0.5))
    target.keyframe_insert("location", frame=1)
    target.location = (-1.0, 1.2, 0.8)
    target.keyframe_insert("location", frame=3)
    add_chain(rig, "b2", 3, target, name="arm")
    seen = []
    original = live.solve_rig

    def spy(obj, depsgraph, **kwargs):
        outcome = original(obj, depsgraph, **kwargs)
        binding = read_chain(obj, "b2", 3)
        tip = tip_positions(binding.chain, binding.chain.compress(current_pose(obj, binding))[None])[0]
        goal = [fc.evaluate(depsgraph.scene.frame_current) for fc in iter_fcurves(target)]
        seen.append((depsgraph.mode, depsgraph.scene.frame_current, float(np.linalg.norm(tip - goal))))
        return outcome

    monkeypatch.setattr(live, "solve_rig", spy)
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    scene.camera = camera
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = 16
    scene.frame_start, scene.frame_end = 1, 3
    scene.render.filepath = str(tmp_path / "frame_")
    assert bpy.ops.render.render(animation=True) == {"FINISHED"}
    rendered = [(frame, gap) for mode, frame, gap in seen if mode == "RENDER"]
    assert [frame for frame, _ in rendered] == [1, 2, 3]
    assert all(gap < 1e-4 for _, gap in rendered)  # the pose written reached that frame's target
