"""The add-on's own figures inside Blender: the live handler's cost per frame beside Blender's IK
constraint on the same rigs, and the bake's against Blender's own IK constraint baked by
``bpy.ops.nla.bake(visual_keying=True)``.

Everything runs headless in the benchmark's own process, after the chains (the Blender peer leaves
an empty file behind).

* Live handler, on the realistic rigs of :mod:`.live_rigs` (1 arm, 8 arms, 1 tentacle, 8
  tentacles, a character with 5 chains; Euler bones limited by their IK settings; targets keyed
  every ``KEY_STEP`` frames on smooth paths inside reach): the median time of ``scene.frame_set(f)``
  over ``settings.addon_frames`` frames with (a) nothing solving, (b) Blender's IK constraints,
  (c) the add-on's live chains, ``settings.addon_runs`` passes, each running (a), (b) and (c) in
  turn on the same file. Overhead = (b) - (a) and (c) - (a); the goal compares ours with
  Blender's (``LIVE_GOALS``). Every pass starts from the rest pose. The same once more with the
  numpy backend (``IK_CHAINS_NUMBA=0``, what a Blender without numba runs) over at most
  ``NUMPY_FRAMES`` frames, and with still targets (``STILL_RIGS``), whose chains the add-on
  skips: our overhead per still chain (goal ``STILL_GOAL_MS``). After the timing, the tip's
  distance to its target at 3 frames for both solvers, so that the overheads measure real solves.
* Bake: rigs of 3 connected 1-unit bones along +Y, rotation mode quaternion, solved with the
  add-on's default chain settings (LM, tolerance 1e-4), targets keyed every ``KEY_STEP`` frames
  (Bezier) on a smooth path inside the chain's reach. ``bake_chains`` over ``settings.bake_frames``
  frames (F-curve path, and the frame-stepping path forced by parenting the target to an Empty at
  the origin; the F-curve path once more with the numpy backend) against ``nla.bake`` of an IK
  constraint (chain_count 3) on an identical rig and target; best of ``settings.addon_runs`` runs,
  each on a freshly built file. Every baked frame is then played with the solvers off (chain
  disabled, IK constraint muted) and the tip's distance to the target measured.

The add-on is registered for the measurement and unregistered afterwards (if the caller had it
registered already, it is used and left registered); the file is emptied at the end, and the
handler lists are checked to be exactly what they were before.
"""

from __future__ import annotations

import os
import statistics
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import live_rigs
from .blender_peer import _import_bpy
from .live_rigs import KEY_STEP, Solver
from .peer import PeerUnavailableError
from .runner import Settings, log

SKIPPED = "skipped (--addon-frames 0)"
BONES = 3  # bones per bake chain, each 1 unit long along +Y
CHAIN_SPACING = 4.0  # x distance between chain roots (longer than a chain's reach)
BAKE_GOAL = 0.5  # issue 3: our bake takes at most half of Blender's time per frame
# Live rigs (live_rigs.RIGS) and the goal of each: our overhead / Blender IK's overhead <= goal.
LIVE_GOALS = {"arm": 2.0, "8_arms": 1.0, "tentacle": 2.0, "8_tentacles": 1.0, "character": 1.0}
STILL_RIGS = ("arm", "8_arms", "tentacle")  # measured once more with still targets
STILL_GOAL_MS = 0.02  # our overhead per still chain, ms per frame
NUMPY_FRAMES = 20  # frames per pass with the numpy backend (about 10x slower than numba, or worse)
SOLVERS: tuple[Solver, ...] = ("none", "blender", "ours")
ACTING: tuple[Solver, ...] = ("blender", "ours")
FULL_PASS = "ours_full_pass"  # ours with the live pass's fast lane (blender/replay.py) off
# Nothing but our kernel jobs on each frame's targets and the pose written (write_floor.StandIn): the
# least a live solver that solves as ours does can cost, with no target or base read, nothing checked.
FLOOR = "solve_and_write"
HANDLER_EVENTS = ("frame_change_pre", "frame_change_post", "depsgraph_update_pre", "depsgraph_update_post",
                  "load_pre", "load_post", "render_init", "render_complete", "render_cancel", "undo_post", "redo_post")


