"""3D Viewport > Sidebar > "IK Chains": the chain list and the active chain's settings.

``draw()`` only draws: statuses come from :mod:`..blender.status` (runtime, not ID data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from bpy.types import Context, Panel, UILayout, UIList

from ..blender.errors import RigSetupError
from ..blender.events import lock_interface_warning
from ..blender.outputs import playback_problems
from ..blender.read import chain_bone_names
from ..blender.spec import is_armature, spec_from_settings
from ..blender.status import ChainStatus, get_findings, get_status
from .properties import checked_active_chain, checked_rig_settings, get_rig_settings

if TYPE_CHECKING:
    # A literal type that exists only in the fake-bpy-module stubs. Never use such types in
    # class-level annotations: Blender evaluates those (typing.get_type_hints) when it registers a class.
    from bpy.stub_internal.rna_enums import IconItems

PanelFlag = Literal["DEFAULT_CLOSED", "HIDE_HEADER", "INSTANCED", "HEADER_LAYOUT_EXPAND"]  # Panel.bl_options items
CLOSED: set[PanelFlag] = {"DEFAULT_CLOSED"}


def _layout(panel: Panel) -> UILayout:
    """``panel.layout``: set while Blender draws the panel (the stubs also allow None)."""
    layout = panel.layout
    assert layout is not None, "draw() runs with a layout"
    return layout


def _status_icon(obj_name: str, chain_name: str, enabled: bool = True) -> IconItems:
    st = get_status(obj_name, chain_name)
    if st is None or not enabled:  # a chain that is not live: its last outcome may be stale
        return "BLANK1"
    if not st.solved:
        return "ERROR"
    return "CHECKMARK" if st.converged else "INFO"


class IKCHAINS_UL_chains(UIList):
    """One row per chain: name, live toggle, status icon."""

    def draw_item(self, context: Context | None, layout: UILayout, data: Any, item: Any, icon: int | None,
                  active_data: Any, active_property: str | None, index: int | None = 0, flt_flag: int | None = 0
                  ) -> None:
        row = layout.row(align=True)
        row.prop(item, "name", text="", emboss=False, icon="CON_KINEMATIC")
        st = get_status(item.id_data.name, item.name)
        short = "" if st is None else ("error" if not st.solved else f"{st.residual:.1e}")
        if not item.enabled:  # what moved its bones since (a chain sharing them, keys) is not in it
            short = "off"
        row.label(text=short, icon=_status_icon(item.id_data.name, item.name, item.enabled))
        row.prop(item, "enabled", text="", icon="PLAY" if item.enabled else "PAUSE", emboss=False)


class _SidebarPanel(Panel):  # a Panel (not a mixin) so these are typed as Panel declares them
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "IK Chains"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return get_rig_settings(context.object) is not None and context.mode in ("OBJECT", "POSE")


class _ChainPanel(_SidebarPanel):
    bl_parent_id = "VIEW3D_PT_ikchains_main"

    @classmethod
    def poll(cls, context: Any) -> bool:
        settings = get_rig_settings(context.object)
        return settings is not None and context.mode in ("OBJECT", "POSE") and settings.active_chain is not None


class VIEW3D_PT_ikchains_main(_SidebarPanel, Panel):
    """The chain list, with add/remove and the active chain's status."""

    bl_label = "IK Chains"

    def draw(self, context: Any) -> None:
        layout = _layout(self)
        obj = context.object
        settings = checked_rig_settings(obj)
        row = layout.row()
        row.template_list("IKCHAINS_UL_chains", "", settings, "chains", settings, "active_index", rows=3)
        column = row.column(align=True)
        column.operator("ikchains.chain_add", icon="ADD", text="")
        column.operator("ikchains.chain_remove", icon="REMOVE", text="")
        row = layout.row(align=True)  # Blender's own IK constraints, made into chains and given back
        row.operator("ikchains.adopt_constraints", icon="CON_KINEMATIC")
        row.operator("ikchains.restore_constraints", icon="LOOP_BACK", text="Restore")
        chain = settings.active_chain
        if chain is None:
            layout.label(text="Add a chain for the active bone", icon="INFO")
            return
        st = get_status(obj.name, chain.name)
        layout.label(text=status_line(chain.enabled, st), icon=_status_icon(obj.name, chain.name, chain.enabled))
        problem = _keys_would_not_play(obj, chain)
        if problem:  # said before a Bake or Key Current Frame is refused for it
            layout.label(text=f"Keys would not play: {problem}", icon="ERROR")
        findings = get_findings(obj.name, chain.name)
        if findings is not None:  # the keys of the last bake miss their target, or jump, there
            for note in (findings.playback_note(), findings.switch_note()):
                if note:
                    layout.label(text=f"Bake {findings.frame_start}-{findings.frame_end}: {note}", icon="ERROR")
        warning = lock_interface_warning(context.scene)
        if warning:  # UI renders run the handler on the render thread: the interface must be locked
            column = layout.column()
            column.label(text=warning, icon="ERROR")
            column.prop(context.scene.render, "use_lock_interface")


