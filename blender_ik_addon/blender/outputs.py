"""Will keys written to a chain's rotation channels play as written? Checked before a bake or a key.

The add-on writes each chain bone's rotation channel (the one of its ``rotation_mode``, see
:func:`.write.channel`) into the F-curves of the armature's active action (and slot, 4.4+;
:func:`.keys.fcurve_collection`). Blender may still play something else there. Each case below was
measured in bpy 4.2, 4.5 and 5.0 (key a value, ``frame_set``, read the evaluated pose bone):

F-curves of the channel

* ``fcurve.mute``: the curve is skipped, the keys never play.
* A muted action group (``group.mute``): skips its curves in 4.2 (legacy actions) only. 4.4+
  (channel bags) evaluates them anyway, so it is reported on 4.2 only. (The UI's group toggle also
  mutes each curve of the group, which the check above finds.)
* ``fcurve.lock`` or a locked group: evaluation ignores it, but Blender's own keying refuses such a
  curve ("doesn't allow inserting keys"); writing there would defeat the animator's lock.
* Sampled points ("Keys to Samples"): ``keyframe_points.add`` does nothing on such a curve and the
  add-on's ``foreach_set`` raises mid-write.
* Modifiers: every type but Cycles changes values at keyed frames (Noise, Generator, Built-In
  Function, Limits, Envelope) or between steps (Stepped). Cycles changes nothing between the first
  and last key, and written keys are always inside that range. A muted modifier, one with Use
  Influence at 0, or an Envelope without control points plays the keys as they are. A restricted
  frame range outside the written frames also leaves them alone, but the frames are not known here,
  so such a modifier is still reported, with its range.
* Drivers: :func:`.scene_checks.refuse_drivers` (reused as is).

The NLA (only when ``anim.use_nla``; with it off the action plays alone)

* NLA off while tweaking: the tweaked action plays at scene time, *not* through its strip (the strip
  at 101 tweaking action frames 1-20: scene frame 10 plays action frame 10, scene frame 110 plays
  110), so keys placed at the strip's action time (:mod:`.action_time`) would play elsewhere.

* Blender evaluates the action as if there were no NLA unless an evaluated track (unmuted, or the
  solo one) holds a strip, a track is solo, or tweak mode is on. Only then do the action's
  influence and blending apply; a lone empty or muted track changes nothing.
* Influence below 1: blends with what the tracks below give, or with the property's default (0 for
  Euler and axis-angle, identity for quaternions) where no strip animates the channel: the value
  never plays as written.
* Blending at influence 1: Replace plays. Subtract and Multiply never do. Add and Combine play only
  where no evaluated strip animates the channel (they add to, or combine with, the default), except
  Add on a quaternion: its W is added to the default 1.
* A solo track: the action is not evaluated at all (not tweaking), or only the solo track is (while
  tweaking: the tweaked strip plays only if its own track is the solo one).
* Tweak mode: the tweaked strip is evaluated in place of the action with the *strip's* blending, its
  animated influence (a static ``strip.influence`` is ignored) and its Blend In/Out ramps; the
  AnimData's ``action_influence``/``action_blend_type`` are ignored. A muted strip or a muted track
  does not play.
* Tracks above the tweaked one: evaluated on top only with "upper stack evaluation", a flag of the
  tweak-mode operator (``nla.tweakmode_enter(use_upper_stack_evaluation=...)``) that Python cannot
  read (no RNA property). Either way, once tweak mode is left, every track above plays on top of the
  tweaked strip and overrides its keys: any of them animating the channel is reported.
* Not a problem: the action's extrapolation (a bake keys every frame it solves, so those frames are
  inside the action's key range, the range Blender uses; a manual frame range is ignored there).

Strips of the NLA count as animating a channel when they are unmuted and their action (slot, 4.4+)
holds an unmuted F-curve of it, wherever they sit in time: a strip elsewhere on the timeline is
reported too (the frames are not known here).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any, cast

import bpy

from .action_time import tweaked_strip, tweaked_track
from .errors import RigSetupError
from .keys import action_get_channelbag_for_slot, bone_path, fcurve_collection
from .read import ChainBinding
from .scene_checks import refuse_drivers
from .write import channel

_LAYERED = hasattr(bpy.types, "ActionSlot")  # 4.4+: channel bags, where a muted group does not mute
_BLENDS = {"REPLACE": "Replace", "COMBINE": "Combine", "ADD": "Add", "SUBTRACT": "Subtract", "MULTIPLY": "Multiply"}
_FULL = 1.0 - 1e-6  # an influence at least this counts as 1 (Blender compares with FLT_EPSILON)

_Channel = tuple[str, str, int]  # (bone name, channel data path, array size)


def playback_problems(obj: Any, bones: Sequence[Any], span: tuple[float, float] | None = None,
                      scaled: Sequence[str] = ()) -> list[str]:
    """Messages, one per problem, for the pose bones' rotation channels (the channel per each bone's
    rotation_mode) of armature object `obj`, and the scale channels of the ``scaled`` bones (those
    that stretch), that would not play what is keyed. Empty when all play.

    ``span``: the NLA times (scene frames times the Time Stretching factor) the keys are for, first
    and last: a tweaked strip's blend ramps and the strips above it count only where they reach
    into it. None: wherever they are.
    """
    anim = obj.animation_data
    if anim is None:
        return []
    channels = [(b.name, *channel(obj.pose.bones[b.name].rotation_mode)) for b in bones]
    channels += [(name, "scale", 3) for name in scaled]
    problems: list[str] = []
    if anim.use_nla and len(anim.nla_tracks):
        problems += _nla_problems(obj, anim, channels, span)
    elif anim.use_tweak_mode:  # NLA off while tweaking: the action plays at scene time, unmapped
        strip = next((s for t in anim.nla_tracks for s in t.strips if s.action is not None and s.action == anim.action),
                     None)
        what = f"strip {strip.name!r}" if strip is not None else "a strip"
        problems.append(f"the NLA of {obj.name!r} is off while tweaking {what}: Blender then plays "
                        f"{_action_label(obj, anim)} at scene frames, not through the strip, so keys placed through "
                        "the strip would play at other frames; turn the NLA back on or leave tweak mode")
    problems += _curve_problems(obj, channels)
    if len(anim.drivers):
        try:  # duck-typed binding: refuse_drivers reads only the bones' names
            refuse_drivers(obj, cast(ChainBinding, SimpleNamespace(bones=tuple(bones))), scaled)
        except RigSetupError as error:
            problems.append(str(error))
    return problems


def require_playable(obj: Any, chain: str, bones: Sequence[Any], span: tuple[float, float] | None = None,
                     scaled: Sequence[str] = ()) -> None:
    """Raise blender_ik_addon.blender.errors.RigSetupError naming the chain and the first problem
    (and how many more) if any."""
    problems = playback_problems(obj, bones, span, scaled)
    if problems:
        more = len(problems) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise RigSetupError(f"chain {chain!r}: {problems[0]}{tail}")


def nla_overrides(obj: Any, bones: Sequence[Any]) -> list[str]:
    """Why the active action's F-curves on the pose bones' rotation channels are not what plays there
    (the NLA's part of :func:`playback_problems`), plus every evaluated strip other than the tweaked
    one whose action animates such a channel: Blender plays that strip's value where the action has
    no key, or mixes the two. Empty when the action's F-curves play alone (what
    :mod:`.influence` reads as the bones' own keys)."""
    anim = obj.animation_data
    if anim is None or not anim.use_nla or not len(anim.nla_tracks):
        return []
    channels = [(b.name, *channel(obj.pose.bones[b.name].rotation_mode)) for b in bones]
    problems = _nla_problems(obj, anim, channels, None)
    try:
        tweaked = tweaked_strip(obj)
    except RigSetupError as ambiguous:
        return [*problems, str(ambiguous)]
    solo = next((t for t in anim.nla_tracks if t.is_solo), None)
    for track in anim.nla_tracks:
        if not _evaluated(track, solo):
            continue
        for bone, path, _ in channels:
            strip = _animating_strip([s for s in track.strips if s != tweaked], bone_path(bone, path))
            if strip is not None:
                problems.append(f"NLA strip {strip.name!r} (track {track.name!r}) animates {bone_path(bone, path)}")
    return problems


# --- F-curves of the active action -----------------------------------------------------------


def _curve_problems(obj: Any, channels: list[_Channel]) -> list[str]:
    """Muted, locked, sampled curves and value-changing modifiers on the channels' F-curves."""
    fcurves = fcurve_collection(obj, create=False)
    if fcurves is None:
        return []
    out: list[str] = []
    for bone, path, size in channels:
        for index in range(size):
            fcurve = fcurves.find(bone_path(bone, path), index=index)
            if fcurve is not None:
                out += _fcurve_problems(fcurve, f"{bone_path(bone, path)}[{index}]")
    return out


def _fcurve_problems(fcurve: Any, name: str) -> list[str]:
    out: list[str] = []
    group = fcurve.group
    if fcurve.mute:
        out.append(f"F-curve {name} is muted, so keys written there would not play; unmute it")
    elif not _LAYERED and group is not None and group.mute:
        out.append(f"F-curve {name} is in the muted group {group.name!r}, so keys written there would not play; "
                   "unmute the group")
    if fcurve.lock:
        out.append(f"F-curve {name} is locked against editing, so keys may not be written there; unlock it")
    elif group is not None and group.lock:
        out.append(f"F-curve {name} is in the locked group {group.name!r}, so keys may not be written there; "
                   "unlock the group")
    if len(fcurve.sampled_points):
        out.append(f"F-curve {name} holds sampled points instead of keys (Keys to Samples), so keys cannot be "
                   "written there; convert it back with Samples to Keys")
    for mod in fcurve.modifiers:
        if _changes_values(mod):
            label = mod.bl_rna.properties["type"].enum_items[mod.type].name
            frames = f", frames {mod.frame_start:g}-{mod.frame_end:g}" if mod.use_restricted_range else ""
            out.append(f"F-curve {name} has modifier {mod.name!r} ({label}{frames}), which changes the values it "
                       "plays, so keys written there would not play as written; mute or remove the modifier")
    return out


def _changes_values(mod: Any) -> bool:
    """Whether an F-curve modifier can change the value played at a keyed frame inside the key range."""
    if mod.mute or (mod.use_influence and mod.influence <= 0.0):
        return False
    if mod.type == "CYCLES":  # repeats the keys outside their range only
        return False
    return not (mod.type == "ENVELOPE" and not len(mod.control_points))


# --- The NLA ----------------------------------------------------------------------------------


def _nla_problems(obj: Any, anim: Any, channels: list[_Channel], span: tuple[float, float] | None) -> list[str]:
    """Problems from the NLA stack (``anim.use_nla`` on, tracks present)."""
    tracks = list(anim.nla_tracks)
    solo = next((t for t in tracks if t.is_solo), None)
    action = _action_label(obj, anim)
    if anim.use_tweak_mode:
        return _tweak_problems(anim, tracks, solo, action, channels, span)
    if solo is not None:
        return [f"NLA track {solo.name!r} is solo, so {action} does not play; turn off the track's Solo"]
    below = [t for t in tracks if _evaluated(t, solo) and len(t.strips)]
    if not below:
        return []  # Blender plays the action as if there were no NLA: influence and blending unused
    if anim.action_influence < _FULL:
        names = ", ".join(repr(t.name) for t in below)
        return [f"{action} plays at influence {anim.action_influence:g} over NLA track{'s' if len(below) > 1 else ''} "
                f"{names}, so keys on {_paths(channels)} would play blended with them; set the action's influence "
                "to 1"]
    return _blend_problems(action, anim.action_blend_type, below, channels)


def _tweak_problems(anim: Any, tracks: list[Any], solo: Any, action: str, channels: list[_Channel],
                    span: tuple[float, float] | None) -> list[str]:
    """Problems while tweaking a strip: the strip's own settings and the tracks around it."""
    try:
        strip = tweaked_strip(anim.id_data)
    except RigSetupError as ambiguous:
        return [str(ambiguous)]
    track = tweaked_track(anim.id_data, strip) if strip is not None else anim.nla_tracks.active
    if track is None or track not in tracks:
        return []
    label = f"the tweaked strip {strip.name!r} ({action})" if strip is not None else action
    if solo is not None and solo != track:
        return [f"NLA track {solo.name!r} is solo, so {label} does not play; turn off the track's Solo"]
    if solo is None and track.mute:
        return [f"NLA track {track.name!r} of {label} is muted, so it does not play; unmute the track"]
    index = tracks.index(track)
    out: list[str] = []
    if strip is not None:
        who = f"NLA strip {strip.name!r} being tweaked"
        if strip.mute:
            return [f"{who} is muted, so {action} does not play; unmute the strip"]
        if strip.use_animated_influence and not _influence_always_full(strip):
            out.append(f"{who} has an animated influence below 1, so keys on {_paths(channels)} would play "
                       "blended with the tracks below; turn off its Animated Influence or key it at 1")
        if _overlaps(span, strip.frame_start, strip.frame_start + strip.blend_in) or \
                _overlaps(span, strip.frame_end - strip.blend_out, strip.frame_end):
            out.append(f"{who} blends in over {strip.blend_in:g} and out over {strip.blend_out:g} frames, so keys "
                       f"on {_paths(channels)} near its ends would play blended; set its Blend In and Out to 0")
        below = [t for t in tracks[:index] if _evaluated(t, solo) and len(t.strips)]
        out += _blend_problems(who, strip.blend_type, below, channels)
    for upper in tracks[index + 1:]:
        if not _evaluated(upper, solo):
            continue
        for bone, path, _ in channels:
            above = _animating_strip([s for s in upper.strips if _reaches(s, span)], bone_path(bone, path))
            if above is not None:
                out.append(f"NLA strip {above.name!r} on track {upper.name!r} above the tweaked strip animates "
                           f"{bone_path(bone, path)}, so it overrides keys there (with the upper stack evaluated, "
                           "and once tweak mode is left); mute the track or move the strip below it")
    return out


def _blend_problems(who: str, blend: str, below: list[Any], channels: list[_Channel]) -> list[str]:
    """Channels whose keys do not play as written under ``blend`` at influence 1 over the tracks ``below``."""
    if blend == "REPLACE":
        return []
    name = _BLENDS.get(blend, blend)
    if blend not in ("ADD", "COMBINE"):  # Subtract, Multiply: not even over the default value
        return [f"{who} blends as {name}, so keys on {_paths(channels)} would not play as written; set its blending "
                "to Replace"]
    out: list[str] = []
    for bone, path, _ in channels:
        full_path = bone_path(bone, path)
        found = next(((t, s) for t in reversed(below) if (s := _animating_strip(t.strips, full_path)) is not None),
                     None)
        if found is not None:
            track, strip = found
            out.append(f"{who} blends as {name} over NLA strip {strip.name!r} (track {track.name!r}), which also "
                       f"animates {full_path}, so keys there would play combined with it; set its blending to Replace")
        elif blend == "ADD" and path == "rotation_quaternion":
            out.append(f"{who} blends as Add, which adds the default 1 to {full_path}[0] (W), so keys there would not "
                       "play as written; set its blending to Replace or Combine")
    return out


def _overlaps(span: tuple[float, float] | None, start: float, end: float) -> bool:
    """A ramp from ``start`` to ``end`` (empty when they are equal) reaches into ``span``."""
    if end <= start:
        return False
    return span is None or (start < span[1] and end > span[0])


def _reaches(strip: Any, span: tuple[float, float] | None) -> bool:
    """A strip plays somewhere in ``span``: inside its frames, and after them when it holds forward,
    before and after when it holds (Hold extends a track's first strip both ways)."""
    if span is None:
        return True
    first = -math.inf if strip.extrapolation == "HOLD" else strip.frame_start
    last = strip.frame_end if strip.extrapolation == "NOTHING" else math.inf
    return first <= span[1] and last >= span[0]


def _evaluated(track: Any, solo: Any) -> bool:
    """Whether Blender evaluates an NLA track: the solo one if any, else every unmuted one."""
    return bool(track == solo if solo is not None else not track.mute)


def _influence_always_full(strip: Any) -> bool:
    """Whether an animated strip influence is keyed at 1 everywhere (an unmuted, unmodified curve)."""
    fcurve = strip.fcurves.find("influence")
    if fcurve is None or fcurve.mute or len(fcurve.modifiers) or not len(fcurve.keyframe_points):
        return False
    return all(point.co[1] >= _FULL for point in fcurve.keyframe_points)


def _animating_strip(strips: Any, full_path: str) -> Any | None:
    """The first unmuted strip (meta strips searched inside) whose action animates ``full_path``."""
    for strip in strips:
        if strip.mute:
            continue
        if strip.type == "META":
            inner = _animating_strip(strip.strips, full_path)
            if inner is not None:
                return inner
        elif strip.action is not None and any(not f.mute for f in _strip_curves(strip, full_path)):
            return strip
    return None


def _strip_curves(strip: Any, full_path: str) -> Iterator[Any]:
    """F-curves of ``full_path`` (any index) that a strip plays: its action's, in its slot (4.4+;
    every slot when it has none)."""
    action = strip.action
    if not _LAYERED:
        collections = [action.fcurves]
    elif strip.action_slot is not None:
        bag = action_get_channelbag_for_slot(action, strip.action_slot)
        collections = [bag.fcurves] if bag is not None else []
    else:
        collections = [bag.fcurves for layer in action.layers for keys in layer.strips for bag in keys.channelbags]
    for fcurves in collections:
        for fcurve in fcurves:
            if fcurve.data_path == full_path:
                yield fcurve


def _action_label(obj: Any, anim: Any) -> str:
    return f"action {anim.action.name!r}" if anim.action is not None else f"the action of {obj.name!r}"


def _paths(channels: list[_Channel]) -> str:
    return ", ".join(bone_path(bone, path) for bone, path, _ in channels)
