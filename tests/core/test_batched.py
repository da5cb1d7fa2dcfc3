"""Many chains in one kernel call (the live pass's solve): the same answers as ``solve_batch``."""

from __future__ import annotations

import numpy as np
import pytest

from blender_ik_addon.core import ComfortPose, SolverOptions, solve_batch
from blender_ik_addon.core.batched import ChainJob, forget, solve_jobs
from blender_ik_addon.core.compiled import numba_available
from blender_ik_addon.core.examples import ball_limb, hinge_limb, human_arm, random_reachable_targets, tentacle

from .conftest import random_chain


def _assert_same(batched, alone) -> None:  # type: ignore[no-untyped-def]
    for field in ("q", "angles", "error", "orientation_error", "iterations", "converged", "status"):
        np.testing.assert_array_equal(getattr(batched, field), getattr(alone, field), err_msg=field)


CHAINS = {"human arm": human_arm, "tentacle": tentacle, "ball limb": ball_limb, "hinge limb": hinge_limb,
          "mixed": lambda: random_chain(3, scaled_base=False)}


@pytest.mark.parametrize("backend", ["auto", "numpy"])
def test_jobs_solved_together_equal_solve_batch_bit_for_bit(backend: str) -> None:
    """Every chain with its own settings (comfort pose or none, a pole, an orientation), all moving
    together over several frames, some frames with a chain left out: each answer is exactly the
    one ``solve_batch`` gives that chain and target alone."""
    forget()
    cases = []
    for k, (name, make) in enumerate(CHAINS.items()):
        chain = make()
        targets, poses = random_reachable_targets(chain, 4, seed=k)
        comfort = ComfortPose(poses[0] * 0.5, 0.0) if k % 2 else None
        options = SolverOptions(backend=backend, max_iterations=30 if backend == "numpy" else 100)
        pole = k == 1
        orientation = name == "human arm"
        job = ChainJob(chain, comfort, options, orientation=orientation, pole=pole)
        cases.append((job, chain, targets, comfort, options, pole, orientation, poses))
    for frame in range(3):
        active = [case for i, case in enumerate(cases) if frame == 0 or (i + frame) % 3]
        wanted = []
        for job, chain, targets, comfort, options, pole, orientation, _poses in active:
            rotation = None
            if orientation:
                rotation = chain.memo("test_rotation", (frame,), lambda: np.eye(3))
            pole_at = np.array([1.0, 0.0, 0.5]) if pole else None
            job.set_target(targets[frame], rotation, pole_at)
            wanted.append(solve_batch(chain, targets[frame][None],
                                      orientations=None if rotation is None else rotation[None],
                                      poles=None if pole_at is None else pole_at[None], comfort=comfort,
                                      options=options))
        for got, alone in zip(solve_jobs([case[0] for case in active]), wanted, strict=True):
            _assert_same(got, alone)


@pytest.mark.skipif(not numba_available(), reason="numba is not installed")
def test_jobs_take_the_kernel_in_one_list_kept_between_calls() -> None:
    from blender_ik_addon.core import batched

    forget()
    jobs = [ChainJob(make(), None, SolverOptions()) for make in (human_arm, tentacle)]
    for job in jobs:
        job.set_target(np.array([0.1, 0.3, 0.2]))
    solve_jobs(jobs)
    assert len(batched._LISTS) == 1 and all(job.compiled for job in jobs)
    solve_jobs(jobs[:1])  # a subset: the same list, the other job left inactive
    solve_jobs(jobs)
    assert len(batched._LISTS) == 1
    assert not any(job.active[0] for job in jobs)


def test_a_nan_target_is_refused_with_a_clear_message() -> None:
    job = ChainJob(human_arm(), None, SolverOptions())
    with pytest.raises(Exception, match="NaN or infinite"):
        job.set_target(np.array([np.nan, 0.0, 0.0]))
