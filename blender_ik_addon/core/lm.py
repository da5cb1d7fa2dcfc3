"""The default solver: projected Levenberg-Marquardt with analytic Jacobians, vectorised over F.

It finds, among the poses inside the limits that reach the target, the one nearest the preferred
pose ``p`` (see :mod:`.rules` for the metric and every constant). Each iteration, for every
unfinished target at once:

1. Active set: a free angle sitting on a limit whose gradient pushes it outward is frozen
   (its Jacobian column is zeroed), so the step uses only the angles that can move.
2. Damped Gauss-Newton step on the primary task: ``(J^T J + lam D) dq = -J^T r`` with
   Marquardt scaling ``D = diag(J^T J)``, shortened so no angle turns more than
   ``rules.MAX_STEP`` (a trust region: from a straight start the chain bends gradually).
3. Once the tip has arrived, the secondary tasks (the pull toward ``p``, and a pole) add ``z``,
   a step along the tip's solution set: Newton's step on the Lagrangian, with the tip's second
   derivatives (:func:`_newton_step`; chains up to ``rules.NEWTON_MAX_ANGLES`` free angles, where
   it is well posed; shortened to end on a limit it would cross), else the secondary gradient
   projected by ``N = I - J^T (J J^T)^-1 J`` onto the null space of the tip task, at its
   Gauss-Newton length. ``z`` is shortened to a trust radius (radians) that grows after accepted
   steps and drops below the size of a refused one. Lightly damped steps then put the tip back.
4. The trial is projected onto the limits, evaluated, and accepted if it lowers the cost
   (lexicographically: primary first, secondary once the tip is well inside tolerance).
5. An attempt ends when the tip is within tolerance and the full null-space step is under
   ``rules.SETTLE_ANGLE`` (a first-order optimum of the distance to ``p``: settled), or when the
   tip stops improving above tolerance (stalled), or at the iteration budget.

A chain that stretches (:mod:`.stretch`) reaches with its angles first: both steps hold the length
factors at 1 (as if frozen on a limit) until the tip stalls short of the target; then they let them
go, and the attempt goes on, the null-space step sharing the stretch by the factors' weights. A
target beyond the reach of the angles alone (:func:`beyond_rigid_reach`) lets them go from the start. So a
target the angles reach gets the pose it gets without stretch, and one beyond reach is reached
stretching. (Left free from the start, the stiff factors' rows next to the soft angles' make the
null-space step crawl, and Newton's system is seldom positive definite there.)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import rules
from .chain import Chain
from .fk import cross, forward, tip_columns
from .objectives import Evaluation, Problem, evaluate, pole_alignment
from .options import SolverOptions
from .rules import CONVERGED as STATUS_CONVERGED
from .rules import MAX_ITER as STATUS_MAX_ITER
from .rules import RUNNING as STATUS_RUNNING
from .rules import STALLED as STATUS_STALLED
from .types import AnyArray, FloatArray

__all__ = ["STATUS_CONVERGED", "STATUS_MAX_ITER", "STATUS_RUNNING", "STATUS_STALLED", "Attempt", "lm_solve"]


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
    return rules.relax_slack(options.tolerance)


def _step(problem: Problem, q: FloatArray, ev: Evaluation, damping: FloatArray,
          relax_radius: FloatArray, held: AnyArray | None = None) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The projected LM step; ``(F,)`` the size (largest angle, radians) of the full null-space
    step toward the secondary optimum (``inf`` where ``relax_radius`` is 0: not relaxing); and
    ``(F,)`` the size of the part of it taken.

    ``relax_radius`` ``(F,)``: the null-space step is shortened to this size (0: none taken).
    ``held`` ``(F,)``: the tip step leaves the length factors alone (a chain that stretches).
    """
    chain = problem.chain
    full_jac = ev.primary_jacobian
    assert full_jac is not None
    gradient = np.einsum("fkm,fk->fm", full_jac, ev.primary)
    at_lower, at_upper = rules.at_limits(q, chain.lower, chain.upper)
    blocked = rules.pushed_outward(at_lower, at_upper, gradient)
    if held is not None:
        blocked[:, chain.n_angles:] |= held[:, None]
    jac = full_jac * ~blocked[:, None, :]
    diagonal = np.einsum("fkm,fkm->fm", jac, jac)
    # Marquardt scaling with a floor, so frozen or insensitive angles keep a well-posed system.
    scale = np.maximum(diagonal, rules.SCALE_FLOOR * (diagonal.max(axis=1, keepdims=True) + 1e-300))
    damping_diag = damping[:, None] * scale
    rhs = -np.where(blocked, 0.0, gradient)[..., None]
    step = damped_solve(jac, damping_diag, rhs)[..., 0]
    gap = np.full(q.shape[0], np.inf)
    taken = np.zeros(q.shape[0])
    relaxing = relax_radius > 0
    if ev.secondary is not None and relaxing.any():
        # The full primary Jacobian: an angle the tip step froze may still move along the null space.
        toward, size = _secondary_step(chain, q, full_jac, ev, at_lower, at_upper, held)
        gap = np.where(relaxing, size, np.inf)
        taken = np.where(relaxing, np.minimum(size, relax_radius), 0.0)
        step = step + (taken / np.maximum(size, 1e-300))[:, None] * toward
    return _trust(step), gap, taken


