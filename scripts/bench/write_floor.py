"""The floor under any Python live solver: what writing a rig's pose from a frame handler costs.

Builds the live benchmark's rigs (:mod:`.live_rigs`) and times ``scene.frame_set`` with a stand-in
``frame_change_post`` handler that only writes every bone's rotation (one ``foreach_get``, one
``foreach_set``, then ``Object.update_tag()``, as the add-on writes; or without the tag), beside
Blender's IK constraint on the same rig, in one run: no target is read, nothing is solved.
Blender evaluates the written pose again inside ``frame_set``; that is the cost measured.

    .venv/bin/python scripts/bench/write_floor.py [--rigs arm,tentacle,character] [--frames 100]

Prints per rig the median overhead per frame (ms, minus nothing solving) of: the write with the
tag, the write without it, and Blender's IK.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("none", "tagged", "untagged", "blender")


def measure(bpy: Any, rig: str, frames: int, passes: int) -> dict[str, float]:
    """Median ms per ``frame_set`` minus nothing's, per variant, passes interleaved."""
    from bench import live_rigs

    bpy.ops.wm.read_homefile(use_empty=True)
    chains = live_rigs.build(bpy, rig, frames)
    scene = bpy.context.scene
    armature = bpy.data.objects[chains[0].armature]
    count = len(armature.pose.bones)
    mode = {"write": ""}

    def write_only(scene: Any, _depsgraph: Any = None) -> None:
        if not mode["write"]:
            return
        values = np.empty(3 * count, dtype=np.float32)
        armature.pose.bones.foreach_get("rotation_euler", values)
        values += 1e-3 if scene.frame_current % 2 else -1e-3  # a new pose every frame
        armature.pose.bones.foreach_set("rotation_euler", values)
        if mode["write"] == "tagged":
            armature.update_tag()

    bpy.app.handlers.frame_change_post.append(write_only)
    seconds: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    try:
        for _ in range(passes):
            for variant in VARIANTS:
                mode["write"] = variant if variant in ("tagged", "untagged") else ""
                live_rigs.use(bpy, chains, "blender" if variant == "blender" else "none")
                scene.frame_set(0)
                for frame in range(1, frames + 1):
                    began = time.perf_counter()
                    scene.frame_set(frame)
                    seconds[variant].append(time.perf_counter() - began)
    finally:
        bpy.app.handlers.frame_change_post.remove(write_only)
    ms = {variant: 1e3 * statistics.median(values) for variant, values in seconds.items()}
    return {variant: ms[variant] - ms["none"] for variant in VARIANTS[1:]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rigs", default="arm,tentacle,character")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
    import bpy

    import blender_ik_addon

    blender_ik_addon.register()  # the rigs carry the add-on's chains (disabled here)
    print("| rig | write + update_tag (ms) | write alone (ms) | Blender IK (ms) | write + tag / Blender |")
    print("|---|---|---|---|---|")
    for rig in args.rigs.split(","):
        figures = measure(bpy, rig, args.frames, args.passes)
        ratio = figures["tagged"] / figures["blender"] if figures["blender"] > 0 else float("nan")
        print(f"| {rig} | {figures['tagged']:.3f} | {figures['untagged']:.3f} | {figures['blender']:.3f} "
              f"| {ratio:.2f}× |")
    blender_ik_addon.unregister()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
