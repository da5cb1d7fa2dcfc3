"""Solve one chain for ``F`` frames: world targets -> chain space -> core ``solve_batch`` -> angles.

Live solving (``F = 1``) and baking share this code, so a baked key equals the live pose.

* Each frame's base (armature world matrix times the root parent's pose) may differ, so targets
  are moved into that frame's chain space (``base^-1``) and the chain is solved base-less.
  Residuals are measured back in world space.
* Deterministic: every frame starts from the comfort pose (zero = rest when none was captured),
  never from the previous frame, except in follow mode (see :func:`solve_follow`) and in a
  continuous bake (``solve_frames(..., continuous=True)``: the first frame as above, then each from
  the previous one, by the rule of :func:`..core.motion.solve_path`'s ``"continuous"`` mode).
* The comfort blend interpolates the solved angles toward the comfort pose (inside the limits,
  since both ends are).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from mathutils import Quaternion

from ..core import ComfortPose, SolveResult, SolverOptions, forward, solve_batch
from ..core.motion import find_switches, solve_path
from ..core.rotations import orthonormalize, rotation_vector
from ..core.types import BoolArray, FloatArray
from .cache import read_chain_cached
from .errors import RigSetupError
from .read import ChainBinding, chain_bone_names, current_angles, read_chain
from .spec import ChainSpec

_ORIENTATION_TOLERANCE = SolverOptions().orientation_tolerance


@dataclass(frozen=True)
class PreparedChain:
    """A chain read from the rig, with its comfort pose in joint angles.

    Attributes:
        spec: The settings.
        binding: The chain as read (see :mod:`.read`).
        comfort_angles: ``(n, 3)`` comfort pose in parameter-order angles, radians, inside the
            limits (locked axes hold their fixed value). Zero (the rest pose) when none captured.
    """

    spec: ChainSpec
    binding: ChainBinding
    comfort_angles: FloatArray


@dataclass(frozen=True)
class FrameSolution:
    """Solved angles and quality for ``F`` frames.

    Attributes:
        angles: ``(F, n, 3)`` joint angles, parameter order, radians.
        error: ``(F,)`` tip distance to the target, world units.
        orientation_error: ``(F,)`` tip rotation error, radians (0 unless following orientation).
        converged: ``(F,)`` within tolerance.
    """

    angles: FloatArray
    error: FloatArray
    orientation_error: FloatArray
    converged: BoolArray


def prepare(obj: Any, spec: ChainSpec, *, cached: bool = False) -> PreparedChain:
    """Read the chain of ``spec`` from ``obj`` (preferably evaluated). Raises :class:`RigSetupError`.

    With ``cached`` a chain read on an earlier call is re-used while its inputs are unchanged.
    """
    binding = (read_chain_cached if cached else read_chain)(obj, spec.tip_bone, spec.length)
    _refuse_drivers(obj, binding)
    chain = binding.chain
    comfort = np.zeros((chain.n_joints, 3))
    for j, bone in enumerate(binding.bones):
        quat = spec.comfort.get(bone.name)
        if quat is not None:
            comfort[j] = Quaternion(quat).normalized().to_euler(bone.order)
    comfort = chain.expand(chain.clamp(chain.compress(comfort)))
    return PreparedChain(spec, binding, comfort)


def _refuse_drivers(obj: Any, binding: ChainBinding) -> None:
    """A driver on a chain bone's rotation overrides whatever is written or keyed there."""
    anim = obj.animation_data
    if anim is None or not len(anim.drivers):
        return
    prefixes = {_bone_path(b.name): b.name for b in binding.bones}
    for fcurve in anim.drivers:
        path = fcurve.data_path
        if fcurve.mute or not fcurve.driver.is_valid or ".rotation_" not in path:
            continue
        for prefix, bone in prefixes.items():
            if path.startswith(prefix) and path[len(prefix):].startswith("rotation_"):
                raise RigSetupError(f"bone {bone!r}: a driver sets {path[len(prefix):]}[{fcurve.array_index}], so the "
                                    "solved pose would be overridden; remove or mute the driver")


