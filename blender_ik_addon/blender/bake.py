"""Bake chains over a frame range into F-curve keys, and key the current frame. No UI context needed.

A bake:

1. reads every chain once (bones, limits, locks, comfort pose) at the current frame, and refuses
   before any work what could not play as solved: frames with no action time to key them at
   (:mod:`.action_time`), channels whose keys would not play (:mod:`.outputs`), chains following
   each other in a circle (:mod:`.order`);
2. puts the chains in stages: a chain whose target, pole or armature follows another chain's bones
   comes in a later stage than that chain;
3. per stage, samples each frame's target/pole matrices and chain bases (:mod:`.sampling`: straight
   from the targets' F-curves when possible, else by stepping frames with live solving suspended),
   after the stages before it were keyed, so followers are read where those keys put them;
4. solves each chain for all frames in one ``solve_batch`` call (follow mode: one sweep per frame,
   sequentially, as it is history-dependent; ``continuous``: in frame order, each frame from the
   previous one's pose);
5. writes only the chains' rotation channels at the frames' action times, replacing keys inside
   the range and leaving every other key, channel and bone alone; the new keys join the kept keys
   next to the range (:func:`_join_reference`), whatever the current frame;
6. plays the keys back (:mod:`.verify`) and counts a frame converged only where the played tip
   reaches the target, naming the cause of a miss where it can;
7. flags the frames where a chain's pose jumps although its target glides (a switch between two
   solutions, :func:`.solving.find_frame_switches`), for the report and the panel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import bpy
import numpy as np

from ..core.types import BoolArray, FloatArray
from .action_time import action_time, action_times, time_stretch
from .errors import RigSetupError
from .frozen_inputs import require_still_inputs
from .goals import Goal
from .grouping import group_of
from .groups import solve_group
from .guard import suspended
from .influence import BakeBlend, bake_note, blend_bake, blended_goal, read_bake_blends
from .keys import kept_neighbours, keys_fingerprint, require_keyable, write_channel_keys
from .live import solve_rig, solved_target
from .order import plan_pass, stage_levels
from .outputs import require_playable
from .read import chain_bone_names, require_armature
from .sampling import Samples, fast_path_blocker, sample_fcurves, sample_frames
from .scene_checks import find_conflicts, find_groups, require_goals, require_usable
from .settings import chain_specs, disable_chains, live_rigs
from .solving import FrameSolution, PreparedChain, find_frame_switches, prepare, solve_follow, solve_frames
from .spec import ChainSpec
from .stacking import Solved, ancestors_of, joint_world, links, restack, upper_first
from .status import BakeFindings, ChainStatus, clear_findings, findings_items, set_findings, set_status
from .stretch import key_range as key_stretch
from .stretch import stretching_bones
from .verify import Played, PlayedChain, diagnose, played_errors, verify_frames
from .write import angles_to_channels, channel, read_channel

Progress = Callable[[float], None]

CHUNK_MATCH = 0.01
"""Radians: a continuous bake whose pose is within this of the nearest pose at a frame (every free
angle) is still "on" it there, so a chunk starting at that frame joins it without a visible jump."""


@dataclass(frozen=True)
class ChainBakeResult:
    """One chain's bake. Residuals are world units.

    Attributes:
        name: The chain.
        not_converged: Frames that did not reach the target.
        worst_error: Largest tip residual.
        findings: Where its pose jumps (switch frames; for continuous bakes, chunk boundaries).
    """

    name: str
    not_converged: int
    worst_error: float
    findings: BakeFindings | None = None

    def notes(self) -> list[str]:
        """``"chain 'arm': pose switches at frames 37, 112: ..."`` and the like (none for a clean bake)."""
        return [f"chain {self.name!r}: {note}" for note in (self.findings.notes() if self.findings else [])]


@dataclass(frozen=True)
class BakeReport:
    """What a bake did.

    Attributes:
        frames: Number of frames solved (per chain).
        chains: Per-chain results.
        not_converged: Frames where at least one chain did not converge.
        worst_error: Largest tip residual over all chains and frames, world units.
        path: ``"fcurves"`` (targets read from their F-curves) or ``"frames"`` (frames stepped).
        reason: Why the frame path was needed.
        seconds: Wall time of the whole bake.
        continuous: Each frame was solved from the previous one (see :func:`bake_chains`).
    """

    frames: int
    chains: tuple[ChainBakeResult, ...]
    not_converged: int
    worst_error: float
    path: str
    reason: str
    seconds: float
    continuous: bool = False

    @property
    def switches(self) -> int:
        """Number of (chain, frame) pairs where a pose jumps although its target glides."""
        return sum(len(c.findings.switches) for c in self.chains if c.findings is not None)

    def notes(self) -> list[str]:
        """Per-chain notes: switch frames with their remedy, chunk boundaries of a continuous bake."""
        return [note for chain in self.chains for note in chain.notes()]

    def summary(self) -> str:
        """``"N frames solved, K not converged (worst residual X)"``, then the notes, ``"; "``-separated."""
        head = (f"{self.frames} frames solved{' (continuous)' if self.continuous else ''}, {self.not_converged} "
                f"not converged (worst residual {self.worst_error:.3g})")
        return "; ".join([head, *self.notes()])


def bake_chains(obj: Any, chain_names: list[str] | None = None, frame_start: int | None = None,
                frame_end: int | None = None, step: int = 1, *, disable_live: bool = False,
                continuous: bool = False, progress: Progress | None = None, scene: Any = None,
                specs: list[ChainSpec] | None = None) -> BakeReport:
    """Bake chains of the armature ``obj`` to rotation keys over ``[frame_start, frame_end]``.

    Args:
        obj: The armature object holding the chains (``obj.ik_chains``).
        chain_names: Chains to bake; None bakes every chain (enabled or not).
        frame_start: First frame; default the scene's.
        frame_end: Last frame (inclusive); default the scene's.
        step: Key every ``step`` frames (>= 1); keys between them inside the range are removed.
        disable_live: Turn live solving off for the baked chains, so the keys play as they are.
        continuous: Solve the frames in order, the first as every frame is solved otherwise (the
            pose nearest the comfort pose), then each from the previous frame's pose, so the motion
            stays continuous where the nearest pose switches between solutions. Deterministic for
            a given range; a range split into chunks can differ after a chunk boundary (the
            report says where). Follow-mode chains are sequential anyway and ignore it.
        progress: Called with the fraction done, 0..1.
        scene: The scene whose frames are used; default ``bpy.context.scene``.
        specs: Bake these chains instead of the ones stored on ``obj`` (scripts that do not
            register the add-on); ``chain_names`` then picks among them.

    Returns:
        A :class:`BakeReport` (its ``summary()`` is the line operators report). Each chain's
        findings are also kept for the panel (:func:`.status.get_findings`).

    Raises:
        RigSetupError: Unknown chains, chains sharing bones, bad range, or a chain's setup error.
    """
    started = time.perf_counter()
    require_armature(obj)
    require_keyable(obj)  # before any work: keys that would be lost or change another object
    scene = scene or bpy.context.scene
    start = scene.frame_start if frame_start is None else int(frame_start)
    end = scene.frame_end if frame_end is None else int(frame_end)
    if step < 1 or end < start:
        raise RigSetupError(f"bad frame range {start}..{end} step {step}: need start <= end and step >= 1")
    prepared = _prepare_all(obj, chain_names, scene, specs)
    frames = np.arange(start, end + 1, step, dtype=np.float64)
    times = action_times(obj, scene, frames)  # where the keys play: refused here, before any work
    key_range = (action_time(obj, scene, start), action_time(obj, scene, end))
    # Settings and limits are read once (Influence per frame): refused where they change in the range.
    require_still_inputs(obj, [(name, item.binding.bone_names, stretching_bones(item.binding))
                               for name, item in prepared.items()], *key_range, float(scene.frame_current))
    span = (start * time_stretch(scene), end * time_stretch(scene))  # the NLA's times of the range
    for name, item in prepared.items():  # keys that would not play as written: refused before any is written
        require_playable(obj, name, item.binding.bones, span, stretching_bones(item.binding))
    blends = read_bake_blends(scene, obj, prepared, frames, times)  # influence < 1: the keys, before any is replaced
    for name in blends:
        if prepared[name].spec.enabled and not disable_live:
            raise RigSetupError(f"chain {name!r} blends with its bones' own keys (Influence below 1) and solves live: "
                                "live solving would blend the baked keys again as they play; bake with Turn Live "
                                "Solving Off, or turn its Live off first")
    report: Progress = progress or (lambda _fraction: None)
    objects = {name: require_goals(item.spec, scene) for name, item in prepared.items()}
    stages = _stages(obj, prepared, scene)
    # Chains that share bones are solved together (groups.py); Continuous carries a group from frame
    # to frame too, but its findings do not compare it with each member's nearest pose alone.
    together = group_of(find_groups(obj, [item.spec for item in prepared.values()], {}))
    inputs: dict[str, tuple[FloatArray, FloatArray | None]] = {}  # chain -> sampled (targets, poles)
    solutions: dict[str, tuple[FloatArray, FrameSolution]] = {}
    keyed: dict[str, dict[str, tuple[str, FloatArray]]] = {}
    paths: list[tuple[str, str]] = []
    for number, stage in enumerate(stages):
        # A stage is sampled after the stages before it were keyed: what follows their chains (a
        # target parented to a bone they solve) is read where their keys put it.
        part = {name: prepared[name] for name in stage}

        def stage_report(fraction: float, number: int = number) -> None:
            report(0.9 * (number + fraction) / len(stages))

        stacked = links({n: (p.binding.bone_names, p.binding.ancestors) for n, p in part.items()})
        hangers = sorted({part[upper].binding.bone_names[j] for upper, j in stacked.values()})
        samples = _sample(scene, obj, part, {n: objects[n] for n in part}, frames, stage_report, hangers)
        paths.append((samples.path, samples.reason))
        for name, item in part.items():  # refuse unusable targets before this stage's keys are written
            inputs[name] = _targets(samples, objects[name])
            require_usable(item, samples.bases[name], *inputs[name])
        solved: Solved = {}
        grouped: dict[str, FrameSolution] = {}  # chains solved together (groups.py), by chain
        for index, name in enumerate(upper_first(part, stacked, together)):
            item = part[name]
            bases = _stacked_bases(obj, samples, stacked, solved, name)
            if name in together and name not in grouped:  # the group's first chain: solve the whole group
                group = together[name]
                member_bases = [bases if m == name else _stacked_bases(obj, samples, stacked, solved, m) for m in group]
                found = solve_group([part[m] for m in group], member_bases, [inputs[m][0] for m in group],
                                    [inputs[m][1] for m in group], continuous=continuous)
                grouped.update(zip(group, found, strict=True))
            solution = grouped[name] if name in together else _solve(item, *inputs[name], bases, continuous=continuous)
            written = blend_bake(item, solution, bases, blends.get(name))  # with the bones' keys (influence < 1)
            solved[name] = (item.binding, bases, written.angles, written.scales)
            solutions[name] = (bases, solution)
            keyed[name] = _write_keys(obj, item, written, times, key_range)
            stage_report(0.5 + 0.5 * (index + 1) / len(part))
    played = _play_back(scene, obj, prepared, objects, frames, blends)
    report(1.0)
    results = []
    worst = np.zeros(len(frames), dtype=bool)
    for name in (name for stage in stages for name in stage):
        item = prepared[name]
        bases, solution = solutions[name]
        targets, poles = inputs[name]
        companions = [goal for mate in together.get(name, ()) if mate != name
                      for goal in inputs[mate] if goal is not None]  # a group's other targets turn it too
        findings = _findings(item, targets, poles, bases, solution, frames, start, end,
                             continuous and name not in together, companions)
        converged, findings = _with_playback(scene, obj, item, objects[name][0], targets, solution, frames,
                                             played[name], keyed[name], findings)
        if name in blends:
            findings = replace(findings, blend_note=bake_note(blends[name], frames))
        worst |= ~converged
        residual = max(float(solution.error.max()), float(played[name].distance.max(initial=0.0)))
        results.append(ChainBakeResult(item.spec.name, int((~converged).sum()), residual, findings))
        how = " (continuous)" if findings.continuous else ""
        note = f"baked {start}-{end}{how}"
        if findings.played_misses:
            note += f"; {findings.playback_note()}"
        if findings.blend_note:
            note += f"; {findings.blend_note}"
        set_status(obj.name, item.spec.name, ChainStatus(True, bool(converged.all()), residual, note, float(end)))
        bones = item.binding.bone_names
        set_findings(obj.name, item.spec.name, replace(findings, bones=tuple(bones), keys=keys_fingerprint(obj, bones)))
    if disable_live:
        with suspended():  # each switch would re-solve every chain still live: N^2 solves for N chains
            disable_chains(obj, list(prepared))
    scene.frame_set(scene.frame_current, subframe=scene.frame_subframe)  # show the keys (or the live pose)
    path, reason = next((p for p in paths if p[0] == "frames"), paths[0])
    return BakeReport(len(frames), tuple(results), int(worst.sum()), max(r.worst_error for r in results),
                      path, reason, time.perf_counter() - started, continuous)


def forget_undone_findings() -> None:
    """After an undo or redo: drop the bake findings whose keys are no longer as that bake left
    them (the bake was undone, or keys were changed since), so the panel does not warn about keys
    that are gone."""
    for (object_name, chain_name), findings in findings_items():
        obj = bpy.data.objects.get(object_name)
        if obj is None or keys_fingerprint(obj, findings.bones) != findings.keys:
            clear_findings(object_name, chain_name)


def _stages(obj: Any, prepared: dict[str, PreparedChain], scene: Any) -> list[list[str]]:
    """The chains in stages: each after the stages of every chain it follows (:mod:`.order`), the
    chains that hang below others after them within a stage.

    Refused: chains following each other in a circle, and a chain that follows a live chain left out
    of the bake (of this rig or another): the bake would key it for the pose that chain's keys give,
    which live solving changes on every frame.
    """
    me = obj.as_pointer()
    rigs = [obj, *(o for o in live_rigs(scene) if o.as_pointer() != me)]
    specs_of = {me: [item.spec for item in prepared.values()]
                + [s for s in chain_specs(obj, enabled_only=True) if s.name not in prepared]}
    specs_of.update((o.as_pointer(), chain_specs(o, enabled_only=True)) for o in rigs[1:])
    plan = plan_pass(rigs, specs_of, scene)
    rig_names = {o.as_pointer(): o.name for o in rigs}
    for name in prepared:
        message = plan.cycles.get((me, name))
        if message is not None:
            raise RigSetupError(message)
        for follow in plan.follows.get((me, name), ()):
            if follow.upper[0] == me and follow.upper[1] in prepared:
                continue
            owner = "" if follow.upper[0] == me else f" of {rig_names[follow.upper[0]]!r}"
            raise RigSetupError(f"chain {name!r} follows chain {follow.upper[1]!r}{owner}, which solves live and is "
                                f"not in this bake ({follow.describe(follow.upper[1])}): keys made for that chain's "
                                f"keyed pose would miss once live solving moves it; bake {follow.upper[1]!r} with it, "
                                "or turn its live solving off")
    _refuse_live_uppers(obj, prepared, specs_of[me][len(prepared):])
    levels = stage_levels(obj, plan, {n: (p.binding.bone_names, p.binding.ancestors) for n, p in prepared.items()})
    return [[name for name in prepared if levels[name] == level] for level in sorted(set(levels.values()))]


def _refuse_live_uppers(obj: Any, prepared: dict[str, PreparedChain], live: list[ChainSpec]) -> None:
    """Refuse a baked chain that hangs below a live chain left out of the bake: its bases would be
    sampled with that chain where its keys put it, which live solving changes on every frame."""
    chains = {name: (item.binding.bone_names, item.binding.ancestors) for name, item in prepared.items()}
    chains.update(_bone_layout(obj, live))
    for lower, (upper, joint) in links(chains).items():
        if lower in prepared and upper not in prepared:
            bone = chains[upper][0][joint]
            raise RigSetupError(f"chain {lower!r} hangs below bone {bone!r} of chain {upper!r}, which solves live and "
                                f"is not in this bake: keys made for that chain's keyed pose would miss once live "
                                f"solving moves it; bake {upper!r} with it, or turn its live solving off")


def _bone_layout(obj: Any, specs: list[ChainSpec]) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Chain name -> (its bones root first, the bones above it parent first), for the chains that can
    be read (the others are refused with their reason when they are solved)."""
    out = {}
    for spec in specs:
        try:
            bones = chain_bone_names(obj, spec.tip_bone, spec.length)
        except RigSetupError:
            continue
        out[spec.name] = (tuple(bones), ancestors_of(obj, bones))
    return out


