"""Scene frames -> the times of the action the add-on keys, so keys play at the frame they were solved for.

Blender evaluates an armature's action at *action time*, which differs from the scene frame in two ways:

* **Time Stretching** (Output > Time Stretching, ``render.frame_map_old/new``): every animation is
  evaluated at ``frame * old / new`` (``BKE_scene_frame_to_ctime``). Blender's own
  ``keyframe_insert`` does not apply it (a key inserted at scene frame 40 with 100 -> 200 lands at
  40 and plays at scene frame 80), so the add-on does.
* **NLA tweak mode**: the action being keyed is a strip's action, evaluated through the strip's
  mapping: ``action_frame_start + (t - frame_start) / scale`` (reversed strips count from the end),
  wrapped into the action's range on every repeat (``nlastrip_get_frame_actionclip``, "EVAL").
  Outside the strip nothing maps: the strip holds its end values there (measured, 5.0.1), so a key
  placed where Blender's own keying would put it (``NLATIME_CONVERT_UNMAP``, the line extended)
  plays only once someone stretches the strip over it.

Outside tweak mode the active action plays at scene time (stretched) on top of the NLA stack; what
its influence and blending do to the keys is :mod:`.outputs`' business.

Where no mapping exists, :func:`action_times` refuses with a message that names why: scene frames
outside the tweaked strip, a strip whose time is animated, two scene frames of a bake landing on one
action time (a range that covers more than one repeat of the strip), or a tweaked action Blender does
not say which strip it belongs to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.types import FloatArray
from .errors import RigSetupError

_SAME_TIME = 1e-4  # frames: two keys closer than this would land on one key


def time_stretch(scene: Any) -> float:
    """Action frames per scene frame (1.0 without Time Stretching)."""
    old, new = scene.render.frame_map_old, scene.render.frame_map_new
    return 1.0 if old == new or new == 0 else old / new


def action_times(obj: Any, scene: Any, frames: FloatArray) -> FloatArray:
    """Action times ``(F,)`` at which keys for the scene ``frames`` of ``obj`` play back.

    Raises:
        RigSetupError: No such mapping (see module doc); the message names the strip and why.
    """
    times = np.asarray(frames, dtype=np.float64) * time_stretch(scene)
    strip = tweaked_strip(obj)
    if strip is None:
        return times
    if strip.use_animated_time:
        raise RigSetupError(f"{obj.name!r} is in NLA tweak mode on strip {strip.name!r}, whose Strip Time is "
                            "animated: scene frames do not map to fixed action frames, so keys cannot be placed; "
                            "turn off Animated Strip Time or leave tweak mode")
    clip = strip_clip(strip)
    outside = np.flatnonzero((times < clip.start - _SAME_TIME) | (times > clip.end + _SAME_TIME))
    if outside.size:
        shown = float(frames[outside[0]])
        raise RigSetupError(f"{obj.name!r} is in NLA tweak mode on strip {strip.name!r}, which plays scene frames "
                            f"{_scene(scene, clip.start):g} to {_scene(scene, clip.end):g}: frame "
                            f"{shown:g} is outside it, where the strip holds its end pose and keys would not play; "
                            "key inside the strip, or lengthen the strip first")
    mapped = np.array([strip_time(clip, float(t)) for t in times], dtype=np.float64)
    order = np.sort(mapped)
    if len(order) > 1 and float(np.min(np.diff(order))) < _SAME_TIME:
        clash = np.flatnonzero(np.abs(mapped[:, None] - mapped[None, :]) < _SAME_TIME)
        first, second = divmod(int(next(i for i in clash if i // len(mapped) != i % len(mapped))), len(mapped))
        raise RigSetupError(f"NLA strip {strip.name!r} of {obj.name!r} repeats its action ({strip.repeat:g} times): "
                            f"scene frames {frames[first]:g} and {frames[second]:g} both play action frame "
                            f"{mapped[first]:g}, so one key cannot serve both; bake one repeat at a time (the first "
                            f"plays from frame {_scene(scene, clip.start):g} up to, not including, frame "
                            f"{_scene(scene, clip.start + clip.cycle):g})")
    return mapped


def action_time(obj: Any, scene: Any, frame: float) -> float:
    """The action time of one scene frame (see :func:`action_times`)."""
    return float(action_times(obj, scene, np.array([frame], dtype=np.float64))[0])


def tweaked_strip(obj: Any) -> Any | None:
    """The NLA strip whose action ``obj`` is keying in tweak mode, or None outside tweak mode.

    Blender keeps that strip internally (``AnimData.actstrip``) without exposing it to Python. It is
    the active strip playing the tweaked action (clicking a strip makes it active, then Tab), else
    the strip of the active (else last selected) track that is active, else selected, playing it
    (``BKE_nla_tweakmode_enter``). When that does not settle it, the strips that play the action
    must agree on the mapping.
    """
    anim = obj.animation_data
    if anim is None or not anim.use_tweak_mode or anim.action is None or not anim.use_nla:
        return None  # with the NLA off the tweaked action plays at scene time (:mod:`.outputs` refuses that)
    action = anim.action
    candidates = [s for t in anim.nla_tracks for s in t.strips if s.action == action]
    if not candidates:
        return None
    active = [s for s in candidates if s.active]
    if len(active) == 1:
        return active[0]
    track = anim.nla_tracks.active or next((t for t in reversed(anim.nla_tracks) if t.select), None)
    if track is not None:
        for flag in ("active", "select"):
            chosen = [s for s in track.strips if s.action == action and getattr(s, flag)]
            if chosen:
                return chosen[0]
    if len({_mapping(s) for s in candidates}) == 1:
        return candidates[0]
    names = ", ".join(repr(s.name) for s in candidates)
    raise RigSetupError(f"{obj.name!r} is in NLA tweak mode on action {action.name!r}, which strips {names} play "
                        "with different timing, and Blender does not tell which one is being tweaked; make that "
                        "strip's track the active one, or leave tweak mode")


def tweaked_track(obj: Any, strip: Any) -> Any | None:
    """The NLA track holding ``strip`` (top-level strips)."""
    anim = obj.animation_data
    return next((t for t in anim.nla_tracks if any(s == strip for s in t.strips)), None) if anim else None


def _scene(scene: Any, time: float) -> float:
    """The scene frame that plays at (stretched) time ``time``."""
    return time / time_stretch(scene)


def _mapping(strip: Any) -> tuple[float, ...]:
    return (strip.frame_start, strip.frame_end, strip.action_frame_start, strip.action_frame_end, strip.scale,
            strip.repeat, float(strip.use_reverse))


def _scale(strip: Any) -> float:
    scale = abs(strip.scale)
    return scale if scale > 1e-9 else 1.0


@dataclass(frozen=True)
class Clip:
    """How a strip maps time while it is tweaked (:func:`strip_clip`): scene times ``start``-``end``
    play action frames ``first``-``last``, ``scale`` scene frames per action frame, repeated."""

    start: float
    end: float
    first: float
    last: float
    scale: float
    repeat: float
    reverse: bool

    @property
    def cycle(self) -> float:
        """Scene frames one repeat of the action takes."""
        length = self.last - self.first
        return (length if abs(length) > 1e-9 else 1.0) * self.scale


def strip_clip(strip: Any) -> Clip:
    """The mapping of a tweaked strip. With Sync Length on (the default), Blender plays the tweaked
    strip over its action's whole frame range, anchored where the strip starts (measured, 5.0.1: a
    strip at 101 clipped to action frames 5-15 plays action frame 19 at scene frame 115 while
    tweaked, and leaving tweak mode stretches it to 97-116); repeated or reversed strips keep their
    stored range."""
    scale = _scale(strip)
    start, first = strip.frame_start, strip.action_frame_start
    clip = Clip(start, strip.frame_end, first, strip.action_frame_end, scale, strip.repeat, strip.use_reverse)
    action = strip.action
    if strip.use_sync_length and action is not None and math.isclose(strip.repeat, 1.0) and not strip.use_reverse:
        low, high = action.frame_range
        if high - low > 1e-6:
            clip = Clip(start + (low - first) * scale, start + (high - first) * scale, low, high, scale, 1.0, False)
    return clip


def strip_time(clip: Clip, t: float) -> float:
    """The action time a tweaked strip (its :class:`Clip`) plays at (already stretched) scene time
    ``t`` inside it: Blender's ``nlastrip_get_frame_actionclip`` ("EVAL": each repeat wraps into the
    action's range)."""
    start, end, first, last, scale, cycle = clip.start, clip.end, clip.first, clip.last, clip.scale, clip.cycle
    t = min(max(t, start), end)
    whole = math.isclose(clip.repeat, math.floor(clip.repeat))
    if clip.reverse:
        if math.isclose(t, end) and whole:
            return float(first)
        return float(last - math.fmod(t - start, cycle) / scale)
    if math.isclose(t, end) and whole:
        return float(last)
    return float(first + math.fmod(t - start, cycle) / scale)
