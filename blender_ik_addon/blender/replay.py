"""The live pass's fast lane: a rig's last full frame pass replayed with this frame's targets.

The full pass (:func:`.live.solve_rig`) derives everything again on every frame: which chains are
live, who follows whom, the scene checks, each chain's problem, the finishing. On a rig whose chains
only chase plain targets, nearly all of that comes out the same frame after frame, and the Python
doing it costs several times the solve. So after a full frame pass, :func:`remember` keeps a
:class:`RigReplay` of what that pass found (each chain's kernel job, where its bones sit in the rig's
rotation array, the pointers of its target and pole), and the next frame passes run it while
everything that pass depended on stands. Per frame, a replay only:

1. checks that it still holds (:meth:`RigReplay.inputs`): a handful of reads (below);
2. reads each target, pole and chain base, and skips the chains whose inputs and written pose did
   not change;
3. solves every moving chain in one kernel call (:func:`.core.batched.solve_jobs`);
4. writes the rig's rotations with one ``foreach_set`` and stamps the statuses.

The answers are the full pass's, bit for bit: the same jobs, the targets put into chain space by the
same function, the same finishing (:func:`.solving.finish_job` whenever a chain is left short of its
target). Tested side by side with the full pass (``tests/blender/test_replay.py``).

**Which rigs** (:func:`remember`): every live chain solved by the default solver, at Influence 1, not
following orientation, without Stretch, a pole angle, the Turn pole rule or a comfort blend; object
targets and poles (not bones) that Blender evaluates; no chain following another. Chains hanging
below others are replayed level after level, carried as the full pass carries them; chains that
share bones are solved with their group, through its :class:`.group_lane.GroupLane` (the answers
of :func:`.groups.solve_group`, which also takes orientation). The rig, targets
and poles must be *plain* (:func:`.dependencies.is_plain`: no parent, constraint or transform
driver), so no rig's chains can follow another's, and its chain
settings not animated. Any other rig takes the full pass, as before.

**When a replay holds.** It is dropped (and the next full pass may make a new one) when:

* any chain setting is changed: every property's update callback calls :func:`invalidate` (so
  does undo/redo, a file load, the add-on's runtime reset); and every frame compares the live
  chains as stored (each one's ID properties, comfort poses included), so settings written without
  a callback (as ID properties, by keys or drivers), chains added, removed, reordered, enabled or
  disabled count too;
* the armature is edited (its Armature datablock's edit generation, :mod:`.structure`) or its
  animation data changes (another action, NLA strips, drivers, or F-curves added);
* a target, pole or the rig gets a parent or constraint, is disabled in viewports, or leaves the
  evaluated scene; the depsgraph is another one (renders take the full pass);
* anything in it fails (a NaN target, a kernel error): the full pass runs and reports.

A rig without a replay that holds takes the full pass. When it might follow another rig's bones
(:func:`independent` says no), every rig of the frame pass takes the full pass, so the full pass
still plans every pass in which chains may follow each other across rigs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core import SolverOptions
from ..core.batched import ChainJob, solve_in_place
from ..core.options import SolveResult
from ..core.types import AnyArray, FloatArray
from . import structure
from .dependencies import is_plain
from .goals import Goal
from .group_lane import GroupLane
from .keys import fcurve_collection
from .order import PassMotion
from .read import ChainBinding, chain_base, inverse_of
from .rig_pose import RigPose, put_bone_by_bone
from .sampling import unevaluated_reason
from .scene_checks import refuse_drivers, usable_frame
from .settings import rig_settings
from .solving import FrameSolution, finish_job, frame_problem, uniform_scale
from .spec import ChainSpec
from .status import ChainStatus, set_status

if TYPE_CHECKING:
    from .live import _LiveChain

_GENERATION = [0]  # bumped by invalidate(): a replay made at an older one no longer holds
_REPLAYS: dict[str, RigReplay] = {}  # rig name -> its replay
_ENABLED = [True]  # tests turn replays off to compare with the full pass


def invalidate() -> None:
    """Drop every replay: a chain setting changed (property update callbacks), undo or redo, a file
    load, the add-on's runtime reset."""
    _GENERATION[0] += 1
    _REPLAYS.clear()


def set_enabled(enabled: bool) -> None:
    """Turn replays on or off (off: every frame pass is a full pass). For tests and benchmarks."""
    _ENABLED[0] = enabled
    invalidate()


