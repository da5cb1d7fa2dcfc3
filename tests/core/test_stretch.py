"""IK Stretch in the core: a joint's length factor (see ``core/stretch.py``), in both backends."""

from __future__ import annotations

import numpy as np
import pytest

from blender_ik_addon.core import (
    Chain,
    ChainDefinitionError,
    ComfortPose,
    Joint,
    SolverOptions,
    euler_to_matrix,
    evaluate,
    forward,
    make_problem,
    solve,
    solve_batch,
)
from blender_ik_addon.core.batched import ChainJob, solve_jobs
from blender_ik_addon.core.compiled import numba_available, plan_of, posture_of
from blender_ik_addon.core.examples import translation
from blender_ik_addon.core.fk import joint_pose, tip_columns
from blender_ik_addon.core.lm import _curvature
from blender_ik_addon.core.stretch import STRETCH_LIMITS

from .conftest import random_chain
from .test_compiled import assert_backends_agree

PATTERNS = ((0.5, 0.0, 1.0, 0.2), (0.0, 0.7, 0.0, 0.0), (1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 0.3))
"""Joints' stretch for the random chains: mixed, one in the middle, all, the tip only."""
needs_numba = pytest.mark.skipif(not numba_available(), reason="numba is not installed (or IK_CHAINS_NUMBA=0)")
TOLERANCE = SolverOptions().tolerance


def limb(stretch: tuple[float, ...], lengths: tuple[float, ...] | None = None) -> Chain:
    """Bones along +Y, ball joints (every axis free, unlimited), as a Blender armature reads."""
    lengths = lengths or (1.0,) * len(stretch)
    rest = np.stack([np.eye(4), *(translation(0.0, length, 0.0) for length in lengths[:-1])])
    return Chain.from_arrays(rest, tip_offset=(0.0, lengths[-1], 0.0), stretch=stretch)


def stretchy(seed: int, pattern: tuple[float, ...]) -> Chain:
    """:func:`random_chain` (mixed orders, locks, limits, a scaled base) with ``pattern`` as the joints' stretch."""
    base = random_chain(seed, joints=len(pattern))
    joints = tuple(Joint(j.name, j.rest, j.order, j.free, j.lower, j.upper, j.fixed, e)
                   for j, e in zip(base.joints, pattern, strict=True))
    return Chain(joints, base.tip_offset, base.base)


def _poses(chain: Chain, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = chain.clamp(rng.uniform(-2, 2, (count, chain.n_dofs)))
    q[:, chain.n_angles:] = rng.uniform(0.5, 2.0, (count, chain.n_stretch))
    return q


# -- The model ---------------------------------------------------------------------------------

def test_a_joint_without_stretch_adds_nothing() -> None:
    chain = limb((0.0, 0.0))
    assert (chain.n_dofs, chain.n_angles, chain.n_stretch) == (6, 6, 0)
    np.testing.assert_array_equal(chain.neutral, np.zeros(6))
    result = solve(chain, (0.0, 1.5, 0.5))
    np.testing.assert_array_equal(result.scales, np.ones(2))


def test_stretch_must_be_within_0_and_1() -> None:
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ChainDefinitionError, match=r"stretch must be within 0\.\.1"):
            Joint("bone", stretch=bad)


def test_the_variables_are_the_free_angles_then_the_length_factors() -> None:
    chain = limb((0.5, 0.0, 1.0))
    assert (chain.n_dofs, chain.n_angles, chain.n_stretch) == (11, 9, 2)
    np.testing.assert_array_equal(chain.stretch_joint, [0, 2])
    np.testing.assert_array_equal(chain.stretch_end, [2, 3])  # bone 0's segment runs to bone 2; bone 2's to the tip
    np.testing.assert_allclose(chain.stretch_lengths, [2.0, 1.0])
    np.testing.assert_allclose(chain.lower[9:], STRETCH_LIMITS[0])
    np.testing.assert_allclose(chain.upper[9:], STRETCH_LIMITS[1])
    assert chain.dof_names()[9:] == ["joint0.stretch", "joint2.stretch"]
    q = chain.compress(np.zeros((3, 3)), np.array([1.5, 7.0, 2.0]))
    np.testing.assert_allclose(q[9:], [1.5, 2.0])  # a factor of a joint that does not stretch is not a variable
    np.testing.assert_allclose(chain.factors(q), [1.5, 1.0, 2.0])
    np.testing.assert_allclose(chain.frame_scales(q), [1.5, 1.5, 2.0])  # joint 1 inherits joint 0's scale
    np.testing.assert_allclose(chain.channel_scales(q), [1.5, 1.0, 2.0 / 1.5])
    np.testing.assert_allclose(chain.compress(np.zeros((3, 3)))[9:], 1.0)