@contextmanager
def numpy_backend() -> Iterator[None]:
    """Solve with the numpy backend meanwhile (``IK_CHAINS_NUMBA=0``, read at every solve)."""
    before = os.environ.get("IK_CHAINS_NUMBA")
    os.environ["IK_CHAINS_NUMBA"] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ["IK_CHAINS_NUMBA"]
        else:
            os.environ["IK_CHAINS_NUMBA"] = before


def measure_addon_in_blender(settings: Settings) -> dict[str, Any]:
    """The add-on's cost inside Blender, reported in its own section of the benchmark.

    Returns:
        ``{"status": "ok", ...figures}``: the headline figures (per live rig, moving targets:
        ``live_handler_ms_per_frame`` our live chains' overhead, ``blender_ik_ms_per_frame``
        Blender IK's, ``live_vs_blender_ik`` their ratio and its goal, ``live_numpy_ms_per_frame``
        ours with the numpy backend; ``live_still_ms_per_chain`` per still rig with its goal;
        ``character_fps`` {"none", "blender", "ours"}; ``live_tip_error_max`` {"blender",
        "ours"}, metres; ``bake_ms_per_frame``; ``nla_bake_visual_keying_ms_per_frame``), the
        bake ratio and its goal, and the details under ``live_handler`` and ``bake``. Any other
        status ("skipped ...", "unavailable: ...", "error: ...") comes with every headline figure
        None.
    """
    if settings.addon_frames <= 0:
        return _empty(SKIPPED)
    try:
        bpy = _import_bpy()
    except PeerUnavailableError as err:
        return _empty(f"unavailable: {err}")
    try:
        return _measure(bpy, settings)
    except Exception as err:  # the add-on section failing must not cost the rest of a long run
        log(traceback.format_exc())
        return _empty(f"error: {type(err).__name__}: {err}")


def _empty(status: str) -> dict[str, Any]:
    return {
        "status": status,
        "live_handler_ms_per_frame": dict.fromkeys(LIVE_GOALS),
        "blender_ik_ms_per_frame": dict.fromkeys(LIVE_GOALS),
        "live_vs_blender_ik": dict.fromkeys(LIVE_GOALS),
        "live_numpy_ms_per_frame": dict.fromkeys(LIVE_GOALS),
        "live_still_ms_per_chain": dict.fromkeys(STILL_RIGS),
        "character_fps": None,
        "live_tip_error_max": None,
        "bake_ms_per_frame": None,
        "nla_bake_visual_keying_ms_per_frame": None,
        "bake_vs_nla_bake": None,
    }


def _measure(bpy: Any, settings: Settings) -> dict[str, Any]:
    before = _handler_lists(bpy)
    runs = max(1, settings.addon_runs)
    with _addon_registered(bpy) as registration:
        live = _measure_live_section(bpy, settings.addon_frames, runs)
        log(f"[addon] bake of {settings.bake_frames} frames, best of {runs} ...")
        bake = _measure_bakes(bpy, settings.bake_frames, runs)
    restored = _handler_lists(bpy) == before
    if not restored:
        log("[addon] warning: the handler lists differ from before the add-on section")
    ours, nla = bake["ours"]["ms_per_frame"], bake["nla_bake_visual_keying"]["ms_per_frame"]
    ratio = ours / nla
    moving, still, numpy = live["moving_targets"], live["still_targets"], live["numpy_backend"]
    character = moving["character"]["ms"]
    return {
        "status": "ok",
        "live_handler_ms_per_frame": {rig: moving[rig]["overhead_ms"]["ours"] for rig in LIVE_GOALS},
        "blender_ik_ms_per_frame": {rig: moving[rig]["overhead_ms"]["blender"] for rig in LIVE_GOALS},
        "live_vs_blender_ik": {rig: moving[rig]["goal"] for rig in LIVE_GOALS},
        "live_numpy_ms_per_frame": {rig: numpy[rig]["overhead_ms"]["ours"] for rig in LIVE_GOALS},
        "live_still_ms_per_chain": {rig: still[rig]["goal"] for rig in STILL_RIGS},
        "character_fps": {solver: 1e3 / character[solver] for solver in SOLVERS},
        "live_tip_error_max": {solver: max(figures["tip_error"][solver]["max"] for kind in (moving, still, numpy)
                                           for figures in kind.values()) for solver in ACTING},
        "bake_ms_per_frame": ours,
        "nla_bake_visual_keying_ms_per_frame": nla,
        "bake_vs_nla_bake": {"value": ratio, "goal": f"<= {BAKE_GOAL:g}", "met": ratio <= BAKE_GOAL},
        "bake_frame_path_ms_per_frame": bake["ours_frame_path"]["ms_per_frame"],
        "live_handler": live,
        "bake": bake,
        "registration": registration,
        "handlers_restored": restored,
    }