def forget(rig: str) -> None:
    """Drop ``rig``'s replay (its last pass was a full one that did not make a new replay)."""
    _REPLAYS.pop(rig, None)


def replay_of(rig: str) -> RigReplay | None:
    """``rig``'s replay, if a full pass made one and nothing has dropped it since."""
    return _REPLAYS.get(rig)


@dataclass(frozen=True)
class SolvedChain:
    """What a full frame pass knew of a chain it solved: :func:`remember`'s input.

    ``alone``: the chain follows no other chain, hangs below no bone that moves on its own, and was
    solved at Influence 1.
    """

    spec: ChainSpec
    state: _LiveChain
    target: Goal
    pole: Goal | None
    evaluated: bool
    alone: bool
    level: int  # the full pass's: a chain hanging below chains of this rig comes after them
    group: tuple[str, ...] | None = None  # the chains it shares bones with, itself included (:mod:`.groups`)


@dataclass
class _ChainReplay:
    spec: ChainSpec
    state: _LiveChain
    level: int
    binding: ChainBinding
    job: ChainJob | None  # None for a chain solved with its group (group_lane.GroupLane)
    options: SolverOptions | None
    rows: AnyArray | None  # the chain's bones' rows in rotation_euler (None: not plain Euler bones)
    tolerance: float
    fixed: list[float]  # the chain's angles flat (3 a joint), locked axes at their values
    free: list[int]  # where in it each of the job's variables goes
    row_list: list[int]  # ``rows`` as a list (empty: not plain Euler bones)
    fixed_array: FloatArray  # ``fixed`` and ``free`` as arrays (long chains: numpy beats Python floats)
    free_array: AnyArray
    group: tuple[str, ...] | None = None  # as SolvedChain.group
    # The last base seen, with what follows from it (a base stands still on most frames):
    base_key: bytes = b""
    scales: FloatArray | None = None  # (1,) its mean scale, as solving.frame_problem computes it
    scale: float = 1.0  # the same, a float
    uniform: bool = False  # it scales alike along every axis (solving.uniform_scale)
    options_hold: bool = False  # its tolerance scale gives the job's options
    inverse: FloatArray = field(default_factory=lambda: np.eye(4))  # its inverse (read.inverse_of)


