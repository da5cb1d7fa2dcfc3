"""A chain's Influence (0..1, animatable): the solved rotations blended with the bones' own keys.

This is the IK/FK blend animators key, and it works like a constraint's influence: per bone, the
rotation the bone's own keys give at that frame (the FK pose) turned toward the solved rotation
(the IK pose, after the comfort blend of :func:`.solving.finish_frames`) by the influence.

The FK pose, "what the bones' own keys give at that frame":

* Read from the F-curves of the action the armature plays (in NLA tweak mode the tweaked strip's
  action), evaluated at the frame's action time (:mod:`.action_time`: Time Stretching, the tweaked
  strip's mapping). Never from the pose bones: the add-on writes the blended pose into those same
  channels, live and in keys, so a channel read back would be our own last write (an unkeyed bone
  would creep toward the IK pose frame after frame, and a frame's pose would depend on the frames
  played before it).
* An array index without an F-curve (or whose F-curve is muted, or has no key) counts as the rest
  value: Euler 0, quaternion ``(1, 0, 0, 0)``, axis-angle ``(0, 0, 1, 0)``. Its current value is the
  add-on's own write, not the animator's.
* The NLA is not evaluated: where it would change what plays on the chain's channels (a strip that
  animates them, the action's influence or blending over tracks, a solo track, ...;
  :func:`.outputs.nla_overrides`), an influence below 1 is refused by name. F-curve modifiers are
  honoured (``FCurve.evaluate`` applies them), drivers on the channels are refused anyway.

The influence, each frame its own value:

* Live: the spec's value. The view layer's evaluation copies an animated value back to the stored
  settings before the frame handler runs, so the spec read there is this frame's value; a render
  depsgraph does not copy back, so during renders it is read from the evaluated object.
* Bake: the Influence's F-curve in the armature's action (:func:`influence_paths`) at each frame's
  action time; when a driver or an NLA strip animates it, the frames are stepped and the evaluated
  value read. Without either, the spec's value on every frame.

The blend, per bone and frame, at influence ``t`` (clamped to 0..1):

* ``t == 1``: the solved angles untouched, and nothing is read: bit for bit the pose without
  Influence, at no cost.
* ``t == 0``: exactly the FK pose. Bones in Euler mode in their joint's own order (the usual bone)
  get their channel values as keyed; other modes the same rotation through the joint's angles.
* Between: ``FK.slerp(IK, t)`` of the two rotations as quaternions (the shortest way round, as
  Blender's constraint influence interpolates rotations), back to the joint's Euler angles nearest
  the solved ones, free axes clamped into the chain's limits (a slerp between two poses inside an
  Euler box can leave it slightly; Limit Rotation would clamp it at playback). Euler bones are
  blended like any other: on a hinge (one free axis, the usual Euler joint) the slerp is the plain
  mix of the two angles, and on ball joints it avoids the wobble of mixing Euler triples; the
  angles nearest the solved ones keep the curves from jumping by whole turns.

The written pose is then put in the bone's own rotation mode by :mod:`.write`, as solved poses are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import bpy
import numpy as np
from mathutils import Euler, Quaternion

from ..core.rotations import euler_to_matrix
from ..core.types import FloatArray
from .action_time import action_time
from .errors import RigSetupError
from .guard import suspended
from .keys import bone_path, fcurve_collection
from .outputs import nla_overrides
from .read import ChainBinding
from .settings import rig_settings
from .solving import FrameSolution, PreparedChain
from .spec import ChainSpec
from .status import frames_phrase
from .write import channel

_REST = {"rotation_euler": (0.0, 0.0, 0.0), "rotation_quaternion": (1.0, 0.0, 0.0, 0.0),
         "rotation_axis_angle": (0.0, 0.0, 1.0, 0.0)}
_LAYERED = hasattr(bpy.types, "ActionSlot")  # 4.4+: a muted group does not mute its curves

# (object name, chain name) -> (scene frame, (4, 4) world matrix of the blended pose's tip): what Key
# Current Frame's playback check compares the played tip with (:func:`blended_goal`).
_GOALS: dict[tuple[str, str], tuple[float, FloatArray]] = {}


def forget() -> None:
    """Drop the live pass's blended tips (file load, unregister)."""
    _GOALS.clear()