def _bone_path(name: str) -> str:
    """``pose.bones["<name>"].`` with the name escaped as Blender writes data paths."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'pose.bones["{escaped}"].'


def require_objects(spec: ChainSpec, scene: Any, rig: Any = None) -> tuple[Any, Any | None]:
    """The chain's target and pole objects, checked to exist in ``scene`` and not to hang below ``rig``
    (an object parented to the armature would move with the chain that chases it)."""
    if not spec.target:
        raise RigSetupError(f"chain {spec.name!r} has no target object (set one; was it deleted?)")
    found: list[Any] = []
    for role, name in (("target", spec.target), ("pole", spec.pole)):
        if name is None:
            found.append(None)
            continue
        obj = scene.objects.get(name)
        if obj is None:
            raise RigSetupError(f"chain {spec.name!r}: {role} object {name!r} is not in scene {scene.name!r}")
        if rig is not None:
            _refuse_feedback(spec, role, obj, rig)
        found.append(obj)
    return found[0], found[1]


def _refuse_feedback(spec: ChainSpec, role: str, obj: Any, rig: Any) -> None:
    """Refuse a target or pole that is the armature or that the chain's own pose moves.

    The pose moves the chain's bones and every bone below them, and with them anything parented
    to such a bone, deformed by the armature, or constrained to such a bone (the chain would chase
    an object its own pose moves). An object merely parented to the armature *object*, or to a
    bone outside the chain, moves with the character, not with the chain: that is allowed.
    """
    if obj.name == rig.name:
        raise RigSetupError(f"chain {spec.name!r}: its {role} is the armature {rig.name!r} itself, which the chain "
                            "moves; pick another object")
    moved = _bones_moved_by(rig, spec)
    walker = obj
    while walker is not None:
        for con in walker.constraints:
            source = getattr(con, "target", None)
            if source is None or source.name != rig.name or con.mute or con.influence <= 0:
                continue
            bone = getattr(con, "subtarget", "")
            if moved is None or bone in moved:
                owner = "its" if walker is obj else f"{walker.name!r}'s"
                raise RigSetupError(f"chain {spec.name!r}: {role} {obj.name!r} follows the armature {rig.name!r} "
                                    f"through {owner} constraint {con.name!r} and would move with the chain that "
                                    "follows it; remove that constraint")
        parent = walker.parent
        if parent is not None and parent.name == rig.name:
            posed = walker.parent_type == "ARMATURE" or (
                walker.parent_type == "BONE" and (moved is None or walker.parent_bone in moved))
            if posed:
                raise RigSetupError(f"chain {spec.name!r}: {role} {obj.name!r} is parented to the armature "
                                    f"{rig.name!r} and would move with the chain that follows it; unparent it")
        walker = parent


def _bones_moved_by(rig: Any, spec: ChainSpec) -> set[str] | None:
    """Names of the chain's bones and all bones below them; None when the chain cannot be read
    (then every dependency on the armature's bones is treated as moved: the caller refuses)."""
    try:
        chain = set(chain_bone_names(rig, spec.tip_bone, spec.length))
    except RigSetupError:
        return None
    moved = set(chain)
    for bone in rig.data.bones:
        if any(parent.name in chain for parent in bone.parent_recursive):
            moved.add(bone.name)
    return moved


def find_conflicts(obj: Any, specs: list[ChainSpec]) -> dict[str, str]:
    """Chains that share bones with another chain of ``specs``: chain name -> message.

    Shared bones would make the chains overwrite each other, so both are refused.
    """
    bones: dict[str, set[str]] = {}
    for spec in specs:
        try:
            bones[spec.name] = set(chain_bone_names(obj, spec.tip_bone, spec.length))
        except RigSetupError:
            continue  # reported when that chain is solved
    out: dict[str, str] = {}
    names = list(bones)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            shared = sorted(bones[first] & bones[second])
            if shared:
                for me, other in ((first, second), (second, first)):
                    out.setdefault(me, f"chain {me!r} shares bone(s) {', '.join(map(repr, shared))} with chain "
                                       f"{other!r}; chains that share bones are not solved")
    return out


def to_chain_space(bases: FloatArray, matrices: FloatArray, *, rotations: bool = True
                   ) -> tuple[FloatArray, FloatArray | None]:
    """World ``(F, 4, 4)`` matrices -> chain-space positions ``(F, 3)`` and rotations ``(F, 3, 3)``.

    Rotations are skipped (None) unless asked for: they cost an SVD per frame.
    """
    if _all_same(bases):  # the usual bake: one base for every frame
        inverse = np.linalg.inv(bases[0])
        positions = matrices[:, :3, 3] @ inverse[:3, :3].T + inverse[:3, 3]
    else:
        inverse = np.linalg.inv(bases)
        positions = np.einsum("fij,fj->fi", inverse[:, :3, :3], matrices[:, :3, 3]) + inverse[:, :3, 3]
    if not rotations:
        return positions, None
    return positions, np.swapaxes(orthonormalize(bases[:, :3, :3]), -1, -2) @ orthonormalize(matrices[:, :3, :3])


def _all_same(bases: FloatArray) -> bool:
    return bases.strides[0] == 0 or bool(np.all(bases == bases[0]))


def solve_frames(prepared: PreparedChain, bases: FloatArray, targets: FloatArray, poles: FloatArray | None = None,
                 *, initial: FloatArray | None = None, continuous: bool = False) -> FrameSolution:
    """Solve ``F`` frames: in one ``solve_batch`` call, or in frame order with ``continuous``.

    Args:
        prepared: The chain.
        bases: ``(F, 4, 4)`` chain base per frame (:func:`.read.chain_base`).
        targets: ``(F, 4, 4)`` target world matrices, in frame order.
        poles: ``(F, 4, 4)`` pole world matrices, or None.
        initial: Start angles ``(F, n, 3)`` or ``(n, 3)``; default the comfort pose. With
            ``continuous``, the first frame's only.
        continuous: Solve the first frame as every frame is solved otherwise (the reaching pose
            nearest the comfort pose), then each frame from, and nearest to, the previous frame's
            pose: the motion stays continuous where the nearest pose would switch solutions.
            Deterministic for given frames, but frame ``k`` depends on the frames before it.
    """
    spec, chain = prepared.spec, prepared.binding.chain
    require_usable(prepared, bases, targets, poles)
    positions, rotations = to_chain_space(bases, targets, rotations=spec.follow_orientation)
    pole_positions = None if poles is None else to_chain_space(bases, poles, rotations=False)[0]
    scales = np.cbrt(np.abs(np.linalg.det(bases[:, :3, :3])))
    options = spec.solver_options(tolerance_scale=1.0 / float(scales.max()))
    orientations = rotations if spec.follow_orientation else None
    # The solver returns the reaching pose nearest the comfort pose (the rest pose when none was
    # captured); the weight only matters for a soft pull. Zero weight still names the pose.
    comfort = ComfortPose(prepared.comfort_angles, max(spec.comfort_weight, 0.0))
    start = initial  # None: the solver's cold start, the comfort pose (angles on a limit nudged off it)
    problem = _Problem(prepared, positions, orientations, pole_positions, comfort, options)
    if continuous:
        result = None
        q = _continuous(problem, start)
    else:
        result, q = _nearest(problem, start)
    blend = float(np.clip(spec.comfort_blend, 0.0, 1.0))
    if blend > 0:
        q = (1.0 - blend) * q + blend * chain.compress(prepared.comfort_angles)
    elif result is not None and q is result.q and _uniform_scale(bases):
        # The solver's chain-space residuals, scaled back to world units: no need for another FK.
        error = result.error * scales
        converged = error <= spec.tolerance
        if orientations is not None:
            converged &= result.orientation_error <= _ORIENTATION_TOLERANCE
        return FrameSolution(result.angles, error, result.orientation_error, converged)
    return _measure(prepared, q, bases, targets, orientations)


@dataclass(frozen=True)
class _Problem:
    """One chain's frames in chain space, ready for the core solver."""

    prepared: PreparedChain
    positions: FloatArray
    orientations: FloatArray | None
    poles: FloatArray | None
    comfort: ComfortPose | None
    options: SolverOptions

    def frames(self, index: slice) -> _Problem:
        """The sub-problem of some frames."""
        return replace(self, positions=self.positions[index],
                       orientations=None if self.orientations is None else self.orientations[index],
                       poles=None if self.poles is None else self.poles[index])


def _nearest(problem: _Problem, start: FloatArray | None) -> tuple[SolveResult, FloatArray]:
    """Every frame on its own, from ``start``: the result, and its ``(F, m)`` free angles."""
    result = solve_batch(problem.prepared.binding.chain, problem.positions, orientations=problem.orientations,
                         poles=problem.poles, comfort=problem.comfort, initial=start, options=problem.options)
    q = result.q
    if problem.comfort is not None and not result.converged.all():
        q = _reach_first_fallback(problem.prepared, result, problem.positions, problem.orientations, problem.poles,
                                  start, problem.options)
    return result, q


CONTINUITY_WEIGHT = 1.0
"""Weight of the pull toward the previous frame's pose (``core.motion``'s continuous mode uses 1)."""


def _continuous(problem: _Problem, start: FloatArray | None) -> FloatArray:
    """``(F, m)`` free angles: frame 0 as :func:`_nearest` solves it, so a range's first frame gets
    the pose any bake gives it (the comfort pose is the start pose at any comfort weight); then
    ``core.motion.solve_path(mode="continuous")`` over the other frames, anchored on frame 0's
    pose: each frame from, and nearest to, the previous frame's pose."""
    chain = problem.prepared.binding.chain
    first_start = start[:1] if start is not None and np.ndim(start) == 3 else start
    first = _nearest(problem.frames(slice(0, 1)), first_start)[1]
    if problem.positions.shape[0] == 1:
        return first
    rest = problem.frames(slice(1, None))
    path = solve_path(chain, rest.positions, mode="continuous", orientations=rest.orientations, poles=rest.poles,
                      comfort=ComfortPose(first[0], CONTINUITY_WEIGHT, reach_first=True), options=problem.options)
    return np.concatenate([first, path.result.q])


def find_frame_switches(prepared: PreparedChain, bases: FloatArray, targets: FloatArray, poles: FloatArray | None,
                        solution: FrameSolution) -> BoolArray:
    """``(F,)`` True at frames where the solved pose jumps although what it follows moved smoothly.

    :func:`..core.motion.find_switches` on the free angles, against the motion of everything the
    chain follows, in chain space: the target's location, the pole's, and (when the chain
    follows the target's rotation) its rotation, scaled by the chain's length so that turning
    counts like moving. A cut in that motion (a target that jumps) is not flagged; a pose that
    jumps while it glides is. Only runs of consecutive converged frames are checked: out of
    reach, the pose stops following the target (those frames are reported as not converged).
    """
    spec, chain = prepared.spec, prepared.binding.chain
    positions, rotations = to_chain_space(bases, targets, rotations=spec.follow_orientation)
    parts = [positions]
    if poles is not None:
        parts.append(to_chain_space(bases, poles, rotations=False)[0])
    if rotations is not None:
        parts.append(chain.world_length * rotations.reshape(len(rotations), 9))  # identity base: chain space
    motion = np.concatenate(parts, axis=1)
    q = chain.compress(solution.angles)
    flagged = np.zeros(len(q), dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], solution.converged.astype(np.int8), [0]])))
    for begin, end in zip(edges[0::2], edges[1::2], strict=True):  # [begin, end): converged runs
        flagged[begin:end] = find_switches(q[begin:end], motion[begin:end])
    return flagged


