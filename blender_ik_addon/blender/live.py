"""The live pass: a rig's chains solved at the current frame, written in bulk, keyed on request.

Used by the handlers (through :mod:`.events`), the "Key current frame" operator and scripts. One
pass over a rig does each thing once::

    solve_rig(obj, depsgraph)
      _layout(...)                       conflicts and upper-first order, kept while the chains stay
      per chain, upper chains first:
        _frame_of(...)                   scene checks, the chain (structure cache), base, target, pole
        _still_status(...)               same inputs, same pose written: no solve, no write
      per level of stacked chains:
        batched.solve_jobs([...])        every moving chain of the level in one kernel call
        solving.finish_job(...)          fallback, blend, world-space residuals
        influence.blend_live(...)        only below Influence 1: the IK/FK blend with the bones' keys
      RigPose.write()                    one foreach_set per rotation channel kind, one update_tag
      write.key_pose(...)                only when keying was asked for

Everything is read through the depsgraph passed in (the render depsgraph during renders); each
chain's errors become its status without stopping the others. A chain's solve is a pure function
of its inputs (deterministic), except in follow mode, so a still chain is skipped: it costs a
few matrix reads and comparisons.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import bpy
import numpy as np

from ..core import IKError, SolverOptions, batched
from ..core.batched import ChainJob, solve_jobs
from ..core.types import FloatArray
from . import dependencies, replay, structure
from .action_time import action_time, time_stretch
from .errors import RigSetupError
from .goals import Goal
from .groups import describe_group, group_note, solve_group
from .groups import forget as forget_groups
from .influence import blend_live, describe, influence_animated, live_influence, unblended
from .influence import forget as forget_influence
from .keys import require_local
from .order import Follows, Move, PassMotion, PassPlan, plan_pass
from .outputs import require_playable
from .read import chain_base, chain_bone_names, require_armature
from .rig_pose import RigPose, put_bone_by_bone, tag_pose
from .rig_pose import forget as forget_rig_poses
from .sampling import goal_matrix
from .scene_checks import find_conflicts, find_groups, refuse_drivers, require_goals, require_usable
from .settings import chain_specs, rig_settings
from .solving import (
    FrameProblem,
    FrameSolution,
    PreparedChain,
    current_pose,
    finish_job,
    frame_problem,
    live_job,
    prepare,
    set_job_target,
    solve_follow,
)
from .spec import ChainSpec
from .stacking import ancestors_of, links, upper_first
from .status import ChainStatus, set_status
from .stretch import put_live as put_stretch
from .stretch import stretching_bones
from .write import forget_write_caches, key_pose

log = logging.getLogger(__name__)
FOLLOW_NOTE = "follow mode: history-dependent"
AUTOKEY_BLENDED = ("not auto-keyed: the chain blends with its bones' own keys (Influence below 1), and each key "
                   "would replace the keys the next solve blends with; key it once with Key Current Frame, or "
                   "set Influence to 1")
GROUP_INFLUENCE = ("Influence below 1 on a chain that shares bones with others (solved together) is not supported "
                   "yet: the shared bones would blend twice; set Influence to 1")
KEY_BLENDED_LIVE = ("not keyed: the chain blends with its bones' own keys (Influence below 1) and solves live, so "
                    "live solving would blend the new key again as it plays; turn its Live off first (its keys "
                    "then play as keyed)")


@dataclass
class _LiveChain:
    """What the live pass keeps of one chain between frames (keyed by object and chain name)."""

    spec: ChainSpec
    prepared: PreparedChain
    jobs: dict[tuple[SolverOptions, bool, bool], ChainJob] = field(default_factory=dict)
    inputs: tuple[FloatArray, FloatArray, FloatArray | None] | None = None  # base, target, pole last solved
    written: FloatArray | None = None  # the chain's channel values right after the last solve (float32 values)
    status: ChainStatus | None = None
    angles: FloatArray | None = None  # (1, n, 3) the last solution, for chains stacked on this one
    scales: FloatArray | None = None  # (1, n) its length factors, for a chain that stretches
    options_by_scale: dict[float, SolverOptions] = field(default_factory=dict)
    influence: float = 1.0  # the influence ``written`` was blended at (:mod:`.influence`)
    group: tuple[str, ...] | None = None  # the group it was last solved with (None: alone); its status says so

    def options(self, tolerance_scale: float) -> SolverOptions:
        """The spec's solver options for a tolerance scale, made once per scale."""
        options = self.options_by_scale.get(tolerance_scale)
        if options is None:
            self.options_by_scale.clear()
            options = self.options_by_scale[tolerance_scale] = self.spec.solver_options(tolerance_scale)
        return options

    def job(self, problem: FrameProblem) -> ChainJob:
        key = (problem.options, problem.orientations is not None, problem.poles is not None)
        job = self.jobs.get(key)
        if job is None:
            self.jobs.clear()  # a chain has one set of settings at a time
            job = self.jobs[key] = live_job(problem)
        return job