def influence_paths(obj: Any, chain: str) -> tuple[str, ...]:
    """The data paths that animate a stored chain's Influence on the armature object: by index
    (``ik_chains.chains[0].influence``, what Insert Keyframe on the slider writes) and by name
    (``ik_chains.chains["arm"].influence``, which scripts may use). None when it is not stored."""
    settings = rig_settings(obj)
    index = settings.chains.find(chain) if settings is not None else -1
    if index < 0:
        return ()
    return f"ik_chains.chains[{index}].influence", f'ik_chains.chains["{bpy.utils.escape_identifier(chain)}"].influence'


def describe(influence: float) -> str:
    """The status note of a pose blended with the keys: ``"blended at influence 0.4 with the bones' keys"``."""
    return f"blended at influence {influence:.3g} with the bones' keys"


# --- The influence --------------------------------------------------------------------------------


def live_influence(spec: ChainSpec, depsgraph: Any, obj_eval: Any) -> float:
    """The chain's influence at the depsgraph's frame (0..1), for the live pass."""
    value = spec.influence
    if depsgraph.mode == "RENDER":  # a render's evaluation is not copied back to the stored settings
        settings = rig_settings(obj_eval)
        stored = settings.chains.get(spec.name) if settings is not None else None
        if stored is not None:
            value = stored.influence
    return min(max(float(value), 0.0), 1.0)


def influence_animated(obj: Any, chain: str) -> bool:
    """True if an F-curve or a driver of the armature animates the chain's Influence."""
    anim = obj.animation_data
    if anim is None:
        return False
    fcurves = fcurve_collection(obj, create=False)
    return any(anim.drivers.find(path) is not None or (fcurves is not None and fcurves.find(path) is not None)
               or _nla_animates(anim, path) for path in influence_paths(obj, chain))


def frame_influences(scene: Any, obj: Any, spec: ChainSpec, frames: FloatArray, times: FloatArray) -> FloatArray:
    """``(F,)`` the chain's influence at scene ``frames`` (action ``times``), 0..1; see the module doc."""
    values = np.full(len(frames), float(spec.influence))
    anim = obj.animation_data
    paths = influence_paths(obj, spec.name) if anim is not None else ()
    if any(anim.drivers.find(path) is not None or _nla_animates(anim, path) for path in paths):
        return np.clip(_stepped(scene, obj, spec.name, frames), 0.0, 1.0)
    fcurves = fcurve_collection(obj, create=False) if paths else None
    for path in paths:
        fcurve = fcurves.find(path) if fcurves is not None else None
        if fcurve is not None and _plays(fcurve):
            values = np.array([fcurve.evaluate(float(t)) for t in times], dtype=np.float64)
    return np.clip(values, 0.0, 1.0)


def _nla_animates(anim: Any, path: str) -> bool:
    """An NLA strip's action (any slot) has an F-curve of ``path``."""
    if not anim.use_nla:
        return False
    for track in anim.nla_tracks:
        for strip in track.strips:
            action = strip.action
            if action is None:
                continue
            if not _LAYERED:
                if action.fcurves.find(path) is not None:
                    return True
                continue
            if any(bag.fcurves.find(path) is not None for layer in action.layers for keys in layer.strips
                   for bag in keys.channelbags):
                return True
    return False


def _stepped(scene: Any, obj: Any, chain: str, frames: FloatArray) -> FloatArray:
    """The chain's evaluated influence at each frame, the frames stepped (live solving suspended)."""
    original = (scene.frame_current, scene.frame_subframe)
    out = np.empty(len(frames))
    with suspended():
        try:
            for i, frame in enumerate(frames):
                whole = math.floor(float(frame))
                scene.frame_set(int(whole), subframe=float(frame) - whole)
                rig = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
                out[i] = rig.ik_chains.chains[chain].influence
        finally:
            scene.frame_set(original[0], subframe=original[1])
    return out


# --- The FK pose ----------------------------------------------------------------------------------


def require_own_keys(obj: Any, chain: str, binding: ChainBinding) -> None:
    """Raise :class:`RigSetupError` when what plays on the chain's rotation channels is not the
    action's F-curves alone (the NLA changes it): the FK pose could not be read."""
    bones = [obj.pose.bones[name] for name in binding.bone_names]
    problems = nla_overrides(obj, bones)
    if problems:
        more = len(problems) - 1
        tail = f" (and {more} more)" if more else ""
        raise RigSetupError(f"chain {chain!r}: Influence below 1 blends with the bones' own keys, which the add-on "
                            f"reads from the action alone, but {problems[0]}{tail}; bake the NLA into the action "
                            "(or mute what plays over it), or set Influence to 1")


