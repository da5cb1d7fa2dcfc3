"""Smoke run of scripts/benchmark.py with the core's own solvers only (no bpy, ikpy or pybullet),
its motion section on two small rigs, and the helpers that build the peers' models and the paths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from blender_ik_addon.core import euler_to_matrix, tip_positions
from blender_ik_addon.core.examples import ball_limb, hinge_limb, human_arm, rope

from .conftest import random_chain

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
CHAINS = ("tutorial_arm", "kuka_iiwa", "human_arm", "tentacle")
SOLVER_KEYS = {"status", "fk_max_error", "violation_tolerance_rad", "targets", "path"}
FIGURES = {"n", "success_rate", "reach_rate", "median_ms", "p95_ms", "solves_per_s", "max_limit_violation_deg",
           "max_locked_drift_deg"}
MOTION_RIGS = ("hinge_limb", "human_arm")
MOTION_FRAMES = 12
MOTION_FIGURES = {"frames", "max_step_deg", "median_step_deg", "pops", "pop_frames", "reach_rate",
                  "max_limit_violation_deg", "loop_closing_step_deg", "ms_per_frame"}
SWITCH_FIGURES = {"switches", "switch_frames", "unflagged_pops", "max_step_outside_switches_deg"}
MOTION_GOALS = {"no_unflagged_pop", "switches_vs_blender_pops", "step_vs_warm", "continuous_no_pop", "reach",
                "no_limit_violation", "shuffled_identical"}


@pytest.fixture(scope="module")
def scripts_on_path() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SCRIPTS))
        yield


@pytest.fixture(scope="module")
def report(scripts_on_path: None, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    import benchmark

    out = tmp_path_factory.mktemp("benchmark")
    # Five tutorial sweeps and a 2 s budget keep the (slow, by design) tutorial solver short; the
    # add-on's section needs Blender (tests/blender/test_benchmark_addon.py) and is skipped here, and
    # so is Blender in the motion section (not among --solvers).
    code = benchmark.main(["--quick", "--solvers", "ours,tutorial", "--tutorial-sweeps", "5", "--budget", "2",
                           "--addon-frames", "0", "--motion-frames", str(MOTION_FRAMES), "--motion-rigs",
                           ",".join(MOTION_RIGS), "--out", str(out)])
    assert code == 0
    text = (out / "benchmark.md").read_text()
    assert text.startswith("# IK benchmark") and "## Motion (issue 9)" in text and "### Goals (issue 9)" in text
    return json.loads((out / "benchmark.json").read_text())  # type: ignore[no-any-return]


def test_report_layout(report: dict) -> None:  # type: ignore[type-arg]
    assert {"machine", "settings", "chains", "addon_in_blender", "motion"} <= report.keys()
    assert {"cpu", "cores", "python", "numpy", "date"} <= report["machine"].keys()
    assert report["addon_in_blender"]["status"] == "skipped (--addon-frames 0)"
    assert report["settings"]["addon_frames"] == 0
    for key in CHAINS:
        chain = report["chains"][key]
        if isinstance(chain, str):  # the KUKA needs pybullet_data
            assert key == "kuka_iiwa" and chain.startswith("unavailable")
            continue
        assert {"info", "solvers", "goals"} <= chain.keys()
        for name in ("ours", "tutorial"):
            solver = chain["solvers"][name]
            assert solver["status"] == "ok"
            assert solver.keys() >= SOLVER_KEYS
            assert solver["targets"].keys() >= FIGURES
            assert "max_jump_deg" in solver["path"]["cold"] and "max_jump_deg" in solver["path"]["warm"]


def test_ours_solves_the_quick_set(report: dict) -> None:  # type: ignore[type-arg]
    for key, chain in report["chains"].items():
        if isinstance(chain, str):
            continue
        ours = chain["solvers"]["ours"]["targets"]
        assert ours["n"] == chain["info"]["targets"], key
        assert ours["success_rate"] >= 0.99, key
        assert ours["max_limit_violation_deg"] == 0.0, key
        assert chain["solvers"]["ours"]["targets"]["throughput_from"] == "solve_batch"


@pytest.mark.parametrize("seed", range(4))
def test_single_axis_form_reproduces_fk(scripts_on_path: None, seed: int) -> None:
    from bench.chains import axis_rotation, single_axis_form

    chain = random_chain(seed, scaled_base=False)  # mixed orders, locked axes with fixed values
    form = single_axis_form(chain)
    poses = np.random.default_rng(seed).uniform(-2, 2, (10, chain.n_dofs))
    for q in poses:
        frame = np.eye(4)
        for joint in form.joints:
            frame = frame @ joint.before @ axis_rotation(joint.axis, q[joint.dof])
        np.testing.assert_allclose((frame @ form.tip)[:3, 3], tip_positions(chain, q[None])[0], atol=1e-12)


def test_fit_euler_picks_the_triple_within_limits(scripts_on_path: None) -> None:
    from bench.blender_peer import fit_euler

    shoulder = human_arm().joints[0]  # order YXZ; X (the middle angle) may reach 170 degrees
    angles = np.array([2.5, 0.3, 0.2])
    rotation = euler_to_matrix(angles, shoulder.order)
    np.testing.assert_allclose(fit_euler(rotation, shoulder), angles, atol=1e-12)


def test_motion_section_layout(report: dict) -> None:  # type: ignore[type-arg]
    motion = report["motion"]
    assert motion["status"] == "ok" and motion["frames"] == MOTION_FRAMES
    assert list(motion["rigs"]) == list(MOTION_RIGS)
    for key, rig in motion["rigs"].items():
        assert rig["status"] == "ok", key
        assert rig["info"]["blender"].startswith("not run"), key
        assert list(rig["paths"]) == ["glide", "circle", "eight"]
        for name, entry in rig["paths"].items():
            assert entry["info"]["reachable_points"] == MOTION_FRAMES, (key, name)
            solvers = entry["solvers"]
            assert solvers["blender"] == {"status": rig["info"]["blender"]}
            for mode in ("nearest", "continuous", "warm"):
                assert solvers[mode].keys() >= MOTION_FIGURES, (key, name, mode)
                assert solvers[mode]["frames"] == MOTION_FRAMES
            for mode in ("nearest", "continuous"):
                assert solvers[mode].keys() >= SWITCH_FIGURES, (key, name, mode)
            assert "cold_solve_ms_per_frame" in solvers["nearest"]
            assert set(entry["shuffled"]) == {"max_abs_diff_rad", "identical", "seed"}
            assert set(entry["goals"]) == MOTION_GOALS
            assert entry["goals"]["switches_vs_blender_pops"]["met"] is None  # Blender did not run
            assert all(goal["met"] in (True, False) for name, goal in entry["goals"].items()
                       if name != "switches_vs_blender_pops")


def test_motion_figures_count_pops_on_rotations(scripts_on_path: None) -> None:
    from bench.motion import motion_figures

    chain = hinge_limb()
    frames = 40
    angles = np.zeros((frames, chain.n_joints, 3))
    angles[:, 1, 0] = np.radians(np.arange(frames) * 1.0 + 20)  # the elbow bends 1 degree per frame ...
    angles[25:, 1, 0] += np.radians(30)  # ... and pops by 30 degrees into frame 25
    angles[10:, 0, 2] = 2 * np.pi  # a whole turn of an unlimited axis: the same rotation, no step
    targets = tip_positions(chain, chain.compress(angles))
    figures = motion_figures(chain, angles, targets, seconds=0.004, violation_tolerance=1e-9)
    assert figures["pop_frames"] == [25] and figures["pops"] == 1
    assert figures["median_step_deg"] == pytest.approx(1.0)
    assert figures["max_step_deg"] == pytest.approx(31.0)
    assert figures["reach_rate"] == 1.0 and figures["max_limit_violation_deg"] == 0.0
    assert figures["ms_per_frame"] == pytest.approx(0.1)


def test_motion_paths_are_closed_and_reachable(scripts_on_path: None) -> None:
    from bench.motion import load_rigs, make_paths

    (rig,), _ = load_rigs(["ball_limb"])
    root, reach = rig.chain.reach_sphere
    for path in make_paths(rig, 24, ["glide", "circle", "eight"]):
        assert path.targets.shape == (24, 3)
        assert path.info["reachable_points"] == 24 and path.info["scale"] == 1.0
        distance = np.linalg.norm(path.targets - root, axis=1)
        assert distance.max() <= 0.99 * reach
        steps = np.linalg.norm(np.diff(np.vstack([path.targets, path.targets[:1]]), axis=0), axis=1)
        assert steps.max() < 0.2 * reach, path.name  # smooth, and closed: the last frame leads back to the first


def test_motion_rig_builders() -> None:
    assert ball_limb().n_dofs == 6 and ball_limb().reach_sphere[1] == pytest.approx(2.0)
    assert not np.isfinite(ball_limb().upper).any()
    hinge = hinge_limb()
    assert hinge.n_dofs == 4 and np.degrees(hinge.upper[-1]) == pytest.approx(150.0) and hinge.lower[-1] == 0.0
    long_rope = rope()
    assert long_rope.n_joints == 100 and long_rope.n_dofs == 200 and long_rope.length == pytest.approx(5.0)