@pytest.mark.parametrize("seed", range(4))
def test_fk_is_the_pose_blender_plays_from_rotations_and_scale_channels(seed: int) -> None:
    # Blender: pose = parent_pose @ parent_rest^-1 @ rest @ basis, basis = R(angles) @ S(scale
    # channels), the parent's scale inherited in full. Here: each joint's rest, turn, and its own
    # uniform scale channel, multiplied down the chain.
    chain = stretchy(seed, (0.5, 0.0, 1.0, 0.2) if seed % 2 else (0.0, 0.7, 0.0, 0.0))
    q = _poses(chain, 5, seed)
    kin = forward(chain, q)
    angles, channels = chain.expand(q), chain.channel_scales(q)
    for f in range(len(q)):
        frame = np.eye(4)
        for j, joint in enumerate(chain.joints):
            basis = np.eye(4)
            basis[:3, :3] = euler_to_matrix(angles[f, j], joint.order) * channels[f, j]
            frame = frame @ joint.rest @ basis
            np.testing.assert_allclose(kin.origins[f, j], frame[:3, 3], atol=1e-12)
            np.testing.assert_allclose(joint_pose(chain, q[f:f + 1], j)[0], frame, atol=1e-12)
        np.testing.assert_allclose(kin.tip_chain[f], (frame @ np.append(chain.tip_offset, 1.0))[:3], atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_jacobians_and_curvature_match_finite_differences(seed: int) -> None:
    chain = stretchy(seed, PATTERNS[seed])
    rng = np.random.default_rng(seed)
    q = _poses(chain, 4, seed)
    problem = make_problem(chain, rng.uniform(-1, 1, (4, 3)), poles=rng.uniform(-2, 2, (4, 3)), pole_weight=0.3,
                           comfort=ComfortPose(rng.uniform(-0.5, 0.5, chain.n_angles), 0.3))
    ev = evaluate(problem, q)
    assert ev.primary_jacobian is not None and ev.secondary_jacobian is not None and ev.secondary is not None
    step = 1e-6
    multipliers = rng.normal(size=(4, 3))
    curvature = _curvature(chain, q, multipliers)
    for i in range(chain.n_dofs):
        dq = np.zeros(chain.n_dofs)
        dq[i] = step
        up, down = evaluate(problem, q + dq), evaluate(problem, q - dq)
        assert up.secondary is not None and down.secondary is not None
        np.testing.assert_allclose((up.primary - down.primary) / (2 * step), ev.primary_jacobian[..., i], atol=1e-7)
        np.testing.assert_allclose((up.secondary - down.secondary) / (2 * step), ev.secondary_jacobian[..., i],
                                   atol=1e-7)
        columns = [np.einsum("ij,fmj->fim", chain.base[:3, :3], tip_columns(chain, forward(chain, p)))
                   for p in (q + dq, q - dq)]
        np.testing.assert_allclose(np.einsum("fi,fim->fm", multipliers, (columns[0] - columns[1]) / (2 * step)),
                                   curvature[:, i], atol=1e-7)


# -- Solving -----------------------------------------------------------------------------------

def _out_of_line(distance: float) -> np.ndarray:
    """A target ``distance`` from the root, off the chain's rest line."""
    return np.array([0.0, 0.3, 0.954]) / np.linalg.norm([0.0, 0.3, 0.954]) * distance


@pytest.mark.parametrize("stretch", [(0.1, 0.1), (0.5, 0.5), (1.0, 1.0), (0.1, 0.5, 1.0)])
def test_a_target_beyond_reach_is_reached_by_stretching(stretch: tuple[float, ...], backend: str) -> None:
    chain = limb(stretch)
    full = float(len(stretch))
    result = solve_batch(chain, np.stack([_out_of_line(1.3 * full), _out_of_line(2.0 * full)]),
                         options=SolverOptions(backend=backend))
    assert result.converged.all() and (result.error < TOLERANCE).all()
    assert (result.scales >= 1.0).all()
    # Nearly straight out: the bones' lengths add up to about the distance (the nearest pose trades a
    # slight bend, which costs little, for less stretch).
    np.testing.assert_allclose(result.scales.sum(axis=1), [1.3 * full, 2.0 * full], rtol=5e-3)


def test_beyond_reach_the_bones_share_the_stretch_as_blender_does(backend: str) -> None:
    # Blender's solver weighs the stretch of a bone by ik_stretch^2: on a straight chain each bone
    # takes a length change in proportion to it (measured: scripts/bench/stretch_cases.py).
    stretch, lengths = (0.5, 1.0, 1.0), (1.0, 0.8, 0.6)
    chain = limb(stretch, lengths)
    result = solve(chain, _out_of_line(1.3 * sum(lengths)), options=SolverOptions(backend=backend))
    assert result.converged
    change = (result.scales - 1.0) * np.array(lengths)
    np.testing.assert_allclose(change / change.sum(), np.square(stretch) / np.square(stretch).sum(), atol=2e-3)


@pytest.mark.parametrize("stretch", [(0.1, 0.1), (0.1, 0.1, 0.1)])
def test_within_reach_a_stiff_chain_bends_instead(stretch: tuple[float, ...], backend: str) -> None:
    chain = limb(stretch)
    full = float(len(stretch))
    targets = np.stack([_out_of_line(f * full) for f in (0.3, 0.7, 0.95)])
    result = solve_batch(chain, targets, options=SolverOptions(backend=backend))
    assert result.converged.all()
    np.testing.assert_allclose(result.scales, 1.0, atol=1e-3)


@pytest.mark.parametrize("pole", [None, (1.0, 0.5, 0.5)])
def test_within_reach_any_chain_takes_the_pose_it_takes_without_stretch(pole: tuple[float, ...] | None,
                                                                          backend: str) -> None:
    # Reach comes first, with the angles: the length factors are held at 1 while the angles reach.
    targets = np.stack([_out_of_line(f) for f in (0.4, 1.4, 1.95)])
    options = SolverOptions(backend=backend)
    rigid = solve_batch(limb((0.0, 0.0)), targets, poles=pole, options=options)
    for stretch in ((1.0, 1.0), (0.5, 0.1), (0.0, 1.0)):
        result = solve_batch(limb(stretch), targets, poles=pole, options=options)
        np.testing.assert_array_equal(result.scales, 1.0)
        # To rounding: the held factors' zero columns and rows are summed along.
        np.testing.assert_allclose(result.angles, rigid.angles, atol=1e-9, rtol=0)


def test_an_orientation_the_angles_cannot_match_within_reach_stretches_nothing(backend: str) -> None:
    """With a hinge elbow the tip's rotation cannot always be matched: that stall is the
    orientation's, which no stretch helps (neither a stall's release nor a restart's seed may
    stretch the bones)."""
    def arm(stretch: float) -> Chain:
        return Chain((Joint("a", translation(0, 0, 0), stretch=stretch),
                      Joint("b", translation(0, 1, 0), free=(True, False, False), stretch=stretch)),
                     tip_offset=np.array([0.0, 1.0, 0.0]))
    turned = np.array([[[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]])
    target = np.array([[0.3, 1.2, 0.5]])  # 1.33 from the root: within the 2.0 reach
    options = SolverOptions(backend=backend)
    result = solve_batch(arm(0.1), target, orientations=turned, options=options)
    np.testing.assert_array_equal(result.scales, 1.0)
    rigid = solve_batch(arm(0.0), target, orientations=turned, options=options)
    assert not rigid.converged[0] and result.error[0] == pytest.approx(rigid.error[0], abs=1e-9)


def test_the_length_factors_stay_within_their_limits(backend: str) -> None:
    options = SolverOptions(backend=backend)
    far = solve(limb((1.0, 1.0)), _out_of_line(100.0), options=options)  # 50 x the chain: past 10 x
    assert not far.converged
    np.testing.assert_allclose(far.scales, STRETCH_LIMITS[1])
    np.testing.assert_allclose(far.error, 100.0 - 2 * STRETCH_LIMITS[1], rtol=1e-6)
    # A single locked bone can only shrink toward a target on its line, down to the lower limit.
    hinge = Chain((Joint("bone", free=(True, False, False), lower=(0.0, 0.0, 0.0), upper=(0.0, 0.0, 0.0),
                         stretch=1.0),), tip_offset=(0.0, 1.0, 0.0))
    near = solve(hinge, (0.0, 0.001, 0.0), options=options)
    np.testing.assert_allclose(near.scales, [STRETCH_LIMITS[0]])
    assert hinge.limit_violation(near.q) == 0.0


def test_a_pole_still_bends_a_stretching_chain(backend: str) -> None:
    # With a pole and no comfort pose the length factors still prefer 1 (a pose without angle preference).
    chain = limb((0.1, 0.1))
    result = solve(chain, _out_of_line(1.4), pole=(1.0, 0.5, 0.5), options=SolverOptions(backend=backend))
    assert result.converged
    np.testing.assert_allclose(result.scales, 1.0, atol=1e-3)
    elbow = forward(chain, result.q[None]).origins[0, 1]
    assert elbow[0] > 0.1  # toward the pole


# -- The backends ------------------------------------------------------------------------------

@needs_numba
@pytest.mark.parametrize("seed", range(4))
def test_kernel_residuals_and_jacobians_equal_the_numpy_ones(seed: int) -> None:
    from blender_ik_addon.core import kernel

    chain = stretchy(seed, PATTERNS[seed])
    n, m = chain.n_joints, chain.n_dofs
    rng = np.random.default_rng(seed)
    q = _poses(chain, 6, seed)
    targets, poles = rng.uniform(-1, 1, (6, 3)), rng.uniform(-2, 2, (6, 3))
    orientations = euler_to_matrix(rng.uniform(-1, 1, (6, 3)))
    problems = [make_problem(chain, targets, orientations=orientations, orientation_weight=0.7),
                make_problem(chain, targets, poles=poles, pole_weight=0.3,
                             comfort=ComfortPose(rng.uniform(-0.5, 0.5, chain.n_angles), 0.2))]
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
            wanted = np.eye(3) if problem.orientations is None else problem.orientations[f]
            task = (targets[f], np.ascontiguousarray(wanted), scale, 1e-4, 1e-3)
            kernel._evaluate(q[f], task, plan, residual, jacobian, workspace)
            np.testing.assert_allclose(residual[:rows], expected.primary[f], atol=1e-12, rtol=0)
            np.testing.assert_allclose(jacobian[:rows], expected.primary_jacobian[f], atol=1e-12, rtol=0)
            if not secondary_rows:
                continue
            assert expected.secondary is not None and expected.secondary_jacobian is not None
            sec = (poles[f], True, problem.pole_weight, posture_of(problem), True, problem.reach)
            kernel._evaluate_secondary(q[f], targets[f], sec, plan, secondary, secondary_jacobian, posture_jacobian,
                                       workspace, secondary_workspace)
            np.testing.assert_allclose(secondary[:secondary_rows], expected.secondary[f], atol=1e-12, rtol=0)
            dense = np.zeros((secondary_rows, m))
            dense[:pole_rows] = secondary_jacobian[:pole_rows]
            for k in range(chain.n_angles):
                first = pole_rows + 3 * int(chain.free_joint[k])
                dense[first:first + 3, k] = posture_jacobian[k]
            for i in range(chain.n_stretch):
                dense[pole_rows + 3 * n + i, chain.n_angles + i] = posture_jacobian[chain.n_angles + i, 0]
            np.testing.assert_allclose(dense, expected.secondary_jacobian[f], atol=1e-12, rtol=0)


@needs_numba
@pytest.mark.parametrize(("stretch", "pole"), [((0.5, 0.5), False), ((0.1, 0.5, 1.0), False), ((1.0, 0.0, 0.3), True),
                                              ((0.2, 0.2, 0.2, 0.2), True)])
def test_backends_give_the_same_answers(stretch: tuple[float, ...], pole: bool) -> None:
    chain = limb(stretch)
    full = float(len(stretch))
    rng = np.random.default_rng(3)
    directions = rng.normal(size=(40, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    targets = directions * rng.uniform(0.2, 1.8, (40, 1)) * full
    poles = rng.uniform(-2, 2, (40, 3)) if pole else None
    numpy_result = solve_batch(chain, targets, poles=poles, options=SolverOptions(backend="numpy"))
    compiled = solve_batch(chain, targets, poles=poles, options=SolverOptions(backend="numba"))
    assert numpy_result.converged.all()
    assert_backends_agree(compiled, numpy_result)
    same = compiled.iterations == numpy_result.iterations
    np.testing.assert_allclose(compiled.scales[same], numpy_result.scales[same], atol=1e-3)


@needs_numba
def test_a_live_job_equals_solve_batch_bit_for_bit() -> None:
    chain = limb((0.5, 1.0))
    options = SolverOptions(backend="numba")
    target = _out_of_line(2.6)
    job = ChainJob(chain, None, options)
    job.set_target(target)
    live = solve_jobs([job])[0]
    batch = solve_batch(chain, target[None], options=options)
    np.testing.assert_array_equal(live.q, batch.q)
    np.testing.assert_array_equal(live.scales, batch.scales)
    assert batch.converged[0] and (batch.scales > 1.0).all()
