"""The default solver: reaches reachable targets inside the limits, deterministically."""

import itertools
import tracemalloc

import numpy as np
import pytest

from blender_ik_addon.core import (
    Chain,
    ComfortPose,
    IKInputError,
    Joint,
    SolverOptions,
    forward,
    solve,
    solve_batch,
    tip_positions,
)
from blender_ik_addon.core.examples import human_arm, tentacle, translation, tutorial_arm

from .conftest import reachable


@pytest.mark.parametrize("make", [tutorial_arm, human_arm, tentacle], ids=["arm", "human", "tentacle"])
def test_random_reachable_targets_converge_within_limits(make, backend: str) -> None:  # type: ignore[no-untyped-def]
    chain = make()
    targets, _ = reachable(chain, 300, seed=7)
    tolerance = 1e-3 * chain.length
    result = solve_batch(chain, targets, options=SolverOptions(tolerance=tolerance, backend=backend))
    assert result.converged.all(), result.error[~result.converged]
    np.testing.assert_array_less(np.linalg.norm(tip_positions(chain, result.q) - targets, axis=1), tolerance)
    assert chain.limit_violation(result.q).max() == 0.0
    assert set(result.status) == {"converged"}


def test_mixed_feature_chains_converge(mixed_chain: Chain, backend: str) -> None:
    targets, _ = reachable(mixed_chain, 100, seed=3)
    result = solve_batch(mixed_chain, targets, options=SolverOptions(backend=backend))
    assert result.converged.mean() >= 0.99
    assert mixed_chain.limit_violation(result.q).max() == 0.0
    np.testing.assert_allclose(result.angles, mixed_chain.expand(result.q))


def test_results_stay_within_limits_even_for_unreachable_targets(mixed_chain: Chain, backend: str) -> None:
    rng = np.random.default_rng(5)
    targets = rng.uniform(-6, 6, (60, 3))
    result = solve_batch(mixed_chain, targets, options=SolverOptions(restarts=2, backend=backend))
    assert mixed_chain.limit_violation(result.q).max() == 0.0
    assert np.all(np.isfinite(result.q))


def test_unreachable_target_reaches_as_far_as_possible_and_says_so(backend: str) -> None:
    chain = tutorial_arm()
    target = np.array([0.0, 5.0, 0.0])  # 2 units beyond the straight arm's reach of 3
    result = solve(chain, target, options=SolverOptions(backend=backend))
    assert not result.converged
    assert result.status in ("stalled", "max_iterations")
    assert result.error == pytest.approx(2.0, abs=1e-4)
    np.testing.assert_allclose(forward(chain, result.q[None]).tip[0], [0, 3, 0], atol=1e-3)


def test_targets_beyond_reach_do_not_pay_for_restarts(backend: str) -> None:
    options = SolverOptions(backend=backend)
    result = solve(tutorial_arm(), (0.0, 5.0, 0.0), options=options)
    assert not result.converged
    assert result.iterations <= options.max_iterations  # one attempt, no restarts


def test_limit_range_that_excludes_zero_is_respected_and_used(backend: str) -> None:
    # A single hinge limited to 20..80 degrees: the target at 50 degrees is reachable, the one at
    # -30 degrees is not, and the solver stops on the nearer limit instead of crossing zero.
    deg = np.radians
    chain = Chain((Joint("hinge", free=(True, False, False), lower=(deg(20), 0, 0), upper=(deg(80), 0, 0)),),
                  tip_offset=(0, 1, 0))
    options = SolverOptions(backend=backend)
    inside = solve(chain, (0, np.cos(deg(50)), np.sin(deg(50))), options=options)
    assert inside.converged and inside.q[0] == pytest.approx(deg(50), abs=1e-3)
    outside = solve(chain, (0, np.cos(deg(-30)), np.sin(deg(-30))), options=options)
    assert not outside.converged and outside.q[0] == pytest.approx(deg(20))


def test_batch_equals_a_loop_of_single_solves(backend: str) -> None:
    chain = human_arm()
    targets, _ = reachable(chain, 40, seed=11)
    targets[5] = (2.0, 0.0, 0.0)  # one unreachable target, to exercise restarts
    options = SolverOptions(chunk_size=7, backend=backend)
    batch = solve_batch(chain, targets, options=options)
    for f, target in enumerate(targets):
        single = solve(chain, target, options=options)
        # numpy sums a batch in another order than a single row: rounding, which the settle rule
        # may turn into an iteration more or less.
        np.testing.assert_allclose(single.q, batch.q[f], atol=1e-6, rtol=0)
        assert abs(int(single.iterations) - int(batch.iterations[f])) <= 2
        assert single.status == batch.status[f]


