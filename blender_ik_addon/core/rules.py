"""The LM solver's rules, shared by both implementations (:mod:`.lm` on numpy, :mod:`.kernel`
compiled by numba). Change a rule here and both solvers follow; ``tests/core/test_rules.py`` pins
that neither defines its own copy.

What a solve computes (see :mod:`.lm` for how):

    Among the poses inside the limits that put the tip on the target, the one **nearest the
    preferred pose** ``p`` (the comfort pose, else the rest pose: all angles 0), joint by joint:
    a ball joint (three free, unlimited axes) by the angle it turns from its comfort rotation,
    any other joint by its Euler angles, ``sum_j w_j d_j^2`` with ``w_j`` the joint's comfort
    weight (see :mod:`.posture`).

The numbers below are the solver's stopping and damping rules; they are plain floats and ints so
numba compiles them in as constants.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from .types import AnyArray, FloatArray

# -- Damping (Levenberg-Marquardt, Marquardt-scaled) --------------------------------------------
DAMPING_MIN: Final = 1e-12
DAMPING_MAX: Final = 1e6  # relative to diag(J^T J): steps are a millionth of Gauss-Newton's by then
DAMPING_DOWN: Final = 3.0  # an accepted step divides the damping by this
DAMPING_UP: Final = 10.0  # a rejected step multiplies it by this (x4 took 10.7 refused steps per
# human-arm solve where x10 takes 6.7, for 0.8 more accepted ones; a hopeless attempt stalls sooner)
SCALE_FLOOR: Final = 1e-9  # Marquardt scaling floor, relative to the largest diagonal of J^T J
LIMIT_EPS: Final = 1e-12  # an angle this close to a limit sits on it


def at_limits(q: FloatArray, lower: FloatArray, upper: FloatArray) -> tuple[AnyArray, AnyArray]:
    """Which variables sit on their lower and on their upper limit (within :data:`LIMIT_EPS`)."""
    return q <= lower + LIMIT_EPS, q >= upper - LIMIT_EPS


def pushed_outward(at_lower: AnyArray, at_upper: AnyArray, gradient: FloatArray) -> AnyArray:
    """The active set of both solvers' steps (chains' and trees'; the kernels' loops test the same):
    a variable on a limit whose cost gradient pushes it outward is frozen for the step."""
    return np.asarray((at_lower & (gradient > 0)) | (at_upper & (gradient < 0)))

# -- Reaching ----------------------------------------------------------------------------------
QUIET_RELATIVE: Final = 1e-14  # an accepted tip step gaining less than this share of the cost is quiet
QUIET_TO_STALL: Final = 3  # consecutive quiet tip steps that mean the attempt has stalled
PRE_BEND: Final = 0.2  # radians: a cold start bends the chain this much in all (see solver.pre_bend)
MAX_STEP: Final = 0.5  # radians: no angle turns more than this in one step (clipped angle by angle,
# as Blender's own solver clamps its steps): the chain bends gradually instead of leaping to an
# arbitrary branch

# -- Settling on the nearest pose (the null-space step toward the preferred pose) ----------------
RESTORE_DAMPING: Final = 1e-6  # damping of the steps back onto the tip's solution set
RESTORE_STEPS: Final = 4  # Gauss-Newton converges quadratically: a few steps undo a second-order drift
# (with two, a long first step toward p was often refused, and the pull restarted at a quarter of it)
RESTORE_CLOSE: Final = 1e-2  # ...and it stops once the tip cost is under this share of the relax slack
# (the tip within a tenth of it, 5 % of the tolerance): near the optimum the drift is that small and no
# step is taken; the next iteration's tip step takes the rest back
SETTLE_ANGLE: Final = 1e-3  # radians (0.06 deg): settled when the full step toward ``p`` is this small
FREEZE_PASSES: Final = 4  # at most this many times an angle on a limit is frozen and the step redone
NEWTON_MAX_ANGLES: Final = 16  # Newton's step costs O(m^3) (about 3 us at 7 free angles, 30 us at 40): on
# longer chains the gradient step's cheaper iterations win, and they take it
NEWTON_RIDGE: Final = 1e-8  # added to the diagonal of Newton's system, relative to its largest entry,
# so a direction the cost does not see (the aligned axes of an Euler joint at its gimbal lock) gets no
# step. A system that is still not positive definite (the set curves the wrong way): the gradient step.
# (Larger shifts were tried: they steer the hinge limb into its gimbal lock, 4.6 rad^2 from the nearest.)
NEWTON_LIMIT_BAND: Final = 1e-3  # radians: a Newton step that carries an angle this close to a limit
# across it freezes the angle there (and is redone); one from farther away is shortened to end on it.
# (Clamped instead, the step left the null space, was refused, and the pull crawled back up from a
# thousandth of its length: 20 more iterations on the human arm.)
# The null-space step's trust radius (radians, the largest angle it turns; unlimited at first):
RELAX_GROW: Final = 2.0  # an accepted null-space step lets the next one be this much longer
RELAX_SHRINK: Final = 0.25  # a refused one limits the next to this share of its own size (the size,
# not the radius: a refused Newton step of 0.3 rad after steps of 0.003 is retried at 0.075 rad, not
# at a quarter of a radius nothing has tested, and the steps after it are not held back for long)
RELAX_RADIUS_MIN: Final = 1e-7  # radians: below this no null-space step helps: settled (at a limit corner)
RELAX_STEPS: Final = 32  # at most this many null-space steps per attempt, then the pose counts as settled:
# near a gimbal lock or on a strongly curved solution set the slide converges only linearly, and
# a live frame cannot wait for it (the numpy backend pays about 2 ms a step)

REST_WEIGHT: Final = 0.01  # comfort weight of the rest pose when no comfort pose is given: small, so
# a pole hint (weight 0.1 by default) still decides the bend, and the rest pose breaks the ties

# -- Restarts (a last resort, when the first attempt does not reach) ----------------------------
RESTART_BLOCK: Final = 8  # seeds tried as one block; the block's reaching result nearest ``p`` wins
FRUITLESS_RESTARTS: Final = 16  # give up after this many restarts in a row gained nothing
RESTART_GAIN: Final = 0.01  # a restart gained something if it reached, or came this share of the
# tolerance closer than the best so far

# -- Iteration budget --------------------------------------------------------------------------
ITERATIONS_PER_DOF: Final = 2  # each attempt may run max_iterations + this many per free angle

# -- Status codes (SolveResult.status names them: options.STATUSES[code]) ------------------------
RUNNING: Final = -1
CONVERGED: Final = 0
STALLED: Final = 1
MAX_ITER: Final = 2


def iteration_budget(max_iterations: int, dofs: int) -> int:
    """Iterations one attempt may take: the option's count plus a share per free angle, so a
    100-bone rope gets the room a long chain needs while a 3-angle arm keeps its budget."""
    return int(max_iterations) + ITERATIONS_PER_DOF * int(dofs)


def relax_slack(tolerance: float) -> float:
    """Tip cost ``0.5 |r|^2`` under which the null-space step may act: the tip within half the
    tolerance."""
    return 0.5 * (0.5 * tolerance) ** 2
