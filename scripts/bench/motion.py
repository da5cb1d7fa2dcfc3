"""IK as motion (issue 9): smooth target paths solved frame by frame, ours beside Blender's IK.

Rigs (core chains; the Blender rig is built from the same chain by :class:`.BlenderPeer`, with bone
IK limits equal to the chain's): a 2-bone limb with two ball joints, one with a hinge elbow, the
human arm, the KUKA iiwa, the 20-segment tentacle and a 100-segment rope.

Paths (``frames`` each, closed): a straight *glide* from a bent reach out to 98 % of the reach and
back (so the limb passes close to straight), a *circle* and a *figure eight* about the same centre,
in the plane facing the chain's root. Every point is checked to be reachable within the limits
(see :func:`make_paths`).

Solvers, each on every path:

* ``nearest``: ``solve_path(mode="nearest")``, the add-on's way (every frame on its own); also
  timed as one cold ``solve()`` per frame, the live handler's way.
* ``continuous``: ``solve_path(mode="continuous")``, each frame from and nearest to the previous.
* ``warm``: ``solve(initial=previous q)`` frame by frame: the reference the 2x step goal compares to.
* ``blender``: Blender's IK constraint, the target Empty keyed on every frame and each frame
  evaluated by ``scene.frame_set`` (timed), so Blender starts every frame from the rest pose.

Per solver: the largest and median per-frame joint step (the largest rotation of any joint between
consecutive frames, on rotation matrices, so Euler aliases are no step), pops (a step above
``POP_RATIO`` x the median and ``POP_FLOOR_DEG``), reach, limit violations, ms per frame; for ours
also the frames ``solve_path`` flags as switches and the pops it does not flag. ``shuffled``: the
frames solved in a random order with mode nearest, compared with the in-order poses.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from blender_ik_addon.core import Chain, SolverOptions, solve, tip_positions
from blender_ik_addon.core.examples import ball_limb, hinge_limb, human_arm, rope, tentacle
from blender_ik_addon.core.motion import solve_path
from blender_ik_addon.core.rotations import FloatArray

from .cases import (
    SUCCESS_FACTOR,
    TOLERANCE_FACTOR,
    VIOLATION_TOLERANCE,
    VIOLATION_TOLERANCE_FLOAT32,
    frame_steps_deg,
    locked_drift,
    rotation_between_deg,
)
from .chains import load_chains
from .peer import PeerUnavailableError
from .runner import log

MOTION_RIGS = ("ball_limb", "hinge_limb", "human_arm", "kuka_iiwa", "tentacle", "rope")
MOTION_PATHS = ("glide", "circle", "eight")
OURS_MODES = ("nearest", "continuous", "warm")
POP_RATIO = 5.0
"""A pop is a frame step above this many times the path's median step..."""
POP_FLOOR_DEG = 2.0
"""... and above this many degrees."""
STEP_GOAL = 2.0
"""Outside flagged frames, ours' largest step may be at most this many times the warm path's."""
SHUFFLE_TOLERANCE = 1e-9
"""Shuffled frames count as identical when no angle differs by more than this (radians)."""
CENTRE_REACH = 0.6  # the paths' centre: this fraction of the reach from the root
GLIDE_REACH = 0.98  # the glide's far end
CIRCLE_RADIUS = 0.25  # x reach
EIGHT_SIZE = 0.3  # half-width x reach (half-height: half of that)
BEND_SCAN = 4.0  # the bent poses scanned: s * bend for s in [0, BEND_SCAN], clamped to the limits
SHRINK = 0.85  # a path with an unreachable point is shrunk about its centre by this factor ...
SHRINK_TRIES = 8  # ... at most this many times


@dataclass(frozen=True)
class MotionRig:
    """A rig of the motion section.

    Attributes:
        key: Short name (command line, JSON).
        title: Human-readable name.
        chain: The core's model.
        bend: ``(m,)`` the direction in joint space (radians per unit) the paths' centre is bent
            along from the straight rest pose; it only places the paths.
    """

    key: str
    title: str
    chain: Chain
    bend: FloatArray


def _per_joint(chain: Chain, values: dict[str, float]) -> FloatArray:
    """``(m,)`` free angles from ``{"X": a, "Z": b}`` applied to every joint (0 elsewhere)."""
    return np.array([values.get("XYZ"[axis], 0.0) for axis in chain.free_axis])