_CHAINS: dict[tuple[str, str], _LiveChain] = {}


@dataclass(frozen=True)
class _StillRig:
    """A rig whose last frame pass solved every live chain (see :func:`_still_rig`)."""

    depsgraph: int  # the depsgraph's pointer: a render's is another one
    chains: tuple[tuple[str, str | None, str | None, str, str, bytes], ...]  # see _live_chain_names
    watched: frozenset[str]  # the names whose update means "solve again": rig, its armature, targets, poles
    statuses: dict[str, ChainStatus]
    specs: list[ChainSpec]  # the chains as that pass read them


_STILL_RIGS: dict[str, _StillRig] = {}
_Layout = tuple[dict[str, str], list[str], dict[str, tuple[str, int]], dict[str, int], dict[str, tuple[str, ...]]]
"""Conflicts (chain -> message), upper-first order, uppers (chain -> (upper chain, joint)), bone index,
groups (chain -> the chains it shares bones with and is solved together with, itself included)."""
# rig -> (chains asked for, (armature, its edit generation), layout)
_LAYOUTS: dict[str, tuple[tuple[Any, ...], tuple[int, int], _Layout]] = {}


def forget() -> None:
    """Drop everything the live pass keeps (file load, unregister): its chains and layouts, the
    structure cache, the kernel's kept job lists."""
    _CHAINS.clear()
    _STILL_RIGS.clear()
    forget_rig_poses()
    _LAYOUTS.clear()
    dependencies.forget()
    structure.clear()
    batched.forget()
    forget_write_caches()
    forget_influence()
    forget_groups()
    replay.invalidate()


@dataclass
class _Frame:
    """One chain at this frame: its inputs, and once solved its outcome."""

    spec: ChainSpec
    state: _LiveChain
    base: FloatArray
    target: FloatArray
    pole: FloatArray | None
    evaluated: bool  # Blender evaluates the target and pole (see sampling.goal_matrix)
    goals: tuple[Goal, Goal | None]  # the target and the pole
    follows: list[Follows] = field(default_factory=list)  # chains of the pass this one follows
    loose_hang: Move | None = None  # hangs below a chain solved before it through a bone that moves on its own
    problem: FrameProblem | None = None
    scales: FloatArray | None = None
    job: ChainJob | None = None
    solution: FrameSolution | None = None
    outcome: tuple[ChainStatus, bool] | None = None
    influence: float = 1.0  # this frame's (:func:`.influence.live_influence`)
    note: str = ""  # the status note of a chain solved with others (:mod:`.groups`)
    group: tuple[str, ...] | None = None  # the group it is solved with in this pass (None: alone)


def forget_still(updated: frozenset[str]) -> None:
    """Forget that rigs stood still when ``updated`` (a depsgraph's updated IDs, an evaluation no
    frame pass saw) touches them: their next frame is solved in full."""
    for name, still in list(_STILL_RIGS.items()):
        if not still.watched.isdisjoint(updated):
            del _STILL_RIGS[name]


def still_outcomes(obj: Any, depsgraph: Any, updated: frozenset[str]) -> dict[str, tuple[ChainStatus, bool]] | None:
    """A frame pass's answer for a rig that stands still (:func:`_still_rig`): the last statuses at
    the new frame, nothing read, solved or written; None when the rig must be solved. The handlers
    ask this before planning the pass, so a still rig costs a few reads."""
    unchanged = _still_rig(obj, depsgraph, updated)
    if unchanged is None:
        return None
    frame = _scene_frame(depsgraph.scene)
    outcomes = {}
    for name, kept in unchanged.statuses.items():
        status = ChainStatus(kept.solved, kept.converged, kept.residual, kept.message, frame)
        set_status(obj.name, name, status)
        outcomes[name] = (status, False)
    return outcomes


def _still_rig(obj: Any, depsgraph: Any, updated: frozenset[str]) -> _StillRig | None:
    """The rig's last frame pass, if nothing it solved from has changed since.

    Every change to a chain's inputs is an update of an ID the depsgraph reports: the armature
    object (its pose, placement, parents, our settings), its Armature (bones, constraints, limits),
    a target or pole (moved, by keys, drivers, parents or constraints). The handlers see every
    evaluation's updates: a frame pass here, any other evaluation through :func:`forget_still`. So
    when none of those IDs was updated and the same chains are live, every chain is where its last
    solve put it. Targets Blender does not evaluate (hidden, excluded) never count as still, nor does
    anything while another ``frame_change_post`` handler is registered: what it changes is evaluated
    after the handlers, in an evaluation whose updates nobody is told of.
    """
    kept = _STILL_RIGS.get(obj.name)
    if kept is None or not kept.watched.isdisjoint(updated) or kept.depsgraph != depsgraph.as_pointer():
        return None
    if len(bpy.app.handlers.frame_change_post) != 1:
        # Another frame handler may move a target or bone after ours, in an evaluation no handler sees.
        return None
    settings = rig_settings(obj)
    if settings is None or _live_chain_names(settings) != kept.chains:
        return None
    return kept