@dataclass
class RigReplay:
    """One rig's last full frame pass, kept to be replayed (see the module docstring)."""

    depsgraph: int
    generation: int
    structure: tuple[int, int]
    animation: tuple[Any, ...]
    fcurves: int  # the active action's F-curve count (-1: no action): a key added to a new channel
    chains_key: tuple[Any, ...]  # _live_chains_key(settings)
    chains: list[_ChainReplay]
    index: dict[str, int]  # pose bone name -> its row in the rig's channel arrays
    specs: list[ChainSpec]  # the chains as that pass read them (for the still-rig record)
    drivers: bool  # the rig has drivers: each chain's are checked every frame
    animated: bool  # the rig has animation data: each chain's binding is checked every frame (:mod:`.structure`)
    levels: list[list[int]]  # indices into ``chains``, level after level (chains hanging below chains: later)
    lanes: dict[tuple[str, ...], GroupLane] = field(default_factory=dict)  # per group, made on its first solve
    orders: dict[tuple[str, ...], list[int]] = field(default_factory=dict)  # per group: its members in its order

    def inputs(self, obj: Any, depsgraph: Any) -> _FrameInputs | None:
        """This frame's targets, poles and bases, read, if the replay still holds (else None)."""
        if (self.generation != _GENERATION[0] or depsgraph.as_pointer() != self.depsgraph
                or structure.generation_of(obj) != self.structure or not is_plain(obj)):
            return None
        if structure.animation_key(obj) != self.animation or _fcurve_count(obj) != self.fcurves:
            return None
        settings = rig_settings(obj)
        if settings is None:
            return None
        live = [c for c in settings.chains if c.enabled]
        if len(live) != len(self.chains) or _live_chains_key(live) != self.chains_key:
            return None
        obj_eval = obj.evaluated_get(depsgraph)
        frame = _FrameInputs(obj_eval)
        bases: dict[tuple[Any, ...], FloatArray] = {}  # chains that start at one bone share its base
        for stored, chain in zip(live, self.chains, strict=True):
            target = _goal_matrix(stored.target, depsgraph)
            pole = None if stored.pole is None else _goal_matrix(stored.pole, depsgraph)
            if target is None or (stored.pole is not None and pole is None):
                return None
            if self.animated and structure.chain_binding(obj_eval, chain.spec.tip_bone, chain.spec.length,
                                                         trust_edits=True) is not chain.binding:
                return None  # keys changed what the chain is (its limits, a locked value): read it again
            if self.drivers:
                refuse_drivers(obj, chain.binding)  # a driver added on a chain bone: the full pass says so
            base = chain_base(obj_eval, chain.binding, bases)
            if chain.level == 0 and (not usable_frame(base, target, pole) or not _base_holds(chain, base)):
                return None  # the full pass names the fault, or makes the job for another scale
            frame.items.append((chain, base, target, pole))
        return frame

    def run(self, obj: Any, frame_inputs: _FrameInputs, frame: float) -> dict[str, tuple[ChainStatus, bool]]:
        """Solve and write this frame (after :meth:`inputs`), level after level of stacked chains;
        the chains' outcomes, as :func:`.live.solve_rig` returns them. Raises :class:`ReplayError`
        (nothing written) where the full pass must take over."""
        pose = RigPose(obj, self.index)
        out: dict[str, tuple[ChainStatus, bool]] = {}
        items = frame_inputs.items
        motion = PassMotion()  # the chains solved so far, for those hanging below them
        for depth, level in enumerate(self.levels):
            moving: list[tuple[_ChainReplay, FloatArray, FloatArray, FloatArray | None]] = []
            groups: dict[tuple[str, ...], list[tuple[_ChainReplay, FloatArray, FloatArray, FloatArray | None]]] = {}
            for index in level:
                chain, base, target, pole = items[index]
                if depth and chain.binding.ancestors:  # below a chain of an earlier level: carried by its solve
                    base = _hung(obj, chain, base, target, pole, motion)
                    items[index] = (chain, base, target, pole)
                if chain.group is not None:
                    groups.setdefault(chain.group, []).append((chain, base, target, pole))
                    continue
                state = chain.state
                if (_same_inputs(state, base, target, pole) and state.written is not None
                        and state.status is not None and np.array_equal(pose.current(chain.binding), state.written)):
                    out[chain.spec.name] = (replace(state.status, frame=frame), False)
                    continue
                _set_target(chain, target, pole)
                moving.append((chain, base, target, pole))
            if moving:
                _solve_level(moving, pose, frame, out)
            for group, members in groups.items():
                self._solve_group(group, members, pose, frame, out)
            if depth + 1 < len(self.levels):
                for index in level:
                    chain, base = items[index][0], items[index][1]
                    if chain.state.angles is not None:  # (as the full pass: every chain it took, moved or not)
                        motion.add(frame_inputs.obj_eval, chain.spec.name, chain.binding, base[None],
                                   chain.state.angles, chain.state.scales)
        pose.write()
        for name, (status, _changed) in out.items():
            set_status(obj.name, name, status)
        return {chain.spec.name: out[chain.spec.name] for chain in self.chains}

    def _solve_group(self, group: tuple[str, ...],
                     members: list[tuple[_ChainReplay, FloatArray, FloatArray, FloatArray | None]], pose: RigPose,
                     frame: float, out: dict[str, tuple[ChainStatus, bool]]) -> None:
        """A group of chains that share bones, as :func:`.live._solve_group` solves it: nothing when
        every member stands still, else through its :class:`.group_lane.GroupLane`."""
        order = self.orders.get(group)  # the members come level after level, the same way every frame
        if order is None:
            order = self.orders[group] = sorted(range(len(members)), key=lambda k: group.index(members[k][0].spec.name))
        members = [members[k] for k in order]
        if all(_same_inputs(chain.state, base, target, pole) and chain.state.written is not None
               and chain.state.status is not None and np.array_equal(pose.current(chain.binding), chain.state.written)
               for chain, base, target, pole in members):
            for chain, *_ in members:
                assert chain.state.status is not None
                out[chain.spec.name] = (replace(chain.state.status, frame=frame), False)
            return
        lane = self.lanes.get(group)
        if lane is None:
            lane = self.lanes[group] = GroupLane.of(group, [chain for chain, *_ in members])
        out.update(lane.solve(members, pose, frame))


class ReplayError(Exception):
    """The replay cannot do this frame as the full pass would: the full pass takes it."""