def load_rigs(keys: list[str]) -> tuple[list[MotionRig], dict[str, str]]:
    """The requested rigs, and why any of them is unavailable."""
    rigs: list[MotionRig] = []
    unavailable: dict[str, str] = {}
    for key in keys:
        if key == "ball_limb":
            chain = ball_limb()
            rigs.append(MotionRig(key, "2-bone limb, ball joints (6 DOF, unlimited)", chain,
                                  np.array([0.5, 0.0, 0.5, 1.5, 0.0, 0.0])))
        elif key == "hinge_limb":
            chain = hinge_limb()
            rigs.append(MotionRig(key, "2-bone limb, ball shoulder, hinge elbow 0..150° (4 DOF)", chain,
                                  np.array([0.5, 0.0, 0.5, 1.5])))
        elif key == "human_arm":
            chain = human_arm()
            rigs.append(MotionRig(key, "human arm (6 DOF)", chain, np.array([0.8, 0.0, 0.5, 1.5, 0.3, 0.2])))
        elif key == "kuka_iiwa":
            loaded, missing = load_chains([key])
            if not loaded:
                unavailable[key] = missing[key]
                continue
            rigs.append(MotionRig(key, "KUKA LBR iiwa (7 DOF)", loaded[0].chain,
                                  np.array([0.3, 0.8, 0.3, -1.2, 0.3, 0.8, 0.0])))
        elif key == "tentacle":
            chain = tentacle()
            rigs.append(MotionRig(key, "tentacle, 20 segments (40 DOF)", chain,
                                  _per_joint(chain, {"X": 0.15, "Z": 0.08})))
        elif key == "rope":
            chain = rope()
            rigs.append(MotionRig(key, "rope, 100 segments (200 DOF)", chain,
                                  _per_joint(chain, {"X": 0.04, "Z": 0.02})))
        else:
            raise ValueError(f"unknown motion rig {key!r}; expected one of {', '.join(MOTION_RIGS)}")
    return rigs, unavailable


# -- paths ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MotionPath:
    """One target path.

    Attributes:
        name: One of ``MOTION_PATHS``.
        targets: ``(F, 3)`` tip targets, frame order; the path is closed (frame ``F`` would be frame 0).
        info: Where it lies (JSON-ready): centre, size, the shrink factor applied, the reach check.
    """

    name: str
    targets: FloatArray
    info: dict[str, Any]


def bent_pose(rig: MotionRig, reach_fraction: float) -> FloatArray:
    """The least bend ``s * rig.bend`` (within the limits) that brings the tip to ``reach_fraction``
    of the reach from the chain's root, or the nearest to it."""
    chain = rig.chain
    root, reach = chain.reach_sphere
    poses = chain.clamp(np.linspace(0.0, BEND_SCAN, 2001)[:, None] * rig.bend)
    distance = np.linalg.norm(tip_positions(chain, poses) - root, axis=1) / reach
    inside = np.flatnonzero(distance <= reach_fraction)
    return np.asarray(poses[inside[0] if inside.size else int(np.argmin(distance))])


def _shape(name: str, frames: int, centre: FloatArray, far: FloatArray, axes: FloatArray, reach: float) -> FloatArray:
    """``(F, 3)`` offsets from the centre of path ``name`` at full size."""
    turn = 2 * np.pi * np.arange(frames) / frames
    if name == "glide":  # there and back, easing in and out at both ends
        return np.asarray(((1 - np.cos(turn)) / 2)[:, None] * (far - centre))
    if name == "circle":
        return np.asarray(CIRCLE_RADIUS * reach * (np.cos(turn)[:, None] * axes[0] + np.sin(turn)[:, None] * axes[1]))
    if name == "eight":  # a lemniscate of Gerono: crosses itself at the centre
        half = EIGHT_SIZE * reach
        return np.asarray(half * (np.sin(turn)[:, None] * axes[0] + (np.sin(turn) * np.cos(turn))[:, None] * axes[1]))
    raise ValueError(f"unknown motion path {name!r}; expected one of {', '.join(MOTION_PATHS)}")