def _live_chain_names(settings: Any) -> tuple[tuple[str, str | None, str | None, str, str, bytes], ...]:
    """The live chains' names, targets, poles (and their bones) and comfort poses: what a settings
    edit can change without tagging the object (comfort bones added, cleared or rotated from Python)."""
    return tuple((c.name, c.target.name if c.target is not None else None, c.pole.name if c.pole is not None else None,
                  c.target_bone, c.pole_bone, replay.comfort_fingerprint(c.comfort_bones))
                 for c in settings.chains if c.enabled)


def solved_target(obj: Any, chain: str) -> FloatArray | None:
    """``(3,)`` where the chain's target was when the live pass last solved it (None if it did not)."""
    state = _CHAINS.get((obj.name, chain))
    return None if state is None or state.inputs is None else np.array(state.inputs[1][0, :3, 3])


def _scene_frame(scene: Any) -> float:
    """The frame being solved, subframe included (what the statuses show)."""
    return float(scene.frame_current) + float(scene.frame_subframe)


def _bone_index(obj: Any) -> dict[str, int]:
    """Pose bone name -> its place in ``obj.pose.bones`` (the order ``foreach_get`` uses)."""
    return {pbone.name: i for i, pbone in enumerate(obj.pose.bones)}


def with_group_mates(obj: Any, names: set[str]) -> set[str]:
    """``names`` and every live chain of ``obj`` that shares bones with one of them, directly or
    through others: a group is solved only whole (a drag of one member's target re-solves the
    group, or the other members would be pulled off their targets by the shared bones)."""
    live = chain_specs(obj, enabled_only=True)
    if len(live) < 2:
        return set(names)
    together = _layout(obj, live, live, True)[4]
    out = set(names)
    for name in names:
        out.update(together.get(name, ()))
    return out


def solve_chain(obj: Any, spec: ChainSpec, depsgraph: Any, *, key_frame: float | None = None,
                autokey: bool = False) -> tuple[ChainStatus, bool]:
    """Solve one chain at the depsgraph's frame and write its pose (see :func:`solve_rig`).

    Raises:
        IKError: Setup problems (missing bone or target, unsupported constraint...).
    """
    outcome = solve_rig(obj, depsgraph, names={spec.name}, enabled_only=False, key_frame=key_frame,
                        autokey=autokey, catch_all=False, specs=[spec])[spec.name]
    if not outcome[0].solved:
        raise RigSetupError(outcome[0].message)
    return outcome


