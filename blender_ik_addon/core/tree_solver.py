"""Solve a :class:`.tree.Tree`: several effectors, one problem (numpy; the compiled twin is
:mod:`.tree_kernel`, loaded through :mod:`.compiled` when numba is there).

What a solve aims at: among the poses inside the limits, one that minimises the effectors'
weighted squared errors ``sum_e w_e |tip_e - target_e|^2`` (plus, for an effector that follows
its target's orientation, its weighted rotation error times the tree's reach) and, among those
(when every target is reachable there are many), one **reached by moving out from the preferred
pose** (the comfort pose, else the rest pose) a little at a time, so near it in
``sum_k c_k (q_k - p_k)^2`` but not always the nearest: where the preferred pose's nearest reaching
pose would jump to another branch as the targets move smoothly, this one mostly does not.

A tree of **one effector** is a chain, and is solved as one (:func:`solve_one_effector`: its path
through the chain solver, the pose nearest the preferred pose, bit for bit ``solve_batch``'s); the
stages below are the policy for several effectors, where the nearest pose switches between
solutions more often than they pop (``docs/research/tree_nearest/README.md``). Both policies run
on one kinematics (:func:`.fk.forward_joints`; compiled, :func:`.kernel_base.forward_joints`).

How: Levenberg-Marquardt on the stacked residual ``[sqrt(w_e) r_e ; sqrt(mu) * reach * sqrt(c_k)
(q_k - a_k)]`` over stages of falling ``mu``, each stage starting where the one before ended. The
pull's rows are diagonal, so each step solves ``J^T J + D`` with the chain solver's
:func:`.lm.damped_solve` (the dual form where the effector rows are fewer than the free variables).

1. The first attempt starts from the preferred pose with its angles that sit on a limit turned
   into their range (:data:`BEND`, :data:`BEND_ROOM`, :data:`BEND_REACH`: a straight knee or elbow
   has no first-order effect on its tip) and runs the *anchored* stages :data:`FIRST_STAGES`: the
   pull's anchor ``a`` is the pose each stage starts from, so every stage moves the pose a bounded
   way toward the targets (a continuation from the preferred pose) and the last ones close the
   tips onto them.
2. Where it does not reach every weighted target, a second attempt runs the stages :data:`STAGES`
   from the preferred pose with ``a = p`` throughout: the large ``mu`` settles near the preferred
   pose, the smaller ones let the tips close while the pose stays on the branch the first stage
   chose. It replaces the first attempt's pose if it reaches, or clearly lowers the error
   (:data:`.rules.RESTART_GAIN`).
3. Then the restarts (below).

A tree where an effector has a pole skips step 1: its first attempt is step 2's. The pole already
says which way the chain bends, and the anchored stages, whose pole rows fade with ``mu`` as the
pull does, chose worse: on the benchmark's character with a pole on one arm and no comfort pose
(targets gliding over 48 frames), they popped 3 times (67-125 deg) where the staged pull pops
once (47.8 deg; the per-frame bake flags the same frames).

The answer is the same every time (no history: every frame starts from the preferred pose), and
the last stage's ``mu`` is so small that its pull moves a tip by far less than the tolerance.

Measured (``scripts/bench/tree_cases.py --frames 48 --passes 3``, live, against the stages that
all pulled toward the preferred pose): character max step 39.9 -> 7.98 deg, pops 1 -> 0; legs
12.1 -> 8.52 deg, 0 pops; tentacle 17.1 -> 13.9 deg, pops 2 -> 0 (Blender's tree IK: 0 on all
three); every target reached, no limit left; the live ms a frame (the compiled solver; noisy:
another process shared the machine) 0.72 -> 0.37 on the character, 0.31 -> 0.31 on the legs,
0.65 -> 0.74 on the tentacle. On the test trees' smooth paths (4 random poses in 120 frames, seeds 0-5:
``tests/core/test_tree.py``) the pops fell from 28 to 0 (two legs), 11 to 5 (two arms) and 9 to 3
(tentacle).

What it does not promise: the pose is not the reaching pose nearest the preferred pose. With a
comfort pose on two legs, 12 of 60 random reachable frames end farther from it than the
rest-pose solution (by at most 3.9 % in ``sum (q - comfort)^2``; the mean is nearer), on two arms
1 of 200 (10 with the old stages). The branch the first attempt follows is still a local one:
where it ends, a smoothly moving target still makes the pose switch in one frame. Of the 18 test
paths above, 5 still switch (8 pops; 15 did, with 48); on two legs, 3 of 8 harsher paths
(sinusoids through 80 % of every range, 80 frames) switch, 4 pops in all, where the old stages
had 5 of 8 with 27 (one path that had none has one now). ``continuous=True`` solves each frame
from, and nearest to, the frame before (the bake's Continuous): no switch on those paths.

Limits stay inside the solve: a variable on a limit whose gradient pushes outward is frozen for
the step (an active set), every step is projected onto the limits, and no angle turns more than
:data:`.rules.MAX_STEP` in one step. Where neither attempt reaches every weighted target,
deterministic restarts (seeded draws around the preferred pose, as the chain solver's; from the stage
:data:`RESTART_STAGE` on) try again;
the first one that reaches wins, else the one with the least weighted error.

Convergence is per effector (its distance, and its orientation error when it follows one); the
tree has converged when every effector of positive weight has. An effector of weight 0 pulls
nothing and never blocks convergence; its error is still reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike

from . import rules
from .errors import IKInputError
from .fk import lever_columns
from .lm import damped_solve
from .objectives import ComfortPose
from .options import SolverOptions
from .rotations import orthonormalize, rotation_vector
from .tree import Tree, TreePose, tree_forward
from .types import AnyArray, BoolArray, FloatArray

STAGES: Final = (10.0, 1e-1, 1e-3, 1e-6, 1e-10)
"""The comfort pull's ``mu`` per stage, relative (see the module docstring)."""
MIN_COMFORT: Final = 1e-2
"""The preferred pose's weight floor: with no comfort weight at all the pose is still the one
nearest the preferred pose, and so well defined."""
POLE_GAIN: Final = 10.0
"""A pole's rows are ``pole_weight`` times this: the preferred pose's weight floor
(:data:`MIN_COMFORT`) would otherwise outweigh the pole, where the chain solver lets the pole decide
unless the comfort pose is given a weight (two arms on one root, hinge elbows free both ways, poles
on either side: with the gain 1 the elbows ignored the pole, mean cosine 0.0-0.1 to its direction;
with 10, every elbow bends toward it)."""
STAGE_QUIET: Final = 1e-10
"""A stage ends when an accepted step gains less than this share of the cost (or moves no angle
more than :data:`STEP_QUIET`)."""
STEP_QUIET: Final = 1e-10
SETTLE_STAGES: Final = 2
"""The last this many stages converge (:data:`STAGE_QUIET`, :data:`STEP_QUIET`); the stages before
them only carry the pose along the branch the first one chose, and stop at :data:`EARLY_QUIET` or
:data:`EARLY_STEP`: with the pull large the cost keeps a large residual and Gauss-Newton only
converges linearly there (a 3-joint spine with two arms: 36 iterations on the first stage, the
last 20 of them moving no angle more than 1e-3 rad)."""
EARLY_QUIET: Final = 1e-6
EARLY_STEP: Final = 1e-4
TREE_RESTARTS: Final = 8
"""At most this many restarts per frame (``SolverOptions.restarts`` caps it too)."""
FRUITLESS_TREE_RESTARTS: Final = 4
"""Give up after this many restarts in a row that did not lower the weighted error by
:data:`.rules.RESTART_GAIN` of it (targets no pose reaches at once: the compromise is found).
Measured on 360 reachable frames of the three test trees (smooth paths through 80 % of every
range): 2 and 3 left one frame of two legs unreached (0.57 off), 4 reaches every one."""
RESTART_STAGE: Final = 2
"""A restart begins at this stage: the strongest pulls toward the preferred pose would first draw
its start pose back to where the first attempt began (a straight knee on its limit stays straight),
and the restart would find what the first attempt found (measured on two legs sharing the hips,
random reachable targets: 49 of 60 reached when restarts ran every stage, 60 of 60 from stage 2)."""
RESTART_SPREAD: Final = 1.0
"""Radians: a restart draws each angle within this far of the preferred pose (inside the limits)."""
FIRST_STAGES: Final = (10.0, 3.0, 1.0, 0.3, 0.1, 1e-3, 1e-6, 1e-10)
"""The first attempt's stages (``mu`` relative, as :data:`STAGES`), *anchored*: each stage pulls
toward the pose it starts from (the one before's end; the first stage's, the bent start pose,
:meth:`_Frame.bent_start`), with the comfort weights, so the pose moves out from the preferred
pose a bounded way per stage (a continuation) instead of every stage pulling back toward it. Its
last :data:`SETTLE_STAGES` converge, the others stop early as :data:`STAGES`' do. The ``1e-6``
stage: without it (straight from ``1e-3`` to ``1e-10``) the backends' poses came apart by up to
2.1e-6 on reached frames of the tentacle with a comfort pose (same iterations: rounding,
presumably amplified where the last stage's pull of 1e-10 leaves the null space nearly free) and
the tips ended ~1e-9 off; with it they agree to ~1e-12, the tips end ~1e-14 off, and the pops
measured on the test paths are the same."""
BEND: Final = 0.3
"""Radians: the first attempt starts with each angle that sits on a limit of the preferred pose
(a straight knee or elbow whose range starts at 0) turned up to this far into its range (at most
:data:`BEND_ROOM` of the range, scaled by :data:`BEND_REACH`): on the limit, a straight limb's bend
has no first-order effect on its tip, and the anchored stages would leave it straight."""
BEND_ROOM: Final = 0.25
"""The start bend's share of the range at most (a range of zero width is not bent)."""
BEND_REACH: Final = 0.1
"""The start bend grows with how far the targets are: an angle is bent by ``min(1, d / (BEND_REACH
* reach))`` of its full bend, ``d`` the largest distance, in the preferred pose, from the tip of an
effector it moves (of positive weight) to its target. Where the preferred pose already reaches,
the first attempt starts from it unchanged (a reachable comfort pose is the answer); the start
moves continuously with the targets. (A step instead, full bend beyond ``0.1 * reach`` and none
within, made the legs of ``scripts/bench/tree_cases.py`` step 12.8 deg where they step 8.5 deg
with the ramp, and left 2 pops on a two-legs test path, 2 on a two-arms one.)"""