def make_paths(rig: MotionRig, frames: int, names: list[str]) -> list[MotionPath]:
    """The rig's paths, each verified reachable point by point.

    Centre: the tip of :func:`bent_pose` at ``CENTRE_REACH`` of the reach; the glide runs from there
    to the tip of the bent pose at ``GLIDE_REACH``. The circle and the eight lie in the plane through
    the centre perpendicular to the root-to-centre line. A point counts as reachable when a pose
    within the limits is found whose tip is within half the success threshold (:func:`_witnesses`);
    a path with a point not found is shrunk about its centre (``SHRINK``, at most ``SHRINK_TRIES``
    times), and its info says so.
    """
    chain = rig.chain
    root, reach = chain.reach_sphere
    centre_pose = bent_pose(rig, CENTRE_REACH)
    centre = tip_positions(chain, centre_pose[None])[0]
    far = tip_positions(chain, bent_pose(rig, GLIDE_REACH)[None])[0]
    normal = (centre - root) / np.linalg.norm(centre - root)
    helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
    first = np.cross(normal, helper)
    first /= np.linalg.norm(first)
    axes = np.stack([first, np.cross(normal, first)])
    threshold = SUCCESS_FACTOR * chain.length
    paths = []
    for name in names:
        shape = _shape(name, frames, centre, far, axes, reach)
        for attempt in range(SHRINK_TRIES + 1):
            scale = SHRINK**attempt
            targets = centre + scale * shape
            found = _witnesses(chain, targets, centre_pose, 0.5 * threshold)
            if found.all():
                break
        distance = np.linalg.norm(targets - root, axis=1) / reach
        info = {"centre": centre.tolist(), "scale": scale, "reachable_points": int(found.sum()), "frames": frames,
                "reach_fraction_min": float(distance.min()), "reach_fraction_max": float(distance.max()),
                "size": _size_text(name, scale, reach)}
        if not found.all():
            log(f"[motion] {rig.key} {name}: {int((~found).sum())} points not verified reachable")
        paths.append(MotionPath(name, targets, info))
    return paths


def _size_text(name: str, scale: float, reach: float) -> str:
    if name == "glide":
        return f"from the centre ({CENTRE_REACH:.0%} of the reach) to {GLIDE_REACH:.0%} of it and back" + (
            "" if scale == 1.0 else f", shrunk to {scale:.2f}")
    size = CIRCLE_RADIUS if name == "circle" else EIGHT_SIZE
    return f"{'radius' if name == 'circle' else 'half-width'} {scale * size * reach:.3g}"


def _witnesses(chain: Chain, targets: FloatArray, centre_pose: FloatArray, tolerance: float) -> Any:
    """``(F,)`` True where a pose within the limits reaching ``targets[f]`` was found (an existence
    proof: the pose is checked by FK and against the limits here): solves with many restarts from
    the previous point's witness, the centre's pose and the rest pose."""
    options = SolverOptions(tolerance=0.1 * tolerance, restarts=64)
    found = np.zeros(len(targets), dtype=bool)
    previous: FloatArray | None = None
    for f, target in enumerate(targets):
        for start in (previous, centre_pose, None):
            q = solve(chain, target, initial=start, options=options).q
            tip = tip_positions(chain, q[None])[0]
            if np.linalg.norm(tip - target) < tolerance and chain.limit_violation(q) <= VIOLATION_TOLERANCE:
                found[f], previous = True, q
                break
    return found


# -- measuring ----------------------------------------------------------------------------------
def motion_figures(chain: Chain, angles: FloatArray, targets: FloatArray, seconds: float, violation_tolerance: float,
                   tips: FloatArray | None = None) -> dict[str, Any]:
    """A solver's figures on one path from its per-frame angles ``(F, n, 3)`` (and tips, where the
    solver put them; default the core's FK of the angles) and its total time."""
    frames = len(angles)
    steps = frame_steps_deg(chain, angles)
    median = float(np.median(steps)) if steps.size else 0.0
    pops = np.flatnonzero((steps > POP_RATIO * median) & (steps > POP_FLOOR_DEG)) + 1  # the frame popped into
    q = chain.compress(angles)
    if tips is None:
        tips = tip_positions(chain, q)
    error = np.linalg.norm(tips - targets, axis=1)
    violation = np.maximum(chain.limit_violation(q), locked_drift(chain, angles))
    closing = rotation_between_deg(chain, angles[-1:], angles[:1])
    return {
        "frames": frames,
        "max_step_deg": float(steps.max()) if steps.size else 0.0,
        "median_step_deg": median,
        "pops": len(pops),
        "pop_frames": pops.tolist(),
        "reach_rate": float((error < SUCCESS_FACTOR * chain.length).mean()),
        "max_error": float(error.max()),
        "max_limit_violation_deg": float(np.degrees(violation.max())),
        "frames_violating_limits": int((violation > violation_tolerance).sum()),
        "loop_closing_step_deg": float(closing[0]),  # from the last frame back to the first
        "ms_per_frame": 1e3 * seconds / frames,
    }


def _with_switches(figures: dict[str, Any], switches: Any, steps: FloatArray) -> dict[str, Any]:
    """Add ``solve_path``'s flags: switch frames, pops it did not flag, the largest step elsewhere."""
    flagged = [int(f) for f in np.flatnonzero(switches)]
    unflagged = [f for f in figures["pop_frames"] if f not in flagged]
    outside = np.delete(steps, [f - 1 for f in flagged if f > 0])
    return {**figures, "switches": len(flagged), "switch_frames": flagged, "unflagged_pops": len(unflagged),
            "unflagged_pop_frames": unflagged,
            "max_step_outside_switches_deg": float(outside.max()) if outside.size else 0.0}