def solve_rig(obj: Any, depsgraph: Any, *, names: set[str] | None = None, enabled_only: bool = True,
              key_frame: float | None = None, autokey: bool = False, catch_all: bool = True,
              trust_edits: bool = False, specs: list[ChainSpec] | None = None,
              updated: frozenset[str] | None = None, plan: PassPlan | None = None,
              motion: PassMotion | None = None) -> dict[str, tuple[ChainStatus, bool]]:
    """Solve (and write) ``obj``'s chains at the depsgraph's frame; each outcome is also stored as
    the chain's status.

    Args:
        obj: The armature object (original, not evaluated).
        depsgraph: An evaluated depsgraph at the frame to solve (the render one during renders).
        names: Only these chains (default all).
        enabled_only: Only live chains.
        key_frame: Also key the chains' rotation channels at this frame.
        autokey: Key only chains whose pose changed (Auto Keying while a target is dragged).
        catch_all: Any exception becomes the chain's status (the handlers); otherwise only
            :class:`IKError` does and other exceptions propagate.
        trust_edits: The handlers report armature edits to :mod:`.structure` (see there).
        specs: Solve these chains instead of the ones stored on ``obj`` (the handlers pass the
            stored live ones they planned the pass with).
        updated: The frame handler's: names of the IDs this frame's evaluation updated. When none
            that the rig's chains depend on is among them, the last frame's answers stand
            (:func:`_still_rig`); the statuses only take the new frame.
        plan: Who follows whom in a pass over several rigs (:func:`.order.plan_pass`); default:
            planned for this rig's chains alone.
        motion: The bones solved earlier in that pass, which this rig's chains may hang from or
            follow; this rig's solves are added to it.

    Returns:
        Chain name -> ``(status, changed)``; ``changed`` is False when the pose was already in place.
        Chains that share bones with another live chain are refused with a status message.
    """
    require_armature(obj)
    # A frame pass: the handlers' (only they pass ``updated``), over the stored live chains.
    frame_pass = updated is not None and trust_edits and names is None and enabled_only and key_frame is None
    if frame_pass:
        outcomes = still_outcomes(obj, depsgraph, updated)  # type: ignore[arg-type]
        if outcomes is not None:
            return outcomes
    last = _STILL_RIGS.pop(obj.name, None)  # any other pass may change what a still rig relied on
    if specs is None:
        specs = chain_specs(obj, names, enabled_only=enabled_only)
        pool = specs if enabled_only else [*specs, *(s for s in chain_specs(obj, enabled_only=True)
                                                     if s.name not in {p.name for p in specs})]
    else:
        pool = specs
    frame = _scene_frame(depsgraph.scene)
    conflicts, order, uppers, index, together = _layout(obj, specs, pool, trust_edits)
    by_name = {s.name: s for s in specs}
    obj_eval = obj.evaluated_get(depsgraph)
    pose = RigPose(obj, index)
    frames: dict[str, _Frame] = {}
    out: dict[str, tuple[ChainStatus, bool]] = {}
    if plan is None:
        plan = plan_pass([obj], {obj.as_pointer(): specs}, depsgraph.scene)
    motion = PassMotion() if motion is None else motion
    me = obj.as_pointer()
    pending: list[list[ChainSpec]] = []  # by level: a level hangs from or follows chains of the levels before

    def fail(spec: ChainSpec, err: Exception) -> None:
        if not isinstance(err, IKError):
            if not catch_all:
                raise err
            log.error("IK chain %r of %r failed", spec.name, obj.name, exc_info=err)
        message = str(err) if isinstance(err, IKError) else f"{type(err).__name__}: {err}"
        out[spec.name] = (ChainStatus.error(message, frame), False)

    refused = {name: conflicts.get(name) or plan.cycles.get((me, name)) for name in order}
    followed = {n: [f.upper[1] for f in plan.same_rig((me, n))] for n in order}
    refused.update(group_cycles(order, uppers, followed, together, refused))
    refused.update(_missing_members(order, together, refused))
    levels = _levels(order, uppers, followed, refused, together)
    for name in order:
        message = refused[name]
        if message is not None:
            out[name] = (ChainStatus.error(message, frame), False)
            continue
        while len(pending) <= levels[name]:
            pending.append([])
        pending[levels[name]].append(by_name[name])
    for level_specs in pending:
        batch: list[_Frame] = []
        for spec in level_specs:
            try:
                item = _frame_of(obj, obj_eval, spec, depsgraph, trust_edits, motion, plan.follows.get((me, spec.name)))
                frames[spec.name] = item
                item.group = together.get(spec.name)
                item.influence = live_influence(spec, depsgraph, obj_eval)
                if spec.name in together:  # solved with its group below
                    if item.influence < 1.0:
                        raise RigSetupError(GROUP_INFLUENCE)
                    require_usable(item.state.prepared, item.base, item.target, item.pole)
                    continue
                still = _still_status(item, pose)
                if still is not None:
                    item.outcome = (replace(still, frame=frame), False)
                elif spec.follow_mode:
                    item.solution = solve_follow(item.state.prepared, item.base, item.target, item.pole,
                                                 current_pose(obj_eval, item.state.prepared.binding))
                else:
                    require_usable(item.state.prepared, item.base, item.target, item.pole)
                    item.problem, item.scales = frame_problem(item.state.prepared, item.base, item.target, item.pole,
                                                              item.state.options)
                    item.job = item.state.job(item.problem)
                    set_job_target(item.job, item.problem)
                    batch.append(item)
            except Exception as err:  # fail() re-raises what the caller wants raised
                frames.pop(spec.name, None)
                fail(spec, err)
        if batch:
            try:
                results = solve_jobs([item.job for item in batch])  # type: ignore[misc]
                for item, result in zip(batch, results, strict=True):
                    item.solution = finish_job(item.problem, result, item.base, item.target,  # type: ignore[arg-type]
                                               item.scales)  # type: ignore[arg-type]
            except Exception as err:
                for item in batch:
                    frames.pop(item.spec.name, None)
                    fail(item.spec, err)
        for group in dict.fromkeys(together[s.name] for s in level_specs if s.name in together):
            try:
                _solve_group(group, frames, pose, frame)
            except Exception as err:
                for name in group:
                    if frames.pop(name, None) is not None:
                        fail(by_name[name], err)
            for name in group:
                if name not in frames and name not in out:
                    failed = next((n for n in group if n in out and n != name), group[0])
                    out[name] = (ChainStatus.error(f"solved together with chain {failed!r} (they share bones), "
                                                   f"which could not be solved: see its status", frame), False)
        for spec in level_specs:
            taken = frames.get(spec.name)
            if taken is None:
                continue
            try:
                if taken.outcome is None:
                    taken.outcome = _take_blended(obj, taken, pose, frame, depsgraph.scene)
                if taken.outcome[1]:
                    motion.moved.add((me, spec.name))
                if taken.state.angles is not None:
                    motion.add(obj_eval, spec.name, taken.state.prepared.binding, taken.base, taken.state.angles,
                               taken.state.scales)
            except Exception as err:
                frames.pop(spec.name, None)
                fail(spec, err)
    wrote = pose.write()
    if not wrote and any(item.outcome is not None and not item.outcome[1] for item in frames.values()):
        _retag_if_stale(obj, obj_eval, frames.values(), pose)
    key_time: float | Exception | None = None
    if key_frame is not None:
        try:
            key_time = action_time(obj, depsgraph.scene, key_frame)
        except RigSetupError as err:
            key_time = err
    _note_lags(frames, motion)
    for name in order:
        done = frames.get(name)
        if done is not None and done.outcome is not None:
            out[name] = done.outcome
            if key_time is not None and (done.outcome[1] or not autokey):
                try:
                    if isinstance(key_time, Exception):
                        raise key_time
                    if done.influence < 1.0 and (autokey or done.spec.enabled):
                        raise RigSetupError(AUTOKEY_BLENDED if autokey else KEY_BLENDED_LIVE)
                    nla_time = key_frame * time_stretch(depsgraph.scene)  # type: ignore[operator]
                    binding = done.state.prepared.binding
                    require_playable(obj, name, binding.bones, (nla_time, nla_time), stretching_bones(binding))
                    key_pose(obj, done.state.prepared.binding, key_time)
                except Exception as err:
                    fail(done.spec, err)
    for name, outcome in out.items():
        set_status(obj.name, name, outcome[0])
    if frame_pass:
        _remember_still(obj, depsgraph, specs, frames, out, last)
        _remember_replay(obj, depsgraph, specs, frames, out, levels, together, pose)
    else:  # a pass over some chains, keys or a render: the next frame pass is a full one
        replay.forget(obj.name)
    return {name: out[name] for name in order if name in out}


