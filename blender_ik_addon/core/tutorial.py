"""The tutorial's solver (Alan Zucconi, "Inverse Kinematics", 2017), kept faithful as a baseline.

Per call of one *sweep* (the tutorial's ``InverseKinematics``, run once per frame in Unity):

* if the tip is already within the distance threshold, stop;
* for each angle from the tip back to the base:
  * estimate the partial gradient of the error function by a forward finite difference with
    the sampling distance: ``(E(q + d e_i) - E(q)) / d``;
  * update that angle at once: ``q_i -= learning_rate * gradient``, then clamp it to its limits;
  * stop early if the tip is now within the distance threshold.

The error function is the tip distance plus, when a comfort pose is given, the tutorial's comfort
penalty (Part 6): the weighted squared distance of the angles from the comfort pose, times the
chain's reach so the two terms share units. The threshold test uses the distance alone.

Multi-axis joints contribute one "joint" per free angle, in the solver's base-to-tip order; the
sweep walks them in reverse. Vectorised over targets; each target is independent.
"""

from __future__ import annotations

import numpy as np

from .fk import tip_positions
from .lm import STATUS_CONVERGED, STATUS_MAX_ITER, Attempt
from .objectives import Problem
from .options import SolverOptions
from .types import AnyArray, FloatArray


def _distance(problem: Problem, q: FloatArray, index: AnyArray) -> FloatArray:
    tip = tip_positions(problem.chain, q)
    return np.asarray(np.linalg.norm(tip - problem.positions[index], axis=-1))


def _error(problem: Problem, q: FloatArray, index: AnyArray) -> FloatArray:
    error = _distance(problem, q, index)
    if problem.comfort is not None:
        target, weights, _ = problem.comfort
        error = error + problem.reach * np.einsum("fm,m->f", (q - target) ** 2, weights)
    return error


def tutorial_solve(problem: Problem, q0: FloatArray, options: SolverOptions) -> Attempt:
    """Run up to ``options.max_iterations`` sweeps (1 for the per-frame "follow" look)."""
    chain = problem.chain
    q = q0.copy()
    count, dofs = q.shape
    threshold = options.tolerance
    step, rate = options.sampling_distance, options.learning_rate
    everyone = np.arange(count)
    distance = _distance(problem, q, everyone)
    iterations = np.zeros(count, dtype=np.int64)
    for _ in range(options.max_iterations):
        active = np.flatnonzero(distance >= threshold)
        if active.size == 0:
            break
        iterations[active] += 1
        for i in range(dofs - 1, -1, -1):
            if active.size == 0:
                break
            current = q[active]
            base_error = _error(problem, current, active)
            nudged = current.copy()
            nudged[:, i] += step
            gradient = (_error(problem, nudged, active) - base_error) / step
            current[:, i] = np.clip(current[:, i] - rate * gradient, chain.lower[i], chain.upper[i])
            q[active] = current
            distance[active] = _distance(problem, current, active)
            active = active[distance[active] >= threshold]
    status = np.where(distance < threshold, STATUS_CONVERGED, STATUS_MAX_ITER)
    return Attempt(q, distance, np.zeros(count), iterations, status)