_FAR = 1e15  # world units: a target farther than this is a typo or a clamped infinity, not a goal


def require_usable(prepared: PreparedChain, bases: FloatArray, targets: FloatArray, poles: FloatArray | None) -> None:
    """Refuse NaN, infinite or absurdly far targets and poles, and chain bases of zero scale."""
    spec = prepared.spec
    for role, name, matrices in (("target", spec.target, targets), ("pole", spec.pole, poles)):
        if matrices is None:
            continue
        where = matrices[:, :3, 3]
        bad = ~np.all(np.isfinite(matrices), axis=(1, 2)) | np.any(np.abs(where) > _FAR, axis=1)
        if bad.any():
            shown = ", ".join(f"{v:.6g}" for v in where[int(np.argmax(bad))])
            raise RigSetupError(f"chain {spec.name!r}: {role} {name!r} is at ({shown}), which is not a usable "
                                f"location (NaN, infinite or farther than {_FAR:g}); move it")
    if not np.all(np.isfinite(bases)) or np.any(np.abs(np.linalg.det(bases[:, :3, :3])) < 1e-12):
        raise RigSetupError(f"chain {spec.name!r}: armature {prepared.binding.object_name!r} (or a bone above the "
                            "chain) has a zero scale, so the chain has no size to solve; give it a non-zero scale")


