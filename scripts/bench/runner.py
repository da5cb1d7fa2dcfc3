"""Runs every requested solver on every requested chain and collects the figures as plain dicts."""

from __future__ import annotations

import math
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from blender_ik_addon.core import SolverOptions, tip_positions

from .cases import VIOLATION_TOLERANCE, VIOLATION_TOLERANCE_FLOAT32, Answers, Cases, make_cases, max_jump_deg, score
from .chains import BenchChain
from .peer import Answer, CorePeer, Peer, PeerUnavailableError

SOLVERS = ("ours", "ours_numpy", "tutorial", "ikpy", "pybullet", "blender")
FK_CHECK_POSES = 20
FK_TOLERANCE = 1e-6  # x chain length; float32 peers get FK_TOLERANCE_FLOAT32
FK_TOLERANCE_FLOAT32 = 1e-5


@dataclass(frozen=True)
class Settings:
    """What to run.

    Attributes:
        targets: Reachable targets per chain.
        frames: Frames of the smooth path.
        seed: Seed of the targets, the path and the FK check poses.
        budget: Seconds a peer may spend on one chain's targets (and, separately, on each pass
            over the path); a slow peer is stopped there and its figures cover what it solved.
            "ours" is never stopped.
        tutorial_sweeps: Sweep cap of the tutorial solver.
        addon_frames: Frames per pass of the add-on's live handler measurement (0 skips the
            add-on section).
        bake_frames: Frames of the add-on's bake and of Blender's ``nla.bake``.
        addon_runs: Passes of the live measurement, and runs of each bake (the best one counts).
        motion_frames: Frames of each target path of the motion section (:mod:`.motion`).
    """

    targets: int = 1000
    frames: int = 250
    seed: int = 0
    budget: float = 60.0
    tutorial_sweeps: int = 1000
    addon_frames: int = 200
    bake_frames: int = 1000
    addon_runs: int = 3
    motion_frames: int = 250


def log(message: str) -> None:
    """Progress on stderr (a full run takes minutes)."""
    print(message, file=sys.stderr, flush=True)


def make_peer(name: str, bench: BenchChain, cases: Cases, settings: Settings) -> Peer:
    """Build solver ``name`` for one chain; raises PeerUnavailableError when its package is missing."""
    if name == "ours":  # the default backend: compiled where numba is installed (the report says which)
        return CorePeer(bench.chain, name, SolverOptions(tolerance=cases.tolerance))
    if name == "ours_numpy":  # what a Blender without numba runs
        return CorePeer(bench.chain, name, SolverOptions(tolerance=cases.tolerance, backend="numpy"))
    if name == "tutorial":
        options = SolverOptions(method="tutorial", tolerance=cases.tolerance, max_iterations=settings.tutorial_sweeps)
        return CorePeer(bench.chain, name, options)
    # Imported here so that a missing package only costs its own peer.
    if name == "ikpy":
        from .ikpy_peer import IkpyPeer

        return IkpyPeer(bench.chain)
    if name == "pybullet":
        from .pybullet_peer import PybulletPeer

        return PybulletPeer(bench, cases.tolerance)
    if name == "blender":
        from .blender_peer import BlenderPeer

        return BlenderPeer(bench.chain)
    raise ValueError(f"unknown solver {name!r}; expected one of {', '.join(SOLVERS)}")


def run_chain(bench: BenchChain, solvers: list[str], settings: Settings) -> dict[str, Any]:
    """Every solver on one chain: ``{"info": ..., "solvers": {name: figures}}``."""
    chain = bench.chain
    cases = make_cases(chain, settings.targets, settings.frames, settings.seed)
    info = {"title": bench.title, "joints": chain.n_joints, "dofs": chain.n_dofs, "length": chain.length,
            "success_threshold": cases.threshold, "requested_tolerance": cases.tolerance,
            "targets": len(cases.targets), "path_frames": len(cases.path)}
    results = {}
    for name in solvers:
        log(f"[{bench.key}] {name} ...")
        began = time.perf_counter()
        results[name] = run_solver(name, bench, cases, settings)
        log(f"[{bench.key}] {name}: {results[name]['status']} ({time.perf_counter() - began:.1f} s)")
    return {"info": info, "solvers": results}