@dataclass(frozen=True)
class TreeTargets:
    """The targets of ``F`` frames, checked: see :func:`solve_tree`."""

    positions: FloatArray  # (F, E, 3) world
    orientations: FloatArray  # (F, E, 3, 3) tree-space rotations (identity where not followed)
    follow: BoolArray  # (E,) the effector follows its target's orientation
    poles: FloatArray  # (F, E, 3) world pole positions (zero where none)
    has_pole: BoolArray  # (E,) the effector's chain bends toward its pole
    pole_weight: float = 0.1  # SolverOptions.pole_weight
    # (F, E, 3, 3) the world rotations as given (read where followed), or None: a tree of one effector
    # hands them to the chain solver as they are (solve_one_effector), not through the tree's base and back.
    world_orientations: FloatArray | None = None

    def frames(self, index: slice) -> TreeTargets:
        """The targets of some frames."""
        world = None if self.world_orientations is None else self.world_orientations[index]
        return TreeTargets(self.positions[index], self.orientations[index], self.follow, self.poles[index],
                           self.has_pole, self.pole_weight, world)


@dataclass(frozen=True)
class TreeResult:
    """The outcome of ``F`` tree solves.

    Attributes:
        q: ``(F, m)`` the variables (free angles), inside the limits.
        angles: ``(F, n, 3)`` per-joint Euler angles.
        errors: ``(F, E)`` each effector's tip distance to its target, world units.
        orientation_errors: ``(F, E)`` each effector's rotation error, radians (0 unless it follows).
        reached: ``(F, E)`` each effector within tolerance.
        converged: ``(F,)`` every effector of positive weight reached.
        iterations: ``(F,)`` LM iterations over all stages and attempts.
        names: The effectors' names (the order of the ``E`` axis).
    """

    q: FloatArray
    angles: FloatArray
    errors: FloatArray
    orientation_errors: FloatArray
    reached: BoolArray
    converged: BoolArray
    iterations: AnyArray
    names: tuple[str, ...]

    @property
    def compromise(self) -> FloatArray:
        """``(F,)`` the RMS of the effectors' errors: what the tree traded where targets fight."""
        return np.asarray(np.sqrt(np.mean(self.errors ** 2, axis=1)))


