"""IK Stretch (issue 12): Blender's IK constraint with Stretch beside the add-on's, on the same rigs.

    .venv/bin/python scripts/bench/stretch_cases.py [--repo PATH]

Each case builds a chain of bones along +Y (2 bones of 1 m, or 3 bones of 1, 0.8 and 0.6 m), gives
the bones an IK Stretch, and puts a target at a share of the chain's length, off the bones' line,
within reach (0.7, 0.95) and beyond it (1.3, 2). Blender: an IK constraint on the tip bone with
Stretch on (its default start pose, every bone bent 0.2 rad about X, so it can bend). The add-on:
the same rig without the constraint, the same start pose, one chain with Stretch on, solved and
written by the add-on found at ``--repo`` (default: this checkout), played back by Blender.

It prints one Markdown row per case: each bone's scale as Blender evaluates it (the length of its
pose matrix's columns: ``x/y/z`` where they differ, one figure where all three agree), the tip's
distance to the target, for Blender's IK and for the add-on.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

REPO = Path(__file__).resolve().parents[2]
DIRECTION = np.array([0.0, 0.3, 0.954]) / np.linalg.norm([0.0, 0.3, 0.954])
"""Where the targets lie from the chain's root: mostly up, a little along the bones."""
START_BEND = 0.2
"""Radians about X on every bone: the pose both solvers start from."""

CHAINS = {2: (1.0, 1.0), 3: (1.0, 0.8, 0.6)}
SHARES = (0.7, 0.95, 1.3, 2.0)
STRETCH = ((0.1,), (0.5,), (1.0,), (0.1, 0.5, 1.0), (1.0, 0.0, 1.0))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose add-on is measured")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.repo))
    print("| bones | ik_stretch | target / length | Blender: scales | Blender: tip error | "
          "add-on: scales | add-on: tip error |")
    print("|---|---|---|---|---|---|---|")
    for count, lengths in CHAINS.items():
        for stretch in STRETCH:
            if len(stretch) > 1 and len(stretch) != count:
                continue
            amounts = stretch * count if len(stretch) == 1 else stretch
            for share in SHARES:
                target = DIRECTION * share * sum(lengths)
                blender = _measure(lengths, amounts, target, ours=False)
                ours = _measure(lengths, amounts, target, ours=True)
                print(f"| {count} | {', '.join(f'{a:g}' for a in amounts)} | {share:g} | {_scales(blender[0])} | "
                      f"{blender[1]:.2g} | {_scales(ours[0])} | {ours[1]:.2g} |")
    sys.stdout.flush()
    os._exit(0)  # the 4.x bpy modules may crash at exit once an add-on was registered


def _scales(columns: FloatArray) -> str:
    """``1.3, 1.3`` (uniform bones) or ``1/1.3/1`` per bone where the columns differ."""
    out = []
    for bone in columns:
        out.append(f"{bone[0]:.4g}" if np.ptp(bone) < 1e-4 else "/".join(f"{c:.4g}" for c in bone))
    return ", ".join(out)


def _measure(lengths: Sequence[float], stretch: Sequence[float], target: FloatArray, *,
             ours: bool) -> tuple[FloatArray, float]:
    """``(per-bone pose matrix column lengths (n, 3), tip distance)`` as Blender evaluates the rig."""
    bpy = _bpy()

    bpy.ops.wm.read_homefile(use_empty=True)
    obj = _rig(lengths, stretch)
    goal = bpy.data.objects.new("Target", None)
    goal.location = target.tolist()
    bpy.context.scene.collection.objects.link(goal)
    tip = f"b{len(lengths) - 1}"
    if ours:
        from blender_ik_addon.blender import ChainSpec, solve_chain

        spec = ChainSpec("chain", tip, len(lengths), target=goal.name, use_stretch=True, target_object=goal)
        bpy.context.view_layer.update()
        solve_chain(obj, spec, bpy.context.evaluated_depsgraph_get())
    else:
        con = obj.pose.bones[tip].constraints.new("IK")
        con.target, con.chain_count, con.use_stretch = goal, len(lengths), True
    bpy.context.view_layer.update()
    rig = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    columns = np.array([np.linalg.norm(np.array(rig.pose.bones[f"b{i}"].matrix)[:3, :3], axis=0)
                        for i in range(len(lengths))])
    error = float(np.linalg.norm(np.array(rig.matrix_world @ rig.pose.bones[tip].tail) - target))
    return columns, error


def _bpy() -> Any:
    import bpy

    return bpy


def _rig(lengths: Sequence[float], stretch: Sequence[float]) -> Any:
    bpy = _bpy()

    data = bpy.data.armatures.new("Rig")
    obj = bpy.data.objects.new("Rig", data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    y, parent = 0.0, None
    for i, length in enumerate(lengths):
        bone = data.edit_bones.new(f"b{i}")
        bone.head, bone.tail = (0.0, y, 0.0), (0.0, y + length, 0.0)
        y += length
        if parent is not None:
            bone.parent, bone.use_connect = parent, True
        parent = bone
    bpy.ops.object.mode_set(mode="OBJECT")
    for i, amount in enumerate(stretch):
        pbone = obj.pose.bones[f"b{i}"]
        pbone.ik_stretch = amount
        pbone.rotation_mode = "XYZ"
        pbone.rotation_euler = (START_BEND, 0.0, 0.0)
    return obj


if __name__ == "__main__":
    raise SystemExit(main())
