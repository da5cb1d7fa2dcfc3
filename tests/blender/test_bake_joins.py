"""Baked keys join the keys kept next to the range, at both ends, whatever the current frame.

The rig turns a lot: the chain's root yaws from 5° to 305° over frames 0-30, so the rotation at one
end of the range is more than half a turn from the other. A run of keys made continuous from the
wrong place (the pose at the current frame) then starts with the other quaternion sign, or a whole
Euler turn away, from the kept key next to it: the curve between them swings through a 360° detour.
"""

from __future__ import annotations

import math

import bpy
import numpy as np
import pytest
from blender_rigs import add_chain, empty, limit_rotation, straight_chain, world_tail

from blender_ik_addon.blender import bake_chains
from blender_ik_addon.blender.keys import iter_fcurves

KEPT = (0, 30)  # the frames keyed before the bake
START, END = 1, 20  # the range baked again
MODES = ["QUATERNION", "XYZ", "XYZ_SOLVED_IN_ZYX", "AXIS_ANGLE"]


def target_location(frame: float) -> tuple[float, float, float]:
    """A circle around the rig's root: 5° + 10° per frame (never straight behind on a whole frame)."""
    theta = math.radians(5 + 10 * frame)
    return (-1.6 * math.sin(theta), 1.6 * math.cos(theta), 0.8)  # reachable: the second bone pitches 36.9°


def turning_rig(mode: str) -> bpy.types.Object:
    """Two bones in ``mode``: the root only yaws (Z), the second only pitches (X); one pose per target.

    The target is keyed on every frame 0-30; the chain was baked over 0-30 and only the keys at 0
    and 30 were kept (what an animator has before re-baking part of a shot).
    """
    rig = straight_chain(2)
    pose = rig.pose.bones
    for name in ("b0", "b1"):
        pose[name].rotation_mode = "XYZ" if mode == "XYZ_SOLVED_IN_ZYX" else mode
        if mode == "XYZ_SOLVED_IN_ZYX":
            limit_rotation(rig, name, order="ZYX")  # the solver's order differs from the bone's; limits nothing
    pose["b0"].lock_ik_x = pose["b0"].lock_ik_y = True
    pose["b1"].lock_ik_y = pose["b1"].lock_ik_z = True
    target = empty()
    for frame in range(KEPT[0], KEPT[1] + 1):
        target.location = target_location(frame)
        target.keyframe_insert("location", frame=frame)
    add_chain(rig, "b1", 2, target, name="arm", enabled=False)
    bpy.context.scene.frame_set(0)
    bake_chains(rig, None, KEPT[0], KEPT[1])
    for fcurve in rotation_curves(rig):
        points = fcurve.keyframe_points
        for i in reversed(range(len(points))):
            if round(points[i].co[0]) not in KEPT:
                points.remove(points[i])
    return rig


def rotation_curves(rig: bpy.types.Object) -> list[bpy.types.FCurve]:
    return [fc for fc in iter_fcurves(rig) if ".rotation_" in fc.data_path]


def channel_keys(rig: bpy.types.Object, bone: str) -> dict[int, np.ndarray]:
    """Frame -> the bone's rotation channel values keyed there (every index keyed on the same frames)."""
    curves = sorted((fc for fc in rotation_curves(rig) if f'["{bone}"]' in fc.data_path), key=lambda fc: fc.array_index)
    table: dict[int, list[float]] = {}
    for fcurve in curves:
        for point in fcurve.keyframe_points:
            table.setdefault(round(point.co[0]), []).append(point.co[1])
    assert all(len(values) == len(curves) for values in table.values())
    return {frame: np.array(values) for frame, values in table.items()}


def key_table(rig: bpy.types.Object) -> dict[tuple[str, int], np.ndarray]:
    """(data path, index) -> (k, 2) keyframe (frame, value) pairs of the rotation curves."""
    out = {}
    for fcurve in rotation_curves(rig):
        co = np.empty(2 * len(fcurve.keyframe_points), dtype=np.float32)
        fcurve.keyframe_points.foreach_get("co", co)
        out[(fcurve.data_path, fcurve.array_index)] = co.reshape(-1, 2)
    return out


def bake_at(rig: bpy.types.Object, current: int) -> None:
    bpy.context.scene.frame_set(current)
    bake_chains(rig, None, START, END)


def assert_joined(mode: str, kept: np.ndarray, new: np.ndarray, where: str) -> None:
    """The curve from ``kept`` to ``new`` takes the short way: no sign flip, no whole turn."""
    if mode == "QUATERNION":
        assert float(kept @ new) > 0, f"{where}: quaternion sign flips (dot {kept @ new:.3f})"
    elif mode == "AXIS_ANGLE":
        assert abs(new[0] - kept[0]) < math.pi, f"{where}: angle jumps {math.degrees(new[0] - kept[0]):.0f}°"
        assert float(kept[1:] @ new[1:]) > 0, f"{where}: axis flips"
    else:
        jumps = np.abs(new - kept)
        assert (jumps < math.pi).all(), f"{where}: Euler jumps {np.degrees(jumps).round()}°"


