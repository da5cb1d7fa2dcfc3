"""Solving a path of targets as motion: per-frame steps, solution switches, and "continuous".

Two ways to solve a path of ``F`` targets (frames in order):

* ``"nearest"`` (the default, what :func:`.solver.solve_batch` does): every frame on its own, the
  reaching pose nearest the comfort (or rest) pose. A pure function of (chain, target, settings):
  any frame order, any split into chunks, gives the same poses. Along a smooth target path the
  pose moves smoothly, except where the nearest pose genuinely switches between two solutions
  (the target crosses a point where both are equally near): :func:`find_switches` names those
  frames.
* ``"continuous"``: frame ``0`` as above, then each frame from the previous frame's pose, aiming for
  the reaching pose nearest *that* pose. The motion stays continuous through switches, and the
  result is still deterministic for a given path and first frame; but frame ``k`` now depends on
  the frames before it, so a path split into chunks can differ after a chunk boundary (see
  :attr:`PathResult.chunk_note`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike

from .chain import Chain
from .errors import IKInputError
from .objectives import ComfortPose
from .options import SolveResult, SolverOptions
from .solver import solve, solve_batch
from .types import AnyArray, FloatArray

PATH_MODES: Final = ("nearest", "continuous")

SWITCH_RATIO: Final = 5.0
"""A frame whose largest joint step exceeds this many times the path's typical step (scaled by how
far the target moved) is a switch..."""
SWITCH_FLOOR: Final = float(np.radians(2.0))
"""... and exceeds this many radians (small wobbles on a nearly still path are not switches)."""


@dataclass(frozen=True)
class PathResult:
    """The poses of a path, and where the motion jumps.

    Attributes:
        result: The per-frame :class:`.SolveResult` (``F`` entries).
        steps: ``(F,)`` largest free-angle change from the previous frame, radians (0 for frame 0).
        switches: ``(F,)`` True where the pose jumps although the target moved smoothly (see
            :func:`find_switches`).
        mode: One of ``PATH_MODES``.
    """

    result: SolveResult
    steps: FloatArray
    switches: AnyArray
    mode: str

    @property
    def switch_frames(self) -> list[int]:
        """Indices of the flagged frames."""
        return [int(i) for i in np.flatnonzero(self.switches)]


def joint_steps(q: ArrayLike) -> FloatArray:
    """``(F,)`` largest absolute free-angle change between consecutive frames (``0`` first)."""
    arr = np.asarray(q, dtype=np.float64)
    out = np.zeros(arr.shape[0])
    if arr.shape[0] > 1:
        out[1:] = np.max(np.abs(np.diff(arr, axis=0)), axis=1) if arr.shape[1] else 0.0
    return out


def find_switches(q: ArrayLike, targets: ArrayLike, *, ratio: float = SWITCH_RATIO,
                  floor: float = SWITCH_FLOOR) -> AnyArray:
    """``(F,)`` True at frames where the pose jumps: a solution switch, or a pop.

    A frame's joint step is compared with what the target's own motion explains: the path's
    median ratio of joint step to target displacement, times this frame's displacement. A frame
    is flagged when its step exceeds ``ratio`` times that and ``floor`` radians. (When the target
    jumps, so may the pose: a cut in the target's animation is not flagged.)
    """
    steps = joint_steps(q)
    pos = np.asarray(targets, dtype=np.float64)
    flagged = np.zeros(steps.shape[0], dtype=bool)
    if steps.shape[0] < 3:
        return flagged
    moved = np.zeros_like(steps)
    moved[1:] = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    scale = float(np.median(moved[1:]))
    if scale <= 0.0:
        # A still target: any movement at all is unexplained; only the floor applies.
        flagged[1:] = steps[1:] > floor
        return flagged
    gain = float(np.median(steps[1:] / np.maximum(moved[1:], 1e-3 * scale)))
    expected = gain * np.maximum(moved, 1e-3 * scale)
    flagged[1:] = (steps[1:] > ratio * expected[1:]) & (steps[1:] > floor)
    return flagged


def solve_path(
    chain: Chain,
    targets: ArrayLike,
    *,
    mode: str = "nearest",
    orientations: ArrayLike | None = None,
    poles: ArrayLike | None = None,
    comfort: ComfortPose | None = None,
    options: SolverOptions | None = None,
) -> PathResult:
    """Solve ``F`` targets as consecutive frames of one motion.

    Args:
        chain: The chain.
        targets: ``(F, 3)`` tip targets, world units, in frame order.
        mode: ``"nearest"`` (each frame on its own) or ``"continuous"`` (each frame from the previous
            one's pose; see the module docstring).
        orientations, poles, comfort, options: As :func:`.solver.solve_batch` takes them.

    Returns:
        A :class:`PathResult`.
    """
    if mode not in PATH_MODES:
        raise IKInputError(f"unknown path mode {mode!r}; expected one of {', '.join(PATH_MODES)}")
    positions = np.asarray(targets, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise IKInputError(f"targets must have shape (F, 3), got {positions.shape}")
    if mode == "nearest" or positions.shape[0] < 2:
        result = solve_batch(chain, positions, orientations=orientations, poles=poles, comfort=comfort,
                             options=options)
    else:
        result = _follow(chain, positions, orientations, poles, comfort, options)
    return PathResult(result, joint_steps(result.q), find_switches(result.q, positions), mode)


def _per_frame(value: ArrayLike | None, count: int, shape: tuple[int, ...]) -> list[FloatArray | None]:
    if value is None:
        return [None] * count
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape == shape:
        return [arr] * count
    if arr.shape != (count, *shape):
        raise IKInputError(f"expected shape {shape} or ({count}, {', '.join(map(str, shape))}), got {arr.shape}")
    return list(arr)


def _follow(chain: Chain, positions: FloatArray, orientations: ArrayLike | None, poles: ArrayLike | None,
            comfort: ComfortPose | None, options: SolverOptions | None) -> SolveResult:
    """Frame 0 as ``solve_batch`` solves it; then each frame from, and nearest to, the previous pose."""
    count = positions.shape[0]
    frame_orientations = _per_frame(orientations, count, (3, 3))
    frame_poles = _per_frame(poles, count, (3,))
    results: list[SolveResult] = []
    previous: FloatArray | None = None
    for f in range(count):
        anchor = comfort if previous is None else ComfortPose(previous, 1.0, reach_first=True)
        results.append(solve(chain, positions[f], orientation=frame_orientations[f], pole=frame_poles[f],
                             comfort=anchor, initial=previous, options=options))
        previous = results[-1].q
    return SolveResult(*(np.stack([getattr(r, name) for r in results]) for name in SolveResult.__dataclass_fields__))
