"""The sidebar panels: every property, operator and list they draw exists, and draw() writes nothing.

Panels only draw inside a window region, which headless Blender never redraws, so ``draw()`` is run
against a recording layout. What it records is checked against the real RNA: property names must
exist on the data they are drawn from, operators must be registered.
"""

from __future__ import annotations

from typing import Any

import bpy
import pytest
from blender_rigs import add_chain, empty, straight_chain

from blender_ik_addon.ui import panels


class LayoutRecorder:
    """Stands in for ``UILayout``: records props/operators, accepts any layout attribute."""

    def __init__(self, log: list[tuple[str, Any, str]]) -> None:
        self.log = log

    def prop(self, data: Any, name: str, **_kw: Any) -> None:
        self.log.append(("prop", data, name))

    def prop_search(self, data: Any, name: str, search_data: Any, search_name: str, **_kw: Any) -> None:
        self.log.append(("prop", data, name))
        self.log.append(("prop", search_data, search_name))

    def operator(self, idname: str, **_kw: Any) -> None:
        self.log.append(("operator", None, idname))

    def template_list(self, list_type: str, _id: str, data: Any, name: str, active_data: Any, active: str,
                      **_kw: Any) -> None:
        self.log.append(("list", None, list_type))
        self.log += [("prop", data, name), ("prop", active_data, active)]

    def label(self, **_kw: Any) -> None:
        self.log.append(("label", None, _kw.get("text", "")))

    def row(self, **_kw: Any) -> LayoutRecorder:
        return self

    column = row

    def __setattr__(self, name: str, value: Any) -> None:  # use_property_split, enabled, active...
        object.__setattr__(self, name, value)


def draw(panel_class: type, context: Any) -> list[tuple[str, Any, str]]:
    log: list[tuple[str, Any, str]] = []
    panel = type("PanelStandIn", (), {"layout": LayoutRecorder(log)})()  # Panel instances come from regions
    panel_class.draw(panel, context)
    return log


def snapshot(data: Any) -> dict[str, Any]:
    """The plain (non-pointer, non-collection) property values of an RNA struct."""
    return {p.identifier: tuple(getattr(data, p.identifier)) if getattr(p, "is_array", False) and p.is_array
            else getattr(data, p.identifier)
            for p in data.bl_rna.properties if p.type not in ("POINTER", "COLLECTION") and p.identifier != "rna_type"}


@pytest.mark.parametrize("follow_mode", [False, True])
def test_panels_draw_only_existing_properties_and_operators(follow_mode: bool) -> None:
    rig = straight_chain(3)
    bpy.context.view_layer.objects.active = rig
    add_chain(rig, "b2", 3, empty(location=(1.0, 1.5, 0.5)), name="arm", follow_mode=follow_mode, solver="TUTORIAL")
    bpy.context.scene.frame_set(2)
    chain = rig.ik_chains.chains["arm"]
    before = snapshot(chain), snapshot(rig.ik_chains)
    context = bpy.context
    drawn = []
    for cls in panels.classes:
        if issubclass(cls, bpy.types.Panel):
            assert cls.poll(context)
            drawn += draw(cls, context)
    props = [(data, name) for kind, data, name in drawn if kind == "prop"]
    assert {name for _, name in props} >= {"tip_bone", "chain_length", "target", "pole", "enabled", "solver",
                                           "comfort_weight", "comfort_blend", "follow_mode", "bones"}
    for data, name in props:
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
    for kind, _, idname in drawn:
        if kind == "operator":
            module, op = idname.split(".")
            assert hasattr(getattr(bpy.ops, module), op) and getattr(getattr(bpy.ops, module), op).idname()
        if kind == "list":
            assert getattr(bpy.types, idname).is_registered
    assert any(kind == "label" and "onverged, residual" in text for kind, _, text in drawn)  # status line
    assert (snapshot(chain), snapshot(rig.ik_chains)) == before  # draw() wrote nothing


def test_ui_list_row_shows_each_chains_status() -> None:
    rig = straight_chain(3)
    add_chain(rig, "b2", 3, None, name="arm")
    bpy.context.scene.frame_set(2)
    log: list[tuple[str, Any, str]] = []
    chain = rig.ik_chains.chains["arm"]
    panels.IKCHAINS_UL_chains.draw_item(None, bpy.context, LayoutRecorder(log), rig.ik_chains, chain, 0, None, "", 0)
    assert ("label", None, "error") in log


