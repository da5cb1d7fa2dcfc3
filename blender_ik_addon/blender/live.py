"""Solve chains at the current frame and write (optionally key) the pose: used by the handlers and
the "Key current frame" operator.

Everything is read through the depsgraph passed in (the render depsgraph during renders), and
errors of one chain become that chain's status without stopping the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..core import IKError
from ..core.types import FloatArray
from .errors import RigSetupError
from .read import ChainBinding, chain_base, chain_bone_names, require_armature
from .sampling import world_matrix
from .solving import current_pose, find_conflicts, prepare, require_objects, solve_follow, solve_frames
from .spec import ChainSpec, spec_from_settings
from .stacking import Solved, ancestors_of, links, stacked_base, upper_first
from .status import ChainStatus, set_status
from .write import key_pose, read_channel, write_pose

log = logging.getLogger(__name__)
FOLLOW_NOTE = "follow mode: history-dependent"


def rig_settings(obj: Any) -> Any | None:
    """The add-on's settings of an object (``obj.ik_chains``), or None if it has none."""
    return getattr(obj, "ik_chains", None)


def chain_specs(obj: Any, names: set[str] | None = None, *, enabled_only: bool = False) -> list[ChainSpec]:
    """Specs of ``obj``'s chains (all, or those named), optionally only the live ones."""
    settings = rig_settings(obj)
    if settings is None:
        return []
    return [spec_from_settings(c) for c in settings.chains
            if (names is None or c.name in names) and (c.enabled or not enabled_only)]


def has_live_chain(obj: Any) -> bool:
    """True if ``obj`` is an armature with at least one enabled chain (cheap)."""
    if obj.type != "ARMATURE":
        return False
    settings = rig_settings(obj)
    return settings is not None and any(c.enabled for c in settings.chains)


def solve_chain(obj: Any, spec: ChainSpec, depsgraph: Any, *, key_frame: float | None = None,
                autokey: bool = False, solved: Solved | None = None) -> tuple[ChainStatus, bool]:
    """Solve one chain at the depsgraph's frame and write its pose.

    Args:
        obj: The armature object (original, not evaluated).
        spec: The chain.
        depsgraph: An evaluated depsgraph at the frame to solve.
        key_frame: Also key the chain's rotation channels at this frame.
        autokey: Key only if the pose changed (Auto Keying while a target is dragged).
        solved: Chains solved before this one in the same pass (see :mod:`.stacking`); this
            chain's solution is added to it.

    Returns:
        ``(status, changed)``; ``changed`` is False when the pose was already in place.

    Raises:
        IKError: Setup problems (missing bone or target, unsupported constraint...).
    """
    require_armature(obj)
    scene = depsgraph.scene
    target, pole = require_objects(spec, scene, obj)
    obj_eval = obj.evaluated_get(depsgraph)  # read what this depsgraph evaluated (renders too)
    prepared = prepare(obj_eval, spec, cached=True)
    base = chain_base(obj_eval, prepared.binding)[None]
    if solved:
        base = stacked_base(obj_eval, prepared.binding, base, solved)
    target_m = world_matrix(target, depsgraph)[None]
    pole_m = None if pole is None else world_matrix(pole, depsgraph)[None]
    frame = float(scene.frame_current)
    inputs = _Inputs(spec, prepared.binding, base, target_m, pole_m)
    memo = _MEMO.get((obj.name, spec.name))
    pose = _pose(obj, inputs)
    # A render depsgraph applies the keys to its own copy and does not copy them back: the pose it
    # evaluated may differ from the one written here even when nothing needs writing again.
    stale = _pose(obj_eval, inputs) != pose
    if memo is not None and not spec.follow_mode and memo.inputs.same(inputs) and memo.pose == pose:
        status, changed = replace(memo.status, frame=frame), False  # same inputs, same answer: skip the solve
    else:
        if spec.follow_mode:
            solution = solve_follow(prepared, base, target_m, pole_m, current_pose(obj_eval, prepared.binding))
        else:
            solution = solve_frames(prepared, base, target_m, pole_m)
        changed = write_pose(obj, prepared.binding, solution.angles[0])
        status = ChainStatus(True, bool(solution.converged[0]), float(solution.error[0]),
                             FOLLOW_NOTE if spec.follow_mode else "", frame)
        _MEMO[(obj.name, spec.name)] = _Memo(inputs, _pose(obj, inputs), status, solution.angles)
    if stale and not changed:
        obj.update_tag()  # re-evaluate from the pose written (a write would have tagged it)
    if key_frame is not None and (changed or not autokey):
        key_pose(obj, prepared.binding, key_frame)
    if solved is not None:
        solved[spec.name] = (prepared.binding, base, _MEMO[(obj.name, spec.name)].angles)
    return status, changed