def assert_tip_reaches(rig: bpy.types.Object) -> None:
    """The keys alone (add-on off) put the tip on the target: each key is the solved rotation."""
    for chain in rig.ik_chains.chains:
        chain.enabled = False
    for frame in range(START, END + 1):
        bpy.context.scene.frame_set(frame)
        np.testing.assert_allclose(world_tail(rig, "b1"), target_location(frame), atol=2e-4, err_msg=f"frame {frame}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("current", [50, 10, -10])
def test_new_keys_join_the_kept_keys_at_both_ends(mode: str, current: int) -> None:
    rig = turning_rig(mode)
    old = {bone: channel_keys(rig, bone) for bone in ("b0", "b1")}

    bake_at(rig, current)

    for bone in ("b0", "b1"):
        keys = channel_keys(rig, bone)
        assert sorted(keys) == [KEPT[0], *range(START, END + 1), KEPT[1]]
        for frame in KEPT:  # kept keys: same frame, same value
            np.testing.assert_array_equal(keys[frame], old[bone][frame])
        assert_joined(mode, keys[KEPT[0]], keys[START], f"{bone} frames {KEPT[0]}-{START}")
        assert_joined(mode, keys[END], keys[KEPT[1]], f"{bone} frames {END}-{KEPT[1]}")
        for frame in range(START, END):  # and continuous inside the run
            assert_joined(mode, keys[frame], keys[frame + 1], f"{bone} frames {frame}-{frame + 1}")
    assert_tip_reaches(rig)


@pytest.mark.parametrize("mode", ["QUATERNION", "XYZ"])
def test_current_frame_inside_or_outside_the_range_gives_the_same_keys(mode: str) -> None:
    tables = []
    for current in (50, 10, -10, START, END):
        bpy.ops.wm.read_homefile(use_empty=True)
        rig = turning_rig(mode)
        bake_at(rig, current)
        tables.append(key_table(rig))
    for table in tables[1:]:
        assert table.keys() == tables[0].keys()
        for key, keys in table.items():
            np.testing.assert_array_equal(keys, tables[0][key], err_msg=str(key))


@pytest.mark.parametrize("mode", MODES)
def test_without_a_kept_key_before_the_last_new_key_joins_the_one_after(mode: str) -> None:
    rig = turning_rig(mode)
    for fcurve in rotation_curves(rig):
        fcurve.keyframe_points.remove(fcurve.keyframe_points[0])  # only the key at 30 is left
    kept = {bone: channel_keys(rig, bone)[KEPT[1]] for bone in ("b0", "b1")}

    bake_at(rig, -10)  # the pose there is the key at 30, held: far from the range's first frame

    for bone in ("b0", "b1"):
        keys = channel_keys(rig, bone)
        assert sorted(keys) == [*range(START, END + 1), KEPT[1]]
        np.testing.assert_array_equal(keys[KEPT[1]], kept[bone])
        assert_joined(mode, keys[END], keys[KEPT[1]], f"{bone} frames {END}-{KEPT[1]}")
    assert_tip_reaches(rig)


def test_when_the_kept_keys_disagree_the_start_wins() -> None:
    rig = turning_rig("QUATERNION")
    for fcurve in rotation_curves(rig):
        point = fcurve.keyframe_points[-1]
        point.co[1] = -point.co[1]  # the key at 30: the same rotation, the other sign
    flipped = channel_keys(rig, "b0")[KEPT[1]]

    bake_at(rig, 50)

    keys = channel_keys(rig, "b0")
    assert_joined("QUATERNION", keys[KEPT[0]], keys[START], "start")
    assert float(keys[END] @ keys[KEPT[1]]) < 0  # one sign cannot join both: the kept key is not rewritten
    np.testing.assert_array_equal(keys[KEPT[1]], flipped)


def test_without_kept_keys_the_run_continues_from_the_pose() -> None:
    rig = turning_rig("QUATERNION")
    for fcurve in rotation_curves(rig):
        fcurve.keyframe_points.clear()
    pose = rig.pose.bones["b0"]
    pose.rotation_quaternion = [-v for v in pose.rotation_quaternion]  # the pose at the current frame, negated
    reference = np.array(pose.rotation_quaternion)

    bake_chains(rig, None, START, END)

    keys = channel_keys(rig, "b0")
    assert sorted(keys) == list(range(START, END + 1))
    assert float(reference @ keys[START]) > 0
