"""The compiled tree solver (core/tree_kernel.py) against the numpy one (core/tree_solver.py): the
same algorithm rule for rule, so the same branches, the same convergence, the same poses to
rounding; chosen by ``SolverOptions.backend`` as the chain kernel is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from blender_ik_addon.core import Chain, ComfortPose, IKInputError, Joint, SolverOptions, compiled
from blender_ik_addon.core.examples import translation
from blender_ik_addon.core.tree import Tree, tree_forward, tree_tips
from blender_ik_addon.core.tree_solver import TreeResult, solve_tree
from blender_ik_addon.core.types import FloatArray

ROOT = Path(__file__).resolve().parents[2]
needs_numba = pytest.mark.skipif(compiled.tree_kernel_module() is None,
                                 reason="numba is not installed (or IK_CHAINS_NUMBA=0)")
deg = np.radians
FREE = (True, True, True)
HINGE = (True, False, False)


def _joint(name: str, offset: tuple[float, float, float], free: tuple[bool, bool, bool] = FREE,
           lower: tuple[float, float, float] = (-np.inf,) * 3, upper: tuple[float, float, float] = (np.inf,) * 3,
           order: str = "XYZ", fixed: tuple[float, float, float] = (0.0, 0.0, 0.0), turn_z: float = 0.0) -> Joint:
    rest = translation(*offset)
    c, s = np.cos(turn_z), np.sin(turn_z)
    rest[:2, :2] = [[c, -s], [s, c]]
    return Joint(name, rest, order, free, np.array(lower, dtype=float), np.array(upper, dtype=float),
                 np.array(fixed, dtype=float))


def two_arms() -> Tree:
    """Both arms run into a 3-joint spine (20 variables): clavicles with a locked axis turned by a
    fixed value, ball shoulders with limits in another Euler order, hinge elbows (0-150 deg)."""
    spine = ((-deg(30), -deg(20), -deg(25)), (deg(45), deg(20), deg(25)))
    s1 = _joint("spine1", (0, 0, 0), (True, False, True), *spine)
    s2 = _joint("spine2", (0, 0.15, 0), FREE, *spine, order="YXZ")
    s3 = _joint("spine3", (0, 0.15, 0), FREE, *spine)
    chains = []
    for side in (1.0, -1.0):
        clavicle = _joint(f"clavicle{side:+.0f}", (side * 0.03, 0.12, 0), (True, False, True),
                          (-deg(20), 0, -deg(20)), (deg(20), 0, deg(20)), fixed=(0, 0.1 * side, 0))
        upper = _joint(f"upper{side:+.0f}", (side * 0.15, 0, 0), FREE, (-deg(90), -deg(60), -deg(90)),
                       (deg(90), deg(60), deg(30)), order="ZXY", turn_z=-side * np.pi / 2)
        fore = _joint(f"fore{side:+.0f}", (0, 0.30, 0), HINGE, (0, 0, 0), (deg(150), 0, 0))
        chains.append(Chain((s1, s2, s3, clavicle, upper, fore), tip_offset=np.array([0, 0.27, 0])))
    return Tree.from_chains(chains, names=["left", "right"])


def two_legs(weights: tuple[float, float] = (1.0, 1.0)) -> Tree:
    """Two legs sharing the hips (the root), hinge knees; a turned, scaled, moved base."""
    hips = _joint("hips", (0, 0, 0), FREE, (-deg(30),) * 3, (deg(30),) * 3)
    chains = []
    for side in (1.0, -1.0):
        thigh = _joint(f"thigh{side:+.0f}", (side * 0.1, 0, 0), FREE, (-deg(90), -deg(40), -deg(45)),
                       (deg(60), deg(40), deg(45)), order="YZX", turn_z=np.pi)
        shin = _joint(f"shin{side:+.0f}", (0, 0.45, 0), HINGE, (-deg(150), 0, 0), (0, 0, 0))
        chains.append(Chain((hips, thigh, shin), tip_offset=np.array([0, 0.42, 0])))
    base = np.eye(4)
    c, s = np.cos(0.4), np.sin(0.4)
    base[:3, :3] = 1.3 * np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    base[:3, 3] = (0.2, -0.1, 0.9)
    return Tree.from_chains(chains, names=["left", "right"], weights=list(weights)).with_base(base)


def tentacle() -> Tree:
    """A trunk of 3 joints splitting into 3 branches of 4 (30 variables, +-30 deg about X and Z)."""
    limit = ((-deg(30), 0, -deg(30)), (deg(30), 0, deg(30)))
    trunk = [_joint(f"trunk{i}", (0, 0.25 * (i > 0), 0), (True, False, True), *limit) for i in range(3)]
    chains = []
    for b, turn in enumerate((-0.7, 0.0, 0.7)):
        branch = [_joint(f"b{b}_{i}", (0, 0.2 + 0.05 * (i == 0), 0), (True, False, True), *limit,
                         order=("XYZ", "ZXY")[i % 2], turn_z=turn if i == 0 else 0.0) for i in range(4)]
        chains.append(Chain((*trunk, *branch), tip_offset=np.array([0, 0.2, 0])))
    return Tree.from_chains(chains, names=["a", "b", "c"])


def random_poses(tree: Tree, count: int, seed: int) -> FloatArray:
    """Poses within the limits (unlimited axes within +-pi)."""
    chain = tree.joints
    low = np.where(np.isfinite(chain.lower), chain.lower, -np.pi)
    high = np.where(np.isfinite(chain.upper), chain.upper, np.pi)
    return np.random.default_rng(seed).uniform(low, high, (count, tree.n_dofs))


def world_rotations(tree: Tree, poses: FloatArray, effector: int) -> FloatArray:
    """``(F, E, 3, 3)`` world rotations of ``effector``'s joint (identity for the others)."""
    out = np.broadcast_to(np.eye(3), (len(poses), len(tree.effectors), 3, 3)).copy()
    for f, q in enumerate(poses):
        out[f, effector] = tree.base[:3, :3] @ tree_forward(tree, q).rotations[tree.effectors[effector].joint]
    return out