def test_chunking_does_not_change_answers() -> None:
    chain = tentacle(segments=6)
    targets, _ = reachable(chain, 50, seed=2)
    a = solve_batch(chain, targets, options=SolverOptions(chunk_size=3, backend="numpy"))
    b = solve_batch(chain, targets, options=SolverOptions(chunk_size=1000, backend="numpy"))
    np.testing.assert_allclose(a.q, b.q, atol=1e-6, rtol=0)


def test_same_input_same_answer_whatever_was_solved_before(backend: str) -> None:
    chain = human_arm()
    targets, _ = reachable(chain, 10, seed=4)
    options = SolverOptions(backend=backend)
    first = solve(chain, targets[3], options=options)
    solve_batch(chain, targets, options=options)
    again = solve(chain, targets[3], options=options)
    np.testing.assert_array_equal(first.q, again.q)


def test_error_never_increases_with_more_iterations(backend: str) -> None:
    # Until the tip arrives the error only falls; once it is in, the pull toward the rest pose may
    # slide along the solution set, keeping the tip within half the tolerance.
    chain = tentacle(segments=8)
    targets, _ = reachable(chain, 20, seed=9)
    tolerance = 1e-9
    previous = np.full(len(targets), np.inf)
    for iterations in range(1, 12):
        options = SolverOptions(max_iterations=iterations, restarts=0, tolerance=tolerance, backend=backend)
        error = solve_batch(chain, targets, options=options).error
        arrived = previous < 0.5 * tolerance
        assert np.all(error[~arrived] <= previous[~arrived] + 1e-12)
        assert np.all(error[arrived] < 0.5 * tolerance + 1e-15)
        previous = error
    assert previous.max() < 1e-6


def test_target_already_reached_needs_no_iteration(backend: str) -> None:
    chain = tutorial_arm()
    pose = np.array([0.3, -0.4, 0.9])
    target = tip_positions(chain, pose[None])[0]
    result = solve(chain, target, initial=pose, options=SolverOptions(backend=backend))
    assert result.iterations == 0 and result.converged
    np.testing.assert_array_equal(result.q, pose)


def test_initial_pose_outside_the_limits_is_projected_first() -> None:
    chain = tutorial_arm()
    result = solve(chain, (1.0, 1.0, 1.0), initial=np.array([0.0, 5.0, -5.0]))
    assert result.converged and chain.limit_violation(result.q) == 0.0


def test_orientation_task_aligns_the_tip_frame() -> None:
    chain = human_arm()
    _, poses = reachable(chain, 30, seed=8)
    kin = forward(chain, poses)
    result = solve_batch(chain, kin.tip, orientations=kin.tip_rotation,
                         options=SolverOptions(tolerance=1e-5, orientation_tolerance=1e-4))
    assert result.converged.mean() >= 0.95
    ok = result.converged
    assert np.all(result.orientation_error[ok] < 1e-4)
    got = forward(chain, result.q[ok]).tip_rotation
    np.testing.assert_allclose(got, kin.tip_rotation[ok], atol=1e-3)


def test_pole_hint_picks_the_bend_side() -> None:
    # A two-bone leg in the YZ plane: the knee may bend either way about X (both in limits).
    chain = Chain.from_arrays(np.stack([np.eye(4), translation(0, 1, 0)]), free=[[True, False, False]] * 2,
                              lower=[[-2.5, 0, 0]] * 2, upper=[[2.5, 0, 0]] * 2, tip_offset=(0, 1, 0))
    target = np.array([0.0, 1.4, 0.0])
    for side in (1.0, -1.0):
        result = solve(chain, target, pole=(0.0, 0.7, side), options=SolverOptions(pole_weight=1.0))
        knee = forward(chain, result.q[None]).origins[0, 1]
        assert result.converged
        assert np.sign(knee[2]) == side, (side, knee)


def test_comfort_weight_pulls_toward_the_comfort_pose_monotonically() -> None:
    chain = human_arm()
    comfort_angles = np.zeros(chain.n_dofs)
    comfort_angles[3] = 1.2  # a bent elbow
    target = np.array([0.0, 0.0, 2.0])  # unreachable: the arm is 0.65 long
    distances = []
    for weight in (0.0, 0.01, 0.1, 1.0, 10.0):
        comfort = ComfortPose(comfort_angles, weights=weight, reach_first=False)
        result = solve(chain, target, comfort=comfort)
        distances.append(np.linalg.norm(result.q - comfort_angles))
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(distances)), distances
    assert distances[-1] < 0.2 * distances[0]