def _hung(obj: Any, chain: _ChainReplay, base: FloatArray, target: FloatArray, pole: FloatArray | None,
          motion: PassMotion) -> FloatArray:
    """The base of a chain hanging below chains solved before it, moved with them, as
    :func:`.live._frame_of` moves it (the same product)."""
    hangs = motion.move_of(obj, chain.binding.ancestors[0])
    if hangs is not None:
        if hangs.loose:
            raise ReplayError("a chain hangs below a bone that moves on its own")
        base = np.asarray(hangs.matrix @ base[None])[0]
    if not usable_frame(base, target, pole) or not _base_holds(chain, base):
        raise ReplayError("a base the full pass must look at")
    return base


def _solve_level(moving: list[tuple[_ChainReplay, FloatArray, FloatArray, FloatArray | None]], pose: RigPose,
                 frame: float, out: dict[str, tuple[ChainStatus, bool]]) -> None:
    """One kernel call for the level's moving chains; each answer put into ``pose`` and kept."""
    in_place = solve_in_place([chain.job for chain, *_ in moving if chain.job is not None])
    for chain, base, target, pole in moving:
        job, state = chain.job, chain.state
        assert job is not None
        kernel_answer = in_place and job.compiled and job.job is not None
        if kernel_answer and chain.rows is not None and chain.uniform and int(job.status[0]) == 0:
            status, changed = _take_converged(chain, pose, frame)
        else:
            solution = _finish(chain, None if kernel_answer else job.solve_alone(), base, target, pole)
            angles = solution.angles[0]
            if chain.rows is not None:  # plain Euler bones: the solved angles are the channel values
                changed = pose.put_euler(chain.rows, angles)
            else:
                changed = put_bone_by_bone(chain.binding, angles, pose)
            status = ChainStatus(True, bool(solution.converged[0]), float(solution.error[0]), "", frame)
            state.angles = solution.angles
        state.inputs = (base[None], target[None], None if pole is None else pole[None])
        state.written = pose.current(chain.binding)
        state.status, state.scales, state.influence, state.group = status, None, 1.0, None
        out[chain.spec.name] = (status, changed)


class _FrameInputs:
    """A replay's reads of one frame: ``(chain, base, target, pole)`` per chain, world matrices."""

    def __init__(self, obj_eval: Any) -> None:
        self.obj_eval = obj_eval
        self.items: list[tuple[_ChainReplay, FloatArray, FloatArray, FloatArray | None]] = []


def remember(obj: Any, depsgraph: Any, chains: Sequence[SolvedChain | None], pose: RigPose) -> RigReplay | None:
    """Keep a replay of the full frame pass that just solved every live chain of ``obj`` (``None``
    in ``chains``: a chain that pass did not solve) and wrote ``pose``, if the rig qualifies
    (module docstring); else drop the rig's replay."""
    _REPLAYS.pop(obj.name, None)
    if not _ENABLED[0] or depsgraph.mode != "VIEWPORT" or not chains or not is_plain(obj):
        return None
    replays = []
    for solved in chains:
        made = _chain_replay(solved, pose) if solved is not None else None
        if made is None:
            return None
        replays.append(made)
    settings = rig_settings(obj)
    if settings is None or _animates_settings(obj):
        return None
    live = [c for c in settings.chains if c.enabled]
    if [c.name for c in live] != [r.spec.name for r in replays]:
        return None
    anim = obj.animation_data
    depth = 1 + max(r.level for r in replays)
    levels = [[i for i, r in enumerate(replays) if r.level == level] for level in range(depth)]
    replay = RigReplay(depsgraph.as_pointer(), _GENERATION[0], structure.generation_of(obj),
                       structure.animation_key(obj), _fcurve_count(obj), _live_chains_key(live), replays, pose.index,
                       [s.spec for s in chains if s is not None], anim is not None and len(anim.drivers) > 0,
                       anim is not None, [level for level in levels if level])
    _REPLAYS[obj.name] = replay
    return replay


def independent(obj: Any) -> bool:
    """No live chain of ``obj`` can follow another rig's bones: the rig and every target and pole
    are plain objects (:func:`.dependencies.is_plain`), and no goal is a bone of another armature.
    Such a rig takes its full pass alone while the other rigs replay."""
    settings = rig_settings(obj)
    if settings is None or not is_plain(obj):
        return False
    for chain in settings.chains:
        if not chain.enabled:
            continue
        for goal, bone in ((chain.target, chain.target_bone), (chain.pole, chain.pole_bone)):
            if goal is not None and (not is_plain(goal) or (bone and goal != obj)):
                return False
    return True


