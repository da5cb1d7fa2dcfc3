"""Operators: thin wrappers over :mod:`..blender` that turn outcomes into reports.

Every operator polls for an armature (with a poll message), is undoable, and catches only
:class:`IKError` (setup problems, reported as errors); anything else is a bug and propagates.
That is written once, in the unregistered bases :class:`_RigOperator` and :class:`_ChainOperator`
(which also asks for an active chain); an operator's body is its ``run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty
from bpy.types import Operator
from mathutils import Matrix

from ..blender import adopt, bake, read, status
from ..blender.settings import remove_chain, unique_name
from ..core import IKError
from .properties import IKCHAINS_PG_chain, checked_active_chain, checked_rig_settings

if TYPE_CHECKING:
    # Literal types that exist only in the fake-bpy-module stubs. Never use them in class-level
    # annotations: Blender evaluates those (typing.get_type_hints) when it registers a class.
    from bpy.stub_internal.rna_enums import OperatorReturnItems, OperatorTypeFlagItems

UNDOABLE: set[OperatorTypeFlagItems] = {"REGISTER", "UNDO"}  # read once by Blender when the class registers
CHAIN_CHOICE = (
    ("ACTIVE", "Active Chain", "Only the chain selected in the list"),
    ("ALL", "All Chains", "Every chain of the armature"),
)


def _chosen(obj: Any, which: str) -> list[str]:
    if which == "ACTIVE":
        return [checked_active_chain(obj).name]
    return [c.name for c in checked_rig_settings(obj).chains]



class _RigOperator(Operator):
    """Base of the operators (never registered itself): polls for an editable armature, is undoable,
    and runs :meth:`run`, turning an :class:`IKError` into an error report and ``CANCELLED``."""

    bl_options = UNDOABLE

    @classmethod
    def poll(cls, context: Any) -> bool:
        obj = context.object
        if obj is None or obj.type != "ARMATURE":
            cls.poll_message_set("Active object is not an armature")
            return False
        if obj.library is not None:  # edits to linked data are lost on save
            cls.poll_message_set("Active armature is linked from a library (read-only); make a library override")
            return False
        if context.mode not in ("OBJECT", "POSE"):
            cls.poll_message_set("Switch to Object or Pose mode")
            return False
        return True

    def execute(self, context: Any) -> set[OperatorReturnItems]:
        try:
            return self.run(context)
        except IKError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}

    def run(self, context: Any) -> set[OperatorReturnItems]:
        """The operator's body; an :class:`IKError` it raises is reported by :meth:`execute`."""
        raise NotImplementedError


class _ChainOperator(_RigOperator):
    """Base of the operators that work on the active chain: the poll also asks for one."""

    @classmethod
    def poll(cls, context: Any) -> bool:
        if not super().poll(context):
            return False
        if checked_rig_settings(context.object).active_chain is None:
            cls.poll_message_set("Add a chain first")
            return False
        return True


class IKCHAINS_OT_chain_add(_RigOperator):
    """Add an IK chain ending at the active bone"""

    bl_idname = "ikchains.chain_add"
    bl_label = "Add IK Chain"

    def run(self, context: Any) -> set[OperatorReturnItems]:
        obj = context.object
        settings = checked_rig_settings(obj)
        bone = context.active_pose_bone or (obj.data.bones.active and obj.pose.bones.get(obj.data.bones.active.name))
        chain = settings.chains.add()
        chain.name = unique_name({c.name for c in settings.chains[:-1]}, bone.name if bone else "Chain")
        if bone is not None:
            chain.tip_bone = bone.name
        settings.active_index = len(settings.chains) - 1
        return {"FINISHED"}


class IKCHAINS_OT_chain_remove(_ChainOperator):
    """Remove the active IK chain (its keys stay)"""

    bl_idname = "ikchains.chain_remove"
    bl_label = "Remove IK Chain"

    def run(self, context: Any) -> set[OperatorReturnItems]:
        obj = context.object
        settings = checked_rig_settings(obj)
        name = checked_active_chain(obj).name
        if checked_active_chain(obj).adopted_constraint:  # give Blender's IK back rather than leave it muted
            restored = adopt.restore_constraints(obj, [name])
            if name not in restored.kept:
                self.report({"INFO"}, restored.summary())
                return {"FINISHED"}
            self.report({"WARNING"}, f"chain {name!r} removed, but {restored.kept[name].split(', so')[0]}: "
                                     "its IK constraint stays as it is")
        status.clear_status(obj.name, name)
        remove_chain(obj, settings.chains.find(name))
        return {"FINISHED"}


