"""Smoke run of scripts/benchmark.py with the core's own solvers only (no bpy, ikpy or pybullet),
and the helpers that build the peers' models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from blender_ik_addon.core import euler_to_matrix, tip_positions
from blender_ik_addon.core.examples import human_arm

from .conftest import random_chain

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
CHAINS = ("tutorial_arm", "kuka_iiwa", "human_arm", "tentacle")
SOLVER_KEYS = {"status", "fk_max_error", "violation_tolerance_rad", "targets", "path"}
FIGURES = {"n", "success_rate", "reach_rate", "median_ms", "p95_ms", "solves_per_s", "max_limit_violation_deg",
           "max_locked_drift_deg"}


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
    # add-on's section needs Blender (tests/blender/test_benchmark_addon.py) and is skipped here.
    code = benchmark.main(["--quick", "--solvers", "ours,tutorial", "--tutorial-sweeps", "5", "--budget", "2",
                           "--addon-frames", "0", "--out", str(out)])
    assert code == 0
    assert (out / "benchmark.md").read_text().startswith("# IK benchmark")
    return json.loads((out / "benchmark.json").read_text())  # type: ignore[no-any-return]


def test_report_layout(report: dict) -> None:  # type: ignore[type-arg]
    assert {"machine", "settings", "chains", "addon_in_blender"} <= report.keys()
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