def run_solver(name: str, bench: BenchChain, cases: Cases, settings: Settings) -> dict[str, Any]:
    """One solver on one chain, after checking that its model of the chain is the chain."""
    try:
        peer = make_peer(name, bench, cases, settings)
    except PeerUnavailableError as err:
        return {"status": f"unavailable: {err}"}
    try:
        return _measure(name, peer, cases, settings)
    except Exception as err:  # a peer failing mid-run must not cost the other results of a long run
        log(traceback.format_exc())
        return {"status": f"error: {type(err).__name__}: {err}"}
    finally:
        peer.close()


def _measure(name: str, peer: Peer, cases: Cases, settings: Settings) -> dict[str, Any]:
    """The FK check, then (if the peer's model is the chain) the targets and both path passes."""
    chain = peer.chain
    rng = np.random.default_rng(settings.seed + 2)
    low = np.where(np.isfinite(chain.lower), chain.lower, -np.pi)
    high = np.where(np.isfinite(chain.upper), chain.upper, np.pi)
    fk_error = peer.fk_error(rng.uniform(low, high, (FK_CHECK_POSES, chain.n_dofs)))
    limit = (FK_TOLERANCE_FLOAT32 if peer.float32 else FK_TOLERANCE) * chain.length
    if not fk_error <= limit:
        return {"status": f"model mismatch: FK differs by {fk_error:.3g} (> {limit:.3g}); not timed",
                "fk_max_error": fk_error}
    tolerance = VIOLATION_TOLERANCE_FLOAT32 if peer.float32 else VIOLATION_TOLERANCE
    # The budget stops slow peers; ours, the solver under test, always solves every target.
    budget = math.inf if name.startswith("ours") else settings.budget
    return {"status": "ok", "fk_max_error": fk_error, "violation_tolerance_rad": tolerance,
            "backend": getattr(peer, "backend", None),
            "targets": _targets(peer, cases, budget, tolerance),
            "path": {mode: _path(peer, cases, budget, tolerance, warm=mode == "warm") for mode in ("cold", "warm")}}


def _targets(peer: Peer, cases: Cases, budget: float, tolerance: float) -> dict[str, Any]:
    """Cold solves of the targets one by one (until the budget runs out), then as a batch."""
    # Warm-up, not scored: first calls build caches (Blender's depsgraph, ikpy's lambdas). The
    # start pose's own tip is solved at once by everyone, so a slow solver loses no budget here.
    peer.solve(tip_positions(peer.chain, cases.start[None])[0], cases.start)
    answers: list[Answer] = []
    deadline = time.perf_counter() + budget
    for target in cases.targets:
        answers.append(peer.solve(target, cases.start))
        if time.perf_counter() > deadline:
            break
    collected = _collect(answers)
    figures: dict[str, Any] = score(peer.chain, cases.targets, collected, cases.threshold, tolerance)
    batch = peer.solve_batch(cases.targets[: len(answers)], cases.start)
    if batch is None:
        figures["throughput_solves_per_s"], figures["throughput_from"] = figures["solves_per_s"], "loop"
    else:
        angles, seconds = batch
        figures["throughput_solves_per_s"], figures["throughput_from"] = len(angles) / seconds, "solve_batch"
        figures["batch_vs_loop_max_diff_rad"] = float(np.abs(angles - collected.angles).max())
    return figures


def _path(peer: Peer, cases: Cases, budget: float, tolerance: float, *, warm: bool) -> dict[str, Any]:
    """The path frame by frame, each from the cold start or from the previous frame's answer."""
    answers: list[Answer] = []
    start = cases.start
    deadline = time.perf_counter() + budget
    for target in cases.path:
        answers.append(peer.solve(target, start))
        if warm:
            start = peer.chain.compress(answers[-1].angles)
        if time.perf_counter() > deadline:
            break
    collected = _collect(answers)
    figures: dict[str, Any] = score(peer.chain, cases.path, collected, cases.threshold, tolerance)
    figures["max_jump_deg"] = max_jump_deg(peer.chain, collected.angles)
    return figures


def _collect(answers: list[Answer]) -> Answers:
    return Answers(np.stack([a.angles for a in answers]), np.stack([a.tip for a in answers]),
                   np.array([a.seconds for a in answers]))