def _capture(obj: Any, chain: IKCHAINS_PG_chain) -> int:
    """Store the chain bones' current rotations as its comfort pose; returns the bone count."""
    names = read.chain_bone_names(obj, chain.tip_bone, chain.chain_length)
    chain.comfort_bones.clear()
    for name in names:
        item = chain.comfort_bones.add()
        item.name = name
        item.rotation = read.rotation_quaternion(obj.pose.bones[name])
    return len(names)


class IKCHAINS_OT_create_target(_ChainOperator):
    """Add an Empty at the chain's tip, oriented like the tip bone, and use it as the target. Without a
    comfort pose yet, the current pose becomes it, so the chain does not jump to another solution"""

    bl_idname = "ikchains.create_target"
    bl_label = "Create Target at Tip"

    def run(self, context: Any) -> set[OperatorReturnItems]:
        obj = context.object
        chain = checked_active_chain(obj)
        read.chain_bone_names(obj, chain.tip_bone, chain.chain_length)  # a setup error before the Empty exists
        obj_eval = obj.evaluated_get(context.evaluated_depsgraph_get())
        tip = obj_eval.pose.bones[chain.tip_bone]
        matrix = obj_eval.matrix_world @ tip.matrix
        empty = bpy.data.objects.new(f"{chain.name}_target", None)
        empty.empty_display_type = "SPHERE"
        empty.empty_display_size = max(tip.bone.length * 0.25, 0.01)
        location = obj_eval.matrix_world @ tip.tail
        rotation = matrix.to_quaternion()
        empty.matrix_world = Matrix.LocRotScale(location, rotation, None)
        collection = obj.users_collection[0] if obj.users_collection else context.scene.collection
        collection.objects.link(empty)
        note = ""
        if not chain.comfort_bones:
            note = f"; captured the current pose of {_capture(obj, chain)} bone(s) as the comfort pose"
        chain.target = empty
        self.report({"INFO"}, f"Created target {empty.name!r} at the tip of {chain.tip_bone!r}{note}")
        return {"FINISHED"}


class IKCHAINS_OT_capture_comfort(_ChainOperator):
    """Store the chain's current pose as its comfort pose"""

    bl_idname = "ikchains.capture_comfort"
    bl_label = "Capture from Current Pose"

    def run(self, context: Any) -> set[OperatorReturnItems]:
        obj = context.object
        chain = checked_active_chain(obj)
        count = _capture(obj, chain)
        self.report({"INFO"}, f"Captured the comfort pose of {count} bone(s)")
        return {"FINISHED"}


class IKCHAINS_OT_clear_comfort(_ChainOperator):
    """Forget the comfort pose (the rest pose is used instead)"""

    bl_idname = "ikchains.clear_comfort"
    bl_label = "Clear Comfort Pose"

    def run(self, context: Any) -> set[OperatorReturnItems]:
        checked_active_chain(context.object).comfort_bones.clear()
        return {"FINISHED"}


class IKCHAINS_OT_key_frame(_ChainOperator):
    """Solve the chain(s) at the current frame and key their rotations"""

    bl_idname = "ikchains.key_frame"
    bl_label = "Key Current Frame"

    chains: EnumProperty(items=CHAIN_CHOICE, name="Chains", default="ACTIVE")  # type: ignore[valid-type]

    def run(self, context: Any) -> set[OperatorReturnItems]:
        obj = context.object
        statuses = bake.key_chains(obj, _chosen(obj, self.chains), scene=context.scene)
        failed = {name: st for name, st in statuses.items() if not st.solved}
        for name, st in failed.items():  # most messages name their chain already
            named = st.message.startswith(f"chain {name!r}")
            self.report({"ERROR"}, st.message if named else f"chain {name!r}: {st.message}")
        keyed = len(statuses) - len(failed)
        if keyed == 0:
            return {"CANCELLED"}
        short = [n for n, st in statuses.items() if st.solved and not st.converged]
        note = f" ({len(short)} did not reach the target)" if short else ""
        frame = context.scene.frame_current
        self.report({"WARNING" if short else "INFO"}, f"Keyed {keyed} chain(s) at frame {frame}{note}")
        return {"FINISHED"}