def fk_channels(obj: Any, binding: ChainBinding, times: FloatArray) -> list[FloatArray]:
    """Per chain bone, ``(F, k)`` its rotation channel as its keys play it at the action ``times``."""
    fcurves = fcurve_collection(obj, create=False)
    out = []
    for bone in binding.bones:
        path = channel(bone.rotation_mode)[0]
        values = np.tile(np.array(_REST[path]), (len(times), 1))
        if fcurves is not None:
            full_path = bone_path(bone.name, path)
            for index in range(values.shape[1]):
                fcurve = fcurves.find(full_path, index=index)
                if fcurve is not None and _plays(fcurve):
                    values[:, index] = [fcurve.evaluate(float(t)) for t in times]
        out.append(values)
    return out


def _plays(fcurve: Any) -> bool:
    group = fcurve.group
    muted = fcurve.mute or (not _LAYERED and group is not None and group.mute)
    return not muted and len(fcurve.keyframe_points) > 0


def _quaternion(mode: str, values: FloatArray) -> Quaternion:
    """A rotation channel's values as a unit quaternion."""
    if mode == "QUATERNION":
        quat = Quaternion(values.tolist())
        return quat.normalized() if quat.magnitude > 0 else Quaternion()
    if mode == "AXIS_ANGLE":
        angle, *axis = values.tolist()
        return Quaternion(axis, angle) if any(axis) else Quaternion()
    return Euler(values.tolist(), mode).to_quaternion()


# --- The blend ------------------------------------------------------------------------------------


def blend_angles(binding: ChainBinding, solved: FloatArray, fk: list[FloatArray], influence: FloatArray) -> FloatArray:
    """``(F, n, 3)`` joint angles (parameter order) of the pose blended from the FK channels ``fk``
    toward the ``solved`` angles by ``influence`` ``(F,)`` (see the module doc)."""
    out = np.array(solved, dtype=np.float64)
    for f in np.flatnonzero(influence < 1.0):
        t = float(influence[f])
        for j, (bone, joint) in enumerate(zip(binding.bones, binding.chain.joints, strict=True)):
            mode, keyed, ik = bone.rotation_mode, fk[j][f], solved[f, j]
            if t <= 0.0 and mode == bone.order:
                out[f, j] = keyed  # the channel values as keyed, bit for bit
                continue
            nearest = Euler(ik.tolist(), bone.order)
            if t <= 0.0:
                out[f, j] = np.array(_quaternion(mode, keyed).to_euler(bone.order, nearest))
                continue
            ik_quat = nearest.to_quaternion()
            blended = np.array(_quaternion(mode, keyed).slerp(ik_quat, t).to_euler(bone.order, nearest))
            free = np.array(joint.free)
            out[f, j] = np.where(free, np.minimum(np.maximum(blended, joint.lower), joint.upper), blended)
    return out


def tip_matrices(binding: ChainBinding, bases: FloatArray, angles: FloatArray,
                 factors: FloatArray | None = None) -> FloatArray:
    """``(F, 4, 4)`` world matrices of the chain's tip (location: the tip; rotation: the tip bone's)
    for joint angles ``(F, n, 3)``, locked axes at the values given, and a stretching chain's length
    factors ``(F, n)`` (each bone scaled by its scale channels' value, as Blender plays them)."""
    chain = binding.chain
    count = len(angles)
    channel = None if factors is None else chain.channel_scales(chain.compress(angles, factors))
    frame = np.broadcast_to(np.eye(4), (count, 4, 4)).copy()
    turn = np.zeros((count, 4, 4))
    turn[:, 3, 3] = 1.0
    for j, bone in enumerate(binding.bones):
        turn[:, :3, :3] = euler_to_matrix(angles[:, j], bone.order)
        if channel is not None:
            turn[:, :3, :3] *= channel[:, j, None, None]
        frame = frame @ chain.rest[j] @ turn
    frame[:, :3, 3] += frame[:, :3, :3] @ chain.tip_offset
    return np.asarray(np.broadcast_to(bases, (count, 4, 4)) @ frame)


# --- Live -----------------------------------------------------------------------------------------


def blend_live(obj: Any, spec: ChainSpec, binding: ChainBinding, solution: FrameSolution, base: FloatArray,
               scene: Any, frame: float, influence: float) -> FrameSolution:
    """The live pass's one frame (``solution.angles`` ``(1, n, 3)``) blended with the bones' keys at
    ``influence`` (below 1). The world tip of the blended pose is kept for :func:`blended_goal`.

    Raises:
        RigSetupError: The keys cannot be read (:func:`require_own_keys`), or the frame has no
            action time (:func:`.action_time.action_time`).
    """
    require_own_keys(obj, spec.name, binding)
    times = np.array([action_time(obj, scene, frame)], dtype=np.float64)
    angles = blend_angles(binding, solution.angles, fk_channels(obj, binding, times), np.array([influence]))
    factors = blend_factors(solution.scales, np.array([influence]))
    _GOALS[(obj.name, spec.name)] = (frame, tip_matrices(binding, base, angles, factors)[0])
    return replace(solution, angles=angles, scales=factors)


