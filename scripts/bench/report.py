"""Machine information, the goals of issue 2 as ratios, and the markdown report."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from . import REPO_ROOT
from .motion_report import motion_section

# name: (comparison, goal, what it compares)
GOALS: dict[str, tuple[str, float, str]] = {
    "batch_vs_blender": (">=", 3.0, "our solve_batch solves/s / Blender's solves/s (1 / mean ms per update)"),
    "single_vs_blender": ("<=", 2.0, "our median ms per cold solve / Blender's median ms per update"),
    "ikpy_vs_ours": (">=", 20.0, "ikpy's median ms per solve / ours"),
}
SUCCESS_GOAL = 0.999


def machine_info() -> dict[str, Any]:
    """CPU, cores, versions, date and the repository commit."""
    versions: dict[str, str | None] = {}
    for package in ("bpy", "numba", "ikpy", "pybullet", "scipy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1min": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        **versions,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
    }


def load_average() -> float | None:
    """The 1-minute load average: other work on a shared machine skews every timing."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def goals(solvers: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals for one chain: each ``{"value", "goal", "met"}``, value None if unmeasured."""
    figures = {name: result["targets"] for name, result in solvers.items() if result.get("status") == "ok"}
    ours = figures.get("ours")
    out = _speed_goals(ours, figures.get("blender"), figures.get("ikpy"))
    success = ours["success_rate"] if ours else None
    out["ours_success"] = {"value": success, "goal": f">= {SUCCESS_GOAL:.1%} with no limit violation",
                           "met": None if success is None else success >= SUCCESS_GOAL}
    if "ours_numpy" in figures:  # the same ratios for the numpy backend (Blender without numba)
        out["numpy_backend"] = _speed_goals(figures["ours_numpy"], figures.get("blender"), figures.get("ikpy"))
    return out


def _speed_goals(ours: dict[str, Any] | None, blender: dict[str, Any] | None,
                 ikpy: dict[str, Any] | None) -> dict[str, Any]:
    values = {
        "batch_vs_blender": ours["throughput_solves_per_s"] / blender["solves_per_s"] if ours and blender else None,
        "single_vs_blender": ours["median_ms"] / blender["median_ms"] if ours and blender else None,
        "ikpy_vs_ours": ikpy["median_ms"] / ours["median_ms"] if ours and ikpy else None,
    }
    out: dict[str, Any] = {}
    for name, value in values.items():
        comparison, goal, _ = GOALS[name]
        met = None if value is None else (value >= goal if comparison == ">=" else value <= goal)
        out[name] = {"value": value, "goal": f"{comparison} {goal:g}", "met": met}
    return out


# -- markdown ---------------------------------------------------------------------------------
def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _solver_row(name: str, result: dict[str, Any], frames: int) -> str:
    if result.get("status") != "ok":
        return f"| {name} | {result.get('status', '?')} |" + " |" * 9
    t, cold, warm = result["targets"], result["path"]["cold"], result["path"]["warm"]
    batch = " (batch)" if t["throughput_from"] == "solve_batch" else ""

    def path(p: dict[str, Any]) -> str:
        cut = "" if p["n"] == frames else f" ({p['n']} frames)"
        return f"{_pct(p['success_rate'])} / {_num(p['max_jump_deg'])}°{cut}"

    label = f"{name.removesuffix('_numpy')} ({result['backend']})" if result.get("backend") else name
    cells = [label, _pct(t["success_rate"]), _pct(t["reach_rate"]), str(t["n"]), _num(t["median_ms"]),
             _num(t["p95_ms"]), _num(t["throughput_solves_per_s"]) + batch, _num(t["max_limit_violation_deg"]),
             _num(t["max_locked_drift_deg"]), path(cold), path(warm)]
    return "| " + " | ".join(cells) + " |"