def _prepare_all(obj: Any, chain_names: list[str] | None, scene: Any,
                 given: list[ChainSpec] | None) -> dict[str, PreparedChain]:
    available = chain_specs(obj) if given is None else list(given)
    specs = [s for s in available if chain_names is None or s.name in chain_names]
    if chain_names is not None:
        missing = sorted(set(chain_names) - {s.name for s in specs})
        if missing:
            known = [s.name for s in available]
            raise RigSetupError(f"armature {obj.name!r} has no chain(s) {', '.join(map(repr, missing))}; "
                                f"its chains: {', '.join(map(repr, known)) or 'none'}")
    if not specs:
        raise RigSetupError(f"armature {obj.name!r} has no chains to bake")
    conflicts = find_conflicts(obj, specs)
    if conflicts:
        raise RigSetupError(next(iter(conflicts.values())))
    # The chains left out that would share bones with a baked one: the live ones (a chain whose Live
    # is off solves nothing, so a baked chain takes its bones alone, as live solving and Key do).
    others = [s for s in chain_specs(obj, enabled_only=True) if s.name not in {p.name for p in specs}
              ] if given is None else []
    baked = {s.name for s in specs}
    for group in find_groups(obj, specs + others, {}):
        left_out = [name for name in group if name not in baked]
        if left_out and len(left_out) < len(group):
            inside = next(name for name in group if name in baked)
            raise RigSetupError(f"chain {inside!r} shares bones with chain {left_out[0]!r}, which is not in this bake: "
                                "chains that share bones are solved together, so bake them together")
    for spec in specs:
        require_goals(spec, scene, obj)
    obj_eval = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    return {spec.name: prepare(obj_eval, spec) for spec in specs}