def check_targets(tree: Tree, targets: ArrayLike, orientations: ArrayLike | None = None,
                  follow: ArrayLike | None = None, poles: ArrayLike | None = None,
                  has_pole: ArrayLike | None = None, pole_weight: float = 0.1) -> TreeTargets:
    """Validate and shape the inputs of :func:`solve_tree`."""
    count_e = len(tree.effectors)
    pos = np.asarray(targets, dtype=np.float64)
    if pos.shape == (count_e, 3):
        pos = pos[None]
    if pos.ndim != 3 or pos.shape[1:] != (count_e, 3):
        raise IKInputError(f"targets must have shape (F, {count_e}, 3) (one per effector: "
                           f"{', '.join(tree.names)}), got {pos.shape}")
    if not np.all(np.isfinite(pos)):
        bad = sorted({tree.names[e] for e in np.argwhere(~np.isfinite(pos))[:, 1]})
        raise IKInputError(f"target position is not finite (NaN or infinite) for {', '.join(map(repr, bad))}")
    count = pos.shape[0]
    flags = np.zeros(count_e, dtype=bool) if follow is None else np.asarray(follow, dtype=bool).reshape(count_e)
    rot = np.broadcast_to(np.eye(3), (count, count_e, 3, 3)).copy()
    world: FloatArray | None = None
    if orientations is not None and flags.any():
        given = np.asarray(orientations, dtype=np.float64)
        if given.shape == (count_e, 3, 3):
            given = np.broadcast_to(given, (count, count_e, 3, 3))
        if given.shape != (count, count_e, 3, 3):
            raise IKInputError(f"orientations must have shape ({count}, {count_e}, 3, 3), got {given.shape}")
        if not np.all(np.isfinite(given[:, flags])):
            raise IKInputError("target orientation is not finite (NaN or infinite)")
        base_rotation = orthonormalize(tree.base[:3, :3])
        rot[:, flags] = orthonormalize(base_rotation.T @ orthonormalize(given[:, flags]))
        world = given
    elif flags.any():
        raise IKInputError("follow asks for orientations, but none were given")
    pole_flags = np.zeros(count_e, dtype=bool)
    pole_arr = np.zeros((count, count_e, 3))
    if poles is not None:
        pole_flags = (np.ones(count_e, dtype=bool) if has_pole is None
                      else np.asarray(has_pole, dtype=bool).reshape(count_e))
        given_poles = np.asarray(poles, dtype=np.float64)
        if given_poles.shape == (count_e, 3):
            given_poles = np.broadcast_to(given_poles, (count, count_e, 3))
        if given_poles.shape != (count, count_e, 3):
            raise IKInputError(f"poles must have shape ({count}, {count_e}, 3), got {given_poles.shape}")
        if not np.all(np.isfinite(given_poles[:, pole_flags])):
            raise IKInputError("pole position is not finite (NaN or infinite)")
        pole_arr[:, pole_flags] = given_poles[:, pole_flags]
    return TreeTargets(pos, rot, flags, pole_arr, pole_flags, float(pole_weight), world)