def run_ours(chain: Chain, targets: FloatArray, options: SolverOptions, seed: int) -> dict[str, Any]:
    """Ours on one path in the three modes, and the shuffled check."""
    out: dict[str, Any] = {}
    for mode in ("nearest", "continuous"):
        began = time.perf_counter()
        path = solve_path(chain, targets, mode=mode, options=options)
        seconds = time.perf_counter() - began
        figures = motion_figures(chain, path.result.angles, targets, seconds, VIOLATION_TOLERANCE)
        out[mode] = _with_switches(figures, path.switches, frame_steps_deg(chain, path.result.angles))
        if mode == "nearest":
            nearest_q = path.result.q
    # The live handler's way: one cold solve() per frame (same poses as the batch, timed on its own).
    seconds, poses = 0.0, []
    for target in targets:
        began = time.perf_counter()
        poses.append(solve(chain, target, options=options).q)
        seconds += time.perf_counter() - began
    out["nearest"]["cold_solve_ms_per_frame"] = 1e3 * seconds / len(targets)
    out["nearest"]["cold_solve_vs_batch_max_diff_rad"] = float(np.abs(np.stack(poses) - nearest_q).max())
    # The warm reference: each frame from the previous frame's answer.
    seconds, poses, previous = 0.0, [], None
    for target in targets:
        began = time.perf_counter()
        previous = solve(chain, target, initial=previous, options=options).q
        seconds += time.perf_counter() - began
        poses.append(previous)
    out["warm"] = motion_figures(chain, chain.expand(np.stack(poses)), targets, seconds, VIOLATION_TOLERANCE)
    order = np.random.default_rng(seed).permutation(len(targets))
    shuffled = np.empty_like(nearest_q)
    shuffled[order] = solve_path(chain, targets[order], mode="nearest", options=options).result.q
    difference = float(np.abs(shuffled - nearest_q).max())
    out["shuffled"] = {"max_abs_diff_rad": difference, "identical": difference <= SHUFFLE_TOLERANCE, "seed": seed}
    return out


def run_blender(rig: Any, chain: Chain, targets: FloatArray) -> dict[str, Any]:
    """Blender's IK constraint on one path: the target keyed on frames ``1..F``, each frame
    evaluated by ``scene.frame_set`` (timed) and the pose read back (untimed)."""
    angles, tips, seconds = rig.play(targets)
    return motion_figures(chain, angles, targets, seconds, VIOLATION_TOLERANCE_FLOAT32, tips=tips)


def _blender_rig(chain: Chain) -> Any:
    """A :class:`.BlenderPeer` rig that plays a keyed target path (imported here: it needs bpy)."""
    from .blender_peer import BlenderPeer

    class BlenderMotionRig(BlenderPeer):
        """The peer's rig, its constraint evaluated frame by frame from the rest pose."""

        def play(self, targets: FloatArray) -> tuple[FloatArray, FloatArray, float]:
            bpy, target = self._bpy, self._target
            scene = bpy.context.scene
            target.animation_data_clear()
            for frame, point in enumerate(targets, start=1):
                target.location = point.tolist()
                target.keyframe_insert("location", frame=frame)
            scene.frame_start, scene.frame_end = 1, len(targets)
            self._set_basis(np.zeros(self.chain.n_dofs))  # Blender's IK starts every frame from here
            scene.frame_set(len(targets))  # warm-up, not timed
            angles, tips, seconds = [], [], 0.0
            for frame in range(1, len(targets) + 1):
                began = time.perf_counter()
                scene.frame_set(frame)
                seconds += time.perf_counter() - began
                pose, tip = self._read()
                angles.append(pose)
                tips.append(tip)
            return np.stack(angles), np.stack(tips), seconds

    return BlenderMotionRig(chain)