@dataclass(frozen=True)
class _Inputs:
    """Everything a live solve depends on (the solve is a pure function of these)."""

    spec: ChainSpec
    binding: ChainBinding  # the cache returns the same object while the chain is unchanged
    base: FloatArray
    target: FloatArray
    pole: FloatArray | None

    def same(self, other: _Inputs) -> bool:
        poles_equal = (self.pole is None and other.pole is None) or (
            self.pole is not None and other.pole is not None and np.array_equal(self.pole, other.pole))
        return (self.binding is other.binding and self.spec == other.spec and np.array_equal(self.base, other.base)
                and np.array_equal(self.target, other.target) and poles_equal)


@dataclass(frozen=True)
class _Memo:
    inputs: _Inputs
    pose: tuple[float, ...]  # the chain's rotation channels right after the write
    status: ChainStatus
    angles: FloatArray  # (1, n, 3) the solution, for chains stacked on this one


_MEMO: dict[tuple[str, str], _Memo] = {}


def _pose(obj: Any, inputs: _Inputs) -> tuple[float, ...]:
    return tuple(v for b in inputs.binding.bones for v in read_channel(obj.pose.bones[b.name]))


def forget() -> None:
    """Drop remembered solves (file load, unregister)."""
    _MEMO.clear()


def solve_rig(obj: Any, depsgraph: Any, *, names: set[str] | None = None, enabled_only: bool = True,
              key_frame: float | None = None, autokey: bool = False,
              catch_all: bool = True) -> dict[str, tuple[ChainStatus, bool]]:
    """Solve (and write) ``obj``'s chains; each chain's outcome is also stored as its status.

    Chains that share bones with another chain being solved are refused with a status message.
    With ``catch_all`` (the handlers), any exception becomes the chain's status; otherwise only
    :class:`IKError` does and other exceptions propagate.
    """
    specs = chain_specs(obj, names, enabled_only=enabled_only)
    pool = {s.name: s for s in chain_specs(obj, enabled_only=True)}  # live chains would fight these
    pool.update({s.name: s for s in specs})
    conflicts = find_conflicts(obj, list(pool.values()))
    frame = float(depsgraph.scene.frame_current)
    out: dict[str, tuple[ChainStatus, bool]] = {}
    solved: Solved = {}
    for spec in _upper_first(obj, specs):
        if spec.name in conflicts:
            outcome = (ChainStatus.error(conflicts[spec.name], frame), False)
        else:
            try:
                outcome = solve_chain(obj, spec, depsgraph, key_frame=key_frame, autokey=autokey, solved=solved)
            except IKError as err:
                outcome = (ChainStatus.error(str(err), frame), False)
            except Exception as err:
                if not catch_all:
                    raise
                log.exception("IK chain %r of %r failed", spec.name, obj.name)
                outcome = (ChainStatus.error(f"{type(err).__name__}: {err}", frame), False)
        set_status(obj.name, spec.name, outcome[0])
        out[spec.name] = outcome
    return out


def _upper_first(obj: Any, specs: list[ChainSpec]) -> list[ChainSpec]:
    """Chains hanging below another chain's bones come after it (see :mod:`.stacking`)."""
    chains = {}
    for spec in specs:
        try:
            bones = chain_bone_names(obj, spec.tip_bone, spec.length)
        except RigSetupError:
            continue  # reported when it is solved
        chains[spec.name] = (bones, ancestors_of(obj, bones))
    by_name = {s.name: s for s in specs}
    return [by_name[n] for n in upper_first(by_name, links(chains))]


_suspended = 0  # > 0 while a bake steps frames: the handlers must not solve then


class suspended:  # noqa: N801  (used like a function: `with suspended():`)
    """Context manager: the live handlers do nothing inside it (nestable)."""

    def __enter__(self) -> None:
        global _suspended
        _suspended += 1

    def __exit__(self, *exc: object) -> None:
        global _suspended
        _suspended -= 1


def is_suspended() -> bool:
    """True while live solving is suspended (see :class:`suspended`)."""
    return _suspended > 0
