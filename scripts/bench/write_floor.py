"""The floor under any Python live solver: what writing a rig's pose from a frame handler costs.

Builds the live benchmark's rigs (:mod:`.live_rigs`) and times ``scene.frame_set`` with a stand-in
``frame_change_post`` handler that only writes every bone's rotation (one ``foreach_get``, one
``foreach_set``), then tags the rig: with a bare ``Object.update_tag()``, with the ``DATA`` tag
the add-on uses (``rig_pose.tag_pose``: the pose evaluation only), or not at all. A fourth
handler also runs the add-on's own solve before the DATA-tagged write: the kernel jobs of the
rig's live chains (taken from the fast lane, :mod:`blender_ik_addon.blender.replay`), given the
chain-space targets they had at that frame when the add-on played the frames first, every chain's
job in one ``solve_in_place`` call, each cold from its preferred pose as every live frame is. No
target or base is read and nothing is checked: write plus solve is the least any live solver that
solves as ours does can cost (a rig whose chains hang below others, as the character's arms, takes
two kernel calls live). Blender's IK
constraint on the same rig is timed in the same run: no target is read, nothing is solved.
Blender evaluates the written pose again inside ``frame_set``; that is the cost measured. Without
a tag nothing is evaluated again, and the evaluated bones keep the pose before the write (their
matrices do not follow): that column is the price of the handler alone, not a way to write.

    .venv/bin/python scripts/bench/write_floor.py [--rigs arm,tentacle,character] [--frames 100]

Prints per rig the median overhead per frame (ms, minus nothing solving) of: the write with each
tag, the write without one, the solve and the DATA-tagged write, and Blender's IK.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("none", "tagged", "data", "untagged", "solved", "blender")


class StandIn:
    """A ``frame_change_post`` handler standing in for a live solver on one built rig: it writes every
    bone's rotation (one ``foreach_get``, one ``foreach_set``, a new pose every frame) with the tag
    of its :attr:`mode`, and in mode ``"solved"`` first runs the rig's kernel jobs on the targets
    they had at that frame (:func:`kernel_jobs`), then writes with the DATA tag. Mode ``""``: it
    does nothing. Install it with :meth:`installed`."""

    MODES = ("", "tagged", "data", "untagged", "solved")

    def __init__(self, bpy: Any, chains: list[Any], frames: int) -> None:
        from blender_ik_addon.core.batched import solve_in_place

        self._solve = solve_in_place
        self.mode = ""
        self.armature = bpy.data.objects[chains[0].armature]
        self.count = len(self.armature.pose.bones)
        self.jobs, self.targets = kernel_jobs(bpy, bpy.context.scene, chains, frames)

    def __call__(self, scene: Any, _depsgraph: Any = None) -> None:
        if not self.mode:
            return
        if self.mode == "solved":
            for job, position in zip(self.jobs, self.targets.get(scene.frame_current, ()), strict=False):
                job.positions[0] = position
            self._solve(self.jobs)
        armature = self.armature
        values = np.empty(3 * self.count, dtype=np.float32)
        armature.pose.bones.foreach_get("rotation_euler", values)
        values += 1e-3 if scene.frame_current % 2 else -1e-3  # a new pose every frame
        armature.pose.bones.foreach_set("rotation_euler", values)
        if self.mode == "tagged":
            armature.update_tag()
        elif self.mode in ("data", "solved"):
            armature.update_tag(refresh={"DATA"})

    @contextmanager
    def installed(self, bpy: Any) -> Iterator[StandIn]:
        """Registered as a frame handler inside the ``with`` block (the list restored after it)."""
        bpy.app.handlers.frame_change_post.append(self)
        try:
            yield self
        finally:
            self.mode = ""
            bpy.app.handlers.frame_change_post.remove(self)


def measure(bpy: Any, rig: str, frames: int, passes: int) -> dict[str, float]:
    """Median ms per ``frame_set`` minus nothing's, per variant, passes interleaved."""
    from bench import live_rigs

    bpy.ops.wm.read_homefile(use_empty=True)
    chains = live_rigs.build(bpy, rig, frames)
    scene = bpy.context.scene
    stand_in = StandIn(bpy, chains, frames)
    seconds: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    with stand_in.installed(bpy):
        for _ in range(passes):
            for variant in VARIANTS:
                stand_in.mode = variant if variant in StandIn.MODES else ""
                live_rigs.use(bpy, chains, "blender" if variant == "blender" else "none")
                scene.frame_set(0)
                for frame in range(1, frames + 1):
                    began = time.perf_counter()
                    scene.frame_set(frame)
                    seconds[variant].append(time.perf_counter() - began)
    ms = {variant: 1e3 * statistics.median(values) for variant, values in seconds.items()}
    return {variant: ms[variant] - ms["none"] for variant in VARIANTS[1:]}


def kernel_jobs(bpy: Any, scene: Any, chains: list[Any], frames: int) -> tuple[list[Any], dict[int, Any]]:
    """The kernel jobs of ``chains``' live solves (those its fast lane keeps), and per frame their
    chain-space targets, from frames 0..``frames`` played with the add-on solving (the rig left
    with nothing solving, at the rest pose)."""
    from bench import live_rigs
    from blender_ik_addon.blender import replay

    live_rigs.use(bpy, chains, "ours")
    targets: dict[int, Any] = {}
    kept = None
    for frame in range(0, frames + 1):
        scene.frame_set(frame)
        kept = replay.replay_of(chains[0].armature)
        jobs = [] if kept is None else [chain.job for chain in kept.chains]
        if kept is not None and all(job is not None for job in jobs):
            targets[frame] = np.array([job.positions[0] for job in jobs if job is not None])
    live_rigs.use(bpy, chains, "none")
    if kept is None or any(chain.job is None for chain in kept.chains) or len(targets) < frames // 2:
        raise RuntimeError("the rig's live chains did not take the fast lane: no kernel jobs to time")
    return [chain.job for chain in kept.chains], targets


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
    print("| rig | write + update_tag() (ms) | write + DATA tag (ms) | write, untagged (ms) "
          "| solve + write + DATA tag (ms) | Blender IK (ms) | write + DATA tag / Blender "
          "| solve + write + DATA tag / Blender |")
    print("|---|---|---|---|---|---|---|---|")
    for rig in args.rigs.split(","):
        figures = measure(bpy, rig, args.frames, args.passes)
        blender = figures["blender"]
        ratios = [figures[v] / blender if blender > 0 else float("nan") for v in ("data", "solved")]
        cells = " | ".join(f"{figures[variant]:.3f}" for variant in VARIANTS[1:])
        print(f"| {rig} | {cells} | {ratios[0]:.2f}× | {ratios[1]:.2f}× |")
    blender_ik_addon.unregister()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