def both(tree: Tree, targets: FloatArray, options: dict[str, Any] | None = None,
         **kwargs: Any) -> tuple[TreeResult, TreeResult]:
    """The numpy solve and the compiled one."""
    slow = solve_tree(tree, targets, options=SolverOptions(backend="numpy", **(options or {})), **kwargs)
    fast = solve_tree(tree, targets, options=SolverOptions(backend="numba", **(options or {})), **kwargs)
    return slow, fast


def assert_agree(tree: Tree, slow: TreeResult, fast: TreeResult) -> None:
    np.testing.assert_array_equal(fast.converged, slow.converged)
    np.testing.assert_array_equal(fast.reached, slow.reached)
    np.testing.assert_allclose(fast.errors, slow.errors, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.orientation_errors, slow.orientation_errors, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.q, slow.q, rtol=0, atol=1e-5)
    # Where every target is reached the poses agree to rounding; the 1e-5 above is for compromises,
    # whose stop rule leaves the pose anywhere along the flat valley of the least error (~1e-6 apart).
    # Now and then rounding ends a stage one iteration apart in the two backends at a point where
    # that moves the rest of the solve a little (numpy's sums through BLAS round by its thread count:
    # with OPENBLAS_NUM_THREADS=1, one frame of 10 in the poles test ended 4.9e-7 apart); such a frame
    # still agrees to 1e-6, and they stay rare.
    reached = fast.q[slow.converged], slow.q[slow.converged]
    np.testing.assert_allclose(*reached, rtol=0, atol=1e-6)
    apart = np.abs(reached[0] - reached[1]).max(axis=1, initial=0.0) > 1e-8
    assert np.count_nonzero(apart) <= max(1, apart.size // 10), np.flatnonzero(apart)
    np.testing.assert_allclose(fast.angles, slow.angles, rtol=0, atol=1e-5)
    assert fast.names == slow.names
    for result in (slow, fast):
        assert np.all(tree.joints.limit_violation(result.q) == 0.0)


@needs_numba
@pytest.mark.parametrize("make", [two_arms, two_legs, tentacle])
def test_kernel_kinematics_rows_and_jacobian_equal_the_numpy_ones(make: Any) -> None:
    from blender_ik_addon.core import tree_kernel
    from blender_ik_addon.core.tree_solver import _Frame, check_targets

    tree = make()
    plan = compiled.tree_plan_of(tree)
    m, n, count_e = tree.n_dofs, tree.n_joints, len(tree.effectors)
    poses = random_poses(tree, 4, 9)
    follow = np.arange(count_e) == 0
    checked = check_targets(tree, tree_tips(tree, poses[::-1]), world_rotations(tree, poses[::-1], 0), follow)
    kin = tree_kernel._kinematics(m, n, count_e)
    rows, jac = np.empty(6 * count_e), np.empty((6 * count_e, m))
    for f, q in enumerate(poses):
        tree_kernel._forward(q, plan[2], kin)
        pose = tree_forward(tree, q)
        for got, expected in zip(kin[:4], (pose.origins, pose.rotations, pose.axes, pose.tips), strict=True):
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13)
        frame = (checked.positions[f], checked.orientations[f], checked.follow, 0.7 * tree.reach, checked.poles[f],
                 checked.has_pole, 0.0)
        cost = tree_kernel._primary(q, frame, plan[2], plan[3], kin, rows)
        tree_kernel._jacobian(checked.follow, 0.7 * tree.reach, plan[3], kin, jac)
        numpy_frame = _Frame(tree, checked.positions[f], checked.orientations[f], checked.follow, np.zeros(m),
                             np.ones(m), SolverOptions(orientation_weight=0.7))
        expected_rows, expected_jac = numpy_frame.primary(q)
        assert expected_jac is not None
        count = 3 * count_e + 3
        np.testing.assert_allclose(rows[:count], expected_rows, rtol=0, atol=1e-12)
        np.testing.assert_allclose(jac[:count], expected_jac, rtol=0, atol=1e-12)
        assert cost == pytest.approx(numpy_frame.primary_cost(q), rel=1e-12, abs=1e-15)