ChainObjects = tuple[Goal, Goal | None]
"""A chain's target and pole (objects or bones, the objects themselves: never looked up by name again)."""


def _sample(scene: Any, obj: Any, prepared: dict[str, PreparedChain], chain_objects: dict[str, ChainObjects],
            frames: FloatArray, report: Progress, bones: list[str]) -> Samples:
    bindings = {name: item.binding for name, item in prepared.items()}
    objects = list({g.key: g for pair in chain_objects.values() for g in pair if g is not None}.values())
    blocker = fast_path_blocker(scene, obj, bindings.values(), objects)
    if not blocker:
        samples = sample_fcurves(scene, obj, bindings, objects, frames, bones)
        report(0.5)
        return samples
    original = (scene.frame_current, scene.frame_subframe)
    with suspended():
        try:
            return sample_frames(scene, obj, bindings, objects, frames,
                                 lambda i: report(0.5 * (i + 1) / len(frames)), blocker, bones)
        finally:
            scene.frame_set(original[0], subframe=original[1])


def _targets(samples: Samples, objects: ChainObjects) -> tuple[FloatArray, FloatArray | None]:
    """A chain's ``(F, 4, 4)`` target matrices and pole matrices (or None)."""
    target, pole = objects
    return samples.objects[target.key], None if pole is None else samples.objects[pole.key]