# -- registration and clean-up -----------------------------------------------------------------
def _handler_lists(bpy: Any) -> dict[str, list[Any]]:
    return {event: list(getattr(bpy.app.handlers, event)) for event in HANDLER_EVENTS}


@contextmanager
def _addon_registered(bpy: Any) -> Iterator[str]:
    """Register the add-on unless it already is; on exit empty the file, then unregister."""
    import blender_ik_addon

    ours = not hasattr(bpy.types.Object, "ik_chains")
    if ours:
        blender_ik_addon.register()
    try:
        yield "registered and unregistered here" if ours else "already registered by the caller (left so)"
    finally:
        # While registered: its load_pre handler drops the add-on's runtime state (statuses, caches).
        bpy.ops.wm.read_homefile(use_empty=True)
        if ours:
            blender_ik_addon.unregister()


# -- scenes ------------------------------------------------------------------------------------
def target_path(frame: float, phase: float = 0.0) -> tuple[float, float, float]:
    """A smooth path inside a 3-unit chain's reach (0.6 to 2.4 units from its root at the origin)."""
    s = 0.05 * frame + phase
    return 1.2 * np.sin(s), 1.2 + 0.6 * np.cos(0.7 * s), 0.8 * np.sin(1.3 * s)


@dataclass(frozen=True)
class _Chain:
    """One chain of a built scene, by name (references to Blender data do not survive a new file)."""

    armature: str
    tip: str
    target: str
    root_x: float  # world x of the chain's root; the target's path is relative to it


def _new_file(bpy: Any) -> None:
    bpy.ops.wm.read_homefile(use_empty=True)


def _armature(bpy: Any, name: str, chains: int, x: float) -> Any:
    """An armature object at ``(x, 0, 0)`` with ``chains`` separate chains of BONES connected bones
    along +Y (chain ``c`` rooted at local x = c * CHAIN_SPACING), bones ``c{c}_b{i}``."""
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    obj.location = (x, 0.0, 0.0)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for c in range(chains):
        parent = None
        for i in range(BONES):
            bone = data.edit_bones.new(f"c{c}_b{i}")
            bone.head, bone.tail = (c * CHAIN_SPACING, float(i), 0.0), (c * CHAIN_SPACING, float(i + 1), 0.0)
            if parent is not None:
                bone.parent, bone.use_connect = parent, True
            parent = bone
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def _target(bpy: Any, name: str, root_x: float, frames: int, phase: float = 0.0) -> Any:
    """An Empty keyed along :func:`target_path` over frames 1..``frames``."""
    obj = bpy.data.objects.new(name, None)
    bpy.context.scene.collection.objects.link(obj)
    for frame in [*range(1, frames, KEY_STEP), frames]:
        x, y, z = target_path(frame, phase)
        obj.location = (root_x + x, y, z)
        obj.keyframe_insert("location", frame=frame)
    return obj