@needs_numba
@pytest.mark.parametrize("make", [two_arms, tentacle])
def test_kernel_pole_rows_equal_the_numpy_ones_and_their_jacobian_its_differences(make: Any) -> None:
    from blender_ik_addon.core import tree_kernel
    from blender_ik_addon.core.tree_solver import _Frame, check_targets

    tree = make()
    plan = compiled.tree_plan_of(tree)
    m, n, count_e = tree.n_dofs, tree.n_joints, len(tree.effectors)
    poses = random_poses(tree, 3, 11)
    targets = tree_tips(tree, poses[::-1])
    poles = targets + np.array([0.3, -1.0, 2.0])
    has_pole = np.arange(count_e) != 1  # the second effector has none
    checked = check_targets(tree, targets, poles=poles, has_pole=has_pole)
    kin = tree_kernel._kinematics(m, n, count_e)
    count = int(sum(3 * (len(e.joints) - 1) for e, p in zip(tree.effectors, has_pole, strict=True) if p))
    rows, jac = np.zeros(6 * count_e + count), np.zeros((6 * count_e + count, m))
    for f, q in enumerate(poses):
        numpy_frame = _Frame(tree, checked.positions[f], checked.orientations[f], checked.follow, np.zeros(m),
                             np.ones(m), SolverOptions(), checked.poles[f], checked.has_pole)
        expected_rows, expected_jac = numpy_frame.pole_rows(q, 0.37)
        frame = (checked.positions[f], checked.orientations[f], checked.follow, 1.0, checked.poles[f],
                 checked.has_pole, 0.37)
        tree_kernel._primary(q, frame, plan[2], plan[3], kin, rows)
        cost = tree_kernel._pole_rows(frame, plan[4], plan[3], kin, rows, jac, 0, 0.37)
        np.testing.assert_allclose(rows[:count], expected_rows, rtol=0, atol=1e-12)
        np.testing.assert_allclose(jac[:count], expected_jac, rtol=0, atol=1e-12)
        assert cost == pytest.approx(0.5 * float(expected_rows @ expected_rows), rel=1e-12, abs=1e-15)
        # The Jacobian leaves out the turning of the root-to-target line (as the chain solver's pole):
        # where the chain's root does not move (its joint is the tree's root, variables below it), the
        # differences agree; compare on the variables that do not move any effector's root joint.
        still = ~np.any([tree.strict_ancestors[e.joints[0]][tree.joints.dof_joint] | (
            tree.joints.dof_joint == e.joints[0]) for e in tree.effectors], axis=0)
        step = 1e-6
        for k in np.flatnonzero(still):
            bumped = q.copy()
            bumped[k] += step
            numeric = (numpy_frame.pole_rows(bumped, 0.37)[0] - expected_rows) / step
            np.testing.assert_allclose(expected_jac[:, k], numeric, rtol=0, atol=1e-4)


