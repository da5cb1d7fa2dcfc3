"""Solver options and results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from .errors import IKInputError
from .types import AnyArray, FloatArray

METHODS: Final = ("lm", "tutorial")
"""Solver names: ``"lm"`` (default, damped least squares / Levenberg-Marquardt with analytic
Jacobians) and ``"tutorial"`` (Zucconi's finite-difference gradient descent)."""

STATUSES: Final = ("converged", "stalled", "max_iterations")

BACKENDS: Final = ("auto", "numpy", "numba")
"""Where ``"lm"`` solves run: ``"auto"`` (the compiled kernel when numba is installed and the
problem is tip-position only, else numpy), ``"numpy"``, or ``"numba"`` (required; an error if it
cannot be used). See :mod:`.compiled`."""


@dataclass(frozen=True)
class SolverOptions:
    """How to solve. Distances are world units, angles radians.

    Attributes:
        method: One of ``METHODS``.
        tolerance: Tip distance under which a solve has converged (the tutorial's
            "distance threshold" too).
        orientation_tolerance: Tip rotation error (radians) under which the orientation task,
            when given, has converged.
        max_iterations: Iteration cap per attempt (the tutorial: sweeps over all joints).
        restarts: LM only: extra attempts from deterministic perturbations of the comfort (or
            start) pose when an attempt stalls above tolerance. 0 disables.
        seed: Seed of those perturbations; the same input always gives the same answer.
        orientation_weight: Unitless weight of the tip orientation task.
        pole_weight: Unitless weight of the pole hint.
        initial_damping: LM only: starting damping, relative to the Jacobian's scale.
        learning_rate: Tutorial only: ``angle -= learning_rate * gradient`` (gradient of the error
            function in world units per radian).
        sampling_distance: Tutorial only: forward-difference step, radians.
        chunk_size: ``solve_batch`` works on this many targets at once, bounding memory (numpy
            backend; the compiled one holds one target's scratch arrays at a time).
        backend: One of ``BACKENDS``. The backends agree to rounding, not bit for bit.
    """

    method: str = "lm"
    tolerance: float = 1e-4
    orientation_tolerance: float = 1e-3
    max_iterations: int = 60
    restarts: int = 24
    seed: int = 0
    orientation_weight: float = 1.0
    pole_weight: float = 0.1
    initial_damping: float = 1e-3
    learning_rate: float = 0.1
    sampling_distance: float = 1e-3
    chunk_size: int = 1024
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise IKInputError(f"unknown solver method {self.method!r}; expected one of {', '.join(METHODS)}")
        if self.backend not in BACKENDS:
            raise IKInputError(f"unknown backend {self.backend!r}; expected one of {', '.join(BACKENDS)}")
        positive = ("tolerance", "orientation_tolerance", "initial_damping", "learning_rate", "sampling_distance")
        for name in positive:
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise IKInputError(f"option {name} must be a finite number > 0, got {value!r}")
        for name in ("max_iterations", "chunk_size"):
            if int(getattr(self, name)) < 1:
                raise IKInputError(f"option {name} must be >= 1, got {getattr(self, name)!r}")
        if int(self.restarts) < 0:
            raise IKInputError(f"option restarts must be >= 0, got {self.restarts!r}")


@dataclass(frozen=True)
class SolveResult:
    """The outcome of ``F`` solves (``solve`` returns the same fields without the ``F`` axis).

    Attributes:
        q: ``(F, m)`` free angles, radians, always within the limits.
        angles: ``(F, n, 3)`` per-joint Euler angles ``(x, y, z)``, radians.
        error: ``(F,)`` final tip distance to the target, world units.
        orientation_error: ``(F,)`` final tip rotation error, radians (0 without an orientation task).
        iterations: ``(F,)`` iterations used, over all attempts.
        converged: ``(F,)`` True where the tip (and orientation, if asked) is within tolerance.
        status: ``(F,)`` why it stopped: one of ``STATUSES``.
        scales: ``(F, n)`` each joint's solved length factor (see :mod:`.stretch`): 1 where a
            joint does not stretch (it keeps the scale it inherits; ``Chain.frame_scales`` and
            ``Chain.channel_scales`` give each joint's frame scale and its own).
    """

    q: FloatArray
    angles: FloatArray
    error: FloatArray
    orientation_error: FloatArray
    iterations: AnyArray
    converged: AnyArray
    status: AnyArray
    scales: FloatArray

    def __getitem__(self, index: int) -> SolveResult:
        """The result of one solve of a batch."""
        return SolveResult(self.q[index], self.angles[index], self.error[index], self.orientation_error[index],
                           self.iterations[index], self.converged[index], self.status[index], self.scales[index])


DEFAULTS: Final = SolverOptions()
"""The one table of default settings: the core's :class:`SolverOptions`, and the add-on's chain
settings (``blender.spec.ChainSpec`` and the panel's properties) read their defaults from it."""