class IKCHAINS_OT_bake(_ChainOperator):
    """Solve the chain(s) over a frame range and write rotation keys (replacing keys inside the range)"""

    bl_idname = "ikchains.bake"
    bl_label = "Bake Range"

    frame_start: IntProperty(name="Start Frame", default=1, min=-1048574, max=1048574)  # type: ignore[valid-type]
    frame_end: IntProperty(name="End Frame", default=250, min=-1048574, max=1048574)  # type: ignore[valid-type]
    step: IntProperty(name="Frame Step", default=1, min=1, max=1000)  # type: ignore[valid-type]
    chains: EnumProperty(items=CHAIN_CHOICE, name="Chains", default="ACTIVE")  # type: ignore[valid-type]
    disable_live: BoolProperty(  # type: ignore[valid-type]
        name="Turn Live Solving Off", default=False,
        description="Disable live solving of the baked chains so the keys play as they are")
    continuous: BoolProperty(  # type: ignore[valid-type]
        name="Continuous", default=False,
        description="Solve the frames in order, each from the previous frame's pose, so the motion stays continuous "
                    "where the nearest pose would switch to another solution (the first frame is solved as "
                    "usual). A range split into chunks can then differ after a chunk boundary")

    def invoke(self, context: Any, event: Any) -> set[OperatorReturnItems]:
        self.frame_start, self.frame_end = context.scene.frame_start, context.scene.frame_end
        result: set[OperatorReturnItems] = context.window_manager.invoke_props_dialog(self)
        return result

    def run(self, context: Any) -> set[OperatorReturnItems]:
        obj = context.object
        wm = context.window_manager
        total = max(self.frame_end - self.frame_start + 1, 1)
        if wm is not None:
            wm.progress_begin(0, total)
        try:
            report = bake.bake_chains(
                obj, _chosen(obj, self.chains), self.frame_start, self.frame_end, self.step,
                disable_live=self.disable_live, continuous=self.continuous, scene=context.scene,
                progress=(lambda fraction: wm.progress_update(int(fraction * total))) if wm is not None else None)
        finally:
            if wm is not None:
                wm.progress_end()
        self.report({"WARNING" if report.not_converged or report.switches else "INFO"}, report.summary())
        return {"FINISHED"}


class IKCHAINS_OT_adopt_constraints(_RigOperator):
    """Make a chain from each of the armature's Blender IK constraints that is on, carrying its settings over, and
    mute those constraints (Restore IK Constraints gives them back). What cannot be carried is reported"""

    bl_idname = "ikchains.adopt_constraints"
    bl_label = "Adopt IK Constraints"

    def run(self, context: Any) -> set[OperatorReturnItems]:
        report = adopt.adopt_constraints(context.object)
        if not report.adopted and not report.refused:
            note = f" ({len(report.skipped)} muted one(s) left alone)" if report.skipped else ""
            self.report({"WARNING"}, f"No IK constraint to adopt on {context.object.name!r}{note}")
            return {"CANCELLED"}
        level: set[Any] = {"WARNING"} if report.refused or report.not_carried else {"INFO"}
        for line in report.lines()[1:]:
            self.report(level if ": chain " not in line else {"INFO"}, line)
        self.report(level, report.summary())  # last: the status bar shows it
        return {"FINISHED"} if report.adopted else {"CANCELLED"}


class IKCHAINS_OT_restore_constraints(_RigOperator):
    """Turn the adopted Blender IK constraints back on, put their bones' rotations back as they were, and remove the
    chains adopted from them (keys they baked stay)"""

    bl_idname = "ikchains.restore_constraints"
    bl_label = "Restore IK Constraints"

    def run(self, context: Any) -> set[OperatorReturnItems]:
        if not any(c.adopted_constraint for c in checked_rig_settings(context.object).chains):
            self.report({"WARNING"}, f"No chain of {context.object.name!r} was adopted from an IK constraint")
            return {"CANCELLED"}
        report = adopt.restore_constraints(context.object)
        for line in report.lines()[1:]:
            self.report({"WARNING"}, line)
        self.report({"WARNING"} if report.kept else {"INFO"}, report.summary())
        return {"FINISHED"} if report.restored else {"CANCELLED"}


classes = (
    IKCHAINS_OT_chain_add,
    IKCHAINS_OT_chain_remove,
    IKCHAINS_OT_create_target,
    IKCHAINS_OT_capture_comfort,
    IKCHAINS_OT_clear_comfort,
    IKCHAINS_OT_key_frame,
    IKCHAINS_OT_bake,
    IKCHAINS_OT_adopt_constraints,
    IKCHAINS_OT_restore_constraints,
)