def test_reach_first_comfort_still_reaches_and_prefers_the_comfort_pose() -> None:
    chain = tentacle(segments=6)
    targets, _ = reachable(chain, 20, seed=5)
    rng = np.random.default_rng(0)
    comfort_angles = rng.uniform(-0.3, 0.3, chain.n_dofs)
    plain = solve_batch(chain, targets, initial=comfort_angles, options=SolverOptions(restarts=0))
    comfort = ComfortPose(comfort_angles, weights=1.0, reach_first=True)
    pulled = solve_batch(chain, targets, comfort=comfort)
    assert pulled.converged.all()
    assert np.all(pulled.error < 1e-4)
    distance_pulled = np.linalg.norm(pulled.q - comfort_angles, axis=1)
    distance_plain = np.linalg.norm(plain.q - comfort_angles, axis=1)
    closer = distance_pulled <= distance_plain + 1e-9
    assert closer.mean() >= 0.9


def test_bounded_memory_for_large_batches(backend: str) -> None:
    chain = tutorial_arm()
    targets, _ = reachable(chain, 20_000, seed=1)
    solve(chain, targets[0], options=SolverOptions(backend=backend))  # numba's compiled code is not the batch's
    tracemalloc.start()
    solve_batch(chain, targets, options=SolverOptions(chunk_size=512, tolerance=1e-3, backend=backend))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    outputs = 20_000 * (3 + 9 + 6) * 8  # q, angles and per-target scalars
    assert peak < outputs + 40e6, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"targets": [[np.nan, 0, 0]]}, r"target position 0 is not finite"),
        ({"targets": [[0, 0, 0], [np.inf, 0, 0]]}, r"target position 1 is not finite"),
        ({"targets": [[0, 0]]}, r"target positions must have shape \(F, 3\)"),
        ({"initial": [np.nan, 0, 0]}, r"initial pose contains NaN"),
        ({"initial": [0, 0]}, r"initial poses must have shape"),
        ({"orientations": np.eye(4)}, r"orientations must have shape"),
        ({"orientations": np.full((3, 3), np.nan)}, r"target orientation 0 is not finite"),
        ({"poles": [0, np.nan, 0]}, r"pole position 0 is not finite"),
        ({"comfort": ComfortPose([0, 0])}, r"comfort angles must have shape"),
        ({"comfort": ComfortPose([0, 0, np.nan])}, r"comfort angles contain NaN"),
        ({"comfort": ComfortPose([0, 0, 0], weights=-1)}, r"comfort weights must be >= 0"),
    ],
)
def test_bad_solve_inputs_raise_clear_errors(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    chain = tutorial_arm()
    args = {"targets": [[1.0, 1.0, 1.0]], **kwargs}
    with pytest.raises(IKInputError, match=message):
        solve_batch(chain, **args)


def test_single_solve_rejects_bad_target_shape() -> None:
    with pytest.raises(IKInputError, match=r"target must have shape \(3,\)"):
        solve(tutorial_arm(), (1.0, 2.0))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "newton"}, "unknown solver method 'newton'"),
        ({"tolerance": 0.0}, "tolerance must be a finite number > 0"),
        ({"tolerance": np.nan}, "tolerance must be a finite number > 0"),
        ({"max_iterations": 0}, "max_iterations must be >= 1"),
        ({"restarts": -1}, "restarts must be >= 0"),
        ({"backend": "cuda"}, "unknown backend 'cuda'"),
    ],
)
def test_bad_options_raise(options: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(IKInputError, match=message):
        SolverOptions(**options)


def test_pole_turns_a_ball_jointed_limb_toward_it() -> None:
    # Two ball joints: the elbow may sit anywhere on a circle; the pole chooses where.
    chain = Chain.from_arrays(np.stack([np.eye(4), translation(0, 1, 0)]), tip_offset=(0, 1, 0))
    target = np.array([0.0, 1.5, 0.0])
    for pole in ((0.0, 0.75, -2.0), (2.0, 0.75, 0.0), (-1.0, 0.2, 1.0)):
        result = solve(chain, target, pole=pole, options=SolverOptions(pole_weight=0.1))
        elbow = forward(chain, result.q[None]).origins[0, 1]
        assert result.converged
        bend = elbow - np.array([0.0, elbow[1], 0.0])  # the elbow's offset from the base-target line
        wanted = np.array(pole) - np.array([0.0, pole[1], 0.0])
        cosine = bend @ wanted / np.linalg.norm(bend) / np.linalg.norm(wanted)
        assert cosine > np.cos(np.radians(1.0)), (pole, elbow)


def test_soft_comfort_settles_quickly_without_restarts() -> None:
    chain = tentacle(segments=6)
    targets, _ = reachable(chain, 20, seed=5)
    comfort = ComfortPose(np.zeros(chain.n_dofs), weights=0.05, reach_first=False)
    options = SolverOptions()
    result = solve_batch(chain, targets, comfort=comfort, options=options)
    from blender_ik_addon.core.rules import iteration_budget

    assert np.all(result.iterations <= iteration_budget(options.max_iterations, chain.n_dofs))  # one attempt each
    assert chain.limit_violation(result.q).max() == 0.0
    plain = solve_batch(chain, targets)
    # The pull trades a little reach for a pose nearer the comfort pose.
    assert np.mean(np.linalg.norm(result.q, axis=1)) < np.mean(np.linalg.norm(plain.q, axis=1))


def test_restart_seeds_perturb_each_targets_own_start() -> None:
    from blender_ik_addon.core.lm import restart_seeds
    from blender_ik_addon.core.objectives import make_problem

    chain = human_arm()
    starts = chain.clamp(np.random.default_rng(2).uniform(-1, 1, (5, chain.n_dofs)))
    problem = make_problem(chain, np.zeros((5, 3)))
    options = SolverOptions(restarts=6)
    together = restart_seeds(problem, starts, options)
    alone = restart_seeds(problem.take(np.array([3])), starts[3:4], options)
    np.testing.assert_array_equal(together[3], alone[0])  # independent of the rest of the batch
    assert chain.limit_violation(together).max() == 0.0
    nearest = np.abs(together[:, 0] - starts).max(axis=1)  # the first seed stays closest to its start
    farthest = np.abs(together[:, -1] - starts).max(axis=1)
    assert np.all(nearest <= farthest + 1e-12)


def test_warm_started_path_on_a_redundant_chain_does_not_flip() -> None:
    # Each restart starts near the previous frame's pose, so no frame jumps to a far branch. (The
    # null-space drift of a redundant chain still makes single joints move up to ~11 degrees.)
    chain = tentacle(segments=10)
    frames = np.linspace(0, 2 * np.pi, 120)
    phases = np.random.default_rng(0).uniform(0, 2 * np.pi, chain.n_dofs)
    path = 0.35 * chain.upper * np.sin(frames[:, None] + phases)  # smooth, inside the limits
    pose = chain.clamp(np.zeros(chain.n_dofs))
    largest_jump = 0.0
    for target in tip_positions(chain, path):
        result = solve(chain, target, initial=pose)
        assert result.converged
        largest_jump = max(largest_jump, float(np.abs(result.q - pose).max()))
        pose = result.q
    assert np.degrees(largest_jump) < 20.0


@pytest.mark.parametrize("above_limit", [0.05, 1e-4], ids=["far from the limit", "within the band"])
def test_slide_toward_the_rest_pose_stops_on_a_limit_it_would_cross(above_limit: float) -> None:
    # Human arm, tip on its target, the wrist's Z angle just above its lower limit; Newton's step
    # toward the rest pose wants to carry it far below. Clamped, the step would leave the set of
    # reaching poses (the trial refused, the slide crawling back up from a thousandth of its length).
    # Instead it ends on the limit (from farther away), or the angle is frozen where it is (from
    # within rules.NEWTON_LIMIT_BAND) while the others take the step.
    from blender_ik_addon.core import lm, rules
    from blender_ik_addon.core.objectives import evaluate, make_problem

    chain = human_arm()
    wrist_z = 5
    q = np.array([[-0.186, 1.176, 0.153, 2.529, 0.641, chain.lower[wrist_z] + above_limit]])
    problem = make_problem(chain, tip_positions(chain, q), comfort=ComfortPose(np.zeros(6), rules.REST_WEIGHT))
    ev = evaluate(problem, q)
    assert ev.primary_cost[0] < 1e-20  # on the target: the step is the slide alone
    step, gap, taken = lm._step(problem, q, ev, np.array([rules.RESTORE_DAMPING]), np.array([np.inf]))
    assert gap[0] > rules.SETTLE_ANGLE and taken[0] == gap[0]  # not settled; the whole step taken
    trial = q + step
    assert chain.limit_violation(trial)[0] < 1e-12  # nothing for the clamp to cut
    if above_limit > rules.NEWTON_LIMIT_BAND:
        assert trial[0, wrist_z] == pytest.approx(chain.lower[wrist_z], abs=1e-12)  # ends on the limit
    else:
        assert trial[0, wrist_z] == pytest.approx(q[0, wrist_z], abs=1e-9)  # frozen where it is
        assert np.abs(step).max() > 10 * rules.SETTLE_ANGLE  # the others still slide
    # Along the set of reaching poses: the tip moves only to second order in the step.
    drift = np.linalg.norm(tip_positions(chain, trial) - problem.positions)
    assert drift < np.abs(step).max() ** 2 * chain.length
    # And it is a step toward the rest pose (the comfort cost is the sum of squared angles here).
    assert np.sum(trial**2) < np.sum(q**2)
