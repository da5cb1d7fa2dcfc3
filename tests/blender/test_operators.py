"""Operators: poll with reasons, report outcomes, and do what their labels say."""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from blender_rigs import add_chain, empty, straight_chain, world_tail

from blender_ik_addon.blender.keys import iter_fcurves
from blender_ik_addon.core import IKError
from blender_ik_addon.ui import operators


@pytest.fixture
def rig() -> bpy.types.Object:
    obj = straight_chain(3)
    bpy.context.view_layer.objects.active = obj
    obj.data.bones.active = obj.data.bones["b2"]
    return obj


def test_polls_refuse_non_armatures_and_empty_chain_lists(rig: bpy.types.Object) -> None:
    assert bpy.ops.ikchains.chain_add.poll()
    for op in (bpy.ops.ikchains.bake, bpy.ops.ikchains.key_frame, bpy.ops.ikchains.create_target,
               bpy.ops.ikchains.capture_comfort, bpy.ops.ikchains.chain_remove):
        assert not op.poll()  # no chain yet
    mesh = bpy.data.objects.new("Mesh", bpy.data.meshes.new("Mesh"))
    bpy.context.scene.collection.objects.link(mesh)
    bpy.context.view_layer.objects.active = mesh
    assert not bpy.ops.ikchains.chain_add.poll()
    with pytest.raises(RuntimeError, match="Active object is not an armature"):
        bpy.ops.ikchains.chain_add()


def test_add_create_target_capture_key_and_remove(rig: bpy.types.Object) -> None:
    assert bpy.ops.ikchains.chain_add() == {"FINISHED"}
    chain = rig.ik_chains.chains[0]
    assert (chain.name, chain.tip_bone, chain.chain_length) == ("b2", "b2", 2)
    chain.chain_length = 3
    rig.pose.bones["b1"].rotation_quaternion = (0.9, 0.3, 0.0, 0.0)
    bpy.context.view_layer.update()
    tail = world_tail(rig, "b2")
    assert bpy.ops.ikchains.create_target() == {"FINISHED"}
    target = chain.target
    np.testing.assert_allclose(np.array(target.matrix_world.translation), tail, atol=1e-5)
    np.testing.assert_allclose(world_tail(rig, "b2"), tail, atol=1e-5)  # live, yet the chain did not jump
    assert [b.name for b in chain.comfort_bones] == ["b0", "b1", "b2"]  # captured on the way
    chain.comfort_bones.clear()
    assert bpy.ops.ikchains.capture_comfort() == {"FINISHED"}
    assert [b.name for b in chain.comfort_bones] == ["b0", "b1", "b2"]
    np.testing.assert_allclose(chain.comfort_bones["b1"].rotation, np.array((0.9, 0.3, 0, 0)) / np.hypot(0.9, 0.3),
                               atol=1e-6)
    target.location = (0.5, 2.0, 0.8)
    bpy.context.scene.frame_set(12)
    assert bpy.ops.ikchains.key_frame() == {"FINISHED"}
    fcurves = iter_fcurves(rig)
    assert {fc.data_path for fc in fcurves} == {f'pose.bones["b{i}"].rotation_quaternion' for i in range(3)}
    assert all([kp.co[0] for kp in fc.keyframe_points] == [12.0] for fc in fcurves)
    assert bpy.ops.ikchains.chain_add() == {"FINISHED"}
    assert rig.ik_chains.chains[1].name == "b2.001" and rig.ik_chains.active_index == 1
    assert bpy.ops.ikchains.chain_remove() == {"FINISHED"}
    assert [c.name for c in rig.ik_chains.chains] == ["b2"]


def test_key_frame_reports_setup_errors(rig: bpy.types.Object) -> None:
    add_chain(rig, "b2", 3, None, name="arm")
    with pytest.raises(RuntimeError, match="chain 'arm' has no target object"):  # ERROR reports raise in scripts
        bpy.ops.ikchains.key_frame()
    assert not iter_fcurves(rig)


def test_bake_operator_reports_errors_without_writing(rig: bpy.types.Object) -> None:
    add_chain(rig, "b2", 3, empty(location=(1.0, 1.5, 0.0)), name="arm")
    rig.ik_chains.chains["arm"].tip_bone = "missing"
    with pytest.raises(RuntimeError, match="no bone 'missing'"):
        bpy.ops.ikchains.bake(frame_start=1, frame_end=10)
    assert not iter_fcurves(rig)


def test_every_operator_is_registered_undoable(rig: bpy.types.Object, monkeypatch: pytest.MonkeyPatch) -> None:
    add_chain(rig, "b2", 3, None, name="arm")
    flags: dict[str, set[str]] = {}

    def spy(self: bpy.types.Operator, context: bpy.types.Context) -> set[str]:
        flags[type(self).__name__] = set(self.bl_options)  # the flags Blender registered
        return {"FINISHED"}

    for cls in operators.classes:
        monkeypatch.setattr(cls, "run", spy)
        assert getattr(bpy.ops.ikchains, cls.bl_idname.split(".")[1])() == {"FINISHED"}
    assert flags == {cls.__name__: {"REGISTER", "UNDO"} for cls in operators.classes}


def test_setup_errors_in_a_body_become_error_reports(rig: bpy.types.Object) -> None:
    add_chain(rig, "missing", 3, None, name="arm")
    for op in (bpy.ops.ikchains.create_target, bpy.ops.ikchains.capture_comfort):
        with pytest.raises(RuntimeError, match=r"^Error: .*no bone 'missing'"):  # ERROR reports raise in scripts
            op()
    assert [o.name for o in bpy.data.objects] == [rig.name]  # no Empty made before the error
    assert not rig.ik_chains.chains["arm"].comfort_bones


class _Reports:
    """Stands in for an operator instance: records reports, runs the given body."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.reports: list[tuple[set[str], str]] = []

    def run(self, context: object) -> set[str]:
        raise self.error

    def report(self, kind: set[str], message: str) -> None:
        self.reports.append((kind, message))


def test_execute_turns_only_ik_errors_into_cancelled() -> None:
    execute = operators.IKCHAINS_OT_capture_comfort.execute
    op = _Reports(IKError("chain 'arm' is broken"))
    assert execute(op, bpy.context) == {"CANCELLED"}
    assert op.reports == [({"ERROR"}, "chain 'arm' is broken")]
    op = _Reports(ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):  # anything else propagates
        execute(op, bpy.context)
    assert op.reports == []
