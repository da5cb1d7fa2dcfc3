"""Still rigs: a frame whose evaluation updated nothing a rig's chains depend on re-uses their last
answers without reading or solving anything, and any such update (seen by either handler) solves
them again."""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from blender_rigs import add_chain, empty, straight_chain, world_tail

from blender_ik_addon.blender import events, live, replay
from blender_ik_addon.blender.keys import iter_fcurves
from blender_ik_addon.blender.status import get_status


@pytest.fixture
def frames_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every chain the live pass reads inputs for, by chain name: in the full pass
    (``live._frame_of``) or its fast lane (``replay.RigReplay.inputs``)."""
    seen: list[str] = []
    original = live._frame_of
    original_inputs = replay.RigReplay.inputs

    def spy(obj, obj_eval, spec, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(spec.name)
        return original(obj, obj_eval, spec, *args, **kwargs)

    def spy_inputs(self, obj, depsgraph):  # type: ignore[no-untyped-def]
        found = original_inputs(self, obj, depsgraph)
        if found is not None:
            seen.extend(chain.spec.name for chain, *_ in found.items)
        return found

    monkeypatch.setattr(live, "_frame_of", spy)
    monkeypatch.setattr(replay.RigReplay, "inputs", spy_inputs)
    return seen


def _rig() -> tuple[bpy.types.Object, bpy.types.Object]:
    rig = straight_chain(3)
    target = empty(location=(1.0, 1.5, 0.5))
    add_chain(rig, "b2", 3, target, name="arm")
    bpy.context.scene.frame_set(1)
    return rig, target


def test_a_still_rig_is_not_read_again_and_its_status_follows_the_frame(frames_read: list[str]) -> None:
    rig, target = _rig()
    frames_read.clear()
    for frame in range(2, 12):
        bpy.context.scene.frame_set(frame)
        assert get_status(rig.name, "arm").frame == frame
    assert frames_read == []
    np.testing.assert_allclose(world_tail(rig, "b2"), target.location, atol=1e-4)


def test_a_moved_target_solves_again(frames_read: list[str]) -> None:
    rig, target = _rig()
    frames_read.clear()
    target.location = (-0.5, 1.2, 1.0)  # as a script does: no evaluation before the frame change
    bpy.context.scene.frame_set(2)
    assert frames_read == ["arm"]
    np.testing.assert_allclose(world_tail(rig, "b2"), target.location, atol=1e-4)


def test_a_comfort_pose_edited_from_python_solves_again(frames_read: list[str]) -> None:
    rig, _ = _rig()
    frames_read.clear()
    chain = rig.ik_chains.chains["arm"]
    item = chain.comfort_bones.add()
    item.name = "b1"
    bpy.context.scene.frame_set(2)
    item.rotation = (0.9, 0.3, 0.0, 0.0)
    bpy.context.scene.frame_set(3)
    assert frames_read == ["arm", "arm"]


def test_an_edit_evaluated_while_nothing_solves_is_not_missed(frames_read: list[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """During playback or a render the depsgraph handler solves nothing; the edits it sees must
    still make the next frame solve."""
    rig, target = _rig()
    monkeypatch.setattr(events, "_rendering", True)
    frames_read.clear()
    target.location = (-0.5, 1.2, 1.0)
    bpy.context.view_layer.update()  # evaluated here: the next frame's depsgraph reports nothing
    bpy.context.scene.frame_set(2)
    assert frames_read == ["arm"]
    np.testing.assert_allclose(world_tail(rig, "b2"), target.location, atol=1e-4)


def test_a_target_blender_does_not_evaluate_is_never_taken_as_still(frames_read: list[str]) -> None:
    rig, target = _rig()
    for frame, location in ((1, (1.0, 1.5, 0.5)), (20, (-0.5, 1.2, 1.0))):
        target.location = location
        target.keyframe_insert("location", frame=frame)
    target.hide_viewport = True  # not evaluated: its keys are read, and they move without an update
    for frame in range(2, 6):
        bpy.context.scene.frame_set(frame)
    assert frames_read.count("arm") >= 4
    goal = [fc.evaluate(5) for fc in sorted(iter_fcurves(target), key=lambda fc: fc.array_index)]
    np.testing.assert_allclose(world_tail(rig, "b2"), goal, atol=1e-4)


def test_while_another_frame_handler_is_registered_no_rig_is_taken_as_still(frames_read: list[str]) -> None:
    """A script's ``frame_change_post`` handler that moves a target changes it after ours, in an
    evaluation no handler is told of: the chain follows one frame later, and keeps following."""
    rig, target = _rig()

    def mover(scene, _depsgraph=None):  # type: ignore[no-untyped-def]
        target.location = (-0.5 + 0.05 * scene.frame_current, 1.2, 1.0)

    bpy.app.handlers.frame_change_post.append(mover)
    try:
        for frame in range(2, 6):
            bpy.context.scene.frame_set(frame)
    finally:
        bpy.app.handlers.frame_change_post.remove(mover)
    for frame in range(6, 9):  # the handler is gone and the target stands still: caught up, then still
        bpy.context.scene.frame_set(frame)
    np.testing.assert_allclose(world_tail(rig, "b2"), target.location, atol=1e-4)


def test_the_status_names_the_subframe() -> None:
    rig, _ = _rig()
    bpy.context.scene.frame_set(5, subframe=0.5)
    assert get_status(rig.name, "arm").frame == 5.5