def _rig(bpy: Any, armatures: int, per_armature: int, frames: int) -> list[_Chain]:
    """Armatures with chains and one target per chain."""
    chains: list[_Chain] = []
    for a in range(armatures):
        x = a * per_armature * CHAIN_SPACING
        obj = _armature(bpy, f"rig{a}", per_armature, x)
        for c in range(per_armature):
            root_x = x + c * CHAIN_SPACING
            target = _target(bpy, f"target{a}_{c}", root_x, frames, phase=0.7 * len(chains))
            chains.append(_Chain(obj.name, f"c{c}_b{BONES - 1}", target.name, root_x))
    return chains


def _add_chain(bpy: Any, chain: _Chain, enabled: bool) -> None:
    """The add-on's chain on ``chain``'s bones (settings before the target, so it solves once)."""
    item = bpy.data.objects[chain.armature].ik_chains.chains.add()
    item.name, item.enabled, item.tip_bone, item.chain_length = chain.tip, False, chain.tip, BONES
    item.target = bpy.data.objects[chain.target]
    item.enabled = enabled


def _error_summary(errors: list[float], frames: int) -> dict[str, Any]:
    return {"frames_checked": frames, "max": max(errors), "median": statistics.median(errors)}


# -- live handler ------------------------------------------------------------------------------
def _measure_live_section(bpy: Any, frames: int, runs: int) -> dict[str, Any]:
    """Every live rig with moving targets, with the numpy backend, and with still targets."""
    numpy_frames = min(frames, NUMPY_FRAMES)
    live: dict[str, Any] = {"frames": frames, "passes": runs, "numpy_frames": numpy_frames,
                            "moving_targets": {}, "numpy_backend": {}, "still_targets": {}}
    for rig in LIVE_GOALS:
        log(f"[addon] live handler: {rig}, moving targets ...")
        figures = _measure_live(bpy, rig, frames, runs, moving=True, floor=True)
        ratio = figures["ratio"]
        figures["goal"] = {"value": ratio, "goal": f"<= {LIVE_GOALS[rig]:g}",
                           "met": None if ratio is None else ratio <= LIVE_GOALS[rig]}
        live["moving_targets"][rig] = figures
    with numpy_backend():
        for rig in LIVE_GOALS:
            log(f"[addon] live handler: {rig}, moving targets, numpy backend ...")
            live["numpy_backend"][rig] = _measure_live(bpy, rig, numpy_frames, runs, moving=True)
    for rig in STILL_RIGS:
        log(f"[addon] live handler: {rig}, still targets ...")
        figures = _measure_live(bpy, rig, frames, runs, moving=False)
        per_chain = figures["overhead_ms"]["ours"] / figures["chains"]
        figures["goal"] = {"value": per_chain, "goal": f"<= {STILL_GOAL_MS:g} ms per chain",
                           "met": per_chain <= STILL_GOAL_MS}
        live["still_targets"][rig] = figures
    return live