def _chain_section(key: str, chain: dict[str, Any]) -> list[str]:
    info = chain["info"]
    lines = [
        f"### {info['title']}",
        "",
        f"{info['joints']} joints, {info['dofs']} DOF, length {info['length']:.4g}; success: tip error < "
        f"{info['success_threshold']:.3g} and no limit violation (reached: the tip error alone); requested tolerance "
        f"{info['requested_tolerance']:.3g}; "
        f"{info['targets']} targets, {info['path_frames']}-frame path.",
        "",
        "| solver | success | reached | n | median ms | p95 ms | solves/s | max limit violation (°) "
        "| max locked-axis drift (°) | path cold: success / max jump | path warm: success / max jump |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_solver_row(name, result, info["path_frames"]) for name, result in chain["solvers"].items()]
    checks = [f"{name} {_num(r['fk_max_error'], 2)}" for name, r in chain["solvers"].items() if "fk_max_error" in r]
    if checks:
        lines += ["", f"FK check (largest tip distance from the core's FK over 20 random poses): {', '.join(checks)}."]
    return [*lines, ""]


def _goal_cell(goal: dict[str, Any], percent: bool = False) -> str:
    if goal["value"] is None:
        return "not measured"
    mark = "met" if goal["met"] else "**missed**"
    value = _pct(goal["value"]) if percent else f"{_num(goal['value'])}×"
    return f"{value} ({mark})"


def markdown(results: dict[str, Any]) -> str:
    """The whole report as markdown."""
    machine, settings = results["machine"], results["settings"]
    lines = [
        "# IK benchmark",
        "",
        f"{machine['date']} on {machine['cpu']} ({machine['cores']} cores; 1-min load average "
        f"{_num(machine['load_average_1min'])} at the start, {_num(machine['load_average_1min_end'])} at the end), "
        f"Python {machine['python']}, numpy {machine['numpy']}, bpy {machine['bpy']}, numba {machine.get('numba')}, "
        f"ikpy {machine['ikpy']}, pybullet {machine['pybullet']}, commit {machine['commit']}.",
        "",
        f"Settings: {settings['targets']} targets and a {settings['frames']}-frame path per chain, seed "
        f"{settings['seed']}, budget {settings['budget']:g} s per solver and case, tutorial sweeps "
        f"{settings['tutorial_sweeps']}. `n` is how many targets a solver finished within the budget."
        if results["chains"] else f"Settings: the motion section only, seed {settings['seed']}.",
        "",
    ]
    if results["chains"]:
        lines += _chains_part(results)
    lines += addon_section(results["addon_in_blender"])
    if "motion" in results:
        lines += motion_section(results["motion"])
    return "\n".join(lines)


def _chains_part(results: dict[str, Any]) -> list[str]:
    """The per-chain results and the goals of issue 2."""
    lines = ["## Results per chain", ""]
    for key, chain in results["chains"].items():
        lines += [f"### {key}", "", chain, ""] if isinstance(chain, str) else _chain_section(key, chain)
    lines += ["## Goals (issue 2)", "", "| chain | ours: success ≥ 99.9 % | batch ≥ 3× Blender's rate | "
              "single solve ≤ 2× Blender's time | ≥ 20× faster than ikpy |", "|---|---|---|---|---|"]
    for key, chain in results["chains"].items():
        if isinstance(chain, str):
            continue
        g = chain["goals"]
        lines.append(f"| {key} | {_goal_cell(g['ours_success'], percent=True)} | {_goal_cell(g['batch_vs_blender'])} "
                     f"| {_goal_cell(g['single_vs_blender'])} | {_goal_cell(g['ikpy_vs_ours'])} |")
    lines += ["", *(f"- {name}: {text}" for name, (_, _, text) in GOALS.items()), ""]
    numpy_rows = [(key, chain["goals"]["numpy_backend"]) for key, chain in results["chains"].items()
                  if not isinstance(chain, str) and "numpy_backend" in chain["goals"]]
    if numpy_rows:
        lines += ["The same speed ratios for the numpy backend (`ours_numpy`: what runs where numba is not "
                  "installed, e.g. a Blender with the pure-Python extension zip):", "",
                  "| chain | batch ≥ 3× Blender's rate | single solve ≤ 2× Blender's time | ≥ 20× faster than ikpy |",
                  "|---|---|---|---|"]
        lines += [f"| {key} | {_goal_cell(g['batch_vs_blender'])} | {_goal_cell(g['single_vs_blender'])} "
                  f"| {_goal_cell(g['ikpy_vs_ours'])} |" for key, g in numpy_rows]
        lines.append("")
    return lines


_LIVE_ROWS = {"arm": "1 arm", "8_arms": "8 arms", "tentacle": "1 tentacle", "8_tentacles": "8 tentacles",
              "character": "character"}
_BAKE_ROWS = {
    "ours": "ours: `bake_chains`",
    "ours_numpy": "ours: `bake_chains`, numpy backend",
    "ours_frame_path": "ours: `bake_chains`, frame-stepping path",
    "nla_bake_visual_keying": "Blender IK + `nla.bake(visual_keying=True)`",
    "nla_bake_rotation_only": "Blender IK + `nla.bake`, rotation channels only",
}


def addon_section(addon: dict[str, Any]) -> list[str]:
    """The markdown lines of the add-on's section (its status alone unless it was measured)."""
    lines = ["## The add-on inside Blender", ""]
    if addon["status"] != "ok":
        return [*lines, f"Status: {addon['status']}.", ""]
    live, bake = addon["live_handler"], addon["bake"]
    lines += [f"Add-on {addon['registration']}; handler lists restored afterwards: {addon['handlers_restored']}.", "",
              *_live_lines(addon, live)]
    ratio = addon["bake_vs_nla_bake"]
    nla = bake["nla_bake_visual_keying"]["ms_per_frame"]
    lines += [
        f"### Bake: one 3-bone chain, {bake['frames']} frames (best of {bake['runs']} runs)",
        "",
        "Chains of 3 connected 1-unit bones (quaternion rotation), the add-on's default settings (LM, "
        "tolerance 1e-4); targets are Empties keyed every 10 frames on a smooth path within reach. "
        "Blender's side: an IK constraint (chain_count 3, Standard solver) on an identical rig and target, baked "
        "with `nla.bake(only_selected=True, visual_keying=True, clear_constraints=False, bake_types={'POSE'})` "
        "from pose mode with the bones selected; by default it keys location, rotation and scale (10 channels "
        "per bone), ours keys the 4 rotation channels. Tip error: every baked frame played back from the keys "
        "alone (chain disabled, constraint muted), world units.",
        "",
        "| bake | ms per frame | vs Blender's visual-keying bake | runs (ms per frame) | path "
        "| tip error max / median |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in _BAKE_ROWS.items():
        figures = bake[name]
        runs = ", ".join(_num(t) for t in figures["runs_ms_per_frame"])
        path = figures.get("path", "–")
        if figures.get("reason"):
            path += f" ({figures['reason']})"
        error = figures.get("tip_error")
        errors = f"{_num(error['max'], 2)} / {_num(error['median'], 2)}" if error else "–"
        lines.append(f"| {label} | {_num(figures['ms_per_frame'])} | {_num(figures['ms_per_frame'] / nla)}× "
                     f"| {runs} | {path} | {errors} |")
    mark = "met" if ratio["met"] else "**missed**"
    lines += ["", f"Goal (issue 3): our bake takes {ratio['goal']}× Blender's time per frame: "
                  f"{_num(ratio['value'])}× ({mark}).", ""]
    return lines


def _mm(error: dict[str, Any]) -> str:
    return _num(1e3 * error["max"], 2)


def _floor_ratio(overhead: dict[str, float]) -> str:
    floor, blender = overhead.get("solve_and_write"), overhead.get("blender")
    return "–" if floor is None or not blender or blender <= 0 else f"{_num(floor / blender)}×"


def _live_lines(addon: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """The live handler's tables: ours beside Blender's IK, numpy backend, still targets, playback."""
    moving, numpy, still = live["moving_targets"], live["numpy_backend"], live["still_targets"]
    lines = [
        f"### Live handler beside Blender's IK: median ms per `scene.frame_set()` ({live['frames']} frames × "
        f"{live['passes']} passes)",
        "",
        "Rigs of Euler ('XYZ') bones whose limits are their IK settings (`lock_ik_*`, `ik_min_*`/`ik_max_*`), "
        "which both solvers read: an arm (upper arm 0.30 m with x ±90°, y ±60°, z −90..30°; a forearm hinge "
        "0..150°; a hand ±40°/±20°, twist locked; chain of 3), a tentacle (20 bones of 0.1 m, twist locked, "
        "±30° about x and z; chain of 20), 8 of each side by side in one armature, and a character (hips; "
        "a spine chain of 3; two clavicles and arms, chains of 3; two legs whose chains of 2 end at the "
        "ankle with a 0..150° knee hinge: 5 chains). Targets are Empties keyed every 10 frames on smooth "
        "paths within reach. Each pass plays the frames with nothing solving (our chains disabled, the IK "
        "constraints muted), then with Blender's IK constraints (chain_count as ours, Standard solver), then "
        "with our live chains (numba backend: the live pass's fast lane replaying its last full pass), then "
        "with every frame a full pass (the fast lane off), then with a stand-in handler that only runs our "
        "kernel on each frame's chain-space targets (recorded beforehand) and writes the pose with the add-on's "
        "tag (`scripts/bench/write_floor.py`: no target or base read, nothing checked, one kernel call for all "
        "chains): the least a live solver that solves as ours does can cost; overhead = its median − nothing's. "
        "Every pass starts from the rest pose. Tip error: the largest distance from a tip to its target at 3 "
        "frames, after the timing.",
        "",
        "| rig | chains (bones) | nothing solving (ms) | Blender IK overhead (ms) | ours overhead (ms) "
        "| ours / Blender | goal | ours, full pass every frame (ms) | floor: solve + write (ms) | floor / Blender "
        "| max tip error, Blender / ours (mm) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rig, figures in moving.items():
        goal, overhead, error = figures["goal"], figures["overhead_ms"], figures["tip_error"]
        met = "–" if goal["met"] is None else "met" if goal["met"] else "**not met**"
        lines.append(f"| {_LIVE_ROWS.get(rig, rig)} | {figures['chains']} ({figures['bones']}) "
                     f"| {_num(figures['ms']['none'])} | {_num(overhead['blender'])} | {_num(overhead['ours'])} "
                     f"| {_num(goal['value'])}× | {goal['goal']}×: {met} "
                     f"| {_num(overhead.get('ours_full_pass'))} | {_num(overhead.get('solve_and_write'))} "
                     f"| {_floor_ratio(overhead)} | {_mm(error['blender'])} / {_mm(error['ours'])} |")
    if numpy:
        lines += [
            "",
            f"The same with our chains on the numpy backend (`IK_CHAINS_NUMBA=0`, what a Blender without numba "
            f"runs), {live['numpy_frames']} frames × {live['passes']} passes:",
            "",
            "| rig | Blender IK overhead (ms) | ours, numpy, overhead (ms) | ours / Blender "
            "| max tip error, ours (mm) |",
            "|---|---|---|---|---|",
        ]
        for rig, figures in numpy.items():
            overhead = figures["overhead_ms"]
            lines.append(f"| {_LIVE_ROWS.get(rig, rig)} | {_num(overhead['blender'])} | {_num(overhead['ours'])} "
                         f"| {_num(figures['ratio'])}× | {_mm(figures['tip_error']['ours'])} |")
    if still:
        lines += [
            "",
            "Still targets (not keyed): the add-on skips a chain whose inputs did not change; Blender's IK is not "
            "re-evaluated either when nothing is animated.",
            "",
            "| rig | chains | nothing solving (ms) | Blender IK overhead (ms) | ours overhead (ms) "
            "| ours per chain (ms) | goal |",
            "|---|---|---|---|---|---|---|",
        ]
        for rig, figures in still.items():
            goal, overhead = figures["goal"], figures["overhead_ms"]
            lines.append(f"| {_LIVE_ROWS.get(rig, rig)} | {figures['chains']} | {_num(figures['ms']['none'])} "
                         f"| {_num(overhead['blender'])} | {_num(overhead['ours'])} | {_num(goal['value'])} "
                         f"| {goal['goal']}: {'met' if goal['met'] else '**not met**'} |")
    fps = addon["character_fps"]
    lines += ["", f"Character playback (`frame_set` alone, nothing drawn): {_num(fps['ours'])} fps with our live "
                  f"chains, {_num(fps['blender'])} fps with Blender's IK, {_num(fps['none'])} fps with nothing "
                  "solving.", ""]
    return lines
