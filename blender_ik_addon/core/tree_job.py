"""The live path of :func:`.tree_solver.solve_tree`: one tree, one frame at a time, fixed settings.

A live group of chains solves its tree once per frame. :func:`.tree_solver.solve_tree` works out
again on every call what stays the same from frame to frame (the preferred pose, the restart
seeds, the kernel's arrays) and checks shapes that cannot change; that Python costs about as much
as the compiled solve of a small tree. A :class:`TreeJob` does it once and keeps the kernel's input
and output arrays, as :class:`.batched.ChainJob` does for a chain. Its answers are
:func:`.tree_solver.solve_tree`'s for the same frame, bit for bit (``tests/core/test_tree_job.py``),
so a live frame and a bake of the same frame agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import compiled
from .errors import IKInputError
from .objectives import ComfortPose
from .options import SolverOptions
from .rotations import orthonormalize
from .tree import Tree
from .tree_solver import (
    POLE_GAIN,
    TreeResult,
    TreeTargets,
    _solve_numpy,
    finish,
    preferred_pose,
    restart_poses,
    solve_one_effector,
)
from .types import FloatArray


class TreeJob:
    """One tree's solves toward one set of targets at a time (see the module docstring).

    Args:
        tree: The joints and effectors.
        follow: ``(E,)`` which effectors follow their target's orientation.
        has_pole: ``(E,)`` which effectors have a pole.
        comfort: The preferred pose and its weights (default the rest pose).
        options: As :func:`.tree_solver.solve_tree` reads them.

    Use :meth:`set_targets`, then :meth:`solve`.

    Raises:
        IKInputError: every effector at weight 0 (as :func:`.tree_solver.solve_tree`).
    """

    def __init__(self, tree: Tree, *, follow: ArrayLike, has_pole: ArrayLike, comfort: ComfortPose | None,
                 options: SolverOptions) -> None:
        if not np.any(tree.weights > 0):
            raise IKInputError(f"every effector has weight 0 ({', '.join(map(repr, tree.names))}): "
                               "nothing pulls the tree")
        count_e = len(tree.effectors)
        self.tree, self.options, self.comfort = tree, options, comfort
        self._one_effector = count_e == 1  # solved as its chain (tree_solver.solve_one_effector), not by the kernel
        self.follow = np.ascontiguousarray(np.asarray(follow, dtype=np.bool_).reshape(count_e))
        self.has_pole = np.ascontiguousarray(np.asarray(has_pole, dtype=np.bool_).reshape(count_e))
        self._any_follow, self._any_pole = bool(self.follow.any()), bool(self.has_pole.any())
        self.preferred, self.comfort_weights = preferred_pose(tree, comfort)
        self.seeds = restart_poses(tree, self.preferred, options)
        # One frame of inputs, shaped and filled as tree_solver.check_targets makes them.
        self.positions = np.zeros((1, count_e, 3))
        self.orientations = np.broadcast_to(np.eye(3), (1, count_e, 3, 3)).copy()
        self.poles = np.zeros((1, count_e, 3))
        self._base_rotation = orthonormalize(tree.base[:3, :3])
        self._world_orientations: FloatArray | None = None
        # What solve_tree_compiled hands the kernel, made once.
        self._sqrt_comfort = np.ascontiguousarray(tree.reach * np.sqrt(self.comfort_weights))
        self._preferred = np.ascontiguousarray(self.preferred, dtype=np.float64)
        self._seeds = np.require(self.seeds, dtype=np.float64, requirements=("C", "W"))
        self._settings = (float(options.tolerance), float(options.orientation_tolerance),
                          float(options.orientation_weight * tree.reach), int(options.max_iterations),
                          float(options.initial_damping), float(tree.reach))
        self._pole_weight = float(float(options.pole_weight) * POLE_GAIN)
        self._q = np.empty((1, tree.n_dofs))
        self._errors = np.empty((1, count_e))
        self._orientation_errors = np.zeros((1, count_e))
        self._iterations = np.zeros(1, dtype=np.int64)

    def set_targets(self, positions: FloatArray, orientations: FloatArray | None = None,
                    poles: FloatArray | None = None) -> None:
        """The next solve's world (tree-base space) targets ``(E, 3)``, target rotations ``(E, 3, 3)``
        (read where the effector follows them) and poles ``(E, 3)`` (read where it has one).

        Raises:
            IKInputError: as :func:`.tree_solver.check_targets` (not finite, orientations missing).
        """
        tree, follow, has_pole = self.tree, self.follow, self.has_pole
        pos = np.asarray(positions, dtype=np.float64)
        if not np.isfinite(pos).all():
            bad = sorted({tree.names[e] for e in np.argwhere(~np.isfinite(pos.reshape(-1, 3)))[:, 0]})
            raise IKInputError(f"target position is not finite (NaN or infinite) for {', '.join(map(repr, bad))}")
        self.positions[0] = pos
        if self._any_follow:
            if orientations is None:
                raise IKInputError("follow asks for orientations, but none were given")
            given = np.asarray(orientations, dtype=np.float64)[None]
            if not np.all(np.isfinite(given[:, follow])):
                raise IKInputError("target orientation is not finite (NaN or infinite)")
            self.orientations[:, follow] = orthonormalize(self._base_rotation.T @ orthonormalize(given[:, follow]))
            self._world_orientations = given.copy()  # one effector: the chain solver reads them as given
        if poles is not None and self._any_pole:
            given_poles = np.asarray(poles, dtype=np.float64)[None]
            if not np.all(np.isfinite(given_poles[:, has_pole])):
                raise IKInputError("pole position is not finite (NaN or infinite)")
            self.poles[:, has_pole] = given_poles[:, has_pole]

    def _targets(self) -> TreeTargets:
        return TreeTargets(self.positions, self.orientations, self.follow, self.poles, self.has_pole,
                           float(self.options.pole_weight), self._world_orientations)

    def solve(self) -> TreeResult:
        """The targets set last, solved as :func:`.tree_solver.solve_tree` solves one frame."""
        if self.solve_in_place():
            return self.result()
        return self._solve_python()

    def solve_in_place(self) -> bool:
        """Run the compiled kernel toward the targets set last, leaving its answer in the job's
        arrays (:attr:`q`, :attr:`errors`) for :meth:`result` or a caller that reads them directly.
        False when the kernel is unavailable or fails, or the tree has one effector (nothing solved:
        :meth:`solve` then solves as :func:`.tree_solver.solve_tree`: one effector as its chain, else
        with the solver :func:`.compiled.tree_kernel_for` names)."""
        if self._one_effector or compiled.tree_kernel_for(self.options) is None:
            return False
        module: Any = compiled.tree_kernel_module()
        try:
            module.solve_frames(compiled.tree_plan_of(self.tree), self.positions, self.orientations, self.follow,
                                self._preferred, self._sqrt_comfort, self._seeds, self._settings, self.poles,
                                self.has_pole, self._pole_weight, self._q, self._errors,
                                self._orientation_errors, self._iterations)
        except Exception:
            return False
        return True

    @property
    def q(self) -> FloatArray:
        """``(1, m)`` the kernel's last answer (:meth:`solve_in_place`): the free angles."""
        return self._q

    @property
    def errors(self) -> FloatArray:
        """``(1, E)`` each effector's distance to its target in the kernel's last answer (tree units)."""
        return self._errors

    def result(self) -> TreeResult:
        """The kernel's last answer (:meth:`solve_in_place`) as :func:`.tree_solver.solve_tree`
        returns it (copied: the next solve overwrites the job's arrays)."""
        return finish(self.tree, self._q.copy(), self._errors.copy(), self._orientation_errors.copy(),
                      self._iterations.copy(), self.options)

    def _solve_python(self) -> TreeResult:
        if self._one_effector:
            return solve_one_effector(self.tree, self._targets(), self.comfort, self.options)
        solver = compiled.tree_kernel_for(self.options)
        if solver is None:
            return _solve_numpy(self.tree, self._targets(), self.preferred, self.comfort_weights, self.seeds,
                                self.options)
        return solver(self.tree, self._targets(), self.preferred, self.comfort_weights, self.seeds, self.options)


__all__ = ["TreeJob"]
