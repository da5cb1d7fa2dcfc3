"""Issue 10's set-ups, measured as an animator meets them: what the add-on reports, and what plays.

    .venv/bin/python scripts/bench/playback_cases.py [--repo PATH]

Each case builds a small rig through bpy (as the UI would), bakes or keys it (or plays it live) with
the add-on found at ``--repo`` (default: this checkout; point it at a ``git worktree`` of an older
commit to compare), then plays the frames back itself with every chain off and measures the
evaluated tip against the target. It prints one Markdown row per case: the case, what the add-on
said (its report, status or refusal) and the worst played-back distance in world units. A refused
case writes nothing, so its "played" column is the untouched pose's distance.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BONES = ("b0", "b1", "b2")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose add-on is measured")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.repo))
    import blender_ik_addon

    blender_ik_addon.register()
    print("| set-up | the add-on says | played back, worst tip distance |")
    print("|---|---|---|")
    for name, case in CASES:
        said, worst = case()
        print(f"| {name} | {said} | {worst:.3g} |")
    sys.stdout.flush()
    os._exit(0)  # the 4.x bpy modules may crash at exit once an add-on was registered


# -- building blocks ------------------------------------------------------------------------------


def _bpy() -> Any:
    import bpy

    return bpy


def _empty(name: str, location: Sequence[float] = (0.0, 0.0, 0.0)) -> Any:
    bpy = _bpy()
    obj = bpy.data.objects.new(name, None)
    obj.location = location
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _armature(name: str, bones: Sequence[tuple[str, Sequence[float], Sequence[float], str | None]]) -> Any:
    """Bones ``(name, head, tail, parent)``; a child whose head is its parent's tail is connected."""
    bpy = _bpy()
    obj = bpy.data.objects.new(name, bpy.data.armatures.new(name))
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    edit = obj.data.edit_bones
    for bone, head, tail, parent in bones:
        made = edit.new(bone)
        made.head, made.tail = head, tail
        if parent is not None:
            made.parent = edit[parent]
            made.use_connect = tuple(edit[parent].tail) == tuple(head)
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def _chain(rig: Any, tip: str, length: int, target: Any, name: str) -> None:
    chain = rig.ik_chains.chains.add()
    chain.name, chain.enabled, chain.tip_bone, chain.chain_length = name, False, tip, length
    chain.target = target
    chain.enabled = True


def _arm_rig(frames: tuple[int, int]) -> tuple[Any, Any]:
    """A 3-bone chain along +Y and a target gliding within its reach between ``frames``."""
    bpy = _bpy()
    bpy.ops.wm.read_homefile(use_empty=True)
    target = _empty("Target")
    for frame, location in zip(frames, ((1.2, 1.6, 0.5), (-0.8, 2.0, 1.0)), strict=True):
        target.location = location
        target.keyframe_insert("location", frame=frame)
    rig = _armature("Rig", [(f"b{i}", (0, i, 0), (0, i + 1, 0), f"b{i - 1}" if i else None) for i in range(3)])
    _chain(rig, "b2", 3, target, "arm")
    return rig, target


def _played(rig: Any, target: Any, frames: Sequence[int], tip: str = "b2") -> float:
    """The worst distance from the evaluated tip to the target, every chain off (the keys alone)."""
    import numpy as np

    bpy = _bpy()
    for chain in rig.ik_chains.chains:
        chain.enabled = False
    worst = 0.0
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        rig_eval = rig.evaluated_get(depsgraph)
        tail = np.array(rig_eval.matrix_world @ rig_eval.pose.bones[tip].tail)
        goal = np.array(target.evaluated_get(depsgraph).matrix_world.translation)
        worst = max(worst, float(np.linalg.norm(tail - goal)))
    return worst


def _bake(rig: Any, start: int, end: int) -> str:
    from blender_ik_addon.blender import bake_chains

    try:
        return f"{bake_chains(rig, ['arm'], start, end).not_converged} not converged"
    except Exception as err:  # the refusal is what the user sees
        return f"refused: {str(err)[:100]}…"


# -- the cases ------------------------------------------------------------------------------------


def time_stretching() -> tuple[str, float]:
    rig, target = _arm_rig((1, 80))
    scene = _bpy().context.scene
    scene.render.frame_map_old, scene.render.frame_map_new = 100, 200
    return _bake(rig, 1, 40), _played(rig, target, range(1, 41))


def nla_tweak_mode() -> tuple[str, float]:
    rig, target = _arm_rig((101, 120))
    for chain in rig.ik_chains.chains:
        chain.enabled = False
    for frame in (1, 20):
        for bone in BONES:
            rig.pose.bones[bone].keyframe_insert("rotation_quaternion", frame=frame)
    anim = rig.animation_data
    action = anim.action
    track = anim.nla_tracks.new()
    strip = track.strips.new("Strip", 101, action)
    anim.action = None
    anim.nla_tracks.active = track
    strip.select = True
    anim.use_tweak_mode = True
    return _bake(rig, 101, 120), _played(rig, target, range(101, 121))


