"""The interface every solver under test implements, and the core's own two solvers."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from blender_ik_addon.core import Chain, SolverOptions, solve, solve_batch, tip_positions
from blender_ik_addon.core.compiled import numba_available
from blender_ik_addon.core.rotations import FloatArray


class PeerUnavailableError(Exception):
    """The peer's package is not installed; the report says "unavailable" and why."""


@dataclass(frozen=True)
class Answer:
    """One solve: per-joint angles ``(n, 3)``, the tip ``(3,)`` where the solver put it, and the
    seconds the solver itself took (setup such as resetting a start pose is not timed)."""

    angles: FloatArray
    tip: FloatArray
    seconds: float


class Peer:
    """A solver under test, built for one chain.

    Attributes:
        name: Short name used on the command line and in the report.
        float32: The peer computes in float32 (looser FK and limit tolerances apply).
        chain: The chain it was built for.
    """

    name = "peer"
    float32 = False

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def fk_error(self, poses: FloatArray) -> float:
        """Largest distance between the peer's tip and the core's for free angles ``(k, m)``.

        A peer measured on a model that differs from the chain is worthless: the runner refuses
        to time a peer whose error is above tolerance.
        """
        raise NotImplementedError

    def solve(self, target: FloatArray, start: FloatArray) -> Answer:
        """Solve for ``target`` ``(3,)`` starting from free angles ``start`` ``(m,)``."""
        raise NotImplementedError

    def solve_batch(self, targets: FloatArray, start: FloatArray) -> tuple[FloatArray, float] | None:
        """``(angles (F, n, 3), seconds)`` for many targets at once, or None without a batch API."""
        return None

    def close(self) -> None:
        """Release what the peer holds (a physics client, Blender data)."""


class CorePeer(Peer):
    """This project's solver (``method="lm"``, named "ours") or the tutorial's ("tutorial")."""

    def __init__(self, chain: Chain, name: str, options: SolverOptions) -> None:
        super().__init__(chain)
        self.name = name
        self.options = options
        # Which implementation runs: the benchmark's targets are tip positions only, so "auto" means
        # the compiled kernel wherever numba can be imported.
        compiled = options.method == "lm" and options.backend != "numpy" and numba_available()
        self.backend = "numba" if compiled else "numpy"

    def fk_error(self, poses: FloatArray) -> float:
        return 0.0  # the core is the reference

    def solve(self, target: FloatArray, start: FloatArray) -> Answer:
        began = time.perf_counter()
        result = solve(self.chain, target, initial=start, options=self.options)
        seconds = time.perf_counter() - began
        return Answer(result.angles, tip_positions(self.chain, result.q[None])[0], seconds)

    def solve_batch(self, targets: FloatArray, start: FloatArray) -> tuple[FloatArray, float]:
        began = time.perf_counter()
        result = solve_batch(self.chain, targets, initial=start, options=self.options)
        return result.angles, time.perf_counter() - began


def stack_fk_error(peer_tips: FloatArray, chain: Chain, poses: FloatArray) -> float:
    """Largest distance between ``peer_tips`` ``(k, 3)`` and the core's tips for ``poses``."""
    return float(np.linalg.norm(peer_tips - tip_positions(chain, poses), axis=-1).max())