def _stacked_bases(obj: Any, samples: Samples, stacked: dict[str, tuple[str, int]], solved: Solved,
                   name: str) -> FloatArray:
    """A chain's sampled bases, moved with the chain it hangs below when that was solved just before."""
    bases = samples.bases[name]
    if name in stacked:
        upper, joint = stacked[name]
        upper_binding, upper_bases, upper_angles, upper_factors = solved[upper]
        bone = upper_binding.bone_names[joint]
        new = joint_world(upper_binding, upper_bases, upper_angles, joint, obj.pose.bones[bone].scale, upper_factors)
        bases = restack(bases, samples.bones[bone], new)
    return bases


def _solve(item: PreparedChain, targets: FloatArray, poles: FloatArray | None, bases: FloatArray, *,
           continuous: bool) -> FrameSolution:
    if item.spec.follow_mode:
        return solve_follow(item, bases, targets, poles, item.comfort_angles)
    return solve_frames(item, bases, targets, poles, continuous=continuous)


def _findings(item: PreparedChain, targets: FloatArray, poles: FloatArray | None, bases: FloatArray,
              solution: FrameSolution, frames: FloatArray, start: int, end: int, continuous: bool,
              companions: Sequence[FloatArray] = ()) -> BakeFindings:
    """Where the baked pose jumps (``companions``: the goals of the chains it is solved with, see
    :func:`.solving.find_frame_switches`); for a continuous bake also where the nearest pose (a
    chunk's first frame) switches and where the bake leaves it (one more batch solve)."""
    if item.spec.follow_mode:  # the tutorial's per-frame look lags on purpose: not checked
        return BakeFindings(start, end)
    scene_frames = frames.astype(np.int64)

    def flagged(of: FrameSolution) -> tuple[int, ...]:
        return tuple(int(f) for f in scene_frames[find_frame_switches(item, bases, targets, poles, of, companions)])

    switches = flagged(solution)
    has_pole, has_comfort = item.spec.pole is not None, bool(item.spec.comfort)
    if not continuous:
        return BakeFindings(start, end, switches=switches, has_pole=has_pole, has_comfort=has_comfort)
    nearest = solve_frames(item, bases, targets, poles)
    chain = item.binding.chain
    apart = np.max(np.abs(chain.compress(solution.angles) - chain.compress(nearest.angles)), axis=1, initial=0.0)
    left = np.flatnonzero(apart > CHUNK_MATCH)
    limit = int(scene_frames[left[0]]) if left.size else None
    return BakeFindings(start, end, True, switches, flagged(nearest), limit, has_pole=has_pole,
                        has_comfort=has_comfort)


