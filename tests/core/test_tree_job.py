"""A TreeJob (the live path of solve_tree) gives solve_tree's answer for the same frame, bit for bit,
on both backends, with orientations, poles, comfort poses and unreachable targets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from blender_ik_addon.core import ComfortPose, IKInputError, SolverOptions
from blender_ik_addon.core.tree import Tree, tree_tips
from blender_ik_addon.core.tree_job import TreeJob
from blender_ik_addon.core.tree_solver import TreeResult, solve_tree

from .conftest import random_chain
from .test_tree_compiled import needs_numba, random_poses, tentacle, two_arms, two_legs, world_rotations

BACKENDS = ["numpy", pytest.param("numba", marks=needs_numba)]


def _same(job: TreeResult, reference: TreeResult) -> None:
    for name in ("q", "angles", "errors", "orientation_errors", "reached", "converged", "iterations"):
        np.testing.assert_array_equal(getattr(job, name), getattr(reference, name), err_msg=name)
    assert job.names == reference.names


def _targets(tree: Tree, count: int, seed: int) -> np.ndarray:
    poses = random_poses(tree, count, seed)
    return np.stack([tree_tips(tree, q) for q in poses])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", [two_arms, two_legs, tentacle])
def test_frame_after_frame_the_job_answers_as_solve_tree(backend: str, make: Any) -> None:
    tree = make()
    targets = _targets(tree, 6, 3)
    targets[2, 0] += 5.0  # out of reach: a weighted compromise
    options = SolverOptions(backend=backend)
    count_e = len(tree.effectors)
    job = TreeJob(tree, follow=np.zeros(count_e, bool), has_pole=np.zeros(count_e, bool), comfort=None,
                  options=options)
    for frame in targets:
        job.set_targets(frame, np.broadcast_to(np.eye(3), (count_e, 3, 3)), None)
        _same(job.solve(), solve_tree(tree, frame[None], options=options))


@pytest.mark.parametrize("backend", BACKENDS)
def test_orientations_poles_and_a_comfort_pose_answer_as_solve_tree(backend: str) -> None:
    tree = two_arms()
    poses = random_poses(tree, 4, 11)
    targets = np.stack([tree_tips(tree, q) for q in poses])
    rotations = world_rotations(tree, poses, 0)
    follow, has_pole = np.array([True, False]), np.array([False, True])
    poles = np.zeros((4, 2, 3))
    poles[:, 1] = (-0.6, 0.3, 0.5)
    comfort = ComfortPose(0.2 * np.ones((tree.n_joints, 3)), 0.5)
    options = SolverOptions(backend=backend)
    job = TreeJob(tree, follow=follow, has_pole=has_pole, comfort=comfort, options=options)
    for f in range(4):
        job.set_targets(targets[f], rotations[f], poles[f])
        reference = solve_tree(tree, targets[f][None], orientations=rotations[f][None], follow=follow,
                               poles=poles[f][None], has_pole=has_pole, comfort=comfort, options=options)
        _same(job.solve(), reference)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_one_effector_job_answers_as_solve_tree_that_is_its_chains_solve(backend: str) -> None:
    """One effector: solved as its chain (tree_solver.solve_one_effector), not by the tree kernel."""
    tree = Tree.from_chains([random_chain(1)])
    targets = _targets(tree, 4, 5)
    targets[1, 0] += 50.0  # out of reach
    options = SolverOptions(backend=backend)
    comfort = ComfortPose(np.full(tree.n_dofs, 0.1), 0.3)
    job = TreeJob(tree, follow=[False], has_pole=[False], comfort=comfort, options=options)
    assert not job.solve_in_place()
    for frame in targets:
        job.set_targets(frame)
        _same(job.solve(), solve_tree(tree, frame[None], comfort=comfort, options=options))
    # Following a target rotation, with a pole: the rotations reach the chain solver as given.
    poses = random_poses(tree, 4, 6)
    rotations = world_rotations(tree, poses[::-1], 0)
    pole = np.array([[0.4, 1.0, -1.5]])
    job = TreeJob(tree, follow=[True], has_pole=[True], comfort=comfort, options=options)
    for frame, rotation in zip(targets, rotations, strict=True):
        job.set_targets(frame, rotation, pole)
        _same(job.solve(), solve_tree(tree, frame[None], orientations=rotation[None], follow=[True],
                                      poles=pole[None], comfort=comfort, options=options))


def test_bad_inputs_are_refused_as_solve_tree_refuses_them() -> None:
    tree = two_legs()
    with pytest.raises(IKInputError, match="weight 0"):
        TreeJob(two_legs((0.0, 0.0)), follow=[False, False], has_pole=[False, False], comfort=None,
                options=SolverOptions())
    job = TreeJob(tree, follow=[True, False], has_pole=[False, False], comfort=None, options=SolverOptions())
    with pytest.raises(IKInputError, match=r"not finite.*'right'"):
        job.set_targets(np.array([[0.0, 0.0, 0.0], [np.nan, 0.0, 0.0]]), np.broadcast_to(np.eye(3), (2, 3, 3)))
    with pytest.raises(IKInputError, match="none were given"):
        job.set_targets(np.zeros((2, 3)), None)