@needs_numba
def test_poles_agree_and_bend_each_chain_toward_its_own() -> None:
    tree = two_arms()
    poses = random_poses(tree, 10, 6)
    targets = tree_tips(tree, poses)
    poles = targets + np.array([0.0, 0.0, 2.0])
    slow, fast = both(tree, targets, poles=poles, has_pole=[True, False])
    assert slow.converged.mean() > 0.5
    assert_agree(tree, slow, fast)
    unpoled = solve_tree(tree, targets)
    assert not np.allclose(unpoled.q, slow.q)  # the pole changed the pose


@needs_numba
def test_two_arms_sharing_a_spine_agree() -> None:
    tree = two_arms()
    assert tree.n_dofs == 20
    slow, fast = both(tree, tree_tips(tree, random_poses(tree, 12, 1)))
    assert slow.converged.all()
    assert_agree(tree, slow, fast)


@needs_numba
def test_two_legs_sharing_the_hips_agree() -> None:
    tree = two_legs()
    slow, fast = both(tree, tree_tips(tree, random_poses(tree, 12, 2)))
    assert slow.converged.all()
    assert_agree(tree, slow, fast)


@needs_numba
def test_a_three_branch_tentacle_agrees_with_a_comfort_pose() -> None:
    tree = tentacle()
    rng = np.random.default_rng(3)
    comfort = ComfortPose(rng.uniform(-0.2, 0.2, tree.n_dofs), weights=rng.uniform(0.0, 0.5, tree.n_dofs))
    slow, fast = both(tree, tree_tips(tree, random_poses(tree, 8, 3)), comfort=comfort)
    assert slow.converged.mean() > 0.5
    assert_agree(tree, slow, fast)


@needs_numba
def test_an_effector_that_follows_its_orientation_agrees() -> None:
    tree = two_arms()
    poses = random_poses(tree, 10, 4)
    slow, fast = both(tree, tree_tips(tree, poses), orientations=world_rotations(tree, poses, 0),
                      follow=[True, False])
    assert slow.converged.mean() > 0.5 and np.all(slow.orientation_errors[:, 1] == 0.0)
    assert_agree(tree, slow, fast)


@needs_numba
def test_an_effector_of_weight_zero_pulls_nothing_in_both() -> None:
    tree = two_legs(weights=(1.0, 0.0))
    targets = tree_tips(tree, random_poses(tree, 10, 5))
    targets[:, 1] += 5.0  # far away: it pulls nothing, so it does not matter
    slow, fast = both(tree, targets)
    assert slow.converged.all() and not slow.reached[:, 1].any()
    assert_agree(tree, slow, fast)


@needs_numba
def test_an_unreachable_pair_finds_the_same_compromise() -> None:
    tree = two_arms()
    targets = tree_tips(tree, random_poses(tree, 8, 6))
    middle = targets.mean(axis=1, keepdims=True)
    targets = middle + 3.0 * (targets - middle) / np.linalg.norm(targets[:, :1] - targets[:, 1:], axis=-1)[..., None]
    slow, fast = both(tree, targets)  # 3 apart: no pose reaches both, the restarts run and give up
    assert not slow.converged.any()
    assert_agree(tree, slow, fast)
    assert np.all(slow.iterations > 3 * 5)  # the restarts ran (5 stages each, at least 1 iteration a stage)
    assert abs(int(fast.iterations.sum()) - int(slow.iterations.sum())) <= 0.02 * slow.iterations.sum()