def blend_factors(factors: FloatArray | None, influence: FloatArray) -> FloatArray | None:
    """A stretching chain's length factors ``(F, n)`` at each frame's ``influence``: from the rest
    length (1; the keys' pose does not stretch) toward the solved factors, linearly."""
    if factors is None:
        return None
    weight = np.clip(np.asarray(influence, dtype=np.float64), 0.0, 1.0)[:, None]
    return np.asarray(1.0 + weight * (factors - 1.0))


def unblended(obj: Any, chain: str) -> None:
    """The live pass solved ``chain`` at influence 1: it has no blended tip any more."""
    _GOALS.pop((obj.name, chain), None)


def blended_goal(obj: Any, chain: str, frame: float) -> FloatArray | None:
    """``(4, 4)`` the world tip of the pose the live pass blended for ``chain`` at ``frame`` (None
    when it did not blend that frame: influence 1, or another frame since)."""
    kept = _GOALS.get((obj.name, chain))
    return kept[1] if kept is not None and kept[0] == frame else None


# --- Bake -----------------------------------------------------------------------------------------


@dataclass
class BakeBlend:
    """One chain's influence and FK pose over a bake's frames, read before any key is written.

    Attributes:
        influence: ``(F,)`` each frame's influence, 0..1 (below 1 on some frame).
        fk: Per chain bone, ``(F, k)`` its rotation channel as its keys played before the bake.
        goals: ``(F, 4, 4)`` world tip of each frame's written pose, once :func:`blend_bake` ran.
    """

    influence: FloatArray
    fk: list[FloatArray]
    goals: FloatArray | None = field(default=None)

    def blended_frames(self, frames: FloatArray) -> tuple[int, ...]:
        """The scene frames whose influence is below 1."""
        return tuple(int(f) for f in frames[self.influence < 1.0])

    def goals_at(self, frames: FloatArray) -> dict[float, FloatArray]:
        """Scene frame -> the blended tip (:class:`.verify.PlayedChain`'s ``goals``), for the frames
        whose influence is below 1."""
        if self.goals is None:
            return {}
        return {float(frames[f]): self.goals[f] for f in np.flatnonzero(self.influence < 1.0)}


def read_bake_blends(scene: Any, obj: Any, prepared: dict[str, PreparedChain], frames: FloatArray,
                     times: FloatArray) -> dict[str, BakeBlend]:
    """Each chain whose influence is below 1 on some of the ``frames``: its influences and FK pose.

    Raises:
        RigSetupError: The NLA keeps the keys of such a chain from being read (:func:`require_own_keys`).
    """
    out = {}
    for name, item in prepared.items():
        influence = frame_influences(scene, obj, item.spec, frames, times)
        if bool((influence < 1.0).any()):
            require_own_keys(obj, name, item.binding)
            out[name] = BakeBlend(influence, fk_channels(obj, item.binding, times))
    return out


def blend_bake(item: PreparedChain, solution: FrameSolution, bases: FloatArray,
               blend: BakeBlend | None) -> FrameSolution:
    """The solved frames blended with the keys read before the bake (``solution`` itself when the
    influence is 1 on every frame); the blended tips go to ``blend.goals``."""
    if blend is None:
        return solution
    angles = blend_angles(item.binding, solution.angles, blend.fk, blend.influence)
    factors = blend_factors(solution.scales, blend.influence)
    blend.goals = tip_matrices(item.binding, bases, angles, factors)
    return replace(solution, angles=angles, scales=factors)


def bake_note(blend: BakeBlend, frames: FloatArray) -> str:
    """``"blended with its keys at influence 0-0.9 on frames 1-19: its rotation keys there now hold
    the blended pose"``."""
    low = blend.influence[blend.influence < 1.0]
    span = f"{low.min():.3g}" if low.min() == low.max() else f"{low.min():.3g}-{low.max():.3g}"
    return (f"blended with its keys at influence {span} on {frames_phrase(blend.blended_frames(frames))}: the bake "
            "replaced its rotation keys there by the blended pose")