def measure_motion(frames: int, rig_keys: list[str], path_names: list[str], *, blender: bool, seed: int = 0
                   ) -> dict[str, Any]:
    """The motion section: every rig on every path, ours in three modes and (if ``blender``)
    Blender's IK constraint. A rig that fails is reported with its error, the others still run."""
    rigs, unavailable = load_rigs(rig_keys)
    out: dict[str, Any] = {
        "status": "ok", "frames": frames, "paths": path_names, "seed": seed, "pop_ratio": POP_RATIO,
        "pop_floor_deg": POP_FLOOR_DEG, "step_goal": STEP_GOAL, "shuffle_tolerance_rad": SHUFFLE_TOLERANCE,
        "rigs": {key: {"status": reason} for key, reason in unavailable.items()},
    }
    for rig in rigs:
        began = time.perf_counter()
        try:
            out["rigs"][rig.key] = _measure_rig(rig, frames, path_names, blender, seed)
        except Exception as err:  # one failing rig must not cost the others
            log(traceback.format_exc())
            out["rigs"][rig.key] = {"status": f"error: {type(err).__name__}: {err}"}
        log(f"[motion] {rig.key}: {out['rigs'][rig.key]['status']} ({time.perf_counter() - began:.1f} s)")
    out["rigs"] = {key: out["rigs"][key] for key in rig_keys if key in out["rigs"]}
    return out


def _measure_rig(rig: MotionRig, frames: int, path_names: list[str], blender: bool, seed: int) -> dict[str, Any]:
    chain = rig.chain
    threshold = SUCCESS_FACTOR * chain.length
    options = SolverOptions(tolerance=TOLERANCE_FACTOR * threshold)
    paths = make_paths(rig, frames, path_names)
    solve(chain, paths[0].targets[0], options=options)  # warm-up, not timed: loads the compiled kernel
    blender_rig, blender_status = None, "not run (blender not among --solvers)"
    if blender:
        try:
            blender_rig = _blender_rig(chain)
            rng = np.random.default_rng(seed + 2)
            low = np.where(np.isfinite(chain.lower), chain.lower, -np.pi)
            high = np.where(np.isfinite(chain.upper), chain.upper, np.pi)
            fk_error = blender_rig.fk_error(rng.uniform(low, high, (20, chain.n_dofs)))
            blender_status = "ok"
            if not fk_error <= 1e-5 * chain.length:
                blender_status = f"model mismatch: FK differs by {fk_error:.3g}; not run"
        except PeerUnavailableError as err:
            blender_status = f"unavailable: {err}"
    info = {"title": rig.title, "joints": chain.n_joints, "dofs": chain.n_dofs, "reach": chain.reach_sphere[1],
            "success_threshold": threshold, "requested_tolerance": options.tolerance, "blender": blender_status}
    results: dict[str, Any] = {"status": "ok", "info": info, "paths": {}}
    try:
        for path in paths:
            solvers = run_ours(chain, path.targets, options, seed)
            shuffled = solvers.pop("shuffled")
            solvers["blender"] = (run_blender(blender_rig, chain, path.targets) if blender_status == "ok"
                                  else {"status": blender_status})
            entry = {"info": path.info, "solvers": solvers, "shuffled": shuffled}
            entry["goals"] = motion_goals(entry)
            results["paths"][path.name] = entry
    finally:
        if blender_rig is not None:
            blender_rig.close()
    return results


def _goal(value: Any, goal: str, met: bool | None) -> dict[str, Any]:
    return {"value": value, "goal": goal, "met": met}


def motion_goals(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Issue 9's goals on one rig and path, each ``{"value", "goal", "met"}`` (met None: not measured)."""
    solvers = entry["solvers"]
    nearest, continuous, warm, blender = (solvers[name] for name in ("nearest", "continuous", "warm", "blender"))
    blender_pops = blender.get("pops")
    step_ratio = (nearest["max_step_outside_switches_deg"] / warm["max_step_deg"] if warm["max_step_deg"] > 0
                  else (0.0 if nearest["max_step_outside_switches_deg"] == 0 else float("inf")))
    reach = min(nearest["reach_rate"], continuous["reach_rate"])
    violation = max(nearest["max_limit_violation_deg"], continuous["max_limit_violation_deg"])
    violating = nearest["frames_violating_limits"] + continuous["frames_violating_limits"]
    return {
        "no_unflagged_pop": _goal(nearest["unflagged_pops"], "0", nearest["unflagged_pops"] == 0),
        "switches_vs_blender_pops": _goal(
            [nearest["switches"], blender_pops], "switches <= Blender's pops",
            None if blender_pops is None else nearest["switches"] <= blender_pops),
        "step_vs_warm": _goal(step_ratio, f"<= {STEP_GOAL:g}", step_ratio <= STEP_GOAL),
        "continuous_no_pop": _goal(continuous["pops"], "0", continuous["pops"] == 0),
        "reach": _goal(reach, "100 %", reach == 1.0),
        "no_limit_violation": _goal(violation, "0", violating == 0),
        "shuffled_identical": _goal(entry["shuffled"]["max_abs_diff_rad"], f"<= {SHUFFLE_TOLERANCE:g} rad",
                                    bool(entry["shuffled"]["identical"])),
    }