@needs_numba
@pytest.mark.parametrize("seed", range(3))
def test_random_options_agree(seed: int) -> None:
    # Restarts, a tighter tolerance, another damping, few iterations (frames left unconverged).
    rng = np.random.default_rng(seed)
    tree = (two_arms, two_legs, tentacle)[seed]()
    options = {"restarts": int(rng.integers(0, 5)), "tolerance": float(rng.choice([1e-4, 1e-6])),
               "max_iterations": int(rng.integers(3, 40)), "initial_damping": float(rng.choice([1e-3, 1e-1])),
               "seed": seed}
    slow, fast = both(tree, tree_tips(tree, random_poses(tree, 6, 10 + seed)), options=options)
    assert_agree(tree, slow, fast)


@needs_numba
def test_backend_auto_takes_the_kernel_and_numpy_never_does() -> None:
    assert compiled.tree_kernel_for(SolverOptions()) is compiled.solve_tree_compiled
    assert compiled.tree_kernel_for(SolverOptions(backend="numba")) is compiled.solve_tree_compiled
    assert compiled.tree_kernel_for(SolverOptions(backend="numpy")) is None


def test_numba_disabled_refuses_backend_numba_and_auto_takes_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IK_CHAINS_NUMBA", "0")
    tree = two_legs()
    targets = tree_tips(tree, random_poses(tree, 1, 7))
    with pytest.raises(IKInputError, match="numba is disabled by IK_CHAINS_NUMBA=0"):
        solve_tree(tree, targets, options=SolverOptions(backend="numba"))
    assert compiled.tree_kernel_for(SolverOptions()) is None
    assert compiled.tree_unavailable_reason() == "numba is disabled by IK_CHAINS_NUMBA=0"
    assert solve_tree(tree, targets).converged.all()


@needs_numba
def test_the_plan_is_built_once_per_tree_and_its_joints_once_per_chain() -> None:
    tree = two_legs()
    plan = compiled.tree_plan_of(tree)
    assert compiled.tree_plan_of(tree) is plan
    moved = tree.with_base(np.eye(4))
    other = compiled.tree_plan_of(moved)
    assert other is not plan and other[2][0] is plan[2][0]  # the rest rotations: the chain's memo
    assert np.array_equal(other[3][4], np.eye(4)) and not np.array_equal(plan[3][4], np.eye(4))
    # Every array writable and C-contiguous: numba compiles once per array flavour.
    arrays = [a for part in (plan[:2], plan[2], plan[3]) for a in part]
    assert all(a.flags.writeable and a.flags.c_contiguous for a in arrays)


@needs_numba
def test_a_tree_kernel_that_cannot_run_falls_back_to_numpy_once(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = compiled.tree_kernel_module()
    assert kernel is not None

    def broken(*_args: object) -> None:
        raise RuntimeError("no executable memory")

    monkeypatch.setattr(kernel, "solve_frames", broken)
    monkeypatch.setattr(compiled, "_tree_kernel", kernel)  # restored afterwards, with the error
    monkeypatch.setattr(compiled, "_tree_kernel_error", None)
    tree = two_legs()
    targets = tree_tips(tree, random_poses(tree, 2, 8))
    with pytest.warns(RuntimeWarning), pytest.raises(compiled.KernelError, match="no executable memory"):
        solve_tree(tree, targets, options=SolverOptions(backend="numba"))
    monkeypatch.setattr(compiled, "_tree_kernel", kernel)
    monkeypatch.setattr(compiled, "_tree_kernel_error", None)
    with pytest.warns(RuntimeWarning, match="solving trees with numpy from now on"):
        result = solve_tree(tree, targets)
    assert result.converged.all()
    assert compiled.tree_kernel_for(SolverOptions()) is None
    assert "no executable memory" in str(compiled.tree_unavailable_reason())
    with pytest.raises(IKInputError, match="no executable memory"):
        solve_tree(tree, targets, options=SolverOptions(backend="numba"))


def test_a_stale_tree_kernel_cache_is_deleted_and_the_chain_kernel_cache_kept(tmp_path: Path) -> None:
    # The tree kernel compiles in constants of rules.py and tree_solver.py; its stamp covers both.
    folder = tmp_path / "__pycache__"
    folder.mkdir()
    chain_kernel = folder / "kernel._attempt-284.py311.nbi"
    tree_kernel = [folder / "tree_kernel._stage-300.py311.nbi", folder / "tree_kernel._stage-300.py311.1.nbc"]
    for path in (chain_kernel, *tree_kernel):
        path.write_bytes(b"x")
    sources = ("rules.py", "tree_solver.py")
    assert compiled.forget_stale_kernel_cache(folder, "tree_kernel", sources)
    assert chain_kernel.exists() and not any(path.exists() for path in tree_kernel)
    assert (folder / "tree_kernel.rules-stamp").is_file() and not (folder / "kernel.rules-stamp").exists()
    tree_kernel[0].write_bytes(b"y")
    assert not compiled.forget_stale_kernel_cache(folder, "tree_kernel", sources)
    assert tree_kernel[0].exists()
    assert compiled.forget_stale_kernel_cache(folder, "tree_kernel", ("rules.py",))  # another set of sources
    assert not tree_kernel[0].exists()


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False,
                          env=environment, timeout=600)