def _write_keys(obj: Any, item: PreparedChain, solution: FrameSolution, times: FloatArray,
                key_range: tuple[float, float]) -> dict[str, tuple[str, FloatArray]]:
    """Key the solved frames at their action ``times`` (ascending in time, whatever order the scene
    frames map to: a reversed strip), replacing the keys inside ``key_range`` (action times).

    Returns:
        Bone name -> ``(data path, (F, k) values)`` keyed, in scene-frame order (for :mod:`.verify`).
    """
    start, end = min(key_range), max(key_range)
    order = np.argsort(times, kind="stable")
    keyed_times = np.ascontiguousarray(times[order])
    keyed: dict[str, tuple[str, FloatArray]] = {}
    for j, (bone, joint) in enumerate(zip(item.binding.bones, item.binding.chain.joints, strict=False)):
        path = channel(bone.rotation_mode)[0]
        reference, at_end = _join_reference(obj, bone.name, path, read_channel(obj.pose.bones[bone.name]), start, end)
        angles = solution.angles[order, j]
        if at_end:  # made continuous from the last frame backwards, so the last key joins the kept one
            values = np.ascontiguousarray(angles_to_channels(bone, joint, angles[::-1], reference)[::-1])
        else:
            values = angles_to_channels(bone, joint, angles, reference)
        write_channel_keys(obj, bone.name, path, keyed_times, values, start, end)
        in_frame_order = np.empty_like(values)
        in_frame_order[order] = values
        keyed[bone.name] = (path, in_frame_order)
    key_stretch(obj, item.binding, solution, order, keyed_times, start, end)  # bones that stretch: their scale
    return keyed