def _remember_still(obj: Any, depsgraph: Any, specs: list[ChainSpec], frames: dict[str, _Frame],
                    out: dict[str, tuple[ChainStatus, bool]], last: _StillRig | None) -> None:
    """Remember a frame pass that solved every live chain, for :func:`_still_rig`: only when it found
    every chain in place (it wrote nothing: what a write moves, a target parented to a solved bone
    say, is evaluated after the handlers, where no update reaches them), and not when a chain
    failed, follows the tutorial's history-dependent mode, reads a target Blender does not
    evaluate (its keys are read instead, and they move without an update), or blends with its
    bones' keys: an influence below 1, or animated (:mod:`.influence`)."""
    if any(s.follow_mode or s.name not in frames or not frames[s.name].evaluated or not out[s.name][0].solved
           or out[s.name][1] or frames[s.name].follows or frames[s.name].influence < 1.0
           or influence_animated(obj, s.name) for s in specs):
        return  # (a follower's target moves when what it follows is written, after the handlers)
    _keep_still(obj, depsgraph, specs, {s.name: out[s.name][0] for s in specs}, last)


def _keep_still(obj: Any, depsgraph: Any, specs: list[ChainSpec], statuses: dict[str, ChainStatus],
                last: _StillRig | None) -> None:
    """Record that every live chain of ``obj`` stands where its solve put it (see :func:`_still_rig`)."""
    if last is not None and last.specs == specs:  # the same chains as the last pass: what it read still holds
        _STILL_RIGS[obj.name] = replace(last, depsgraph=depsgraph.as_pointer(), statuses=statuses)
        return
    settings = rig_settings(obj)
    if settings is None:
        return
    watched = {obj.name, obj.data.name, *(n for s in specs for n in (s.target, s.pole) if n is not None)}
    _STILL_RIGS[obj.name] = _StillRig(depsgraph.as_pointer(), _live_chain_names(settings), frozenset(watched),
                                      statuses, specs)


def _remember_replay(obj: Any, depsgraph: Any, specs: list[ChainSpec], frames: dict[str, _Frame],
                     out: dict[str, tuple[ChainStatus, bool]], levels: dict[str, int],
                     together: dict[str, tuple[str, ...]], pose: RigPose) -> None:
    """Keep this frame pass for :mod:`.replay` (which decides whether the rig qualifies)."""
    solved: list[replay.SolvedChain | None] = []
    for spec in specs:
        item, outcome = frames.get(spec.name), out.get(spec.name)
        if item is None or outcome is None or not outcome[0].solved:
            solved.append(None)
            continue
        alone = not item.follows and item.loose_hang is None and item.influence >= 1.0
        solved.append(replay.SolvedChain(spec, item.state, item.goals[0], item.goals[1], item.evaluated, alone,
                                         levels.get(spec.name, 0), together.get(spec.name)))
    replay.remember(obj, depsgraph, solved, pose)


