"""Bakes as motion: frames where the pose switches solutions are named, and "Continuous" avoids them.

The rig is a planar two-bone limb: a shoulder turning about Z and an elbow hinge about Z limited to
-150..150 degrees, no pole. The target glides on a straight line in front of the shoulder, crossing
the rest direction (+Y) halfway. The pose nearest the rest pose bends the elbow toward the side the
target is on, so when the target crosses +Y the nearest pose switches to the mirror solution (the
elbow flips by about 200 degrees in one frame): a genuine switch, where both solutions are equally
near. A continuous bake keeps the elbow on its side.
"""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np
import pytest
from blender_rigs import BoneDef, add_chain, empty, limit_rotation, make_armature
from fault_helpers import run_operator
from test_panels import draw

from blender_ik_addon.blender import bake_chains
from blender_ik_addon.blender.keys import iter_fcurves
from blender_ik_addon.blender.status import get_findings, get_status
from blender_ik_addon.ui import panels

FRAMES = (1, 120)
CROSSING = 61  # the first frame with the target right of +Y (x = 0 at frame 60.5)
REMEDY = "add a pole or a comfort pose, or bake with Continuous"
BONES = ("upper", "fore")


def limb() -> bpy.types.Object:
    """The two-bone planar limb (see the module docstring), active."""
    rig = make_armature([BoneDef("upper", (0, 0, 0), (0, 1, 0)),
                         BoneDef("fore", (0, 1, 0), (0, 2, 0), parent="upper", connect=True)])
    for name in BONES:
        pbone = rig.pose.bones[name]
        pbone.rotation_mode = "XYZ"
        pbone.lock_rotation = (True, True, False)
    limit_rotation(rig, "fore", z=(-150, 150))
    bpy.context.view_layer.objects.active = rig
    return rig


def keyed_line(keys: dict[int, tuple[float, float, float]], interpolation: str = "LINEAR") -> bpy.types.Object:
    """An Empty "Target" keyed at ``keys`` with the given interpolation."""
    target = empty("Target")
    for frame, location in keys.items():
        target.location = location
        target.keyframe_insert("location", frame=frame)
    for fcurve in iter_fcurves(target):
        for key in fcurve.keyframe_points:
            key.interpolation = interpolation
    return target


def gliding_target() -> bpy.types.Object:
    """Glides at constant speed from x = -0.6 to 0.6 at y = 1.2 over frames 1-120."""
    return keyed_line({FRAMES[0]: (-0.6, 1.2, 0.0), FRAMES[1]: (0.6, 1.2, 0.0)})


def limb_with_chain(target: bpy.types.Object) -> bpy.types.Object:
    rig = limb()
    add_chain(rig, "fore", 2, target, name="arm", enabled=False)
    return rig


def z_keys(rig: bpy.types.Object, bone: str) -> np.ndarray:
    """``(K, 2)`` (frame, value) keys of a bone's Z rotation."""
    curves = {(fc.data_path, fc.array_index): fc for fc in iter_fcurves(rig)}
    points = curves[(f'pose.bones["{bone}"].rotation_euler', 2)].keyframe_points
    co = np.empty(2 * len(points), dtype=np.float32)
    points.foreach_get("co", co)
    return co.reshape(-1, 2).astype(np.float64)


