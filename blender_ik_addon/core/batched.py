"""Many chains, one target each, solved again and again with the same settings (the live pass).

:func:`.solver.solve_batch` builds everything a solve needs on every call: the problem, the start
and seed poses, the kernel's view of the chain and comfort pose, its workspaces. That is right for
a bake (one call, many frames) and costs a live frame far more than the solve itself. A
:class:`ChainJob` builds the parts that stay the same from frame to frame once: per frame it only
takes the chain-space target. :func:`solve_jobs` then solves every job given in **one** call of
the compiled kernel (a numba typed List of jobs, kept while the same jobs come back).

The answer is :func:`.solver.solve_batch`'s for the same chain, target and settings, bit for bit
(the same kernel on the same inputs; ``tests/core/test_batched.py``), so a live pose equals the
baked key. A job the kernel cannot take (the tutorial method, a soft comfort pull, numba missing
or failing) is solved by ``solve_batch`` itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import compiled, rules
from .chain import Chain
from .compiled import KernelError
from .errors import IKInputError
from .lm import Attempt, has_null_space, relax_slack, restart_draws
from .objectives import ComfortPose, Problem, make_problem
from .options import SolveResult, SolverOptions
from .rotations import orthonormalize
from .solver import finish_result, nearest_comfort, solve_batch, start_poses
from .types import FloatArray

_NO_ORIENTATION = np.eye(3)[None]
_NO_POLE = np.zeros((1, 3))


class ChainJob:
    """One chain's solves toward one target at a time, with fixed settings.

    Args:
        chain: The chain.
        comfort: Preferred pose, as :func:`.solver.solve_batch` takes it.
        options: Solver options.
        orientation: The solves will be given a tip orientation.
        pole: The solves will be given a pole.

    Use :meth:`set_target`, then :func:`solve_jobs` (or :meth:`solve_alone`), then :meth:`result`.
    """

    def __init__(self, chain: Chain, comfort: ComfortPose | None, options: SolverOptions, *,
                 orientation: bool = False, pole: bool = False) -> None:
        self.chain, self.options = chain, options
        self.comfort = nearest_comfort(chain, comfort, options, has_pole=pole)
        # A stand-in problem with the same shape of inputs: everything below but the target follows from it.
        template = make_problem(chain, np.zeros((1, 3)), orientations=np.eye(3)[None] if orientation else None,
                                orientation_weight=options.orientation_weight,
                                poles=np.zeros((1, 3)) if pole else None, pole_weight=options.pole_weight,
                                comfort=self.comfort)
        self._template = template
        self.positions = np.zeros((1, 3))
        self.orientations: FloatArray | None = np.repeat(np.eye(3)[None], 1, axis=0) if orientation else None
        self.poles: FloatArray | None = np.zeros((1, 3)) if pole else None
        self.active = np.zeros(1, dtype=np.bool_)
        self.hopeless = np.zeros(1, dtype=np.bool_)
        self.starts, self.seed_poses = start_poses(chain, template)
        self._comfort_angles = template.comfort[0] if template.comfort is not None else chain.neutral
        centre, self._longest = chain.reach_sphere
        self._centre = tuple(float(v) for v in centre)
        self._base_rotation = orthonormalize(chain.base[:3, :3])
        self.compiled = compiled.use_compiled(template, options)
        self.job: tuple[Any, ...] | None = self._kernel_job(template) if self.compiled else None

    def _kernel_job(self, problem: Problem) -> tuple[Any, ...]:
        """The kernel's tuple (see ``kernel.solve_jobs``): what ``compiled.lm_solve_compiled`` passes."""
        chain, options = self.chain, self.options
        dofs = chain.n_dofs
        self.q, self.error, self.orientation_error = np.empty((1, dofs)), np.empty(1), np.empty(1)
        self.iterations, self.status = np.empty(1, dtype=np.int64), np.empty(1, dtype=np.int64)
        with_orientation = problem.orientations is not None and problem.orientation_weight > 0
        orientation_scale = problem.orientation_weight * problem.reach if with_orientation else 0.0
        posture = compiled.posture_of(problem)
        comfort_on = compiled.comfort_on(posture)
        can_relax = problem.has_secondary and has_null_space(problem)
        secondary = problem.poles is not None or can_relax
        sec_shared = (problem.poles is not None, float(problem.pole_weight), posture, comfort_on, float(problem.reach))
        flags = (can_relax, problem.has_secondary, relax_slack(options))
        settings = (float(orientation_scale), float(options.tolerance), float(options.orientation_tolerance),
                    rules.iteration_budget(options.max_iterations, dofs), float(options.initial_damping))
        unit, spread = restart_draws(dofs, options)
        orientations = self.orientations if self.orientations is not None else _NO_ORIENTATION
        poles = self.poles if self.poles is not None else _NO_POLE
        return (secondary, self.active, self.positions, orientations, poles, sec_shared, flags,
                np.ascontiguousarray(self.starts), np.ascontiguousarray(self.seed_poses), self.hopeless,
                np.ascontiguousarray(unit), np.ascontiguousarray(spread), settings, compiled.plan_of(chain), self.q,
                self.error, self.orientation_error, self.iterations, self.status)

    def set_target(self, position: FloatArray, orientation: FloatArray | None = None,
                   pole: FloatArray | None = None) -> None:
        """The next solve's chain-space target ``(3,)``, tip rotation ``(3, 3)`` and pole ``(3,)``
        (as the job was built: with or without them). Raises :class:`IKInputError` on NaN or inf."""
        x, y, z = float(position[0]), float(position[1]), float(position[2])
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z)):
            raise IKInputError("target position contains NaN or infinite values")
        self.positions[0, 0], self.positions[0, 1], self.positions[0, 2] = x, y, z
        if self.orientations is not None:
            if orientation is None or not np.isfinite(orientation).all():
                raise IKInputError("target orientation is missing, NaN or infinite")
            self.orientations[0] = orthonormalize(self._base_rotation.T @ orthonormalize(orientation))
        if self.poles is not None:
            if pole is None or not np.isfinite(pole).all():
                raise IKInputError("pole position is missing, NaN or infinite")
            self.poles[0] = pole
        # lm.beyond_reach for one target
        self.hopeless[0] = math.dist((x, y, z), self._centre) > self._longest + self.options.tolerance

    def solve_alone(self) -> SolveResult:
        """The target set last, solved by :func:`.solver.solve_batch` (not batched)."""
        return solve_batch(self.chain, self.positions.copy(),
                           orientations=None if self.orientations is None else self.orientations.copy(),
                           poles=None if self.poles is None else self.poles.copy(), comfort=self.comfort,
                           options=self.options)

    def result(self) -> SolveResult:
        """The kernel's answer to the last :func:`solve_jobs` call that had this job active."""
        attempt = Attempt(self.q.copy(), self.error.copy(), self.orientation_error.copy(), self.iterations.copy(),
                          self.status.copy())
        return finish_result(self.chain, self._comfort_angles, attempt)