@needs_numba
def test_warm_up_compiles_exactly_what_real_tree_solves_use() -> None:
    # numba compiles once per argument type (a read-only array is another type): read-only,
    # non-contiguous and integer inputs, with and without orientations, must all take the one kernel.
    code = (
        "import numpy as np\n"
        "from blender_ik_addon.core import ComfortPose, SolverOptions, tree_kernel\n"
        "from blender_ik_addon.core.compiled import warm_up\n"
        "from blender_ik_addon.core.tree import tree_tips\n"
        "from blender_ik_addon.core.tree_solver import solve_tree\n"
        "from tests.core.test_tree_compiled import two_arms, two_legs\n"
        "warm_up()\n"
        "before = len(tree_kernel.solve_frames.signatures)\n"
        "tree = two_arms()\n"
        "targets = tree_tips(tree, np.zeros((3, tree.n_dofs)))\n"
        "targets.flags.writeable = False\n"
        "solve_tree(tree, targets)\n"
        "solve_tree(tree, targets[::2], orientations=np.stack([np.eye(3)] * 2), follow=[False, True],\n"
        "           options=SolverOptions(restarts=0))\n"
        "legs = two_legs()\n"
        "solve_tree(legs, np.zeros((2, 3), dtype=int), comfort=ComfortPose(np.zeros(legs.n_dofs), weights=0.1))\n"
        "print(before, len(tree_kernel.solve_frames.signatures))\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1"], out.stdout


@needs_numba
def test_continuous_follows_the_frame_before_in_both_backends() -> None:
    """Along a smooth path where the nearest pose switches branches, ``continuous`` stays on one:
    no step above 5x the median (and 2 degrees), every frame reached, both backends alike."""
    tree = two_legs()
    low, high = tree.joints.lower, tree.joints.upper
    mid, half = (low + high) / 2, (high - low) / 2
    rng = np.random.default_rng(5)  # a path where the per-frame solve still pops (2 pops; most paths have none)
    phase, rate = rng.uniform(0, 6, tree.n_dofs), rng.uniform(0.5, 1.5, tree.n_dofs)
    path = mid + 0.8 * half * np.sin(np.linspace(0, 2 * np.pi, 80)[:, None] * rate + phase)
    targets = tree_tips(tree, path)

    def pops(q: FloatArray) -> int:
        steps = np.abs(np.diff(q, axis=0)).max(axis=1)
        return int(np.sum((steps > 5 * np.median(steps)) & (steps > np.radians(2))))

    nearest = solve_tree(tree, targets)
    assert pops(nearest.q) > 0  # the case this mode is for
    slow, fast = both(tree, targets, continuous=True)
    assert slow.converged.all() and pops(slow.q) == 0
    assert_agree(tree, slow, fast)