def muted_channel() -> tuple[str, float]:
    from blender_ik_addon.blender.keys import fcurve_collection

    rig, target = _arm_rig((1, 20))
    for frame in (1, 20):
        rig.pose.bones["b1"].keyframe_insert("rotation_quaternion", frame=frame)
    fcurves: Any = fcurve_collection(rig, create=False)
    fcurves.find('pose.bones["b1"].rotation_quaternion', index=2).mute = True
    return _bake(rig, 1, 20), _played(rig, target, range(1, 21))


def action_influence() -> tuple[str, float]:
    rig, target = _arm_rig((1, 20))
    rig.pose.bones["b0"].keyframe_insert("rotation_quaternion", frame=1)
    anim = rig.animation_data
    below = anim.action
    anim.nla_tracks.new().strips.new("Below", 1, below)
    anim.action = _bpy().data.actions.new("Top")
    anim.action_influence = 0.5
    return _bake(rig, 1, 20), _played(rig, target, range(1, 21))


def armature_constraint() -> tuple[str, float]:
    rig, target = _arm_rig((1, 20))
    target.animation_data_clear()
    target.location = (1.2, 1.6, 0.5)
    con = target.constraints.new("ARMATURE")
    bound = con.targets.new()
    bound.target, bound.subtarget = rig, "b2"
    return _bake(rig, 1, 20), _played(rig, target, range(1, 21))


def helper_child_of() -> tuple[str, float]:
    rig, target = _arm_rig((1, 20))
    target.animation_data_clear()
    target.location = (1.2, 1.6, 0.5)
    helper = _empty("Helper")
    con = helper.constraints.new("CHILD_OF")
    con.target, con.subtarget = rig, "b2"
    target.parent = helper
    return _bake(rig, 1, 20), _played(rig, target, range(1, 21))


def live_follower() -> tuple[str, float]:
    """A hand target parented to the chest that a spine chain solves, played live."""
    import numpy as np
    from mathutils import Matrix

    from blender_ik_addon.blender import get_status

    bpy = _bpy()
    bpy.ops.wm.read_homefile(use_empty=True)
    rig = _armature("Body", [("hips", (0, 0, 0), (0, 0, 0.5), None), ("spine", (0, 0, 0.5), (0, 0, 1.0), "hips"),
                             ("spine.1", (0, 0, 1.0), (0, 0, 1.5), "spine"),
                             ("chest", (0, 0, 1.5), (0, 0, 2.0), "spine.1"),
                             ("arm", (0.5, 0, 0.5), (1.0, 0, 0.5), "hips"),
                             ("forearm", (1.0, 0, 0.5), (1.5, 0, 0.5), "arm"),
                             ("hand", (1.5, 0, 0.5), (1.7, 0, 0.5), "forearm")])
    spine_target = _empty("SpineTarget")
    for frame, x in ((1, -0.3), (5, 0.3), (10, -0.15)):
        spine_target.location = (x, 0.2, 1.9)
        spine_target.keyframe_insert("location", frame=frame)
    _chain(rig, "chest", 3, spine_target, "spine")
    hand = _empty("HandTarget")
    hand.parent, hand.parent_type, hand.parent_bone = rig, "BONE", "chest"
    bpy.context.view_layer.update()
    hand.matrix_world = Matrix.Translation((0.9, 0.3, 1.0))
    _chain(rig, "hand", 3, hand, "arm")
    worst, said = 0.0, set()
    for frame in range(1, 11):
        bpy.context.scene.frame_set(frame)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        rig_eval = rig.evaluated_get(depsgraph)
        tail = np.array(rig_eval.matrix_world @ rig_eval.pose.bones["hand"].tail)
        goal = np.array(hand.evaluated_get(depsgraph).matrix_world.translation)
        worst = max(worst, float(np.linalg.norm(tail - goal)))
        status = get_status("Body", "arm")
        said.add("converged" if status is not None and status.converged else "not converged")
    return "live status: " + " / ".join(sorted(said)), worst


CASES: list[tuple[str, Callable[[], tuple[str, float]]]] = [
    ("Time Stretching 100 -> 200, bake 1-40", time_stretching),
    ("NLA tweak mode, strip at 101 (action 1-20), bake 101-120", nla_tweak_mode),
    ("a chain rotation F-curve muted", muted_channel),
    ("the action at influence 0.5 over an NLA strip", action_influence),
    ("an Armature constraint on the target, bound to the tip", armature_constraint),
    ("the target parented to a helper with a Child Of to the tip", helper_child_of),
    ("live: a hand target parented to the chest a spine chain solves", live_follower),
]


if __name__ == "__main__":
    sys.exit(main())