def preferred_pose(tree: Tree, comfort: ComfortPose | None) -> tuple[FloatArray, FloatArray]:
    """``(p, c)``: the preferred pose (inside the limits) and each variable's weight (floored)."""
    chain = tree.joints
    if comfort is None:
        return chain.clamp(np.zeros(chain.n_dofs)), np.full(chain.n_dofs, MIN_COMFORT)
    angles, weights = comfort.resolve(chain)
    return chain.clamp(angles), np.maximum(weights, MIN_COMFORT)


def restart_poses(tree: Tree, preferred: FloatArray, options: SolverOptions) -> FloatArray:
    """``(R, m)`` the restarts' start poses, the same for every frame (seeded by ``options.seed``)."""
    count = min(TREE_RESTARTS, int(options.restarts))

    def make() -> FloatArray:
        draws = np.random.default_rng(options.seed).uniform(-1.0, 1.0, (count, tree.n_dofs))
        return tree.joints.clamp(preferred + RESTART_SPREAD * draws)  # writable: the kernel takes it as is

    # Remembered on the joints: a live group asks for the same seeds every frame.
    return tree.joints.memo("tree restarts", (preferred.tobytes(), int(options.seed), count), make)


def solve_tree(tree: Tree, targets: ArrayLike, *, orientations: ArrayLike | None = None,
               follow: ArrayLike | None = None, poles: ArrayLike | None = None, has_pole: ArrayLike | None = None,
               comfort: ComfortPose | None = None, options: SolverOptions | None = None,
               continuous: bool = False) -> TreeResult:
    """Solve ``F`` frames of a tree (each frame on its own, from the preferred pose).

    Args:
        tree: The joints and effectors.
        targets: ``(F, E, 3)`` (or ``(E, 3)``) world target of each effector, in ``tree.effectors`` order.
        orientations: ``(F, E, 3, 3)`` (or ``(E, 3, 3)``) world target rotations, read where ``follow``.
        follow: ``(E,)`` which effectors follow their target's orientation (default none).
        poles: ``(F, E, 3)`` (or ``(E, 3)``) world pole positions, read where ``has_pole`` (default: every
            effector has one when ``poles`` is given). An effector's own chain (:attr:`.tree.Effector.joints`)
            bends toward its pole: its interior joints' offsets from the line from its root joint to its
            target point toward the pole, weighed by ``options.pole_weight``, a preference like the comfort
            pose's (it costs no reach).
        comfort: The preferred pose and its weights (default the rest pose).
        options: ``tolerance``, ``orientation_tolerance``, ``orientation_weight``, ``max_iterations``
            (per stage), ``restarts``, ``seed``, ``initial_damping``, ``pole_weight`` and ``backend`` are used.
            A tree of one effector is solved as its chain (:func:`solve_one_effector`) and reads every
            option as :func:`.solver.solve_batch` does (``method="tutorial"`` too).
        continuous: Solve the first frame as above, then each frame from, and nearest to, the pose of
            the frame before it (the chain solver's ``"continuous"`` mode, :func:`.motion.solve_path`):
            the motion stays on one solution where the pose nearest the preferred one would switch.
            Deterministic for given frames, but frame ``k`` depends on the frames before it.

    Raises:
        IKInputError: malformed or non-finite targets, or every effector at weight 0.
    """
    options = options or SolverOptions()
    if not np.any(tree.weights > 0):
        raise IKInputError(f"every effector has weight 0 ({', '.join(map(repr, tree.names))}): nothing pulls the tree")
    checked = check_targets(tree, targets, orientations, follow, poles, has_pole, options.pole_weight)
    if len(tree.effectors) == 1:
        return solve_one_effector(tree, checked, comfort, options, continuous=continuous)
    preferred, comfort_weights = preferred_pose(tree, comfort)
    seeds = restart_poses(tree, preferred, options)
    from .compiled import tree_kernel_for  # here: compiled imports this module's names

    kernel = tree_kernel_for(options)
    solve = kernel if kernel is not None else _solve_numpy
    count = checked.positions.shape[0]
    if not continuous or count < 2:
        return solve(tree, checked, preferred, comfort_weights, seeds, options)
    parts = [solve(tree, checked.frames(slice(0, 1)), preferred, comfort_weights, seeds, options)]
    for f in range(1, count):  # each frame from, and nearest to, the last one's pose
        before = parts[-1].q[0]
        parts.append(solve(tree, checked.frames(slice(f, f + 1)), before, comfort_weights,
                           restart_poses(tree, before, options), options))
    return finish(tree, np.concatenate([p.q for p in parts]), np.concatenate([p.errors for p in parts]),
                  np.concatenate([p.orientation_errors for p in parts]),
                  np.concatenate([p.iterations for p in parts]), options)