def _chain_replay(solved: SolvedChain, pose: RigPose) -> _ChainReplay | None:
    spec, state = solved.spec, solved.state
    plain_goals = solved.target.bone is None and (solved.pole is None or solved.pole.bone is None)
    if not (solved.alone and solved.evaluated and plain_goals and spec.method == "lm" and not spec.follow_mode
            and not spec.use_stretch and spec.influence >= 1.0):
        return None
    if solved.group is None and (spec.follow_orientation or spec.comfort_blend > 0.0 or spec.pole_angle
                                 or (spec.pole is not None and spec.pole_rule != "bend")):
        return None  # (a group's members: groups.solve_group does the rest, grouping refuses the others)
    if not is_plain(solved.target.obj) or (solved.pole is not None and not is_plain(solved.pole.obj)):
        return None
    binding = state.prepared.binding
    if binding.chain.n_stretch or (solved.group is None and len(state.jobs) != 1):
        return None
    if state.status is None or not state.status.solved or state.written is None or state.inputs is None:
        return None
    job = next(iter(state.jobs.values())) if solved.group is None else None
    if job is not None and (job.orientations is not None or (job.poles is not None) != (solved.pole is not None)):
        return None
    chain, rows = binding.chain, pose.euler_rows(binding)
    free = [3 * int(j) + int(a) for j, a in zip(chain.free_joint, chain.free_axis, strict=True)]
    return _ChainReplay(spec, state, solved.level, binding, job, None if job is None else job.options, rows,
                        float(spec.tolerance), chain.fixed.ravel().tolist(), free,
                        [] if rows is None else rows.tolist(), chain.fixed.ravel().copy(),
                        np.array(free, dtype=np.int64), solved.group)


def _goal_matrix(obj: Any, depsgraph: Any) -> FloatArray | None:
    """``(4, 4)`` an object goal's world matrix as Blender evaluated it (what
    :func:`.sampling.world_matrix_of` reads for an evaluated object); None when it is no longer a
    plain object Blender evaluates (the full pass decides what to do)."""
    if not is_plain(obj) or unevaluated_reason(obj, depsgraph):
        return None
    return np.array(obj.evaluated_get(depsgraph).matrix_world, dtype=np.float64)


def _same_inputs(state: _LiveChain, base: FloatArray, target: FloatArray, pole: FloatArray | None) -> bool:
    """The chain's base, target and pole are the ones it was last solved for (bit for bit)."""
    if state.inputs is None or state.written is None or state.status is None:
        return False
    last_base, last_target, last_pole = state.inputs
    if (last_pole is None) != (pole is None):
        return False
    return (base.tobytes() == last_base.tobytes() and target.tobytes() == last_target.tobytes()
            and (pole is None or pole.tobytes() == last_pole.tobytes()))  # type: ignore[union-attr]


def _base_holds(chain: _ChainReplay, base: FloatArray) -> bool:
    """The chain's job fits ``base``: its tolerance scale gives the job's options (a base scaled
    since asks for another job: the full pass makes it). Worked out once per base. (A group's
    members have no job: their GroupLane keeps the group's options per root base.)"""
    if chain.job is None:
        return True
    key = base.tobytes()
    if key != chain.base_key:
        bases = base[None]
        scales = np.cbrt(np.abs(np.linalg.det(bases[:, :3, :3])))  # as solving.frame_problem computes them
        tolerance_scale = 1.0 / float(f"{float(scales.max()):.5g}")
        chain.scales, chain.uniform, chain.inverse = scales, uniform_scale(bases), inverse_of(base)
        chain.scale = float(scales[0])
        chain.options_hold = chain.state.options(tolerance_scale) == chain.options
        chain.base_key = key
    return chain.options_hold


def _set_target(chain: _ChainReplay, target: FloatArray, pole: FloatArray | None) -> None:
    """Give the chain's job this frame's target and pole in chain space, as
    :func:`.solving.to_chain_space` puts them for one base (the same inverse, the same products)."""
    inverse = chain.inverse  # (shaped as there: a (1, 3) product may round unlike a (3,) one)
    position = target[None, :3, 3] @ inverse[:3, :3].T + inverse[:3, 3]
    at = None if pole is None else pole[None, :3, 3] @ inverse[:3, :3].T + inverse[:3, 3]
    assert chain.job is not None
    chain.job.set_target(position[0], None, None if at is None else at[0])


