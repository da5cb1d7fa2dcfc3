"""The floor under any Python live solver: what writing a rig's pose from a frame handler costs.

Builds the live benchmark's rigs (:mod:`.live_rigs`) and times ``scene.frame_set`` with a stand-in
``frame_change_post`` handler that only writes every bone's rotation (one ``foreach_get``, one
``foreach_set``), then tags the rig: with a bare ``Object.update_tag()``, with the ``DATA`` tag
the add-on uses (``rig_pose.tag_pose``: the pose evaluation only), or not at all. Blender's IK
constraint on the same rig is timed in the same run: no target is read, nothing is solved.
Blender evaluates the written pose again inside ``frame_set``; that is the cost measured. Without
a tag nothing is evaluated again, and the evaluated bones keep the pose before the write (their
matrices do not follow): that column is the price of the handler alone, not a way to write.

    .venv/bin/python scripts/bench/write_floor.py [--rigs arm,tentacle,character] [--frames 100]

Prints per rig the median overhead per frame (ms, minus nothing solving) of: the write with each
tag, the write without one, and Blender's IK.
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
VARIANTS = ("none", "tagged", "data", "untagged", "blender")


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
        elif mode["write"] == "data":
            armature.update_tag(refresh={"DATA"})

    bpy.app.handlers.frame_change_post.append(write_only)
    seconds: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    try:
        for _ in range(passes):
            for variant in VARIANTS:
                mode["write"] = variant if variant in ("tagged", "data", "untagged") else ""
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
    print("| rig | write + update_tag() (ms) | write + DATA tag (ms) | write, untagged (ms) | Blender IK (ms) "
          "| write + DATA tag / Blender |")
    print("|---|---|---|---|---|---|")
    for rig in args.rigs.split(","):
        figures = measure(bpy, rig, args.frames, args.passes)
        ratio = figures["data"] / figures["blender"] if figures["blender"] > 0 else float("nan")
        cells = " | ".join(f"{figures[variant]:.3f}" for variant in VARIANTS[1:])
        print(f"| {rig} | {cells} | {ratio:.2f}× |")
    blender_ik_addon.unregister()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