def _play_back(scene: Any, obj: Any, prepared: dict[str, PreparedChain], objects: dict[str, ChainObjects],
               frames: FloatArray, blends: dict[str, BakeBlend]) -> dict[str, Played]:
    """Every chain's keys played back (live solving suspended) on :func:`.verify.verify_frames`; a
    frame blended with the bones' keys is measured against its blended tip."""
    goals = {name: blend.goals_at(frames) for name, blend in blends.items()}
    chains = [_played_chain(item, objects[name][0], goals.get(name)) for name, item in prepared.items()]
    return played_errors(scene, obj, chains, verify_frames(frames))


def _played_chain(item: PreparedChain, target: Any, goals: dict[float, FloatArray] | None = None) -> PlayedChain:
    binding, spec = item.binding, item.spec
    return PlayedChain(spec.name, binding.bone_names[-1], len(binding.bone_names), target, spec.tolerance,
                       spec.follow_orientation, goals or {})


def _with_playback(scene: Any, obj: Any, item: PreparedChain, target: Any, targets: FloatArray,
                   solution: FrameSolution, frames: FloatArray, played: Played,
                   keyed: dict[str, tuple[str, FloatArray]], findings: BakeFindings) -> tuple[BoolArray, BakeFindings]:
    """Which frames count as converged (the solve reached the target, and so does playback where
    verified), and the findings with what playback showed."""
    at = np.searchsorted(frames, played.frames)
    converged = solution.converged.copy()
    converged[at] &= played.ok
    missed = at[solution.converged[at] & ~played.ok]  # the solve reached it, playback does not
    cause = ""
    if missed.size:
        first = int(missed[0])
        bone_values = {bone: (path, values[first]) for bone, (path, values) in keyed.items()}
        cause = diagnose(scene, obj, _played_chain(item, target), float(frames[first]), targets[first, :3, 3],
                         bone_values)
    findings = replace(findings, verified=len(played.frames),
                       played_misses=tuple(int(f) for f in frames[missed]),
                       played_worst=float(played.distance.max(initial=0.0)), played_cause=cause)
    return converged, findings


