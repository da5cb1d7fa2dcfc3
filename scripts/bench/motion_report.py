"""The markdown of the motion section (:mod:`.motion`)."""

from __future__ import annotations

from typing import Any

from .motion import GLIDE_REACH, POP_FLOOR_DEG, POP_RATIO, SHUFFLE_TOLERANCE, STEP_GOAL

SOLVER_LABELS = {
    "nearest": "ours, nearest",
    "continuous": "ours, continuous",
    "warm": "ours, warm (reference)",
    "blender": "Blender IK",
}
GOAL_COLUMNS = {
    "no_unflagged_pop": "no unflagged pop",
    "switches_vs_blender_pops": "switches ≤ Blender's pops",
    "step_vs_warm": f"step ≤ {STEP_GOAL:g}× warm's, outside switches",
    "continuous_no_pop": "continuous: no pop",
    "reach": "reach 100 %",
    "no_limit_violation": "no limit violation",
    "shuffled_identical": "shuffled identical",
}


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _row(path: str, name: str, figures: dict[str, Any]) -> str:
    label = SOLVER_LABELS[name]
    if "max_step_deg" not in figures:
        return f"| {path} | {label} | {figures.get('status', '?')} |" + " |" * 8
    ms = _num(figures["ms_per_frame"])
    if "cold_solve_ms_per_frame" in figures:
        ms += f" (one cold `solve()` per frame: {_num(figures['cold_solve_ms_per_frame'])})"
    switches = str(figures["switches"]) if "switches" in figures else "–"
    unflagged = str(figures["unflagged_pops"]) if "unflagged_pops" in figures else "–"
    cells = [path, label, _num(figures["max_step_deg"]), _num(figures["median_step_deg"]), str(figures["pops"]),
             _pct(figures["reach_rate"]), _num(figures["max_limit_violation_deg"]), switches, unflagged,
             _num(figures["loop_closing_step_deg"]), ms]
    return "| " + " | ".join(cells) + " |"


def _goal_cell(key: str, goal: dict[str, Any]) -> str:
    if goal["met"] is None:
        return "not measured"
    value = goal["value"]
    if key == "switches_vs_blender_pops":
        text = f"{value[0]} vs {value[1]}"
    elif key == "step_vs_warm":
        text = f"{_num(value)}×"
    elif key == "reach":
        text = _pct(value)
    elif key == "no_limit_violation":
        text = f"{_num(value)}°"
    elif key == "shuffled_identical":
        text = f"{_num(value, 2)} rad"
    else:
        text = str(value)
    return f"{text} ({'met' if goal['met'] else '**unmet**'})"


def motion_section(motion: dict[str, Any]) -> list[str]:
    """The markdown lines of the motion section (its status alone unless it was measured)."""
    lines = ["## Motion (issue 9)", ""]
    if motion.get("status") != "ok":
        return [*lines, f"Status: {motion.get('status', '?')}.", ""]
    lines += [
        f"Each rig follows three closed {motion['frames']}-frame target paths, solved frame by frame: a straight "
        f"*glide* from the paths' centre out to {GLIDE_REACH:.0%} of the reach (the limb nearly straight) and back, "
        "a *circle* and a *figure eight* about that centre, every point checked reachable within the limits. "
        "**ours, nearest**: `solve_path(mode=\"nearest\")`, every frame on its own (the add-on's way; also timed "
        "as one cold `solve()` per frame); **ours, continuous**: `solve_path(mode=\"continuous\")`; **ours, warm**: "
        "`solve(initial=previous frame)`; **Blender IK**: its IK constraint on the same rig (bone IK limits equal "
        "to the chain's), the target keyed on every frame and each frame evaluated by `scene.frame_set` (timed), "
        "starting from the rest pose.",
        "",
        "Step: the largest rotation of any joint from the previous frame (on rotation matrices: Euler aliases "
        f"are no step). Pop: a step above {POP_RATIO:g}× the path's median step and {POP_FLOOR_DEG:g}°. Flagged "
        "switches: the frames `solve_path` marks (`PathResult.switches`). Reach: tip within the success threshold "
        "(1e-3 × chain length). Limit violation: the largest excess over the chain's Euler limits, locked axes "
        "included (Blender's answers read back as the Euler triple that best fits them). Loop: the step from the "
        "last frame back to the first, which a looping animation plays (not counted as a pop). ms/frame: the "
        "solver's own time over the path (Blender: `frame_set`, which also evaluates the keyed target).",
        "",
    ]
    goal_rows: list[str] = []
    met_rows = measured_rows = 0
    for key, rig in motion["rigs"].items():
        if rig.get("status") != "ok":
            lines += [f"### {key}", "", f"Status: {rig.get('status')}.", ""]
            continue
        info = rig["info"]
        sizes = "; ".join(f"{name}: {entry['info']['size']}" for name, entry in rig["paths"].items())
        lines += [
            f"### {info['title']}",
            "",
            f"`{key}`: {info['joints']} joints, {info['dofs']} DOF, reach {_num(info['reach'])}; reached: tip within "
            f"{_num(info['success_threshold'])}; ours asked for {_num(info['requested_tolerance'])}. Paths: {sizes}. "
            f"Blender: {info['blender']}.",
            "",
            "| path | solver | max step (°) | median step (°) | pops | reach | max limit violation (°) "
            "| flagged switches | pops not flagged | loop (°) | ms/frame |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for path, entry in rig["paths"].items():
            lines += [_row(path, name, figures) for name, figures in entry["solvers"].items()]
            goals = entry["goals"]
            goal_rows.append(f"| {key} | {path} | " + " | ".join(_goal_cell(g, goals[g]) for g in GOAL_COLUMNS) + " |")
            measured = [goal["met"] for goal in goals.values() if goal["met"] is not None]
            measured_rows += 1
            met_rows += all(measured)
        mismatch = [f"{path} {_num(entry['solvers']['nearest']['cold_solve_vs_batch_max_diff_rad'], 2)} rad"
                    for path, entry in rig["paths"].items()
                    if entry["solvers"]["nearest"]["cold_solve_vs_batch_max_diff_rad"] > SHUFFLE_TOLERANCE]
        if mismatch:
            lines += ["", f"One cold `solve()` per frame differs from `solve_path`'s poses: {', '.join(mismatch)}."]
        lines.append("")
    lines += [
        "### Goals (issue 9)",
        "",
        "Ours in mode nearest unless the column says otherwise; reach and limits: nearest and continuous. "
        f"Step: ours' largest step outside flagged frames / the warm path's largest step. Shuffled: the frames "
        f"solved in a random order (mode nearest), largest angle difference from the in-order poses (identical: "
        f"≤ {SHUFFLE_TOLERANCE:g} rad).",
        "",
        "| rig | path | " + " | ".join(GOAL_COLUMNS.values()) + " |",
        "|---|---|" + "---|" * len(GOAL_COLUMNS),
        *goal_rows,
        "",
        f"{met_rows} of {measured_rows} rig × path rows meet every measured goal.",
        "",
    ]
    return lines