def solve_one_effector(tree: Tree, targets: TreeTargets, comfort: ComfortPose | None, options: SolverOptions,
                       *, continuous: bool = False) -> TreeResult:
    """A tree of one effector: its path solved as the chain it is (:meth:`.tree.Tree.effector_chain`),
    by the chain solver (:func:`.solver.solve_batch`, or :func:`.motion.solve_path` when
    ``continuous``): the reaching pose nearest the preferred pose, the policy the chain motion
    benchmarks measure smooth. (Several effectors are solved by the stages: the pose nearest the
    preferred one switches between solutions more often there, ``docs/research/tree_nearest``.)
    Kinematics are one code for both (:func:`.fk.forward_joints`, :func:`.kernel_base.forward_joints`).

    The joints off the path (they move no tip) keep the preferred pose; the comfort pose's angles
    and weights are the path's; the target rotation (as given, world) and the pole are the
    effector's. Every option is read as the chain solver reads it: its pole bends the whole path with
    ``pole_weight`` (a hand-built tree's :attr:`.tree.Effector.joints` is not read), and a soft
    comfort pull or ``method="tutorial"`` with ``backend="numba"`` is refused as it is for a chain.
    """
    from .motion import solve_path  # here: the chain solver imports compiled, which imports this module

    chain, variables = tree.effector_chain(0)
    preferred, _ = preferred_pose(tree, comfort)
    chain_comfort = None
    if comfort is not None:
        angles, weights = comfort.resolve(tree.joints)
        chain_comfort = ComfortPose(angles[variables], weights[variables], comfort.reach_first)
    orientations = None
    if targets.follow[0]:
        world = targets.world_orientations
        # Targets made without the given rotations (a caller's own TreeTargets): the tree-space ones put back.
        orientations = (world[:, 0] if world is not None
                        else orthonormalize(tree.base[:3, :3]) @ targets.orientations[:, 0])
    poles = targets.poles[:, 0] if targets.has_pole[0] else None
    path = solve_path(chain, targets.positions[:, 0], mode="continuous" if continuous else "nearest",
                      orientations=orientations, poles=poles, comfort=chain_comfort, options=options)
    result = path.result
    q = np.repeat(preferred[None], result.q.shape[0], axis=0)
    q[:, variables] = result.q
    return finish(tree, q, result.error[:, None], result.orientation_error[:, None], result.iterations, options)