def test_panels_hide_outside_object_and_pose_mode_and_for_other_objects() -> None:
    mesh = bpy.data.objects.new("Mesh", bpy.data.meshes.new("Mesh"))
    bpy.context.scene.collection.objects.link(mesh)
    bpy.context.view_layer.objects.active = mesh
    assert not panels.VIEW3D_PT_ikchains_main.poll(bpy.context)
    rig = straight_chain(2)
    bpy.context.view_layer.objects.active = rig
    assert panels.VIEW3D_PT_ikchains_main.poll(bpy.context)
    assert not panels.VIEW3D_PT_ikchains_chain.poll(bpy.context)  # no chain yet
    bpy.ops.object.mode_set(mode="EDIT")
    assert not panels.VIEW3D_PT_ikchains_main.poll(bpy.context)
    bpy.ops.object.mode_set(mode="OBJECT")


def test_solver_panel_says_which_implementation_solves_the_chain() -> None:
    from blender_ik_addon.core.compiled import numba_available

    rig = straight_chain(3)
    bpy.context.view_layer.objects.active = rig
    add_chain(rig, "b2", 3, empty(location=(1.0, 1.5, 0.5)), name="arm")
    chain = rig.ik_chains.chains["arm"]

    def note() -> str:
        texts = [text for kind, _, text in draw(panels.VIEW3D_PT_ikchains_solver, bpy.context) if kind == "label"]
        return next(t for t in texts if "solver" in t.lower())

    if numba_available():
        assert note() == "Compiled solver (numba)"
        chain.comfort_weight = 0.3  # the add-on's comfort pull is reach-first: compiled too
        assert note() == "Compiled solver (numba)"
    else:
        assert note() == "numpy solver (install numba for the compiled one)"
    with pytest.MonkeyPatch.context() as patch:  # read at every solve and every redraw
        patch.setenv("IK_CHAINS_NUMBA", "0")
        assert note() == "numpy solver: numba is disabled by IK_CHAINS_NUMBA=0"
    chain.solver = "TUTORIAL"
    assert note() == "Tutorial solver (numpy)"


def test_main_panel_shows_where_the_last_bake_plays_off_target() -> None:
    from blender_ik_addon.blender.status import BakeFindings, set_findings

    rig = straight_chain(3)
    bpy.context.view_layer.objects.active = rig
    add_chain(rig, "b2", 3, empty(location=(1.0, 1.5, 0.5)), name="arm")
    set_findings(rig.name, "arm", BakeFindings(1, 10, verified=10, played_misses=(4, 5, 6), played_worst=0.27,
                                               played_cause="target 'Target' plays 0.27 away"))
    labels = [text for kind, _, text in draw(panels.VIEW3D_PT_ikchains_main, bpy.context) if kind == "label"]
    assert ("Bake 1-10: plays back off target at frames 4-6 of 10 verified (worst 0.27): target 'Target' plays 0.27 "
            "away") in labels


def test_main_panel_says_when_keys_would_not_play() -> None:
    from blender_ik_addon.blender.keys import fcurve_collection

    rig = straight_chain(3)
    bpy.context.view_layer.objects.active = rig
    add_chain(rig, "b2", 3, empty(location=(1.0, 1.5, 0.5)), name="arm")
    rig.pose.bones["b1"].keyframe_insert("rotation_quaternion", frame=1)
    fcurve_collection(rig, create=False).find('pose.bones["b1"].rotation_quaternion', index=0).mute = True
    labels = [text for kind, _, text in draw(panels.VIEW3D_PT_ikchains_main, bpy.context) if kind == "label"]
    assert ('Keys would not play: F-curve pose.bones["b1"].rotation_quaternion[0] is muted, so keys written there '
            "would not play; unmute it") in labels


def test_a_chain_that_is_not_live_says_so_before_its_last_outcome() -> None:
    """A chain whose Live is off keeps its last status, but its bones may have moved since (a chain
    it shares bones with goes on solving them): the panel and the list row say it is off first."""
    rig = straight_chain(3)
    bpy.context.view_layer.objects.active = rig
    add_chain(rig, "b2", 3, empty(location=(1.0, 1.5, 0.5)), name="arm")
    bpy.context.scene.frame_set(2)
    chain = rig.ik_chains.chains["arm"]

    def labels() -> list[str]:
        return [text for kind, _, text in draw(panels.VIEW3D_PT_ikchains_main, bpy.context) if kind == "label"]

    def row() -> list[tuple[str, Any, str]]:
        log: list[tuple[str, Any, str]] = []
        panels.IKCHAINS_UL_chains.draw_item(None, bpy.context, LayoutRecorder(log), rig.ik_chains, chain, 0, None, "",
                                            0)
        return log

    assert any(text.startswith("Converged, residual") for text in labels())
    chain.enabled = False
    assert any(text.startswith("Live solving is off; last outcome: Converged, residual") for text in labels())
    assert ("label", None, "off") in row()
    assert panels.status_line(False, None) == "Live solving is off"
    assert panels.status_line(True, None) == "Not solved yet"