def _trust(step: FloatArray) -> FloatArray:
    """``step`` with every angle's change clipped to ``rules.MAX_STEP``.

    Clipped angle by angle, not scaled as a whole: an angle that barely moves the tip (a
    zero-length bone) gets a huge Gauss-Newton step, which would otherwise shrink everyone's.
    """
    return np.asarray(np.clip(step, -rules.MAX_STEP, rules.MAX_STEP))


def _secondary_step(chain: Chain, q: FloatArray, jac: FloatArray, ev: Evaluation, at_lower: AnyArray,
                    at_upper: AnyArray, held: AnyArray | None = None) -> tuple[FloatArray, FloatArray]:
    """The full reach-first step on the secondary cost, leaving the tip task alone to first order,
    and ``(F,)`` its size (largest angle) for the settle test.

    A Newton step on the Lagrangian where it is well posed (:func:`_newton_step`), else the
    secondary gradient projected onto the null space of the primary Jacobian, ``N g`` with the
    orthogonal projector ``N = I - J^T (J J^T)^-1 J``, scaled by the Gauss-Newton step length
    ``|N g|^2 / |J2 N g|^2``. An orthogonal projector keeps ``-N g`` a descent direction of the
    secondary cost.

    Active set: an angle on a limit that the projected gradient (or near a limit that Newton's
    step) would push outward is frozen (its gradient and Jacobian column dropped) and the step
    redone, as Blender's solver locks a violating DoF and solves again; each target takes up to
    ``rules.FREEZE_PASSES`` passes of its own. Otherwise the clamp cuts the step out of the null
    space, the tip drifts, and the pull stalls far from its optimum. A Newton step that would
    carry an angle farther than ``rules.NEWTON_LIMIT_BAND`` away across its limit is shortened to
    end on that limit (the size reported is the full step's).
    """
    jac2 = ev.secondary_jacobian
    assert jac2 is not None and ev.secondary is not None
    grad = np.einsum("fkm,fk->fm", jac2, ev.secondary)
    frozen = rules.pushed_outward(at_lower, at_upper, grad)
    if held is not None:  # held length factors (see the module docstring)
        frozen[:, chain.n_angles:] |= held[:, None]
    count, m = q.shape
    newton_allowed = m <= rules.NEWTON_MAX_ANGLES
    projected = np.zeros((count, m))
    newton = np.zeros((count, m))
    posed = np.zeros(count, dtype=bool)
    open_ = np.ones(count, dtype=bool)  # targets whose active set is still changing
    for _ in range(rules.FREEZE_PASSES):
        index = np.flatnonzero(open_)
        sub_jac, sub_frozen, sub_q = jac[index], frozen[index], q[index]
        free_jac = sub_jac * ~sub_frozen[:, None, :]
        free_grad = np.where(sub_frozen, 0.0, grad[index])
        gram = _gram(free_jac)
        coefficients = np.linalg.solve(gram, np.einsum("fkm,fm->fk", free_jac, free_grad)[..., None])[..., 0]
        projected[index] = free_grad - np.einsum("fkm,fk->fm", free_jac, coefficients)
        pushing = rules.pushed_outward(at_lower[index], at_upper[index], projected[index]) & ~sub_frozen
        settled = ~pushing.any(axis=1)
        if newton_allowed and settled.any():
            # The multipliers of the tip rows: the gradient's part the tip task balances, -(J J^T)^-1 J g.
            ok = np.flatnonzero(settled)
            step, well_posed, crossing = _newton_step(
                chain, sub_q[ok], jac2[index[ok]], free_jac[ok], gram[ok], sub_frozen[ok], -coefficients[ok, :3],
                projected[index[ok]])
            newton[index[ok]] = step
            posed[index[ok]] = well_posed  # a target that refreezes stays open: redone next pass
            pushing[ok] |= crossing  # frozen for the next pass, Newton's step redone without them
            settled[ok] = ~crossing.any(axis=1)
        frozen[index] |= pushing
        open_[index[settled]] = False
        if not open_.any():
            break
    # Newton needs the projection of its final active set: a target still open has none.
    posed &= ~open_
    curvature = np.einsum("fkm,fm->fk", jac2, projected)
    length = np.einsum("fm,fm->f", projected, projected) / (np.einsum("fk,fk->f", curvature, curvature) + 1e-300)
    descent = np.asarray(-length[:, None] * projected)
    gap = np.abs(np.where(posed[:, None], newton, descent)).max(axis=1, initial=0.0)
    # Newton's step crossing a limit farther away: shortened to end on the nearest such limit.
    room = np.where(newton < 0, chain.lower - q, chain.upper - q) / np.where(newton == 0, 1.0, newton)
    shortened = np.minimum(1.0, np.where(newton == 0, np.inf, room).min(axis=1, initial=np.inf))
    return np.asarray(np.where(posed[:, None], shortened[:, None] * newton, descent)), np.asarray(gap)