_LISTS: dict[tuple[int, ...], tuple[tuple[ChainJob, ...], Any]] = {}
"""Typed Lists built so far, by the ids of their jobs (they hold the jobs, so the ids stay theirs).
A live pass with stacked chains solves level after level: one list a level, each kept."""
_MAX_LISTS = 16


def solve_jobs(jobs: Sequence[ChainJob]) -> list[SolveResult]:
    """Solve every job toward the target set last, the compiled ones in one kernel call.

    Returns:
        Each job's :class:`SolveResult` (one target), in the order given.
    """
    if not solve_in_place(jobs):
        return [job.solve_alone() for job in jobs]
    return [job.result() if job.compiled and job.job is not None else job.solve_alone() for job in jobs]


def solve_in_place(jobs: Sequence[ChainJob]) -> bool:
    """Run the kernel on the compiled jobs (in one call), leaving each answer in the job's arrays
    (``q``, ``error``, ``orientation_error``, ``iterations``, ``status``) for :meth:`ChainJob.result`
    or a caller that reads them directly. False when the kernel is unavailable (nothing solved)."""
    kernel_jobs = tuple(job for job in jobs if job.compiled and job.job is not None)
    kernel = compiled.kernel_module() if kernel_jobs else None
    if kernel is None:
        return False
    chosen = tuple(id(job) for job in kernel_jobs)
    kept = _LISTS.get(chosen) or _kept_list_holding(set(chosen))
    if kept is None:  # building a typed List costs far more than a solve: once per set of jobs
        typed = compiled.typed_list([job.job for job in kernel_jobs])
        if len(_LISTS) >= _MAX_LISTS:
            _LISTS.clear()
        kept = _LISTS[chosen] = (kernel_jobs, typed)
    for job in kernel_jobs:
        job.active[0] = True
    try:
        kernel.solve_jobs(kept[1])
    except Exception as err:  # as compiled.lm_solve_compiled: stop using the kernel, solve with numpy
        compiled.give_up(err)
        _LISTS.clear()
        if any(job.options.backend == "numba" for job in kernel_jobs):
            raise KernelError(str(err)) from err
        return False
    finally:
        for job in kernel_jobs:
            job.active[0] = False
    return True


def _kept_list_holding(wanted: set[int]) -> tuple[tuple[ChainJob, ...], Any] | None:
    """A kept list that holds every wanted job (the others in it stay inactive), or None."""
    for jobs, typed in _LISTS.values():
        if wanted <= {id(job) for job in jobs}:
            return jobs, typed
    return None


def forget() -> None:
    """Drop the kept typed Lists (and with them the jobs they hold)."""
    _LISTS.clear()