def _uniform_scale(bases: FloatArray) -> bool:
    linear = bases[:1, :3, :3] if _all_same(bases) else bases[:, :3, :3]
    gram = np.swapaxes(linear, -1, -2) @ linear
    return bool(np.allclose(gram, gram[:, :1, :1] * np.eye(3), rtol=1e-6, atol=1e-9))


def _reach_first_fallback(prepared: PreparedChain, result: SolveResult, positions: FloatArray,
                          orientations: FloatArray | None, poles: FloatArray | None, start: FloatArray | None,
                          options: SolverOptions) -> FloatArray:
    """Frames the comfort-weighted solve left short are re-solved without the comfort term.

    Reaching the target comes first; the comfort pose only chooses among reaching poses. The
    answer with the smaller tip error wins, so this never makes a frame worse.
    """
    chain = prepared.binding.chain
    missed = np.flatnonzero(~result.converged)
    sub_start = None if start is None else (start[missed] if np.ndim(start) == 3 else start)
    retry = solve_batch(chain, positions[missed],
                        orientations=None if orientations is None else orientations[missed],
                        poles=None if poles is None else poles[missed], initial=sub_start, options=options)
    q = result.q.copy()
    better = retry.error < result.error[missed]
    q[missed[better]] = retry.q[better]
    return q