def keyed_angles(rig: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """``(frames (K,), angles (K, 2))``: the baked Z rotation keys of the two bones."""
    upper, fore = (z_keys(rig, bone) for bone in BONES)
    np.testing.assert_array_equal(upper[:, 0], fore[:, 0])
    return upper[:, 0], np.stack([upper[:, 1], fore[:, 1]], axis=1)


def panel_labels(context: Any) -> list[str]:
    """The text of every label the main panel draws (the chain's status lines)."""
    return [text for kind, _data, text in draw(panels.VIEW3D_PT_ikchains_main, context) if kind == "label"]


def test_a_switch_on_a_smooth_path_is_named_in_the_report_and_the_status_line(capfd: pytest.CaptureFixture[str]
                                                                               ) -> None:
    limb_with_chain(gliding_target())
    outcome = run_operator(capfd, bpy.ops.ikchains.bake, "EXEC_DEFAULT", frame_start=1, frame_end=120,
                           chains="ALL")
    expected = f"pose switches at frame {CROSSING}: {REMEDY}"
    assert outcome.result == {"FINISHED"} and outcome.level == "WARNING", outcome
    assert outcome.report == f"120 frames solved, 0 not converged (worst residual {_worst(outcome.report)}); " \
                             f"chain 'arm': {expected}"
    rig = bpy.data.objects["Rig"]
    frames, angles = keyed_angles(rig)
    np.testing.assert_array_equal(frames, np.arange(1, 121))
    elbow_flip = abs(angles[CROSSING - 1, 1] - angles[CROSSING - 2, 1])
    assert elbow_flip > np.radians(150), "the nearest pose must really switch there"
    assert get_status("Rig", "arm").describe().endswith("; baked 1-120")
    assert f"Bake 1-120: {expected}" in panel_labels(bpy.context)


def _worst(report: str) -> str:
    return report.split("worst residual ", 1)[1].split(")", 1)[0]


def test_a_cut_in_the_target_path_is_not_a_switch() -> None:
    """The target glides over frames 1-60, jumps back to where it started and glides again (a cycle
    cut): the pose jumps with it, which is no switch to report."""
    target = keyed_line({1: (-0.9, 1.2, 0.0), 60: (-0.3, 1.2, 0.0), 61: (-0.9, 1.2, 0.0), 120: (-0.3, 1.2, 0.0)})
    rig = limb_with_chain(target)
    report = bake_chains(rig, None, *FRAMES)
    _frames, angles = keyed_angles(rig)
    assert np.max(np.abs(angles[60] - angles[59])) > 0.3  # radians: the pose jumps with the target
    assert report.chains[0].findings is not None and report.chains[0].findings.switches == ()
    assert "switch" not in report.summary() and report.notes() == []
    assert not any("switch" in text for text in panel_labels(bpy.context))


def test_continuous_keys_every_frame_and_steps_with_the_target(capfd: pytest.CaptureFixture[str]) -> None:
    limb_with_chain(gliding_target())
    nearest = bake_chains(bpy.data.objects["Rig"], None, *FRAMES)
    _frames, nearest_angles = keyed_angles(bpy.data.objects["Rig"])
    outcome = run_operator(capfd, bpy.ops.ikchains.bake, "EXEC_DEFAULT", frame_start=1, frame_end=120,
                           chains="ALL", continuous=True)
    assert nearest.chains[0].findings is not None and nearest.chains[0].findings.switches == (CROSSING,)
    assert outcome.result == {"FINISHED"} and outcome.level == "INFO", outcome
    assert "switch" not in outcome.report.split("chunk boundaries")[0]  # the continuous keys do not jump
    assert (f"chunk boundaries: a chunk solves its first frame as nearest, and this bake leaves the nearest pose "
            f"from frame {CROSSING} (the nearest pose switches at frame {CROSSING}): split chunks only at frames "
            f"before {CROSSING}, or bake the range in one job") in outcome.report
    rig = bpy.data.objects["Rig"]
    frames, angles = keyed_angles(rig)
    np.testing.assert_array_equal(frames, np.arange(1, 121))
    # Joint steps are bounded by a small multiple of the target's motion (0.01 units a frame).
    glide = 1.2 / 119
    steps = np.max(np.abs(np.diff(angles, axis=0)), axis=1)
    assert steps.max() < 2.0 * glide, (steps.max(), glide)  # radians per frame, chain 2 units long
    assert steps.max() < 3.0 * np.median(steps)
    # The first frame is solved as nearest; up to the crossing both bakes agree.
    np.testing.assert_allclose(angles[:CROSSING - 1], nearest_angles[:CROSSING - 1], atol=1e-3)
    np.testing.assert_allclose(angles[0], nearest_angles[0], atol=1e-6)
    findings = get_findings("Rig", "arm")
    assert findings is not None and findings.continuous and findings.switches == ()
    assert get_status("Rig", "arm").describe().endswith("; baked 1-120 (continuous)")
    assert not any("switch" in text for text in panel_labels(bpy.context))


def test_continuous_bakes_are_deterministic_and_solved_in_frame_order() -> None:
    rig = limb_with_chain(gliding_target())
    bake_chains(rig, None, *FRAMES, continuous=True)
    first = keyed_angles(rig)[1]
    bake_chains(rig, None, *FRAMES, continuous=True)
    np.testing.assert_array_equal(keyed_angles(rig)[1], first)
    # With a step the keyed frames are still solved in order, from the range's first frame.
    bake_chains(rig, None, *FRAMES, 7, continuous=True)
    frames, stepped = keyed_angles(rig)
    np.testing.assert_array_equal(frames, np.arange(1, 121, 7))
    assert np.max(np.abs(np.diff(stepped, axis=0))) < 2.0 * 7 * 1.2 / 119
    np.testing.assert_allclose(stepped[0], first[0], atol=1e-9)


def test_continuous_bake_operator_is_undoable() -> None:
    rig = limb_with_chain(gliding_target())
    rig.ik_chains.chains["arm"].enabled = True
    rig.pose.bones["upper"].keyframe_insert("rotation_euler", frame=200)
    bpy.ops.ed.undo_push(message="before bake")
    result = bpy.ops.ikchains.bake("EXEC_DEFAULT", True, frame_start=1, frame_end=120, chains="ALL",
                                   disable_live=True, continuous=True)
    assert result == {"FINISHED"}
    rig = bpy.data.objects["Rig"]
    assert z_keys(rig, "upper")[:, 0].tolist() == [*range(1, 121), 200]
    assert not rig.ik_chains.chains["arm"].enabled
    bpy.ops.ed.undo()
    rig = bpy.data.objects["Rig"]  # references do not survive undo
    assert z_keys(rig, "upper")[:, 0].tolist() == [200.0]
    assert 'pose.bones["fore"].rotation_euler' not in {fc.data_path for fc in iter_fcurves(rig)}
    assert rig.ik_chains.chains["arm"].enabled


def test_the_switch_remedy_suggests_what_the_chain_does_not_have_yet() -> None:
    from blender_ik_addon.blender.status import BakeFindings

    def note(**kw: bool) -> str:
        return BakeFindings(1, 10, switches=(4,), **kw).switch_note()

    assert note() == f"pose switches at frame 4: {REMEDY}"
    assert note(has_pole=True) == "pose switches at frame 4: add a comfort pose, or bake with Continuous"
    assert note(has_comfort=True) == "pose switches at frame 4: add a pole, or bake with Continuous"
    assert note(has_pole=True, has_comfort=True) == ("pose switches at frame 4: move the pole or the comfort pose, "
                                                     "or bake with Continuous")
    assert note(has_pole=True, continuous=True) == "pose switches at frame 4: add a comfort pose"
