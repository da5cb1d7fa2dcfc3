"""Adopted IK constraints beside Blender's own (issue 12): the same limbs, pose by pose.

    .venv/bin/python scripts/bench/adopt_cases.py [--repo PATH] [--frames 24] [--rounds 5] [--by-hand]

Builds Rigify's human metarig (or, with ``--by-hand`` or without Rigify, its arm and leg bones by
hand; ``tests/blender/metarig_limbs.py``) with an IK control and a pole bone per limb and an IK
constraint on each forearm and shin set up as Rigify's generated IK limbs are (pole angle by
Rigify's rule; the right limbs hinged by ``lock_ik_y``/``lock_ik_z``, the left ones free), keys the
controls over ``--frames`` frames (targets within reach, poles drifting), and records Blender's pose
at every frame. Then Adopt IK Constraints, and the same frames played with the adopted chains live.

It prints one Markdown row per limb: the largest and mean angle between each chain bone's evaluated
rotation with Blender's IK and with the adopted chain (degrees, over the frames), the largest tip
distance to the control of each, and the time per frame of each: ``scene.frame_set`` with only that
limb's constraint on (Blender) or only its chain live (the add-on), median over ``--rounds`` passes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

REPO = Path(__file__).resolve().parents[2]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose add-on is measured")
    parser.add_argument("--frames", type=int, default=24, help="animated range, frames")
    parser.add_argument("--rounds", type=int, default=5, help="timing passes over the range")
    parser.add_argument("--by-hand", action="store_true", help="build the limbs by hand, not with Rigify")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.repo))
    sys.path.insert(0, str(args.repo / "tests" / "blender"))
    import bpy
    from metarig_limbs import (  # type: ignore[import-not-found]  # tests/blender, put on the path above
        LIMBS,
        angles_between,
        animate_controls,
        chain_matrices,
        metarig_limbs,
    )

    import blender_ik_addon
    from blender_ik_addon.blender import adopt_constraints
    from blender_ik_addon.blender.spec import ChainSpec

    blender_ik_addon.register()
    bpy.ops.wm.read_homefile(use_empty=True)
    rig, how = metarig_limbs(rigify=not args.by_hand)
    frames = range(1, args.frames + 1)
    animate_controls(rig, args.frames, 1)
    blender = _play(rig, frames, chain_matrices)
    blender_ms = {owner: _time(rig, frames, args.rounds, owner, constraints=True) for owner in LIMBS}
    report = adopt_constraints(rig)
    ours = _play(rig, frames, chain_matrices)
    ours_ms = {owner: _time(rig, frames, args.rounds, owner, constraints=False) for owner in LIMBS}
    print(f"{how}, {args.frames} frames; {report.summary()}; solver: {ChainSpec('x', 'x').backend_note()}; "
          f"Blender {bpy.app.version_string}")
    print()
    print("| limb | joints | per bone, max ° | per bone, mean ° | tip error, Blender | tip error, adopted | "
          "ms per frame, Blender | ms per frame, adopted |")
    print("|---|---|---|---|---|---|---|---|")
    for owner, (root, _, _) in LIMBS.items():
        angles = np.array([angles_between(blender[f][owner][0], ours[f][owner][0]) for f in frames])
        kind = ("arm" if owner.startswith("forearm") else "leg") + (".L" if owner.endswith(".L") else ".R")
        joints = "hinge (lock_ik_y/z)" if rig.pose.bones[owner].lock_ik_y else "free"
        tip_b = max(blender[f][owner][1] for f in frames)
        tip_o = max(ours[f][owner][1] for f in frames)
        print(f"| {kind} ({root}, {owner}) | {joints} | {angles.max():.3f} | {angles.mean():.4f} | {tip_b:.1e} | "
              f"{tip_o:.1e} | {blender_ms[owner]:.3f} | {ours_ms[owner]:.3f} |")
    sys.stdout.flush()
    os._exit(0)  # the 4.x bpy modules may crash at exit once an add-on was registered


def _play(rig: Any, frames: range, matrices: Any) -> dict[int, dict[str, tuple[FloatArray, float]]]:
    """Per frame, per limb: the chain bones' rotations and the tip's distance to its control."""
    import bpy
    from metarig_limbs import LIMBS

    scene = bpy.context.scene
    assert scene is not None
    out = {}
    for frame in frames:
        scene.frame_set(frame)
        out[frame] = {owner: (matrices(rig, [root, owner]),
                              float(np.linalg.norm(np.array(rig.pose.bones[owner].tail)
                                                   - np.array(rig.pose.bones[control].head))))
                      for owner, (root, control, _) in LIMBS.items()}
    return out


def _time(rig: Any, frames: range, rounds: int, owner: str, *, constraints: bool) -> float:
    """Median ms per ``frame_set`` over the range with only ``owner``'s limb solving."""
    import bpy

    chains = rig.ik_chains.chains
    saved_mute = {b.name: b.constraints["IK"].mute for b in rig.pose.bones if "IK" in b.constraints}
    saved_live = {c.name: c.enabled for c in chains}
    for name in saved_mute:
        rig.pose.bones[name].constraints["IK"].mute = not constraints or name != owner
    for chain in chains:
        chain.enabled = not constraints and chain.tip_bone == owner
    scene = bpy.context.scene
    assert scene is not None
    times = []
    for _ in range(rounds):
        for frame in frames:
            start = time.perf_counter()
            scene.frame_set(frame)
            times.append(time.perf_counter() - start)
    for name, mute in saved_mute.items():
        rig.pose.bones[name].constraints["IK"].mute = mute
    for chain in chains:
        chain.enabled = saved_live[chain.name]
    return float(np.median(times) * 1000.0)


if __name__ == "__main__":
    raise SystemExit(main())