def _gram(free_jac: FloatArray) -> FloatArray:
    """``J J^T`` with a ridge of 1e-12 of its mean diagonal (keeps it invertible at singularities)."""
    rows = free_jac.shape[1]
    gram = np.einsum("fkm,fjm->fkj", free_jac, free_jac)
    ridge = 1e-12 * (np.einsum("fkk->f", gram) / rows + 1e-300)
    gram[:, np.arange(rows), np.arange(rows)] += ridge[:, None]
    return np.asarray(gram)


def _newton_step(chain: Chain, q: FloatArray, jac2: FloatArray, free_jac: FloatArray, gram: FloatArray,
                 frozen: AnyArray, multipliers: FloatArray, projected: FloatArray
                 ) -> tuple[FloatArray, AnyArray, AnyArray]:
    """Newton's step toward the nearest pose along the tip's solution set, ``(F,)`` where it is
    well posed, and ``(F, m)`` the free angles it would carry across a limit that is nearer than
    ``rules.NEWTON_LIMIT_BAND`` (these are to be frozen and the step redone).

    The gradient step converges only linearly where the solution set curves (its rate is set by
    the curvature times the multipliers: 0.6 per step on the KUKA). Newton's step on the
    Lagrangian ``0.5 |r2|^2 + l . r1`` minimises the quadratic model with Hessian
    ``H = J2^T J2 + l . d2 r1`` (:func:`_curvature`) over the null space: ``P H P y + (I - P) y =
    -P g`` with ``P`` the projector onto the free angles' null space (frozen angles get ``y = 0``).
    Well posed where that matrix is positive definite (a Cholesky factorisation exists); elsewhere
    the caller keeps the gradient step.
    """
    count, m = q.shape
    inverse_part = np.linalg.solve(gram, free_jac)  # (J J^T)^-1 J, (F, rows, m)
    projector = (~frozen)[:, :, None] * np.eye(m) - np.einsum("fam,fak->fmk", free_jac, inverse_part)
    hessian = np.einsum("frm,frk->fmk", jac2, jac2) + _curvature(chain, q, multipliers)
    system = projector @ hessian @ projector + np.eye(m) - projector
    largest = np.einsum("fii->fi", system).max(axis=1)
    system += (rules.NEWTON_RIDGE * largest)[:, None, None] * np.eye(m)
    posed = np.ones(count, dtype=bool)
    try:
        np.linalg.cholesky(system)  # all at once: the usual case
    except np.linalg.LinAlgError:
        # Which ones are not positive definite: by their eigenvalues, batched (a Cholesky per target
        # costs a Python call each, every iteration of a ball-jointed chain, where Newton rarely holds).
        posed = np.linalg.eigvalsh(system)[:, 0] > 0
        system[~posed] = np.eye(m)
    newton = np.linalg.solve(system, -projected[..., None])[..., 0]
    # Past a limit within the band: frozen there (the clamp would bend the step out of the null space).
    crossing = ((((newton < 0) & (q + newton < chain.lower) & (q < chain.lower + rules.NEWTON_LIMIT_BAND))
                 | ((newton > 0) & (q + newton > chain.upper) & (q > chain.upper - rules.NEWTON_LIMIT_BAND)))
                & ~frozen & posed[:, None])
    return newton, posed, crossing