_PYTHON_TAKE_BONES = 8
"""Up to this many bones a chain's answer is put in place on Python floats; longer chains (a
tentacle) in numpy, whose per-call cost the per-bone work then outweighs (measured crossover)."""


def _take_converged(chain: _ChainReplay, pose: RigPose, frame: float) -> tuple[ChainStatus, bool]:
    """The usual frame: the kernel reached the target on a chain of plain Euler bones. What
    :func:`_finish` and :meth:`.RigPose.put_euler` do (the same values: the job's variables put
    among the locked axes' values, the residual scaled to world units), on Python floats for a
    short chain."""
    job = chain.job
    assert job is not None
    if len(chain.row_list) > _PYTHON_TAKE_BONES:
        flat = chain.fixed_array.copy()
        flat[chain.free_array] = job.q[0]
        angles = flat.reshape(-1, 3)
        assert chain.rows is not None
        changed = pose.put_euler(chain.rows, angles)
        chain.state.angles = angles[None]
    else:
        values = list(chain.fixed)
        for at, value in zip(chain.free, job.q[0].tolist(), strict=True):
            values[at] = value
        changed = pose.put_euler_values(chain.row_list, values)
        chain.state.angles = np.array(values).reshape(1, -1, 3)
    error = float(job.error[0]) * chain.scale
    return ChainStatus(True, error <= chain.tolerance, error, "", frame), changed


def _finish(chain: _ChainReplay, result: SolveResult | None, base: FloatArray, target: FloatArray,
            pole: FloatArray | None) -> FrameSolution:
    """What :func:`.solving.finish_job` makes of the answer (``result``; None: the kernel's, still in
    the job's arrays). A converged answer on a base that scales alike every way needs no more than
    its residual in world units; anything else (a target left short, a base that shears) goes the
    full way."""
    assert chain.scales is not None and chain.job is not None
    if result is None:
        result = chain.job.result()
    if chain.uniform and bool(result.converged.all()):
        error = result.error * chain.scales
        return FrameSolution(result.angles, error, result.orientation_error, error <= chain.tolerance, None)
    state = chain.state
    problem, scales = frame_problem(state.prepared, base[None], target[None], None if pole is None else pole[None],
                                    state.options)
    return finish_job(problem, result, base[None], target[None], scales)


def _live_chains_key(live: Sequence[Any]) -> tuple[Any, ...]:
    """The live chains as stored: every setting each chain holds, comfort pose included (its ID
    properties as one dict: what the panel, scripts, keys and drivers write, through an update
    callback or not; objects as themselves, which compare by pointer). A setting still at its
    default is not stored; writing it stores it, so it shows as a change. ~2 us a chain (its
    settings read one by one as values: ~8)."""
    return tuple(c.id_properties_ensure().to_dict() for c in live)


def comfort_fingerprint(bones: Any) -> bytes:
    """A chain's comfort bones (names and rotations) as bytes: what Python may change without a
    callback (bones added, cleared or rotated)."""
    count = len(bones)
    if not count:
        return b""
    rotations = np.empty(4 * count, dtype=np.float32)
    bones.foreach_get("rotation", rotations)
    return rotations.tobytes() + "|".join(b.name for b in bones).encode()


def _fcurve_count(obj: Any) -> int:
    if obj.animation_data is None:
        return -1
    fcurves = fcurve_collection(obj, create=False)
    return -1 if fcurves is None else len(fcurves)


def _animates_settings(obj: Any) -> bool:
    """An F-curve, driver or NLA strip of the rig animates one of its chain settings (or the rig has
    NLA strips at all: their actions are not watched for new channels)."""
    anim = obj.animation_data
    if anim is None:
        return False
    if any(len(track.strips) for track in anim.nla_tracks):
        return True
    fcurves = fcurve_collection(obj, create=False)
    paths = [f.data_path for f in fcurves] if fcurves is not None else []
    paths += [f.data_path for f in anim.drivers]
    return any(path.startswith("ik_chains") for path in paths)


__all__ = ["RigReplay", "SolvedChain", "forget", "independent", "invalidate", "remember", "replay_of",
           "set_enabled"]