def _measure(prepared: PreparedChain, q: FloatArray, bases: FloatArray, targets: FloatArray,
             orientations: FloatArray | None) -> FrameSolution:
    chain, spec = prepared.binding.chain, prepared.spec
    kin = forward(chain, q, with_axes=False)
    tips = np.einsum("fij,fj->fi", bases[:, :3, :3], kin.tip_chain) + bases[:, :3, 3]
    error = np.linalg.norm(tips - targets[:, :3, 3], axis=1)
    converged = error <= spec.tolerance
    orientation_error = np.zeros(len(q))
    if orientations is not None:
        residual = rotation_vector(kin.tip_rotation @ np.swapaxes(orientations, -1, -2))
        orientation_error = np.linalg.norm(residual, axis=-1)
        converged &= orientation_error <= _ORIENTATION_TOLERANCE
    return FrameSolution(chain.expand(q), error, orientation_error, converged)


def solve_follow(prepared: PreparedChain, bases: FloatArray, targets: FloatArray, poles: FloatArray | None,
                 start: FloatArray) -> FrameSolution:
    """Follow mode over ``F`` consecutive frames: one tutorial sweep per frame, each from the last.

    History-dependent by design (the tutorial's per-frame look), hence sequential.
    """
    pieces = []
    angles = np.asarray(start)
    for f in range(len(targets)):
        piece = solve_frames(prepared, bases[f:f + 1], targets[f:f + 1], None if poles is None else poles[f:f + 1],
                             initial=angles)
        angles = piece.angles[0]
        pieces.append(piece)
    return FrameSolution(*(np.concatenate([getattr(p, k) for p in pieces]) for k in
                           ("angles", "error", "orientation_error", "converged")))


def current_pose(obj: Any, binding: ChainBinding) -> FloatArray:
    """The chain's current pose as joint angles ``(n, 3)`` (follow mode starts from it)."""
    return np.stack([current_angles(obj.pose.bones[b.name], b.order) for b in binding.bones])