def _join_reference(obj: Any, bone: str, path: str, pose: FloatArray, start: float,
                    end: float) -> tuple[FloatArray, bool]:
    """The channel values the new keys of ``bone`` join, and whether they join at the range's end.

    The new run of keys is one continuous curve (no quaternion sign flip, no Euler or axis-angle jump
    by a whole turn between frames); what is left to choose is its sign, or its whole turns, as a
    whole. It is chosen to join the kept key just before the range: the curve then flows out of the
    animation that plays before it. Only without a kept key before does it join the first kept key
    after the range instead. One choice cannot always join both ends: when the kept keys themselves
    disagree (say the key after the range has the other quaternion sign, or is a whole turn away
    from where the run arrives), the start wins and the end keeps the animator's keys as they are:
    they are never rewritten. Channels without a kept key on the chosen side take the other side's,
    else the pose's; with no kept key at all, the run continues from the pose at the current frame,
    as a single keyed frame does. (Euler axes with limits, in the solver's own order, are keyed as
    solved: turning them by a whole turn would leave their limits.)
    """
    before, after = kept_neighbours(obj, bone, path, len(pose), start, end)
    if not np.isnan(before).all():
        return np.where(np.isnan(before), np.where(np.isnan(after), pose, after), before), False
    if not np.isnan(after).all():
        return np.where(np.isnan(after), pose, after), True
    return pose, False