def replayed(objects: list[Any], depsgraph: Any) -> list[Any]:
    """The frame pass's fast lane (:mod:`.replay`): each rig of ``objects`` whose replay holds is
    solved by it. Returns the rigs left for the full pass: those without a replay, any whose replay
    failed, and all of them when a rig without one might follow another rig's bones (a full pass
    then plans the whole pass, as it always did)."""
    ready, left = [], []
    for obj in objects:
        kept = replay.replay_of(obj.name)
        try:
            inputs = kept.inputs(obj, depsgraph) if kept is not None else None
        except Exception:
            inputs = None
        if kept is None or inputs is None:
            if not replay.independent(obj):
                return objects
            left.append(obj)
        else:
            ready.append((obj, kept, inputs))
    frame = _scene_frame(depsgraph.scene)
    for obj, kept, inputs in ready:
        last = _STILL_RIGS.pop(obj.name, None)
        try:
            outcomes = kept.run(obj, inputs, frame)
        except Exception:
            log.debug("replay of %r failed; full pass", obj.name, exc_info=True)
            replay.forget(obj.name)
            left.append(obj)
            continue
        if not any(changed for _status, changed in outcomes.values()):
            _keep_still(obj, depsgraph, kept.specs, {name: status for name, (status, _) in outcomes.items()}, last)
    return left


def _frame_of(obj: Any, obj_eval: Any, spec: ChainSpec, depsgraph: Any, trust: bool, motion: PassMotion,
              follows: list[Follows] | None) -> _Frame:
    """One chain's inputs at this frame (the chain read or taken from the cache), carried along with
    the chains solved before it in this pass (:class:`.order.PassMotion`)."""
    target, pole = require_goals(spec, depsgraph.scene, obj)
    binding = structure.chain_binding(obj_eval, spec.tip_bone, spec.length, trust_edits=trust,
                                      stretch=spec.use_stretch)
    key = (obj.name, spec.name)
    state = _CHAINS.get(key)
    if state is None or state.spec != spec or state.prepared.binding is not binding:
        state = _CHAINS[key] = _LiveChain(spec, prepare(obj_eval, spec, binding))
    else:
        refuse_drivers(obj, binding)  # drivers come and go without an edit of the armature
    base = chain_base(obj_eval, binding)[None]
    target_m, evaluated = goal_matrix(target, depsgraph)
    pole_m = None
    if pole is not None:
        pole_m, pole_evaluated = goal_matrix(pole, depsgraph)
        evaluated = evaluated and pole_evaluated
    target_m, pole_m = target_m[None], None if pole_m is None else pole_m[None]
    hangs: Move | None = None
    if motion:
        if binding.ancestors:  # a chain hanging below a chain solved before it (stacking)
            hangs = motion.move_of(obj, binding.ancestors[0])
            if hangs is not None and not hangs.loose:
                base = np.asarray(hangs.matrix @ base)
        carried: set[str] = set()
        for follow in follows or ():
            # Once per role: the carrier bone's move already holds every chain solved above it.
            if not follow.carried or follow.role in carried:
                continue  # (one that cannot be carried lags: see _note_lags)
            carried.add(follow.role)
            if follow.role == "armature":
                base = motion.carry(Goal(obj), base)
            elif follow.role == "target":
                target_m = motion.carry(target, target_m)
            elif pole is not None and pole_m is not None:
                pole_m = motion.carry(pole, pole_m)
    return _Frame(spec, state, base, target_m, pole_m, evaluated, (target, pole), follows or [],
                  hangs if hangs is not None and hangs.loose else None)


def _still_status(item: _Frame, pose: RigPose) -> ChainStatus | None:
    """The last solve's status if its answer holds (same inputs, and the pose it wrote still in
    place), else None."""
    state = item.state
    if state.inputs is None or state.written is None or state.status is None or item.spec.follow_mode:
        return None
    if item.influence < 1.0 or state.influence < 1.0:  # the keys it blends with may have moved
        return None
    if state.group != item.group:  # solved with other chains then, or alone: its status says which
        return None
    base, target, pole = state.inputs
    same_pole = (pole is None and item.pole is None) or (
        pole is not None and item.pole is not None and np.array_equal(pole, item.pole))
    same = (same_pole and np.array_equal(base, item.base) and np.array_equal(target, item.target)
            and np.array_equal(pose.current(state.prepared.binding), state.written))
    return state.status if same else None


def _take(obj: Any, item: _Frame, pose: RigPose, frame: float) -> tuple[ChainStatus, bool]:
    """Put a solved chain's channels into the rig's pose (continuous with the current values;
    bones that would change by less than ``NOOP_TOLERANCE`` are left alone) and remember it."""
    require_local(obj)
    solution, state, spec = item.solution, item.state, item.spec
    assert solution is not None
    binding = state.prepared.binding
    rows = pose.euler_rows(binding)
    if rows is not None:  # the usual chain: the solved angles are the channel values
        changed = pose.put_euler(rows, solution.angles[0])
    else:
        changed = put_bone_by_bone(binding, solution.angles[0], pose)
    changed = put_stretch(pose, binding, solution) or changed  # bones that stretch: their scale
    status = ChainStatus(True, bool(solution.converged[0]), float(solution.error[0]),
                         FOLLOW_NOTE if spec.follow_mode else item.note, frame)
    state.inputs = (item.base, item.target, item.pole)
    state.written = pose.current(binding)
    state.status, state.angles, state.scales = status, solution.angles, solution.scales
    state.group = item.group
    return status, changed


