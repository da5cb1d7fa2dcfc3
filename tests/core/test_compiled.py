"""The compiled (numba) backend: the same solver as the numpy one, chosen only where it applies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from blender_ik_addon.core import (
    Chain,
    ComfortPose,
    IKInputError,
    SolveResult,
    SolverOptions,
    euler_to_matrix,
    evaluate,
    forward,
    make_problem,
    solve,
    solve_batch,
)
from blender_ik_addon.core.compiled import numba_available, plan_of, posture_of, unsupported_reason, use_compiled
from blender_ik_addon.core.examples import hinge_limb, human_arm, tentacle, tutorial_arm
from blender_ik_addon.core.objectives import pole_alignment

from .conftest import random_chain, reachable

ROOT = Path(__file__).resolve().parents[2]
needs_numba = pytest.mark.skipif(not numba_available(), reason="numba is not installed (or IK_CHAINS_NUMBA=0)")


@needs_numba
@pytest.mark.parametrize("seed", range(6))
def test_kernel_residuals_and_jacobians_equal_the_numpy_ones(seed: int) -> None:
    # Mixed Euler orders, locked axes with fixed values, rotated rests, a scaled base, a tip offset;
    # an orientation task (one rotation near a half turn, the log map's hard case), a pole, comfort.
    from blender_ik_addon.core import kernel

    chain = random_chain(seed, joints=5)
    n, m = chain.n_joints, chain.n_dofs
    rng = np.random.default_rng(seed)
    q = chain.clamp(rng.uniform(-2, 2, (8, m)))
    targets = rng.uniform(-1, 1, (8, 3))
    orientations = euler_to_matrix(rng.uniform(-np.pi, np.pi, (8, 3)))
    orientations[0] = forward(chain, q[:1]).tip_rotation[0] @ euler_to_matrix([np.pi - 1e-9, 0.0, 0.0])
    poles = rng.uniform(-2, 2, (8, 3))
    comfort = ComfortPose(rng.uniform(-0.5, 0.5, m), weights=rng.uniform(0.0, 0.3, m))
    problems = [make_problem(chain, targets),
                make_problem(chain, targets, orientations=orientations, orientation_weight=0.7),
                make_problem(chain, targets, poles=poles, pole_weight=0.3, comfort=comfort)]
    plan = plan_of(chain)
    for problem in problems:
        rows = 3 if problem.orientations is None else 6
        expected = evaluate(problem, q)
        assert expected.primary_jacobian is not None
        secondary_rows = 0 if expected.secondary is None else expected.secondary.shape[1]
        workspace = kernel._workspace(m, n)
        pole_rows = 3 * (n - 1) if problem.poles is not None else 0
        secondary_workspace = kernel._secondary_workspace(m, n, secondary_rows, pole_rows)
        posture_jacobian = np.empty((m, 3))
        residual, jacobian = np.empty(6), np.empty((6, m))
        secondary, secondary_jacobian = np.empty(max(secondary_rows, 1)), np.empty((max(secondary_rows, 1), m))
        scale = 0.0 if problem.orientations is None else problem.orientation_weight * problem.reach
        for f in range(len(q)):
            wanted = np.eye(3) if problem.orientations is None else problem.orientations[f]  # chain space
            task = (targets[f], np.ascontiguousarray(wanted), scale, 1e-4, 1e-3)
            cost, orientation_error = kernel._evaluate(q[f], task, plan, residual, jacobian, workspace)
            np.testing.assert_allclose(residual[:rows], expected.primary[f], atol=1e-12, rtol=0)
            np.testing.assert_allclose(jacobian[:rows], expected.primary_jacobian[f], atol=1e-12, rtol=0)
            assert cost == pytest.approx(expected.primary_cost[f], rel=1e-12, abs=1e-15)
            assert orientation_error == pytest.approx(expected.orientation_error[f], rel=1e-9, abs=1e-12)
            if not secondary_rows:
                continue
            assert expected.secondary is not None and expected.secondary_jacobian is not None
            sec = (poles[f], True, problem.pole_weight, posture_of(problem), True, problem.reach)
            secondary_cost = kernel._evaluate_secondary(q[f], targets[f], sec, plan, secondary, secondary_jacobian,
                                                        posture_jacobian, workspace, secondary_workspace)
            np.testing.assert_allclose(secondary[:secondary_rows], expected.secondary[f], atol=1e-12, rtol=0)
            # The kernel keeps the pole rows' Jacobian dense and the comfort rows' compact (block diagonal).
            dense = np.zeros((secondary_rows, m))
            dense[:pole_rows] = secondary_jacobian[:pole_rows]
            for k in range(m):
                first = pole_rows + 3 * int(chain.free_joint[k])
                dense[first:first + 3, k] = posture_jacobian[k]
            np.testing.assert_allclose(dense, expected.secondary_jacobian[f], atol=1e-12, rtol=0)
            assert secondary_cost == pytest.approx(expected.secondary_cost[f], rel=1e-12, abs=1e-15)
            alignment = kernel._pole_alignment(q[f], task, sec, plan, workspace, secondary_workspace)
            assert alignment == pytest.approx(pole_alignment(problem.take(np.array([f])), q[f:f + 1])[0], abs=1e-12)


def assert_backends_agree(compiled: SolveResult, numpy_result: SolveResult, *, same_pose: bool = True) -> None:
    """Same statuses; the same answers to rounding, amplified a little by the settle rule.

    Sums are taken in another order, so a pull toward the preferred pose may settle an iteration
    apart (both under rules.SETTLE_ANGLE from the same optimum), and a stall on a rounding-level
    plateau may be declared a step apart.
    """
    np.testing.assert_array_equal(compiled.status, numpy_result.status)
    converged = numpy_result.converged
    assert np.all(compiled.error[converged] < SolverOptions().tolerance)
    np.testing.assert_allclose(compiled.error[~converged], numpy_result.error[~converged], rtol=1e-5, atol=1e-6)
    if not same_pose:
        # Random chains with mixed axes often have flat valleys of nearly equally near poses,
        # where rounding decides how far the pull slides before it settles or runs out of budget.
        return
    # Where both took the same number of iterations they settled on the same optimum; a pull still
    # moving along a flat valley at the iteration budget may stop at another point of it.
    same = compiled.iterations == numpy_result.iterations
    assert same.mean() >= 0.5
    np.testing.assert_allclose(compiled.q[same], numpy_result.q[same], atol=1e-3, rtol=0)


def _moved(chain: Chain) -> Chain:
    """``chain`` with its root away from the world origin (an armature that is not at the origin)."""
    base = np.eye(4)
    base[:3, 3] = (2.0, 1.0, 0.5)
    return chain.with_base(base)


@needs_numba
@pytest.mark.parametrize(("make", "same_pose"),
                         [(tutorial_arm, True), (human_arm, True), (tentacle, True), (lambda: random_chain(2), False),
                          (lambda: _moved(human_arm()), True), (lambda: _moved(hinge_limb()), True)],
                         ids=["arm", "human", "tentacle", "mixed", "human moved", "hinge limb moved"])
def test_backends_give_the_same_answers(make, same_pose: bool) -> None:  # type: ignore[no-untyped-def]
    chain = make()
    targets, _ = reachable(chain, 120, seed=21)
    targets[7] = 10 * targets[7]  # beyond reach: one attempt, same best effort
    numpy_result = solve_batch(chain, targets, options=SolverOptions(backend="numpy"))
    compiled = solve_batch(chain, targets, options=SolverOptions(backend="numba"))
    assert_backends_agree(compiled, numpy_result, same_pose=same_pose)
    if same_pose:
        # Rounding can move a settle or stall decision by an iteration (and so the restarts after it).
        assert np.mean(compiled.iterations == numpy_result.iterations) >= 0.5


@needs_numba
@pytest.mark.parametrize(("make", "same_pose"),
                         [(human_arm, True), (lambda: random_chain(1, joints=5, scaled_base=False), False)],
                         ids=["human", "mixed"])
def test_backends_agree_on_orientation_tasks(make, same_pose: bool) -> None:  # type: ignore[no-untyped-def]
    chain = make()
    targets, poses = reachable(chain, 80, seed=12)
    orientations = chain.base[:3, :3] @ forward(chain, poses).tip_rotation  # world; reachable with the targets
    results = [solve_batch(chain, targets, orientations=orientations, options=SolverOptions(backend=backend))
               for backend in ("numpy", "numba")]
    numpy_result, compiled = results
    assert numpy_result.converged.mean() >= 0.9
    assert_backends_agree(compiled, numpy_result, same_pose=same_pose)
    assert np.all(compiled.orientation_error[compiled.converged] < SolverOptions().orientation_tolerance)


@needs_numba
def test_compiled_batch_is_exactly_a_loop_of_single_solves() -> None:
    chain = tentacle(segments=8)
    targets, _ = reachable(chain, 30, seed=8)
    targets[3] = (0.0, 50.0, 0.0)
    options = SolverOptions(backend="numba")
    batch = solve_batch(chain, targets, options=options)
    for f, target in enumerate(targets):
        single = solve(chain, target, options=options)
        np.testing.assert_array_equal(single.q, batch.q[f])
        assert single.iterations == batch.iterations[f] and single.status == batch.status[f]


@needs_numba
def test_warm_starts_and_shared_starts_reach_the_kernel_unchanged() -> None:
    chain = human_arm()
    targets, poses = reachable(chain, 20, seed=4)
    starts = chain.clamp(poses + 0.05)
    for initial in (starts, starts[0]):
        a = solve_batch(chain, targets, initial=initial, options=SolverOptions(backend="numba"))
        b = solve_batch(chain, targets, initial=initial, options=SolverOptions(backend="numpy"))
        np.testing.assert_array_equal(a.status, b.status)
        np.testing.assert_allclose(a.q, b.q, atol=1e-5, rtol=0)


def test_auto_picks_the_kernel_for_everything_but_a_soft_comfort_pull() -> None:
    chain = tutorial_arm()
    auto = SolverOptions()
    target = [[1.0, 1.0, 0.0]]
    compiled_kinds = [
        make_problem(chain, target),
        make_problem(chain, target, orientations=np.eye(3)),
        make_problem(chain, target, poles=[0.0, 0.0, 1.0]),
        make_problem(chain, target, comfort=ComfortPose([0.0, 0.5, 0.5], weights=0.2)),
        make_problem(chain, target, comfort=ComfortPose([0.0, 0.5, 0.5], weights=0.0)),
    ]
    for problem in compiled_kinds:
        assert use_compiled(problem, auto) == numba_available()
        assert not use_compiled(problem, SolverOptions(backend="numpy"))
    assert not use_compiled(compiled_kinds[0], SolverOptions(method="tutorial"))
    soft = make_problem(chain, target, comfort=ComfortPose([0.0, 0.5, 0.5], weights=0.2, reach_first=False))
    assert not use_compiled(soft, auto)
    reason = unsupported_reason(soft, auto)
    assert reason is not None and "soft comfort" in reason
    with pytest.raises(IKInputError, match=r"backend 'numba' cannot be used: .*soft comfort"):
        use_compiled(soft, SolverOptions(backend="numba"))


@needs_numba
@pytest.mark.parametrize("case", ["pole", "pole_no_weight", "comfort", "pole_and_comfort"])
def test_backends_agree_on_reach_first_tasks(case: str) -> None:
    # The secondary step, the tip restore, lexicographic acceptance and pole-branch restarts.
    chain = human_arm() if case != "comfort" else tentacle(segments=6)
    targets, _ = reachable(chain, 60, seed=13)
    rng = np.random.default_rng(3)
    kwargs: dict[str, object] = {}
    if "pole" in case:
        kwargs["poles"] = targets + rng.uniform(-0.5, 0.5, targets.shape)
    if "comfort" in case:
        kwargs["comfort"] = ComfortPose(chain.clamp(rng.uniform(-0.5, 0.5, chain.n_dofs)), weights=0.05)
    weight = 0.0 if case == "pole_no_weight" else 0.1
    numpy_result, compiled = (
        solve_batch(chain, targets, options=SolverOptions(backend=backend, pole_weight=weight), **kwargs)  # type: ignore[arg-type]
        for backend in ("numpy", "numba"))
    assert numpy_result.converged.mean() >= 0.9
    assert_backends_agree(compiled, numpy_result)


@needs_numba
def test_zero_weight_comfort_pose_seeds_both_backends_alike() -> None:
    chain = human_arm()
    targets, _ = reachable(chain, 40, seed=6)
    comfort = ComfortPose(np.full(chain.n_dofs, 0.3), weights=0.0)
    a = solve_batch(chain, targets, comfort=comfort, options=SolverOptions(backend="numba"))
    b = solve_batch(chain, targets, comfort=comfort, options=SolverOptions(backend="numpy"))
    assert_backends_agree(a, b)


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, **env})


def test_importing_the_core_does_not_import_numba() -> None:
    out = _run("import sys, blender_ik_addon.core; print('numba' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_kernel_cache_built_with_other_rules_is_deleted(tmp_path: Path) -> None:
    # numba judges its cache by kernel.py alone; rules.py's constants are compiled in.
    from blender_ik_addon.core.compiled import forget_stale_kernel_cache

    folder = tmp_path / "__pycache__"
    folder.mkdir()
    old = [folder / "kernel._attempt-284.py311.nbi", folder / "kernel._attempt-284.py311.1.nbc"]
    other = folder / "chain.cpython-311.pyc"
    for path in (*old, other):
        path.write_bytes(b"x")
    assert forget_stale_kernel_cache(folder)  # no stamp: built with unknown rules
    assert not any(path.exists() for path in old) and other.exists()
    fresh = folder / "kernel._attempt-284.py311.nbi"
    fresh.write_bytes(b"y")  # numba compiles with today's rules
    assert not forget_stale_kernel_cache(folder)
    assert fresh.exists()
    (folder / "kernel.rules-stamp").write_text("0" * 16, encoding="ascii")  # rules.py changed since
    assert forget_stale_kernel_cache(folder)
    assert not fresh.exists()
    assert not forget_stale_kernel_cache(tmp_path / "absent" / "__pycache__")  # cannot create: left alone


def test_disabling_numba_falls_back_to_numpy_and_says_why() -> None:
    code = (
        "from blender_ik_addon.core import SolverOptions, solve, IKInputError\n"
        "from blender_ik_addon.core.compiled import numba_available, unavailable_reason\n"
        "from blender_ik_addon.core.examples import tutorial_arm\n"
        "assert not numba_available()\n"
        "assert unavailable_reason() == 'numba is disabled by IK_CHAINS_NUMBA=0'\n"
        "assert solve(tutorial_arm(), (1.0, 1.0, 0.5)).converged\n"
        "try:\n"
        "    solve(tutorial_arm(), (1.0, 1.0, 0.5), options=SolverOptions(backend='numba'))\n"
        "except IKInputError as err:\n"
        "    print(err)\n"
    )
    out = _run(code, IK_CHAINS_NUMBA="0")
    assert out.returncode == 0, out.stderr
    assert "numba is disabled by IK_CHAINS_NUMBA=0" in out.stdout


def test_chain_plan_is_built_once_and_lists_the_rotations_fk_needs() -> None:
    # Joint 0 turns Z, then X, then Y ("ZXY"); its Y axis is locked at 0.4 rad, so it still turns.
    # Joint 1 has only Y free; its X and Z are locked at zero and skipped.
    chain = Chain.from_arrays(np.stack([np.eye(4)] * 2), orders=["ZXY", "XYZ"],
                              free=[[True, False, True], [False, True, False]], fixed=[[0.0, 0.4, 0.0], [0, 0, 0]],
                              tip_offset=(0, 1, 0))
    plan = plan_of(chain)
    assert plan_of(chain) is plan
    slot_count, slot_axis, slot_dof, slot_fixed = plan[5], plan[6], plan[7], plan[8]
    assert slot_count.tolist() == [3, 1]
    assert slot_axis[0].tolist() == [2, 0, 1] and slot_dof[0].tolist() == [1, 0, -1]
    assert slot_fixed[0, 2] == 0.4
    assert slot_axis[1, 0] == 1 and slot_dof[1, 0] == 2


def test_warm_up_loads_the_kernel_and_never_raises() -> None:
    from blender_ik_addon.core.compiled import warm_up

    warm_up()  # loads or compiles the kernel where numba is available; does nothing otherwise
    out = _run("from blender_ik_addon.core.compiled import warm_up; warm_up(); print('ok')", IK_CHAINS_NUMBA="0")
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@needs_numba
def test_a_kernel_that_cannot_run_falls_back_to_numpy_once_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from blender_ik_addon.core import compiled

    kernel = compiled.kernel_module()
    assert kernel is not None

    def broken(*_args: object) -> None:
        raise RuntimeError("no executable memory")  # as on a locked-down farm node

    monkeypatch.setattr(kernel, "solve_many", broken)
    monkeypatch.setattr(compiled, "_kernel", kernel)  # restored afterwards, with _kernel_error
    monkeypatch.setattr(compiled, "_kernel_error", None)
    chain = tutorial_arm()
    with pytest.warns(RuntimeWarning), pytest.raises(compiled.KernelError, match="no executable memory"):
        solve(chain, (1.0, 1.0, 0.5), options=SolverOptions(backend="numba"))
    monkeypatch.setattr(compiled, "_kernel", kernel)  # the failure above gave up on it; try again
    monkeypatch.setattr(compiled, "_kernel_error", None)
    with pytest.warns(RuntimeWarning, match="solving with numpy from now on"):
        result = solve(chain, (1.0, 1.0, 0.5))
    assert result.converged
    assert not compiled.numba_available()
    assert "no executable memory" in str(compiled.unavailable_reason())
    assert solve(chain, (1.0, 1.0, 0.5)).converged  # numpy from now on, without another warning


@needs_numba
def test_warm_up_compiles_exactly_what_real_solves_use() -> None:
    # numba compiles once per argument type (a read-only array is another type); a warm-up that
    # compiled something else would leave the first live frame waiting for a second compilation.
    # In a fresh interpreter, so that no other test has compiled the real signatures first.
    code = (
        "import numpy as np\n"
        "from blender_ik_addon.core import ComfortPose, kernel, solve, solve_batch\n"
        "from blender_ik_addon.core.compiled import warm_up\n"
        "from blender_ik_addon.core.examples import human_arm, random_reachable_targets\n"
        "warm_up()\n"
        "count = lambda: (len(kernel.solve_many.signatures), len(kernel.solve_many_secondary.signatures))\n"
        "before = count()\n"
        "chain = human_arm()\n"
        "targets, _ = random_reachable_targets(chain, 3, 2)\n"
        "solve(chain, targets[0])\n"
        "solve_batch(chain, targets, initial=np.zeros((3, chain.n_dofs)))\n"
        "solve(chain, targets[0], pole=(0.0, 0.0, 1.0))\n"
        "solve(chain, targets[0], orientation=np.eye(3), comfort=ComfortPose(np.zeros(chain.n_dofs), weights=0.1))\n"
        "print(before, count())\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    before, after = out.stdout.strip().split(") (")
    assert before + ")" == "(1, 1)" and "(" + after == "(1, 1)", out.stdout