def _curvature(chain: Chain, q: FloatArray, multipliers: FloatArray) -> FloatArray:
    """``(F, m, m)``: ``sum_c multipliers_c d2 tip_c / dq_i dq_k``, the tip task's part of the
    Lagrangian's Hessian (position rows; ``multipliers`` ``(F, 3)`` world).

    Turning angle ``u`` turns every angle ranked after it (``Chain.turn_rank``) and the tip about
    its axis ``a_u``, so for ``u`` at or before ``d`` the derivative of column ``d``,
    ``c_d = a_d x (x - o_d)`` (chain space), by ``q_u`` is ``a_u x c_d``; the world rows are the
    base's linear part ``B`` times that, and ``l . B (a_u x c_d) = c_d . ((B^T l) x a_u)``.

    A length factor ``s_u`` turns nothing (its row is 0 against everything ranked after it, itself
    included: its column ``(e_u - o_u) / s_u`` does not change with it, nor with another factor),
    except an angle ``d`` of a joint inside its segment: ``c_d = a_d x (x - o_d)`` grows with the
    segment's part past ``o_d``, ``d c_d / d s_u = a_d x (e_u - o_d) / s_u`` (``e_u`` the segment's end).
    """
    kin = forward(chain, q)
    assert kin.axes is not None
    columns = tip_columns(chain, kin)  # (F, m, 3)
    pulled = multipliers @ chain.base[:3, :3]  # B^T l, chain space
    turned = cross(pulled[:, None, :], kin.axes)  # (B^T l) x a_u
    full = np.einsum("fuj,fdj->fud", turned, columns)  # right where u is at or before d
    if chain.n_stretch:
        assert kin.factors is not None and kin.segment_ends is not None
        for i, (joint, end) in enumerate(zip(chain.stretch_joint, chain.stretch_end, strict=True)):
            inside = np.flatnonzero((chain.free_joint > joint) & (chain.free_joint < end))
            lever = kin.segment_ends[:, i, None] - kin.origins[:, chain.free_joint[inside]]  # (F, d, 3)
            full[:, chain.n_angles + i, inside] = np.einsum("fdj,fdj->fd", turned[:, inside], lever) / kin.factors[
                :, i, None]
    rank = chain.turn_rank
    return np.asarray(np.where(rank[:, None] <= rank[None, :], full, np.swapaxes(full, 1, 2)))


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