def status_line(enabled: bool, st: ChainStatus | None) -> str:
    """The main panel's status line. A chain that is not live says so first: its last outcome
    (a solve, a bake) is kept as it was then, though its bones may have moved since (a chain it
    shares bones with, keys)."""
    if enabled:
        return st.describe() if st is not None else "Not solved yet"
    return "Live solving is off" if st is None else f"Live solving is off; last outcome: {st.describe()}"


def _keys_would_not_play(obj: Any, chain: Any) -> str:
    """The first reason keys on the chain's rotation channels would not play ("" if they would, or
    if the chain cannot be read: its status says why)."""
    if obj.animation_data is None:
        return ""
    try:
        names = chain_bone_names(obj, chain.tip_bone, int(chain.chain_length))
    except RigSetupError:
        return ""
    problems = playback_problems(obj, [obj.pose.bones[name] for name in names])
    return problems[0] if problems else ""


class VIEW3D_PT_ikchains_chain(_ChainPanel, Panel):
    """Bones and targets."""

    bl_label = "Chain"

    def draw(self, context: Any) -> None:
        layout = _layout(self)
        layout.use_property_split = True
        obj = context.object
        chain = checked_active_chain(obj)
        layout.prop_search(chain, "tip_bone", obj.data, "bones", icon="BONE_DATA")
        layout.prop(chain, "chain_length")
        layout.prop(chain, "target")
        if is_armature(chain.target):  # a bone target, as Blender's IK constraint's subtarget
            layout.prop_search(chain, "target_bone", chain.target.data, "bones", icon="BONE_DATA")
            if chain.target_bone:
                layout.prop(chain, "target_head_tail")
        layout.operator("ikchains.create_target", icon="EMPTY_AXIS")
        layout.prop(chain, "pole")
        if is_armature(chain.pole):
            layout.prop_search(chain, "pole_bone", chain.pole.data, "bones", icon="BONE_DATA")
        if chain.pole is not None:
            layout.prop(chain, "pole_angle")
            layout.prop(chain, "pole_rule")
        layout.prop(chain, "use_stretch")
        layout.prop(chain, "weight", slider=True)  # counts where chains share bones (blender/groups.py)
        layout.prop(chain, "enabled")
        layout.prop(chain, "influence", slider=True)  # keyable (I over it): the IK/FK blend


class VIEW3D_PT_ikchains_solver(_ChainPanel, Panel):
    """Solver choice and its settings."""

    bl_label = "Solver"
    bl_options = CLOSED

    def draw(self, context: Any) -> None:
        layout = _layout(self)
        layout.use_property_split = True
        chain = checked_active_chain(context.object)
        layout.prop(chain, "follow_mode")
        if chain.follow_mode:
            layout.label(text="History-dependent: the pose depends on the frames played before", icon="INFO")
        column = layout.column()
        column.enabled = not chain.follow_mode
        column.prop(chain, "solver")
        column.prop(chain, "max_iterations")
        if chain.solver == "LM":
            column.prop(chain, "restarts")
        layout.prop(chain, "tolerance")
        if chain.solver == "TUTORIAL" or chain.follow_mode:
            layout.prop(chain, "learning_rate")
            layout.prop(chain, "sampling_distance")
        layout.prop(chain, "follow_orientation")
        row = layout.row()
        row.active = chain.follow_orientation
        row.prop(chain, "orientation_weight")
        row = layout.row()
        row.active = chain.pole is not None
        row.prop(chain, "pole_weight")
        layout.label(text=spec_from_settings(chain).backend_note(), icon="INFO")


class VIEW3D_PT_ikchains_comfort(_ChainPanel, Panel):
    """Comfort pose."""

    bl_label = "Comfort Pose"
    bl_options = CLOSED

    def draw(self, context: Any) -> None:
        layout = _layout(self)
        layout.use_property_split = True
        chain = checked_active_chain(context.object)
        row = layout.row(align=True)
        row.operator("ikchains.capture_comfort", icon="EYEDROPPER")
        row.operator("ikchains.clear_comfort", icon="X", text="")
        captured = len(chain.comfort_bones)
        layout.label(text=f"{captured} bone(s) captured" if captured else "None captured: the rest pose is used")
        layout.prop(chain, "comfort_weight")
        layout.prop(chain, "comfort_blend")


class VIEW3D_PT_ikchains_keying(_ChainPanel, Panel):
    """Key and bake."""

    bl_label = "Keying"

    def draw(self, context: Any) -> None:
        layout = _layout(self)
        row = layout.row(align=True)
        row.operator("ikchains.key_frame", icon="KEY_HLT")
        row.operator("ikchains.bake", icon="RENDER_ANIMATION")


classes = (
    IKCHAINS_UL_chains,
    VIEW3D_PT_ikchains_main,
    VIEW3D_PT_ikchains_chain,
    VIEW3D_PT_ikchains_solver,
    VIEW3D_PT_ikchains_comfort,
    VIEW3D_PT_ikchains_keying,
)