def key_chains(obj: Any, chain_names: list[str] | None = None, scene: Any = None) -> dict[str, ChainStatus]:
    """Solve chains at the current frame, write the pose and key their rotation channels.

    Args:
        obj: The armature object.
        chain_names: Chains to key; None keys every chain.
        scene: Default ``bpy.context.scene``.

    Returns:
        Chain name -> status. Setup errors are statuses (other chains are still keyed).
    """
    require_armature(obj)
    scene = scene or bpy.context.scene
    depsgraph = bpy.context.evaluated_depsgraph_get()
    key_frame = float(scene.frame_current) + float(scene.frame_subframe)  # keyed where it is solved
    names = set(chain_names) if chain_names is not None else None
    specs = chain_specs(obj, names)
    live = [s for s in chain_specs(obj, enabled_only=True) if s.name not in {k.name for k in specs}]
    plan = plan_pass([obj], {obj.as_pointer(): specs + live}, scene)  # the live chains: for circles through them
    by_level = stage_levels(obj, plan, _bone_layout(obj, specs))
    levels = sorted(set(by_level.values())) or [0]
    statuses: dict[str, ChainStatus] = {}
    for level in levels:
        # Chains that follow (or hang loosely below) chains keyed before them are solved once Blender
        # evaluated those (an update outside any handler is allowed), so every route is read exactly.
        stage = {s.name for s in specs if by_level.get(s.name, 0) == level}
        if level != levels[0]:
            with suspended():
                depsgraph.update()  # outside a handler this is allowed (inside one it crashes Blender)
            depsgraph = bpy.context.evaluated_depsgraph_get()
        outcomes = solve_rig(obj, depsgraph, names=stage if len(levels) > 1 else names, enabled_only=False,
                             key_frame=key_frame, catch_all=False, plan=plan)
        statuses.update((name, status) for name, (status, _changed) in outcomes.items())
    return _keys_played(scene, obj, specs, statuses, key_frame)


def _keys_played(scene: Any, obj: Any, specs: list[ChainSpec], statuses: dict[str, ChainStatus],
                 frame: float) -> dict[str, ChainStatus]:
    """The statuses of keyed chains, converged only where the keys play the tip onto the target
    (:mod:`.verify`); a chain that misses says by how much and why, where known."""
    keyed = [s for s in specs if s.name in statuses and statuses[s.name].solved]
    if not keyed:
        return statuses
    objects = {s.name: require_goals(s, scene)[0] for s in keyed}
    bones = {s.name: chain_bone_names(obj, s.tip_bone, s.length) for s in keyed}
    blended = {s.name: {frame: goal} for s in keyed if (goal := blended_goal(obj, s.name, frame)) is not None}
    chains = [PlayedChain(s.name, bones[s.name][-1], len(bones[s.name]), objects[s.name], s.tolerance,
                          s.follow_orientation, blended.get(s.name, {})) for s in keyed]  # influence < 1: blended tip
    keyed_values = {s.name: {b: (channel(obj.pose.bones[b].rotation_mode)[0], read_channel(obj.pose.bones[b]))
                             for b in bones[s.name]} for s in keyed}  # as keyed, before playback moves them
    played = played_errors(scene, obj, chains, np.array([frame], dtype=np.float64))
    out = dict(statuses)
    for chain in chains:
        status = statuses[chain.name]
        result = played[chain.name]
        if not status.converged or bool(result.ok[0]):
            continue
        cause = diagnose(scene, obj, chain, frame, solved_target(obj, chain.name), keyed_values[chain.name])
        message = f"keyed, but plays back {result.distance[0]:.3g} off the target: {cause}"
        out[chain.name] = ChainStatus(True, False, float(result.distance[0]), message, status.frame)
        set_status(obj.name, chain.name, out[chain.name])
    return out