def _take_blended(obj: Any, item: _Frame, pose: RigPose, frame: float, scene: Any) -> tuple[ChainStatus, bool]:
    """:func:`_take`, the solved pose first blended with the bones' own keys when the chain's
    influence is below 1 (:mod:`.influence`; after the comfort blend). At influence 1 it is
    :func:`_take` and reads nothing more."""
    if item.influence < 1.0:
        assert item.solution is not None
        item.solution = blend_live(obj, item.spec, item.state.prepared.binding, item.solution, item.base, scene,
                                   frame, item.influence)
    else:
        unblended(obj, item.spec.name)
    status, changed = _take(obj, item, pose, frame)
    item.state.influence = item.influence
    if item.influence < 1.0:
        note = describe(item.influence)
        status = replace(status, message=f"{status.message}; {note}" if status.message else note)
    return status, changed


def _levels(order: list[str], uppers: dict[str, tuple[str, int]], followed: dict[str, list[str]],
            refused: dict[str, str | None], together: dict[str, tuple[str, ...]] | None = None) -> dict[str, int]:
    """Each chain's level: above every chain of this rig it hangs below (stacking) or follows
    (:mod:`.order`). The chains of a group (``together``) share one level, above what any of them
    hangs below or follows. A circle through both relations leaves its chains at level 0 (the cycle
    checks refuse circles of following alone, :func:`group_cycles` those through groups)."""
    together = together or {}
    levels: dict[str, int] = {}
    visiting: set[str] = set()

    def level(name: str) -> int:
        key = together.get(name, (name,))[0]
        if key in levels:
            return levels[key]
        if key in visiting:
            return 0
        visiting.add(key)
        members = together.get(name, (name,))
        above = [a for m in members for a in _above(m, uppers, followed) if a not in members]
        levels[key] = max((level(a) + 1 for a in above if a in refused and refused[a] is None), default=0)
        visiting.discard(key)
        return levels[key]

    return {name: level(name) for name in order}


def _above(name: str, uppers: dict[str, tuple[str, int]], followed: dict[str, list[str]]) -> list[str]:
    return ([uppers[name][0]] if name in uppers else []) + followed.get(name, [])


def group_cycles(order: list[str], uppers: dict[str, tuple[str, int]], followed: dict[str, list[str]],
                 together: dict[str, tuple[str, ...]], refused: dict[str, str | None]) -> dict[str, str]:
    """Chains refused for a circle through a group (:mod:`.groups`): a chain that follows a chain of
    its own group (its target or pole moves with bones the group solves), or groups that follow each
    other (a chain of one follows a chain of the other, and back). Chain -> message."""
    out: dict[str, str] = {}
    if not together:  # the usual rig: nothing to walk on every frame
        return out
    for name in order:
        group = together.get(name)
        if group is None or refused.get(name):
            continue
        inside = [f for f in followed.get(name, []) if f in group and f != name]
        if inside:
            out[name] = (f"chain {name!r} follows chain {inside[0]!r} (its target or pole moves with that chain's "
                         f"bones), but they share bones and are solved together: the group would chase its own "
                         "pose; parent the target elsewhere")
    unit = {name: together.get(name, (name,))[0] for name in order}
    graph: dict[str, set[str]] = {}
    for name in order:
        graph.setdefault(unit[name], set()).update(unit[a] for a in _above(name, uppers, followed)
                                                   if a in unit and unit[a] != unit[name])
    for start in graph:
        seen, stack = set(), list(graph[start])
        while stack:
            node = stack.pop()
            if node == start:
                members = [n for n in order if unit[n] == start]
                if len(members) > 1:
                    for member in members:
                        others = ", ".join(repr(m) for m in members if m != member)
                        out.setdefault(member, (
                            f"chain {member!r} is solved together with {others} (they share bones), and that group "
                            "and another follow each other in a circle (a target of each moves with bones the other "
                            "solves): neither can be solved first; break one link"))
                break
            if node not in seen:
                seen.add(node)
                stack.extend(graph.get(node, ()))
    return out