def _measure_live(bpy: Any, rig: str, frames: int, runs: int, *, moving: bool, floor: bool = False
                  ) -> dict[str, Any]:
    """Median ms per ``frame_set`` with each of :data:`SOLVERS` acting on ``rig``, passes
    interleaved (with ``floor``, :data:`FLOOR` too); then each solver's tip errors at 3 frames."""
    from blender_ik_addon.blender import replay

    from .write_floor import StandIn

    _new_file(bpy)
    chains = live_rigs.build(bpy, rig, frames if moving else None)
    scene = bpy.context.scene
    # "ours" as the add-on runs (its fast lane replaying the last full pass); FULL_PASS: every frame a full pass.
    variants: tuple[str, ...] = (*SOLVERS, FULL_PASS, *((FLOOR,) if floor else ()))
    stand_in = StandIn(bpy, chains, frames) if floor else None
    seconds: dict[str, list[float]] = {variant: [] for variant in variants}
    with stand_in.installed(bpy) if stand_in is not None else nullcontext():
        for _ in range(runs):
            for variant in variants:
                live_rigs.use(bpy, chains, "ours" if variant == FULL_PASS else  # type: ignore[arg-type]
                              "none" if variant == FLOOR else variant)
                replay.set_enabled(variant != FULL_PASS)
                if stand_in is not None:
                    stand_in.mode = "solved" if variant == FLOOR else ""
                scene.frame_set(0)  # untimed: the first timed frame moves the targets too
                for frame in range(1, frames + 1):
                    began = time.perf_counter()
                    scene.frame_set(frame)
                    seconds[variant].append(time.perf_counter() - began)
                replay.set_enabled(True)
    ms = {variant: 1e3 * statistics.median(seconds[variant]) for variant in variants}
    overhead = {variant: ms[variant] - ms["none"] for variant in variants if variant != "none"}
    # Both solvers must reach the targets, or the overheads would measure something else than solving.
    checked = sorted({1, (frames + 1) // 2, frames})
    reaches = [live_rigs.reach(bpy, chain) for chain in chains]
    errors: dict[str, Any] = {}
    for solver in ACTING:
        live_rigs.use(bpy, chains, solver)
        errors[solver] = _live_errors(live_rigs.tip_errors(bpy, chains, checked), reaches, checked)
    live_rigs.use(bpy, chains, "none")
    return {"chains": len(chains), "bones": sum(chain.length for chain in chains),
            "chain_lengths": sorted({chain.length for chain in chains}),
            "frames": frames, "passes": runs, "ms": ms, "overhead_ms": overhead,
            "ratio": overhead["ours"] / overhead["blender"] if overhead["blender"] > 0 else None,
            "tip_error": errors}


def _live_errors(errors: list[float], reaches: list[float], frames: list[int]) -> dict[str, Any]:
    """Tip errors (metres, chain after chain at each frame) and the largest as a fraction of its chain's reach."""
    relative = [error / reaches[i % len(reaches)] for i, error in enumerate(errors)]
    return {**_error_summary(errors, len(frames)), "frames": frames, "max_relative": max(relative)}


# -- bake --------------------------------------------------------------------------------------
def _measure_bakes(bpy: Any, frames: int, runs: int) -> dict[str, Any]:
    """Best of ``runs`` for each bake (interleaved, so that they share the machine's load)."""
    bakes: dict[str, Callable[[Any, int, bool], dict[str, Any]]] = {
        "ours": lambda b, n, check: _bake_ours(b, n, check, frame_path=False),
        "ours_numpy": lambda b, n, check: _bake_ours(b, n, check, frame_path=False, numpy=True),
        "ours_frame_path": lambda b, n, check: _bake_ours(b, n, check, frame_path=True),
        "nla_bake_visual_keying": lambda b, n, check: _bake_nla(b, n, check, rotation_only=False),
        "nla_bake_rotation_only": lambda b, n, check: _bake_nla(b, n, check, rotation_only=True),
    }
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in bakes}
    for run in range(runs):
        for name, bake in bakes.items():
            results[name].append(bake(bpy, frames, run == runs - 1))  # checked once: the keys are the same
    out: dict[str, Any] = {"frames": frames, "runs": runs}
    for name, figures in results.items():
        times = [f.pop("seconds") for f in figures]
        out[name] = {"ms_per_frame": 1e3 * min(times) / frames,
                     "runs_ms_per_frame": [1e3 * t / frames for t in times], **figures[-1]}
    return out


def _bake_rig(bpy: Any, frames: int) -> _Chain:
    _new_file(bpy)
    (chain,) = _rig(bpy, 1, 1, frames)
    return chain


def _keys(bpy: Any, chain: _Chain) -> dict[str, Any]:
    """How the bake keyed the chain's bones: rotation F-curves and their key counts."""
    from blender_ik_addon.blender.keys import iter_fcurves

    fcurves = iter_fcurves(bpy.data.objects[chain.armature])
    rotation = [f for f in fcurves if f.data_path.endswith(("rotation_quaternion", "rotation_euler",
                                                              "rotation_axis_angle"))]
    counts = sorted({len(f.keyframe_points) for f in rotation})
    return {"fcurves": len(fcurves), "rotation_fcurves": len(rotation), "keys_per_rotation_fcurve": counts}


def _bake_ours(bpy: Any, frames: int, check: bool, *, frame_path: bool, numpy: bool = False) -> dict[str, Any]:
    """``bake_chains`` of one chain; ``frame_path`` parents the target to an Empty at the origin
    (same world motion), which makes the bake step through the frames; ``numpy`` solves with the
    numpy backend even where numba is installed."""
    if numpy:
        with numpy_backend():
            return _bake_ours(bpy, frames, check, frame_path=frame_path)
    from blender_ik_addon.blender import bake_chains

    chain = _bake_rig(bpy, frames)
    _add_chain(bpy, chain, enabled=False)  # not live: the keys alone move the bones afterwards
    if frame_path:
        holder = bpy.data.objects.new("holder", None)
        bpy.context.scene.collection.objects.link(holder)
        bpy.data.objects[chain.target].parent = holder
    began = time.perf_counter()
    report = bake_chains(bpy.data.objects[chain.armature], [chain.tip], 1, frames)
    seconds = time.perf_counter() - began
    expected_path = "frames" if frame_path else "fcurves"
    if report.frames != frames or report.path != expected_path:
        raise RuntimeError(f"bake_chains solved {report.frames} frames on the {report.path!r} path "
                           f"({report.reason or 'no reason'}); expected {frames} on {expected_path!r}")
    figures = {"seconds": seconds, "path": report.path, "reason": report.reason,
               "not_converged": report.not_converged, "worst_residual": report.worst_error}
    if check:
        keys = _keys(bpy, chain)
        if keys["rotation_fcurves"] != 4 * BONES or keys["keys_per_rotation_fcurve"] != [frames]:
            raise RuntimeError(f"bake_chains left unexpected keys: {keys}")
        figures["keys"] = keys
        figures["tip_error"] = _error_summary(live_rigs.tip_errors(bpy, [chain], list(range(1, frames + 1))), frames)
    return figures


def _bake_nla(bpy: Any, frames: int, check: bool, *, rotation_only: bool) -> dict[str, Any]:
    """Blender's IK constraint (chain_count 3, Standard solver) on the same rig and target, baked by
    ``nla.bake`` with visual keying from pose mode with the chain's bones selected."""
    chain = _bake_rig(bpy, frames)
    obj = bpy.data.objects[chain.armature]
    constraint = obj.pose.bones[chain.tip].constraints.new("IK")
    constraint.target, constraint.chain_count = bpy.data.objects[chain.target], BONES
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    bpy.ops.object.mode_set(mode="POSE")
    for pose_bone in obj.pose.bones:
        if hasattr(pose_bone, "select"):  # selection moved to pose bones in later versions
            pose_bone.select = True
        else:
            pose_bone.bone.select = True
    channels = {"channel_types": {"ROTATION"}} if rotation_only else {}
    began = time.perf_counter()
    result = bpy.ops.nla.bake(frame_start=1, frame_end=frames, only_selected=True, visual_keying=True,
                              clear_constraints=False, bake_types={"POSE"}, **channels)
    seconds = time.perf_counter() - began
    bpy.ops.object.mode_set(mode="OBJECT")
    if result != {"FINISHED"}:
        raise RuntimeError(f"nla.bake returned {result}")
    figures: dict[str, Any] = {"seconds": seconds, "operator_result": sorted(result),
                               "channels": "rotation" if rotation_only else "location, rotation, scale"}
    if check:
        keys = _keys(bpy, chain)
        if keys["rotation_fcurves"] != 4 * BONES or keys["keys_per_rotation_fcurve"] != [frames]:
            raise RuntimeError(f"nla.bake left unexpected keys: {keys}")
        figures["keys"] = keys
        obj.pose.bones[chain.tip].constraints[0].mute = True  # the keys alone move the bones
        figures["tip_error"] = _error_summary(live_rigs.tip_errors(bpy, [chain], list(range(1, frames + 1))), frames)
    return figures