def _solve_numpy(tree: Tree, targets: TreeTargets, preferred: FloatArray, comfort_weights: FloatArray,
                 seeds: FloatArray, options: SolverOptions) -> TreeResult:
    count = targets.positions.shape[0]
    m, count_e = tree.n_dofs, len(tree.effectors)
    q_out = np.empty((count, m))
    errors = np.empty((count, count_e))
    orientation_errors = np.zeros((count, count_e))
    iterations = np.zeros(count, dtype=np.int64)
    poled = bool(targets.has_pole.any())  # see the module docstring: a pole keeps the staged pull first
    for f in range(count):
        problem = _Frame(tree, targets.positions[f], targets.orientations[f], targets.follow, preferred,
                         comfort_weights, options, targets.poles[f], targets.has_pole)
        if poled:
            q, iters = problem.attempt(preferred, 0)
        else:
            q, iters = problem.anchored_attempt(problem.bent_start())
        best, best_cost = q, problem.primary_cost(q)
        if not poled and not problem.reached(best):  # the second attempt: the stages pulling toward p
            q, more = problem.attempt(preferred, 0)
            iters += more
            cost = problem.primary_cost(q)
            if problem.reached(q) or cost < (1.0 - rules.RESTART_GAIN) * best_cost:
                best, best_cost = q, cost
        fruitless = 0
        for seed in seeds if not problem.reached(best) else ():
            q, more = problem.attempt(seed, RESTART_STAGE)
            iters += more
            cost = problem.primary_cost(q)
            if problem.reached(q):
                best = q
                break
            # Only a clear gain replaces the pose held: among compromises about equally good (no pose
            # reaches every target) the first attempt's, on the stages' path, stays from frame to frame.
            gained = cost < (1.0 - rules.RESTART_GAIN) * best_cost
            fruitless = 0 if gained else fruitless + 1
            if gained:
                best, best_cost = q, cost
            if fruitless >= FRUITLESS_TREE_RESTARTS:
                break
        q_out[f] = best
        errors[f], orientation_errors[f] = problem.errors(best)
        iterations[f] = iters
    return finish(tree, q_out, errors, orientation_errors, iterations, options)


def finish(tree: Tree, q: FloatArray, errors: FloatArray, orientation_errors: FloatArray,
           iterations: AnyArray, options: SolverOptions) -> TreeResult:
    """The result from the variables and errors (both backends)."""
    reached = (errors <= options.tolerance) & (orientation_errors <= options.orientation_tolerance)
    converged = np.all(reached | (tree.weights <= 0)[None], axis=1)
    return TreeResult(q, tree.joints.expand(q), errors, orientation_errors, reached, converged, iterations,
                      tree.names)


