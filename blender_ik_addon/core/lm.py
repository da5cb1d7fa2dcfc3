"""The default solver: projected Levenberg-Marquardt with analytic Jacobians, vectorised over F.

Each iteration, for every unfinished target at once:

1. Active set: a free angle sitting on a limit whose gradient pushes it outward is frozen
   (its Jacobian column is zeroed), so the step uses only the angles that can move.
2. Damped Gauss-Newton step on the primary task: ``(J^T J + lam D) dq = -J^T r`` with
   Marquardt scaling ``D = diag(J^T J)``.
3. Reach-first secondary tasks (pole, comfort) add ``N z`` where ``z`` is a preconditioned
   gradient step on the secondary cost and ``N = I - (J^T J + lam D)^-1 J^T J`` projects it
   into the (damped) null space of the primary task.
4. The trial is projected onto the limits, evaluated, and accepted if it lowers the cost
   (lexicographically: primary first, secondary once the tip is well inside tolerance).
   Accepted steps shrink ``lam``, rejected ones grow it; ``lam`` reaching its cap means stalled.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .objectives import Evaluation, Problem, evaluate, pole_alignment
from .options import SolverOptions
from .types import AnyArray, FloatArray

_DAMPING_MIN = 1e-12
_DAMPING_MAX = 1e6  # relative to diag(J^T J): steps are a millionth of Gauss-Newton's by then
_REJECTIONS_TO_SETTLE = 6  # a reached target whose secondary step keeps failing has settled
_SECONDARY_FULL_STEP_DAMPING = 1e-3  # at or below this damping the secondary step is taken in full
_FRUITLESS_RESTARTS = 16  # give up on a target after this many restarts in a row gained nothing
_RESTART_BLOCK = 8  # restart seeds tried together as one batch (answers as if tried one by one)
_RESTORE_DAMPING = 1e-6  # damping of the steps back onto the tip's solution set
_RELAX_PROGRESS = 1e-4  # relative secondary-cost gain under which a relaxing step counts as quiet
_RESTORE_STEPS = 2  # Gauss-Newton converges quadratically: two steps undo a second-order drift
_LIMIT_EPS = 1e-12
STATUS_RUNNING, STATUS_CONVERGED, STATUS_STALLED, STATUS_MAX_ITER = -1, 0, 1, 2


@dataclass
class Attempt:
    """Outcome of one attempt for ``F`` targets (mutable work arrays)."""

    q: FloatArray
    position_error: FloatArray
    orientation_error: FloatArray
    iterations: AnyArray
    status: AnyArray


def _converged(problem: Problem, ev: Evaluation, options: SolverOptions, scale: float = 1.0) -> AnyArray:
    ok = ev.position_error < options.tolerance * scale
    if problem.orientations is not None and problem.orientation_weight > 0:
        ok &= ev.orientation_error < options.orientation_tolerance * scale
    return np.asarray(ok)


def damped_solve(jac: FloatArray, damping_diag: FloatArray, rhs: FloatArray) -> FloatArray:
    """Solve ``(J^T J + diag(d)) x = b`` for each of ``F`` systems.

    Args:
        jac: ``(F, k, m)`` Jacobians.
        damping_diag: ``(F, m)`` positive diagonal ``d``.
        rhs: ``(F, m, c)`` right-hand sides.

    With fewer rows than unknowns (a 3-row tip task on a 40-angle tentacle) it uses the dual form
    (Woodbury identity), which needs ``k x k`` solves instead of ``m x m``:
    ``x = D^-1 b - D^-1 J^T (I + J D^-1 J^T)^-1 J D^-1 b``.
    """
    rows, dofs = jac.shape[1], jac.shape[2]
    if rows < dofs:
        scaled_rhs = rhs / damping_diag[..., None]
        jd = jac / damping_diag[:, None, :]  # J D^-1
        small = np.einsum("fkm,fjm->fkj", jd, jac) + np.eye(rows)
        inner = np.linalg.solve(small, np.einsum("fkm,fmc->fkc", jac, scaled_rhs))
        return np.asarray(scaled_rhs - np.einsum("fkm,fkc->fmc", jd, inner))
    normal = np.einsum("fkm,fkn->fmn", jac, jac)
    normal[:, np.arange(dofs), np.arange(dofs)] += damping_diag
    return np.asarray(np.linalg.solve(normal, rhs))


def relax_slack(options: SolverOptions) -> float:
    """Primary cost under which reach-first tasks may act: the tip within half the tolerance."""
    return 0.5 * (0.5 * options.tolerance) ** 2


def _step(problem: Problem, q: FloatArray, ev: Evaluation, damping: FloatArray, relax: AnyArray) -> FloatArray:
    """The projected LM step; ``relax`` ``(F,)`` marks targets whose secondary tasks may act."""
    chain = problem.chain
    jac = ev.primary_jacobian
    assert jac is not None
    gradient = np.einsum("fkm,fk->fm", jac, ev.primary)
    at_lower = q <= chain.lower + _LIMIT_EPS
    at_upper = q >= chain.upper - _LIMIT_EPS
    blocked = (at_lower & (gradient > 0)) | (at_upper & (gradient < 0))
    jac = jac * ~blocked[:, None, :]
    diagonal = np.einsum("fkm,fkm->fm", jac, jac)
    # Marquardt scaling with a floor, so frozen or insensitive angles keep a well-posed system.
    scale = np.maximum(diagonal, 1e-9 * (diagonal.max(axis=1, keepdims=True) + 1e-300))
    damping_diag = damping[:, None] * scale
    rhs = -np.where(blocked, 0.0, gradient)[..., None]
    main = damped_solve(jac, damping_diag, rhs)[..., 0]
    if ev.secondary is None or not relax.any():
        return main
    # Each rejection multiplies `damping` by 4; the secondary step shrinks in step with it.
    shrink = np.minimum(1.0, _SECONDARY_FULL_STEP_DAMPING / damping)
    return np.asarray(main + _secondary_step(jac, ev, np.where(relax, shrink, 0.0), at_lower, at_upper))


def _secondary_step(jac: FloatArray, ev: Evaluation, shrink: FloatArray, at_lower: AnyArray,
                    at_upper: AnyArray) -> FloatArray:
    """A reach-first step on the secondary cost that leaves the tip task alone to first order.

    It is the secondary gradient projected onto the null space of the (active) primary Jacobian,
    ``N g`` with the orthogonal projector ``N = I - J^T (J J^T)^-1 J``, scaled by the Gauss-Newton
    step length ``|N g|^2 / |J2 N g|^2``, times ``shrink`` ``(F,)``. An orthogonal projector keeps
    ``-N g`` a descent direction of the secondary cost.
    """
    jac2 = ev.secondary_jacobian
    assert jac2 is not None and ev.secondary is not None
    grad = np.einsum("fkm,fk->fm", jac2, ev.secondary)
    grad = np.where((at_lower & (grad > 0)) | (at_upper & (grad < 0)), 0.0, grad)  # stay off the limits
    gram = np.einsum("fkm,fjm->fkj", jac, jac)
    rows = gram.shape[1]
    ridge = 1e-12 * (np.einsum("fkk->f", gram) / rows + 1e-300)  # keeps J J^T invertible at singularities
    gram[:, np.arange(rows), np.arange(rows)] += ridge[:, None]
    coefficients = np.linalg.solve(gram, np.einsum("fkm,fm->fk", jac, grad)[..., None])[..., 0]
    projected = grad - np.einsum("fkm,fk->fm", jac, coefficients)
    curvature = np.einsum("fkm,fm->fk", jac2, projected)
    length = np.einsum("fm,fm->f", projected, projected) / (np.einsum("fk,fk->f", curvature, curvature) + 1e-300)
    return np.asarray(-(length * shrink)[:, None] * projected)


def _better(problem: Problem, old: Evaluation, new: Evaluation, options: SolverOptions) -> AnyArray:
    old_p, new_p = old.primary_cost, new.primary_cost
    improved = new_p < old_p
    if problem.has_secondary:
        # Reach first: until the tip is well inside tolerance only the primary cost counts. Then
        # trade freely along the solution set for the secondary tasks, as long as the tip stays.
        slack = relax_slack(options)
        relaxing = old_p <= slack
        inside = new_p <= slack
        improved = np.where(relaxing, inside & (new.secondary_cost < old.secondary_cost), improved)
    return np.asarray(improved)


def _merit(ev: Evaluation, relaxing: AnyArray) -> FloatArray:
    """The cost being minimised: the primary one, or the secondary one once relaxing."""
    return np.asarray(np.where(relaxing, ev.secondary_cost, ev.primary_cost))


_FIELDS = ("position_error", "orientation_error", "primary", "primary_jacobian", "secondary",
           "secondary_jacobian", "primary_cost", "secondary_cost")


def _take(ev: Evaluation, index: AnyArray) -> Evaluation:
    parts: dict[str, Any] = {name: None if getattr(ev, name) is None else getattr(ev, name)[index] for name in _FIELDS}
    return Evaluation(**parts)


def _put(dst: Evaluation, index: AnyArray, src: Evaluation) -> None:
    for name in _FIELDS:
        target = getattr(dst, name)
        if target is not None:
            target[index] = getattr(src, name)


def _restore_tip(problem: Problem, q: FloatArray, ev: Evaluation, relax: AnyArray) -> None:
    """Lightly damped Gauss-Newton steps on the tip task for the ``relax`` targets, in place.

    A secondary step moves along the tip's solution set only to first order; on a curved set it
    drifts the tip by a second-order amount. Stepping straight back before the trial is judged
    lets the secondary task take full steps instead of crawling.
    """
    index = np.flatnonzero(relax)
    sub = problem.take(index)
    nothing_to_relax = np.zeros(index.size, dtype=bool)
    for _ in range(_RESTORE_STEPS):
        fix = _step(sub, q[index], _take(ev, index), np.full(index.size, _RESTORE_DAMPING), nothing_to_relax)
        q[index] = problem.chain.clamp(q[index] + fix)
        _put(ev, index, evaluate(sub, q[index]))


def soft_comfort(problem: Problem) -> bool:
    return problem.comfort is not None and not problem.comfort[2]


def has_null_space(problem: Problem) -> bool:
    """True if the chain has more free angles than the tip task has rows, so reach-first tasks
    have room to act; otherwise relaxing could only be rejected, one iteration after another."""
    rows = 3 + (3 if problem.orientations is not None and problem.orientation_weight > 0 else 0)
    return problem.chain.n_dofs > rows


def lm_attempt(problem: Problem, q0: FloatArray, options: SolverOptions) -> Attempt:
    """One projected-LM attempt from ``q0`` ``(F, m)`` (already inside the limits)."""
    count = problem.count
    q = q0.copy()
    ev = evaluate(problem, q)
    damping = np.full(count, options.initial_damping)
    status = np.full(count, STATUS_RUNNING)
    iterations = np.zeros(count, dtype=np.int64)
    quiet = np.zeros(count, dtype=np.int64)  # consecutive accepted steps with negligible progress
    rejections = np.zeros(count, dtype=np.int64)  # consecutive rejected steps
    can_relax = problem.has_secondary and has_null_space(problem)  # reach-first tasks get steps
    has_secondary = can_relax or soft_comfort(problem)  # keep iterating after the tip arrives
    if not has_secondary:
        status[_converged(problem, ev, options)] = STATUS_CONVERGED
    for _ in range(options.max_iterations):
        active = np.flatnonzero(status == STATUS_RUNNING)
        if active.size == 0:
            break
        everyone = active.size == count  # skip the compaction copies while nobody has finished
        sub = problem if everyone else problem.take(active)
        sub_ev = ev if everyone else _take(ev, active)
        relax = (sub_ev.primary_cost <= relax_slack(options)) & can_relax
        trial_q = problem.chain.clamp(q[active] + _step(sub, q[active], sub_ev, damping[active], relax))
        trial = evaluate(sub, trial_q)
        if relax.any():
            _restore_tip(sub, trial_q, trial, relax)
        iterations[active] += 1
        accept = _better(sub, sub_ev, trial, options)
        old_merit, new_merit = _merit(sub_ev, relax), _merit(trial, relax)

        took = active[accept]
        q[took] = trial_q[accept]
        if everyone and accept.all():
            ev = trial
        else:
            _put(ev, took, _take(trial, np.flatnonzero(accept)))
        damping[took] = np.maximum(damping[took] / 3.0, _DAMPING_MIN)
        refused = active[~accept]
        damping[refused] *= 4.0
        rejections[took] = 0
        rejections[refused] += 1

        progress = (old_merit - new_merit)[accept]
        # The tip task is driven to machine precision; a preference (comfort, pole) only needs to
        # settle, so relaxing steps that gain under _RELAX_PROGRESS of their cost count as quiet.
        relative = np.where(relax[accept], _RELAX_PROGRESS, 1e-14)
        negligible = progress <= relative * np.maximum(old_merit[accept], 1e-300) + 1e-30
        quiet[took] = np.where(negligible, quiet[took] + 1, 0)

        now = ev if everyone else _take(ev, active)
        reached = _converged(sub, now, options)
        if has_secondary:
            # Keep improving the secondary task until it stops moving, then stop if reached.
            settled = ((quiet[active] >= 2) | (damping[active] >= _DAMPING_MAX)
                       | (reached & (rejections[active] >= _REJECTIONS_TO_SETTLE)))
            status[active[reached & settled]] = STATUS_CONVERGED
            status[active[~reached & settled]] = STATUS_STALLED
        else:
            status[active[reached]] = STATUS_CONVERGED
            stuck = ~reached & ((quiet[active] >= 3) | (damping[active] >= _DAMPING_MAX))
            status[active[stuck]] = STATUS_STALLED
    final = _converged(problem, ev, options)
    running = status == STATUS_RUNNING
    status[running & final] = STATUS_CONVERGED
    status[running & ~final] = STATUS_MAX_ITER
    # Settled secondary tasks can drift the tip right up to tolerance; report the truth.
    status[(status == STATUS_CONVERGED) & ~final] = STATUS_STALLED
    return Attempt(q, ev.position_error.copy(), ev.orientation_error.copy(), iterations, status)


def restart_seeds(problem: Problem, start: FloatArray, options: SolverOptions) -> FloatArray:
    """Deterministic restart poses ``(F, restarts, m)``: growing perturbations of each start.

    ``start`` is ``(F, m)`` (or ``(1, m)`` shared). The perturbations depend only on the chain,
    the start pose and the seed, never on the rest of the batch, so a batch gives the same
    answers as a loop of single solves.
    """
    chain = problem.chain
    unit, spread = restart_draws(chain.n_dofs, options)
    base = start[:, None, :]  # (F, 1, m)
    low = np.where(np.isfinite(chain.lower), chain.lower, base - np.pi)
    high = np.where(np.isfinite(chain.upper), chain.upper, base + np.pi)
    uniform = unit * (high - low) + low
    return np.asarray(chain.clamp(base + spread[:, None] * (uniform - base)))


def restart_draws(dofs: int, options: SolverOptions) -> tuple[FloatArray, FloatArray]:
    """The seeds' random part: ``(restarts, m)`` uniform draws in [0, 1) from ``options.seed``, and
    ``(restarts,)`` how far each seed moves from its pose toward its draw (growing from 0.35 to 1).
    Read-only arrays, shared between calls."""
    return _draws(int(options.seed), int(options.restarts), dofs)


@functools.lru_cache(maxsize=64)
def _draws(seed: int, restarts: int, dofs: int) -> tuple[FloatArray, FloatArray]:
    unit = np.random.default_rng(seed).uniform(size=(restarts, dofs))
    spread = np.linspace(0.35, 1.0, restarts)
    unit.flags.writeable = False
    spread.flags.writeable = False
    return unit, spread


def lm_solve(problem: Problem, q0: FloatArray, options: SolverOptions, seed_poses: FloatArray) -> Attempt:
    """LM with deterministic restarts.

    Restarts run for targets that stalled above tolerance, and, with a pole hint, for converged
    targets whose chain bends away from the pole: the pole picks the solution branch (a planar
    knee has no null space in which a secondary task could flip it).

    Restart seeds are tried in a fixed order and the first that helps wins, exactly as if they
    were tried one by one; for speed, a block of seeds runs as one batch and the block's results
    are then applied seed by seed with the same rules (attempts a sequential run would have
    skipped are discarded, iterations included).

    Args:
        problem: The targets.
        q0: ``(F, m)`` start poses inside the limits.
        options: Solver options.
        seed_poses: ``(F, m)`` or ``(1, m)`` poses whose perturbations seed the restarts (the
            comfort pose, else each target's start pose).
    """
    best = lm_attempt(problem, q0, options)
    if options.restarts == 0:
        return best
    state = _RestartState(
        best=best, alignment=pole_alignment(problem, best.q),
        # Restarts cannot help a target farther from the first joint than the whole chain reaches,
        # nor a soft comfort pull, whose optimum is a compromise that need not reach the tip at all.
        hopeless=beyond_reach(problem, options) | soft_comfort(problem),
        fruitless=np.zeros(problem.count, dtype=np.int64))
    seeds = restart_seeds(problem, seed_poses, options)  # (F or 1, K, m)
    for first in range(0, options.restarts, _RESTART_BLOCK):
        candidates = np.flatnonzero(state.wants_restart())
        if candidates.size == 0:
            break
        block = min(_RESTART_BLOCK, options.restarts - first)
        # Run every seed of the block for every candidate at once: row i * block + j is seed j.
        rows = np.repeat(candidates, block)
        seed_rows = rows if seeds.shape[0] == problem.count else np.zeros_like(rows)
        starts = seeds[seed_rows, np.tile(np.arange(first, first + block), candidates.size)]
        sub = problem.take(rows)
        attempts = lm_attempt(sub, starts, options)
        alignments = pole_alignment(sub, attempts.q)
        for j in range(block):
            mine = np.arange(candidates.size) * block + j
            state.apply(candidates, attempts, alignments, mine, options)
    return state.best


@dataclass
class _RestartState:
    """The best attempt so far per target, and the bookkeeping that decides on more restarts."""

    best: Attempt
    alignment: FloatArray
    hopeless: AnyArray
    fruitless: AnyArray  # consecutive restarts that did not help

    def wants_restart(self) -> AnyArray:
        unfinished = (self.best.status != STATUS_CONVERGED) & ~self.hopeless & (self.fruitless < _FRUITLESS_RESTARTS)
        return np.asarray(unfinished | (self.alignment < 0))

    def apply(self, candidates: AnyArray, attempts: Attempt, alignments: FloatArray, rows: AnyArray,
              options: SolverOptions) -> None:
        """Apply one seed's attempts (``rows`` of ``attempts``, one per candidate) to the
        candidates that still want a restart at this point of the sequence."""
        still = self.wants_restart()[candidates]
        retry, rows = candidates[still], rows[still]
        if retry.size == 0:
            return
        best = self.best
        best.iterations[retry] += attempts.iterations[rows]
        was_converged = best.status[retry] == STATUS_CONVERGED
        now_converged = attempts.status[rows] == STATUS_CONVERGED
        error = attempts.position_error[rows]
        closer = error < best.position_error[retry] - 1e-15
        wins = np.where(was_converged, now_converged & (alignments[rows] > self.alignment[retry]),
                        now_converged | closer)
        helped = now_converged | (error < best.position_error[retry] - 0.01 * options.tolerance)
        self.fruitless[retry] = np.where(helped, 0, self.fruitless[retry] + 1)
        chosen, source = retry[wins], rows[wins]
        best.q[chosen] = attempts.q[source]
        best.position_error[chosen] = attempts.position_error[source]
        best.orientation_error[chosen] = attempts.orientation_error[source]
        best.status[chosen] = attempts.status[source]
        self.alignment[chosen] = alignments[source]


def beyond_reach(problem: Problem, options: SolverOptions) -> AnyArray:
    """``(F,)`` True where the target is provably out of reach of the whole chain.

    The first joint's origin does not move, and no pose puts the tip farther from it than the
    sum of the link lengths (measured in world space, so a scaled base is accounted for).
    """
    centre, longest = problem.chain.reach_sphere
    distance = np.linalg.norm(problem.positions - centre, axis=1)
    return np.asarray(distance > longest + options.tolerance)