def _restore_tip(problem: Problem, q: FloatArray, ev: Evaluation, relax: AnyArray, slack: float,
                 held: AnyArray | None = None) -> None:
    """Lightly damped Gauss-Newton steps on the tip task for the ``relax`` targets, in place.

    A secondary step moves along the tip's solution set only to first order; on a curved set it
    drifts the tip by a second-order amount. Stepping straight back before the trial is judged
    lets the secondary task take full steps instead of crawling. A target whose tip cost is
    already under ``rules.RESTORE_CLOSE x slack`` takes no further step.
    """
    index = np.flatnonzero(relax)
    sub = problem.take(index)
    nothing_to_relax = np.zeros(index.size)
    sub_q, sub_ev = q[index], _take(ev, index)
    sub_held = None if held is None else held[index]
    for i in range(rules.RESTORE_STEPS):
        fix, _, _ = _step(sub, sub_q, sub_ev, np.full(index.size, rules.RESTORE_DAMPING), nothing_to_relax, sub_held)
        fix[sub_ev.primary_cost <= rules.RESTORE_CLOSE * slack] = 0.0
        sub_q = problem.chain.clamp(sub_q + fix)
        # The secondary rows are only judged at the end (they are the costly part on numpy).
        sub_ev = evaluate(sub, sub_q, secondary_rows=i == rules.RESTORE_STEPS - 1)
    q[index] = sub_q
    _put(ev, index, sub_ev)


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
    can_relax = problem.has_secondary and has_null_space(problem)  # reach-first tasks get steps
    soft = soft_comfort(problem)
    # Without a null space the secondary rows can never act (the kernel's plain path skips them too).
    secondary_rows = can_relax or soft
    ev = evaluate(problem, q, secondary_rows=secondary_rows)
    damping = np.full(count, options.initial_damping)
    relax_radius = np.full(count, np.inf)  # longest null-space step to take (a trust radius, radians)
    taken = np.zeros(count)  # size of the null-space step in the last trial
    gap = np.full(count, np.inf)  # size of the last full null-space step: the distance from settling
    relaxed = np.zeros(count, dtype=np.int64)  # null-space steps taken
    status = np.full(count, STATUS_RUNNING)
    iterations = np.zeros(count, dtype=np.int64)
    quiet = np.zeros(count, dtype=np.int64)  # consecutive accepted tip steps with negligible progress
    slack = relax_slack(options)
    # A chain that stretches reaches with its angles first (see the module docstring).
    held = None
    # With an orientation task a stall may be the orientation's, which stretching cannot help: such a
    # chain stretches only for a target beyond its full length (held from the start otherwise).
    orienting = problem.orientations is not None and problem.orientation_weight > 0
    if problem.chain.n_stretch:  # a soft pull trades reach for comfort anyway: nothing held
        held = np.zeros(count, dtype=bool) if soft else ~beyond_rigid_reach(problem, options)
    if not (can_relax or soft):
        status[_converged(problem, ev, options)] = STATUS_CONVERGED
    for _ in range(rules.iteration_budget(options.max_iterations, problem.chain.n_dofs)):
        active = np.flatnonzero(status == STATUS_RUNNING)
        if active.size == 0:
            break
        everyone = active.size == count  # skip the compaction copies while nobody has finished
        sub = problem if everyone else problem.take(active)
        sub_ev = ev if everyone else _take(ev, active)
        relax = (sub_ev.primary_cost <= slack) & can_relax
        sub_held = None if held is None else held[active]
        step, gap[active], taken[active] = _step(sub, q[active], sub_ev, damping[active],
                                                 np.where(relax, relax_radius[active], 0.0), sub_held)
        trial_q = problem.chain.clamp(q[active] + step)
        trial = evaluate(sub, trial_q, secondary_rows=secondary_rows)
        if relax.any():
            _restore_tip(sub, trial_q, trial, relax, slack, sub_held)
        iterations[active] += 1
        relaxed[active] += relax
        accept = _better(sub, sub_ev, trial, options)
        old_cost = sub_ev.primary_cost.copy()  # sub_ev may be ev itself, which _put updates below

        took = active[accept]
        q[took] = trial_q[accept]
        if everyone and accept.all():
            ev = trial
        else:
            _put(ev, took, _take(trial, np.flatnonzero(accept)))
        damping[took] = np.maximum(damping[took] / rules.DAMPING_DOWN, rules.DAMPING_MIN)
        refused = active[~accept]
        damping[refused] *= rules.DAMPING_UP
        # The trust radius: longer after an accepted null-space step, shorter than the refused one.
        radius = relax_radius[active]
        relax_radius[active] = np.where(relax, np.where(accept, radius * rules.RELAX_GROW,
                                                        taken[active] * rules.RELAX_SHRINK), radius)

        # Only the tip task's progress counts as quiet: the pull toward p settles by its own rule.
        progress = (old_cost - trial.primary_cost)[accept]
        negligible = progress <= rules.QUIET_RELATIVE * np.maximum(old_cost[accept], 1e-300) + 1e-30
        quiet[took] = np.where(negligible & ~relax[accept], quiet[took] + 1, 0)

        now = ev if everyone else _take(ev, active)
        reached = _converged(sub, now, options)
        stuck = ~reached & ((quiet[active] >= rules.QUIET_TO_STALL) | (damping[active] >= rules.DAMPING_MAX))
        if held is not None and not orienting:  # the angles alone stall short: the factors join the tip step
            release = active[stuck & held[active]]
            held[release] = False
            quiet[release] = 0
            damping[release] = options.initial_damping
            stuck &= ~np.isin(active, release)
        if can_relax:
            # Reached, and the full step toward p is tiny (or no step along the solution set helps).
            settled = reached & ((gap[active] < rules.SETTLE_ANGLE) | (relax_radius[active] < rules.RELAX_RADIUS_MIN)
                                 | (relaxed[active] >= rules.RELAX_STEPS))
        elif soft:
            # A soft pull trades tip error for comfort: its optimum need not reach; stop when it settles.
            settled = (quiet[active] >= rules.QUIET_TO_STALL) | (damping[active] >= rules.DAMPING_MAX)
            stuck &= False
        else:
            settled = reached
        status[active[settled & reached]] = STATUS_CONVERGED
        status[active[settled & ~reached]] = STATUS_STALLED
        status[active[stuck & ~settled]] = STATUS_STALLED
    final = _converged(problem, ev, options)
    running = status == STATUS_RUNNING
    status[running & final] = STATUS_CONVERGED
    status[running & ~final] = STATUS_MAX_ITER
    # A settled pull can leave the tip right at tolerance; report the truth.
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
    seeds = np.asarray(chain.clamp(base + spread[:, None] * (uniform - base)))
    if chain.n_stretch:  # the length factors start as the start has them: stretch is the last resort
        seeds[..., chain.n_angles:] = np.broadcast_to(base[..., chain.n_angles:], seeds[..., chain.n_angles:].shape)
    return seeds


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
    """LM with deterministic restarts, a last resort.

    Restarts run for targets whose first attempt did not reach, and, with a pole hint, for reached
    targets whose chain bends away from the pole: the pole picks the solution branch (a planar
    knee has no null space in which a secondary task could flip it).

    Seeds are tried in a fixed order, in blocks of ``rules.RESTART_BLOCK`` that run as one batch.
    After each block, the best of the block replaces the best so far if it is better (see
    :func:`_better_attempt`): among reaching attempts, the one bending most toward the pole, then
    the one nearest the preferred pose; else the one closest to the target. Restarts stop once a
    target has reached (and, with a pole, bends toward it), or after ``rules.FRUITLESS_RESTARTS``
    seeds in a row gained nothing.

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
        best=best, alignment=pole_alignment(problem, best.q), distance=preference_cost(problem, best.q),
        # Restarts cannot help a target farther from the first joint than the whole chain reaches,
        # nor a soft comfort pull, whose optimum is a compromise that need not reach the tip at all.
        hopeless=beyond_reach(problem, options) | soft_comfort(problem),
        fruitless=np.zeros(problem.count, dtype=np.int64))
    seeds = restart_seeds(problem, seed_poses, options)  # (F or 1, K, m)
    for first in range(0, options.restarts, rules.RESTART_BLOCK):
        candidates = np.flatnonzero(state.wants_restart())
        if candidates.size == 0:
            break
        block = min(rules.RESTART_BLOCK, options.restarts - first)
        # Run every seed of the block for every candidate at once: row i * block + j is seed j.
        rows = np.repeat(candidates, block)
        seed_rows = rows if seeds.shape[0] == problem.count else np.zeros_like(rows)
        starts = seeds[seed_rows, np.tile(np.arange(first, first + block), candidates.size)]
        sub = problem.take(rows)
        attempts = lm_attempt(sub, starts, options)
        state.apply(candidates, attempts, pole_alignment(sub, attempts.q), preference_cost(sub, attempts.q), block,
                    options)
    return state.best


def preference_cost(problem: Problem, q: FloatArray) -> FloatArray:
    """``(F,)`` the secondary cost at ``q`` (distance to the preferred pose, pole), 0 without one."""
    if not problem.has_secondary:
        return np.zeros(problem.count)
    return np.asarray(evaluate(problem, q).secondary_cost)


def _better_attempt(converged: AnyArray, alignment: FloatArray, distance: FloatArray, error: FloatArray,
                    best_converged: AnyArray, best_alignment: FloatArray, best_distance: FloatArray,
                    best_error: FloatArray) -> AnyArray:
    """Where a restart's attempt beats the best so far (the kernel applies the same rule).

    Reaching beats not reaching. Between two that reach: bending toward the pole (alignment
    ``>= 0``) first, then the larger alignment while both bend away, then the nearer to the
    preferred pose. Between two that do not reach: the closer to the target.
    """
    bends_better = np.minimum(alignment, 0.0) > np.minimum(best_alignment, 0.0)
    bends_same = np.minimum(alignment, 0.0) == np.minimum(best_alignment, 0.0)
    both = converged & best_converged
    nearer = bends_better | (bends_same & (distance < best_distance))
    return np.asarray(np.where(both, nearer, np.where(best_converged, False, converged | (error < best_error - 1e-15))))


@dataclass
class _RestartState:
    """The best attempt so far per target, and the bookkeeping that decides on more restarts."""

    best: Attempt
    alignment: FloatArray
    distance: FloatArray  # preference_cost of the best attempt
    hopeless: AnyArray
    fruitless: AnyArray  # restarts in a row that did not help

    def wants_restart(self) -> AnyArray:
        unfinished = ((self.best.status != STATUS_CONVERGED) & ~self.hopeless
                      & (self.fruitless < rules.FRUITLESS_RESTARTS))
        return np.asarray(unfinished | (self.alignment < 0))

    def apply(self, candidates: AnyArray, attempts: Attempt, alignments: FloatArray, distances: FloatArray,
              block: int, options: SolverOptions) -> None:
        """Apply one block's attempts (``block`` rows per candidate, seed order) to the candidates."""
        best = self.best
        for j in range(block):
            rows = np.arange(candidates.size) * block + j
            converged = attempts.status[rows] == STATUS_CONVERGED
            error = attempts.position_error[rows]
            best.iterations[candidates] += attempts.iterations[rows]
            helped = converged | (error < best.position_error[candidates] - rules.RESTART_GAIN * options.tolerance)
            self.fruitless[candidates] = np.where(helped, 0, self.fruitless[candidates] + 1)
            wins = _better_attempt(converged, alignments[rows], distances[rows], error,
                                   best.status[candidates] == STATUS_CONVERGED, self.alignment[candidates],
                                   self.distance[candidates], best.position_error[candidates])
            chosen, source = candidates[wins], rows[wins]
            best.q[chosen] = attempts.q[source]
            best.position_error[chosen] = attempts.position_error[source]
            best.orientation_error[chosen] = attempts.orientation_error[source]
            best.status[chosen] = attempts.status[source]
            self.alignment[chosen] = alignments[source]
            self.distance[chosen] = distances[source]


def beyond_rigid_reach(problem: Problem, options: SolverOptions) -> AnyArray:
    """``(F,)`` :func:`beyond_reach` of the angles alone (every length factor at 1)."""
    return _outside(problem, options, problem.chain.rigid_reach_sphere)


def beyond_reach(problem: Problem, options: SolverOptions) -> AnyArray:
    """``(F,)`` True where the target is provably out of reach of the whole chain.

    The first joint's origin does not move, and no pose puts the tip farther from it than the
    sum of the link lengths (measured in world space, so a scaled base is accounted for).
    """
    return _outside(problem, options, problem.chain.reach_sphere)


def _outside(problem: Problem, options: SolverOptions, sphere: tuple[FloatArray, float]) -> AnyArray:
    centre, longest = sphere
    if problem.count == 1:  # a live frame's single solve: plain floats beat numpy's call overhead
        return np.array([math.dist(problem.positions[0], centre) > longest + options.tolerance])
    offset = problem.positions - centre
    return np.asarray((offset * offset).sum(axis=1) > (longest + options.tolerance) ** 2)