class _Frame:
    """One frame's problem: targets in world space, the residual rows and the LM stages."""

    def __init__(self, tree: Tree, positions: FloatArray, orientations: FloatArray, follow: BoolArray,
                 preferred: FloatArray, comfort_weights: FloatArray, options: SolverOptions,
                 poles: FloatArray | None = None, has_pole: BoolArray | None = None) -> None:
        self.tree, self.positions, self.orientations, self.follow = tree, positions, orientations, follow
        count_e = len(tree.effectors)
        self.poles = np.zeros((count_e, 3)) if poles is None else poles
        self.has_pole = np.zeros(count_e, dtype=bool) if has_pole is None else has_pole
        self.preferred, self.options = preferred, options
        self.pole_weight = float(options.pole_weight) * POLE_GAIN
        self.sqrt_comfort = tree.reach * np.sqrt(comfort_weights)
        self.sqrt_weights = np.sqrt(tree.weights)
        self.orientation_scale = options.orientation_weight * tree.reach
        self.base3, self.offset = tree.base[:3, :3], tree.base[:3, 3]
        self.lower, self.upper = tree.joints.lower, tree.joints.upper

    def primary(self, q: FloatArray, *, jacobian: bool = True) -> tuple[FloatArray, FloatArray | None]:
        """Weighted effector rows ``(R,)`` and their Jacobian ``(R, m)``."""
        tree, pose = self.tree, tree_forward(self.tree, q)
        rows, jacs = [], []
        origins = pose.origins[tree.joints.dof_joint]  # (m, 3)
        for e, effector in enumerate(tree.effectors):
            w = self.sqrt_weights[e]
            if w == 0.0:
                continue
            tip = pose.tips[e]
            rows.append(w * (self.base3 @ tip + self.offset - self.positions[e]))
            if jacobian:
                columns = lever_columns(pose.axes, origins, tip) * tree.moves[e][:, None]  # (m, 3) tree space
                jacs.append(w * (self.base3 @ columns.T))
            if self.follow[e]:
                s = w * self.orientation_scale
                rotation = pose.rotations[effector.joint]
                rows.append(s * rotation_vector(rotation @ self.orientations[e].T))
                if jacobian:
                    jacs.append(s * (pose.axes * tree.moves[e][:, None]).T)
        return np.concatenate(rows), (np.concatenate(jacs) if jacobian else None)

    def primary_cost(self, q: FloatArray) -> float:
        rows, _ = self.primary(q, jacobian=False)
        return 0.5 * float(rows @ rows)

    def errors(self, q: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Each effector's distance and rotation error (unweighted)."""
        pose = tree_forward(self.tree, q)
        tips = pose.tips @ self.base3.T + self.offset
        distance = np.linalg.norm(tips - self.positions, axis=1)
        rotation = np.zeros(len(self.tree.effectors))
        for e, effector in enumerate(self.tree.effectors):
            if self.follow[e]:
                rotation[e] = np.linalg.norm(rotation_vector(pose.rotations[effector.joint] @ self.orientations[e].T))
        return distance, rotation

    def reached(self, q: FloatArray) -> bool:
        distance, rotation = self.errors(q)
        ok = (distance <= self.options.tolerance) & (rotation <= self.options.orientation_tolerance)
        return bool(np.all(ok | (self.tree.weights <= 0)))

    def attempt(self, start: FloatArray, first_stage: int = 0) -> tuple[FloatArray, int]:
        """The stages from ``first_stage`` on, from ``start``, each pulling toward the preferred pose;
        returns the pose and the iterations used."""
        q, total = self.tree.joints.clamp(start), 0
        for i in range(first_stage, len(STAGES)):
            settle = i >= len(STAGES) - SETTLE_STAGES
            q, used = self._stage(q, STAGES[i], STAGE_QUIET if settle else EARLY_QUIET,
                                  STEP_QUIET if settle else EARLY_STEP, self.preferred)
            total += used
        return q, total

    def anchored_attempt(self, start: FloatArray) -> tuple[FloatArray, int]:
        """The first attempt: the stages of :data:`FIRST_STAGES` from ``start``, each pulling toward
        the pose it starts from; returns the pose and the iterations used."""
        q, total = self.tree.joints.clamp(start), 0
        for i, mu in enumerate(FIRST_STAGES):
            settle = i >= len(FIRST_STAGES) - SETTLE_STAGES
            q, used = self._stage(q, mu, STAGE_QUIET if settle else EARLY_QUIET,
                                  STEP_QUIET if settle else EARLY_STEP, q)  # q is never changed in place
            total += used
        return q, total

    def bent_start(self) -> FloatArray:
        """The first attempt's start: the preferred pose, each angle on a limit turned into its range
        by up to :data:`BEND` (at most :data:`BEND_ROOM` of the range), in proportion to how far, up to
        :data:`BEND_REACH` times the reach, the farthest effector it moves is from its target."""
        p, lower, upper = self.preferred, self.lower, self.upper
        distance, _ = self.errors(p)
        far = np.where(self.tree.weights > 0, np.minimum(distance / (BEND_REACH * self.tree.reach), 1.0), 0.0)
        share = np.max(np.where(self.tree.moves, far[:, None], 0.0), axis=0)  # (m,) the farthest it moves
        bend = share * np.minimum(BEND, BEND_ROOM * (upper - lower))
        at_lower, at_upper = rules.at_limits(p, lower, upper)
        at_upper &= ~at_lower
        return np.asarray(self.tree.joints.clamp(p + np.where(at_lower, bend, 0.0) - np.where(at_upper, bend, 0.0)))

    def _rows(self, q: FloatArray, pole_scale: float) -> tuple[FloatArray, FloatArray]:
        """The effectors' rows and, where poles bend, the poles' rows, with their Jacobian (the pull
        rows are diagonal and kept apart: see :meth:`_stage`)."""
        rows, jac = self.primary(q)
        assert jac is not None
        if pole_scale > 0.0 and self.has_pole.any():
            pole_rows, pole_jac = self.pole_rows(q, pole_scale)
            return np.concatenate([rows, pole_rows]), np.concatenate([jac, pole_jac])
        return rows, jac

    def pole_rows(self, q: FloatArray, scale: float) -> tuple[FloatArray, FloatArray]:
        """Each poled effector's bend rows (three per interior joint of its chain, zero where the pole
        lies on the root-to-target line) and their Jacobian, times ``scale`` (see :func:`solve_tree`).

        As the chain solver's pole (``objectives._pole_terms``): a joint's offset from the line
        from the chain's root joint to the target, minus its length along the pole's direction off
        that line; the line's own turning (a root that moves with the tree) is left out of the
        Jacobian, as the projector's is there."""
        tree, pose = self.tree, tree_forward(self.tree, q)
        world = pose.origins @ self.base3.T + self.offset
        rows, jacs = [], []
        for e, effector in enumerate(tree.effectors):
            if not self.has_pole[e] or len(effector.joints) < 2:
                continue
            root_joint = effector.joints[0]
            root = world[root_joint]
            axis = self.positions[e] - root
            axis = axis / max(float(np.linalg.norm(axis)), 1e-12)
            projector = np.eye(3) - np.outer(axis, axis)
            side = projector @ (self.poles[e] - root)
            width = float(np.linalg.norm(side))
            usable = width > 1e-9
            direction = side / max(width, 1e-12)
            weight = scale / np.sqrt(len(effector.joints) - 1)
            root_jac = self._point_jacobian(pose, root_joint)
            for joint in effector.joints[1:]:
                offset = projector @ (world[joint] - root)
                size = float(np.linalg.norm(offset))
                if not usable:
                    rows.append(np.zeros(3))
                    jacs.append(np.zeros((3, tree.n_dofs)))
                    continue
                rows.append(weight * (offset - size * direction))
                unit = offset / max(size, 1e-12)
                shaping = np.eye(3) - np.outer(direction, unit)
                jacs.append(weight * (shaping @ projector @ (self._point_jacobian(pose, joint) - root_jac)))
        return np.concatenate(rows), np.concatenate(jacs)

    def _point_jacobian(self, pose: TreePose, joint: int) -> FloatArray:
        """``(3, m)`` world derivative of joint ``joint``'s origin: every variable of a joint above it."""
        tree = self.tree
        above = tree.strict_ancestors[joint][tree.joints.dof_joint]
        columns = lever_columns(pose.axes, pose.origins[tree.joints.dof_joint], pose.origins[joint]) * above[:, None]
        return np.asarray(self.base3 @ columns.T)

    def _stage(self, q: FloatArray, mu: float, quiet: float, step_quiet: float,
               anchor: FloatArray) -> tuple[FloatArray, int]:
        """Levenberg-Marquardt on the stacked rows at pull ``mu`` toward ``anchor`` (see the module
        docstring), until a step gains less than ``quiet`` of the cost or moves no angle more than
        ``step_quiet``."""
        pull = np.sqrt(mu) * self.sqrt_comfort
        pole_scale = float(np.sqrt(mu) * self.pole_weight)
        rows, jac = self._rows(q, pole_scale)
        pulled = pull * (q - anchor)
        cost = 0.5 * (float(rows @ rows) + float(pulled @ pulled))
        damping = self.options.initial_damping
        iterations = 0
        while iterations < self.options.max_iterations:
            iterations += 1
            gradient = jac.T @ rows + pull * pulled
            free = ~rules.pushed_outward(*rules.at_limits(q, self.lower, self.upper), gradient)
            step = np.zeros_like(q)
            if free.any():
                # The stacked rows are [rows; diag(pull) (q - anchor)]: the pull's rows are diagonal,
                # so J^T J + damping is jf^T jf + diag(d), solved as the chain solver solves its steps
                # (lm.damped_solve: the dual form where there are fewer rows than free variables).
                jf, pull_f = jac[:, free], pull[free]
                diagonal = np.einsum("rk,rk->k", jf, jf) + pull_f * pull_f
                floor = rules.SCALE_FLOOR * max(float(diagonal.max()), 1e-300)
                damped = pull_f * pull_f + damping * np.maximum(diagonal, floor)
                step[free] = damped_solve(jf[None], damped[None], -gradient[free][None, :, None])[0, :, 0]
            largest = float(np.abs(step).max(initial=0.0))
            if largest > rules.MAX_STEP:
                step *= rules.MAX_STEP / largest
            trial = np.minimum(np.maximum(q + step, self.lower), self.upper)
            trial_rows, trial_jac = self._rows(trial, pole_scale)
            trial_pulled = pull * (trial - anchor)
            trial_cost = 0.5 * (float(trial_rows @ trial_rows) + float(trial_pulled @ trial_pulled))
            if trial_cost < cost:
                gain, moved = cost - trial_cost, float(np.abs(trial - q).max(initial=0.0))
                q, rows, jac, pulled, cost = trial, trial_rows, trial_jac, trial_pulled, trial_cost
                damping = max(damping / rules.DAMPING_DOWN, rules.DAMPING_MIN)
                if gain <= quiet * cost or moved <= step_quiet:
                    break
            else:
                damping *= rules.DAMPING_UP
                if damping > rules.DAMPING_MAX:
                    break
        return q, iterations