def _missing_members(order: list[str], together: dict[str, tuple[str, ...]],
                     refused: dict[str, str | None]) -> dict[str, str]:
    """A group solves only whole: when one of its chains is refused, or left out of this pass (Key
    Current Frame on one chain of a group that solves live), the others are refused too, by name."""
    out: dict[str, str] = {}
    if not together:
        return out
    for name in order:
        group = together.get(name, ())
        if refused.get(name):
            continue
        absent = next((m for m in group if m not in refused), None)
        bad = next((m for m in group if m != name and refused.get(m)), None)
        if absent is not None:
            out[name] = (f"chain {name!r} shares bones with chain {absent!r}, which solves live: chains that share "
                         "bones are solved together, so solve or key them together (every chain of the group)")
        elif bad is not None:
            out[name] = (f"solved together with chain {bad!r} (they share bones), which cannot be solved: "
                         "see its status")
    return out


def _solve_group(group: tuple[str, ...], frames: dict[str, _Frame], pose: RigPose, frame: float) -> None:
    """Solve one group (:mod:`.groups`) unless every member stands still; its members' solutions
    and notes go to their frames, their outcomes are taken with the others'."""
    members = [frames[name] for name in group if name in frames]
    if len(members) < len(group):
        missing = next(name for name in group if name not in frames)
        raise RigSetupError(f"solved together with chain {missing!r} (they share bones), which could not be "
                            "solved: see its status")
    stills = [_still_status(item, pose) for item in members]
    if all(still is not None for still in stills):
        for item, still in zip(members, stills, strict=True):
            assert still is not None
            item.outcome = (replace(still, frame=frame), False)
        return
    solutions = solve_group([item.state.prepared for item in members], [item.base for item in members],
                            [item.target for item in members], [item.pole for item in members])
    fight = group_note(group, dict(zip(group, solutions, strict=True)), {item.spec.name: item.spec.weight
                                                                         for item in members})
    for item, solution in zip(members, solutions, strict=True):
        item.solution = solution
        note = describe_group(group, item.spec.name, item.spec.weight)
        item.note = f"{note}; {fight}" if fight else note


def _note_lags(frames: dict[str, _Frame], motion: PassMotion) -> None:
    """A chain that follows another chain (of this rig or one solved before it) through a route the
    live pass cannot carry (see :mod:`.order`), or hangs below one through a bone that moves on its
    own, solved against where things were before that chain moved: when it did move in this pass,
    the chain is not counted converged, and its status says why."""
    for item in frames.values():
        if item.outcome is None:
            continue
        notes = [f"{follow.describe(follow.upper[1])}, a route the live pass cannot carry within a frame"
                 for follow in item.follows if not follow.carried and follow.upper in motion.moved]
        hang = item.loose_hang
        if hang is not None and hang.chain in motion.moved:
            notes.append(f"it hangs below chain {hang.chain[1]!r}, but {hang.loose}")
        if not notes:
            continue
        status, changed = item.outcome
        note = f"lags a frame behind live: {notes[0]}; Key Current Frame and Bake solve it exactly"
        item.outcome = (replace(status, converged=False,
                                message=f"{status.message}; {note}" if status.message else note), changed)


def _retag_if_stale(obj: Any, obj_eval: Any, frames: Any, pose: RigPose) -> None:
    """A render depsgraph applies the keys to its own copy and does not copy them back: the pose it
    evaluated may differ from the one in place even when nothing needed writing. Re-evaluate then."""
    if obj_eval is obj:
        return
    evaluated = RigPose(obj_eval, pose.index)
    for item in frames:
        binding = item.state.prepared.binding
        if not np.array_equal(evaluated.current(binding), pose.current(binding)):
            tag_pose(obj)
            return


def _layout(obj: Any, specs: list[ChainSpec], pool: list[ChainSpec], trust: bool) -> _Layout:
    """``(conflicts, upper-first order, uppers, bone index)`` of the chains: kept per rig while the
    same chains are asked for and (with ``trust``) the armature was not edited."""
    key = (tuple((s.name, s.tip_bone, s.length) for s in specs), tuple((s.name, s.tip_bone, s.length) for s in pool))
    generation = structure.generation_of(obj)
    kept = _LAYOUTS.get(obj.name)
    if trust and kept is not None and kept[0] == key and kept[1] == generation:
        return kept[2]
    conflicts = find_conflicts(obj, pool)
    chains = {}
    for spec in specs:
        try:
            bones = chain_bone_names(obj, spec.tip_bone, spec.length)
        except RigSetupError:
            continue  # reported when it is solved
        chains[spec.name] = (bones, ancestors_of(obj, bones))
    uppers = links(chains)
    order = upper_first([s.name for s in specs], uppers)
    index = _bone_index(obj)
    together = {name: group for group in find_groups(obj, pool, conflicts) for name in group}
    layout = (conflicts, order, uppers, index, together)
    _LAYOUTS[obj.name] = (key, generation, layout)
    return layout


__all__ = ["FOLLOW_NOTE", "forget", "replayed", "solve_chain", "solve_rig", "solved_target", "still_outcomes",
           "with_group_mates"]
