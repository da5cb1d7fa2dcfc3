"""Outputs that play: ``outputs.require_playable`` refuses rotation channels whose keys would not play.

Each refused situation is set up as an animator makes it, and the test also shows the premise: a key
written there by the add-on (``keys.write_channel_keys``, what the bake uses) does not play back
after ``frame_set``. Each accepted neighbour is shown to play.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np
import pytest
from blender_rigs import straight_chain

from blender_ik_addon.blender import keys
from blender_ik_addon.blender.errors import RigSetupError
from blender_ik_addon.blender.outputs import playback_problems, require_playable
from blender_ik_addon.blender.write import channel

LAYERED = hasattr(bpy.types, "ActionSlot")  # 4.4+
FRAMES = (1.0, 3.0, 5.0, 7.0, 9.0)
EULER = (0.3, 0.2, 0.1)
QUAT = (0.9234, 0.3078, 0.2052, 0.1026)  # unit length
LOW = {"XYZ": (0.1, -0.2, 0.4), "QUATERNION": (0.8, -0.1, 0.4, 0.2)}
B1 = 'pose.bones["b1"]'


def rig(mode: str = "XYZ") -> bpy.types.Object:
    """Two bones; ``b1`` in ``mode``, ``b0`` in XYZ."""
    obj = straight_chain(2)
    obj.pose.bones["b0"].rotation_mode = "XYZ"
    obj.pose.bones["b1"].rotation_mode = mode
    return obj


def write(obj: bpy.types.Object, value: Sequence[float], bone: str = "b1", ramp: float = 0.0) -> None:
    """Key ``value`` at FRAMES through the add-on (plus ``ramp`` * frame on index 0)."""
    path, _ = channel(obj.pose.bones[bone].rotation_mode)
    values = np.tile(np.asarray(value, dtype=float), (len(FRAMES), 1))
    values[:, 0] += ramp * np.asarray(FRAMES)
    keys.write_channel_keys(obj, bone, path, np.asarray(FRAMES), values, FRAMES[0], FRAMES[-1])


def played(obj: bpy.types.Object, bone: str = "b1", frame: int = 5) -> np.ndarray:
    """The evaluated channel at ``frame``; a sentinel is set first, so an unanimated channel shows it."""
    pbone = obj.pose.bones[bone]
    path, size = channel(pbone.rotation_mode)
    setattr(pbone, path, [0.9] * size)
    bpy.context.scene.frame_set(frame)
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    return np.array(getattr(evaluated.pose.bones[bone], path))


def plays(obj: bpy.types.Object, value: Sequence[float], bone: str = "b1", frame: int = 5) -> bool:
    return bool(np.allclose(played(obj, bone, frame), value, atol=1e-4))


def refusal(obj: bpy.types.Object, bones: Sequence[str] = ("b1",), chain: str = "arm") -> str:
    with pytest.raises(RigSetupError) as info:
        require_playable(obj, chain, [obj.pose.bones[b] for b in bones])
    return str(info.value)


def accepted(obj: bpy.types.Object, bones: Sequence[str] = ("b1",)) -> bool:
    require_playable(obj, "arm", [obj.pose.bones[b] for b in bones])
    return True


def fcurve(obj: bpy.types.Object, index: int, path: str = "rotation_euler") -> bpy.types.FCurve:
    fcurves = keys.fcurve_collection(obj, create=False)
    return fcurves.find(f"{B1}.{path}", index=index)


def animator_keys(obj: bpy.types.Object, value: Sequence[float], bone: str = "b1") -> None:
    """Pose and key (I) at frames 1 and 9, as an animator does."""
    pbone = obj.pose.bones[bone]
    path, _ = channel(pbone.rotation_mode)
    for frame in (1, 9):
        bpy.context.scene.frame_set(frame)
        setattr(pbone, path, value)
        pbone.keyframe_insert(path, frame=frame)


def push_down(obj: bpy.types.Object, name: str) -> tuple[bpy.types.NlaTrack, bpy.types.NlaStrip]:
    """NLA "Push Down": the action onto a new track on top, the object left without an action."""
    anim = obj.animation_data
    action = anim.action
    action.name = name
    track = anim.nla_tracks.new()
    track.name = name
    strip = track.strips.new(name, int(action.frame_range[0]), action)
    anim.action = None
    return track, strip


def strip_below(obj: bpy.types.Object, mode: str, bone: str = "b1") -> tuple[bpy.types.NlaTrack, bpy.types.NlaStrip]:
    """A pushed-down action animating ``bone`` (LOW values) under the object's action."""
    animator_keys(obj, LOW[mode] if obj.pose.bones[bone].rotation_mode == mode else LOW["XYZ"], bone)
    return push_down(obj, "Walk")


# --- Nothing set up, plain keys ---------------------------------------------------------------


def test_plain_keys_play_and_pass() -> None:
    obj = rig()
    assert playback_problems(obj, [obj.pose.bones["b1"]]) == []  # no animation data at all
    write(obj, EULER)
    assert accepted(obj, ("b0", "b1")) and plays(obj, EULER)
    assert playback_problems(obj, [obj.data.bones["b1"]]) == []  # Bone works as well as PoseBone


# --- F-curves ---------------------------------------------------------------------------------


def test_muted_fcurve() -> None:
    obj = rig()
    write(obj, (0.0, 0.0, 0.0))
    fcurve(obj, 0).mute = True  # the channel's checkbox in the Graph Editor
    assert refusal(obj) == (f"chain 'arm': F-curve {B1}.rotation_euler[0] is muted, so keys written there would "
                            "not play; unmute it")
    write(obj, EULER)
    assert played(obj)[0] == pytest.approx(0.9)  # the key (0.3) does not play
    fcurve(obj, 0).mute = False
    assert accepted(obj) and plays(obj, EULER)


def test_muted_group() -> None:
    """A muted action group stops its F-curves in 4.2 (legacy actions) only; 4.4+ plays them."""
    obj = rig()
    write(obj, (0.0, 0.0, 0.0))
    fcurve(obj, 0).group.mute = True
    write(obj, EULER)
    if LAYERED:
        assert accepted(obj) and plays(obj, EULER)
        return
    assert refusal(obj) == (f"chain 'arm': F-curve {B1}.rotation_euler[0] is in the muted group 'b1', so keys "
                            "written there would not play; unmute the group (and 2 more problems)")
    assert np.allclose(played(obj), 0.9)


@pytest.mark.parametrize("what", ["curve", "group"])
def test_locked_fcurve_or_group(what: str) -> None:
    """Evaluation ignores locks, but Blender's own keying refuses a locked curve: so does the add-on."""
    obj = rig()
    write(obj, (0.0, 0.0, 0.0))
    fc = fcurve(obj, 0)
    if what == "curve":
        fc.lock = True
        expected = (f"F-curve {B1}.rotation_euler[0] is locked against editing, so keys may not be written there; "
                    "unlock it")
    else:
        fc.group.lock = True
        expected = (f"F-curve {B1}.rotation_euler[0] is in the locked group 'b1', so keys may not be written there; "
                    "unlock the group (and 2 more problems)")
    assert refusal(obj) == f"chain 'arm': {expected}"
    pbone = obj.pose.bones["b1"]
    pbone.rotation_euler = EULER
    pbone.keyframe_insert("rotation_euler", frame=5)  # Blender: "doesn't allow inserting keys"
    assert [round(k.co[1], 6) for k in fc.keyframe_points] == [0.0] * len(FRAMES)


def test_sampled_fcurve() -> None:
    obj = rig()
    write(obj, (0.0, 0.0, 0.0))
    fcurve(obj, 0).convert_to_samples(1, 9)  # Graph Editor: Keys to Samples
    assert refusal(obj) == (f"chain 'arm': F-curve {B1}.rotation_euler[0] holds sampled points instead of keys "
                            "(Keys to Samples), so keys cannot be written there; convert it back with Samples to Keys")
    with pytest.raises(RuntimeError):
        write(obj, EULER)  # keyframe_points.add does nothing there: the bulk write fails


def _limits(mod: bpy.types.FModifier) -> None:
    mod.use_max_y, mod.max_y = True, 0.35


def _envelope(mod: bpy.types.FModifier) -> None:
    point = mod.control_points.add(1)
    point.min, point.max = -1.0, 2.0


def _stepped(mod: bpy.types.FModifier) -> None:
    mod.frame_step = 2.0


@pytest.mark.parametrize(("kind", "label", "setup"), [
    ("NOISE", "Noise", None), ("GENERATOR", "Generator", None), ("FNGENERATOR", "Built-In Function", None),
    ("LIMITS", "Limits", _limits), ("ENVELOPE", "Envelope", _envelope), ("STEPPED", "Stepped Interpolation", _stepped),
])
def test_modifier_that_changes_values(kind: str, label: str, setup: object) -> None:
    obj = rig()
    write(obj, EULER, ramp=0.05)
    mod = fcurve(obj, 0).modifiers.new(kind)
    if callable(setup):
        setup(mod)
    assert refusal(obj) == (f"chain 'arm': F-curve {B1}.rotation_euler[0] has modifier {mod.name!r} ({label}), "
                            "which changes the values it plays, so keys written there would not play as written; "
                            "mute or remove the modifier")
    written = EULER[0] + 0.05 * 5
    assert played(obj)[0] != pytest.approx(written, abs=1e-4)
    mod.mute = True  # the fix
    assert accepted(obj) and played(obj)[0] == pytest.approx(written, abs=1e-5)


def test_modifier_with_restricted_range_is_named_with_it() -> None:
    obj = rig()
    write(obj, EULER)
    mod = fcurve(obj, 1).modifiers.new("NOISE")
    mod.use_restricted_range, mod.frame_start, mod.frame_end = True, 20.0, 30.0
    assert refusal(obj).startswith(f"chain 'arm': F-curve {B1}.rotation_euler[1] has modifier 'Noise' (Noise, "
                                   "frames 20-30), which changes")


@pytest.mark.parametrize("case", ["cycles", "influence 0", "empty envelope"])
def test_modifiers_that_keep_values(case: str) -> None:
    obj = rig()
    write(obj, EULER, ramp=0.05)
    fc = fcurve(obj, 0)
    if case == "cycles":
        fc.modifiers.new("CYCLES")  # repeats the keys outside their range only
    elif case == "influence 0":
        mod = fc.modifiers.new("NOISE")
        mod.use_influence, mod.influence = True, 0.0
    else:
        fc.modifiers.new("ENVELOPE")
    assert accepted(obj)
    for frame in (3, 5, 8):
        assert played(obj, frame=frame)[0] == pytest.approx(EULER[0] + 0.05 * frame, abs=1e-5)


# --- Drivers (scene_checks.refuse_drivers) ----------------------------------------------------


def test_driver_on_the_channel() -> None:
    obj = rig()
    write(obj, EULER)
    driver = obj.pose.bones["b1"].driver_add("rotation_euler", 2)
    driver.driver.expression = "0.7"
    assert refusal(obj) == ("chain 'arm': bone 'b1': a driver sets rotation_euler[2], so the solved pose would be "
                            "overridden; remove or mute the driver")
    assert played(obj)[2] == pytest.approx(0.7)
    driver.mute = True
    assert accepted(obj) and plays(obj, EULER)


def test_driver_on_another_channel() -> None:
    obj = rig()
    write(obj, EULER)
    obj.pose.bones["b1"].driver_add("location", 0).driver.expression = "0.5"
    assert accepted(obj) and plays(obj, EULER)


# --- The action over NLA strips ---------------------------------------------------------------


@pytest.mark.parametrize("below", ["same bone", "other bone"])
def test_influence_below_one_over_strips(below: str) -> None:
    obj = rig()
    strip_below(obj, "XYZ", "b1" if below == "same bone" else "b0")
    write(obj, EULER)
    obj.animation_data.action_influence = 0.5
    assert refusal(obj, ("b0", "b1")) == (
        "chain 'arm': action 'RigAction' plays at influence 0.5 over NLA track 'Walk', so keys on "
        f'pose.bones["b0"].rotation_euler, {B1}.rotation_euler would play blended with them; set the action\'s '
        "influence to 1")
    assert not plays(obj, EULER)
    obj.animation_data.action_influence = 1.0
    assert accepted(obj) and plays(obj, EULER)


@pytest.mark.parametrize("how", ["no tracks", "muted track", "empty track", "NLA off"])
def test_influence_below_one_without_nla_in_play(how: str) -> None:
    """Blender plays the action alone (influence unused) unless an evaluated NLA track holds a strip."""
    obj = rig()
    if how in ("muted track", "NLA off"):
        track, _ = strip_below(obj, "XYZ")
        track.mute = how == "muted track"
    write(obj, EULER)
    anim = obj.animation_data
    if how == "empty track":
        anim.nla_tracks.new()
    anim.use_nla = how != "NLA off"
    anim.action_influence = 0.5
    anim.action_blend_type = "ADD"
    assert accepted(obj) and plays(obj, EULER)


BLEND_CASES = [(mode, blend, below) for mode in ("XYZ", "QUATERNION")
               for blend in ("REPLACE", "COMBINE", "ADD", "SUBTRACT", "MULTIPLY") for below in ("b1", "b0")]


@pytest.mark.parametrize(("mode", "blend", "below"), BLEND_CASES)
def test_blending_over_strips_refused_exactly_when_it_does_not_play(mode: str, blend: str, below: str) -> None:
    """Replace plays; Subtract and Multiply never do; Add and Combine only where nothing below animates
    the channel, except Add on a quaternion (its W adds to the default 1)."""
    obj = rig(mode)
    strip_below(obj, mode, below)
    value = QUAT if mode == "QUATERNION" else EULER
    write(obj, value)
    obj.animation_data.action_blend_type = blend
    problems = playback_problems(obj, [obj.pose.bones["b1"]])
    assert bool(problems) == (not plays(obj, value))
    expected_refused = blend in ("SUBTRACT", "MULTIPLY") or (
        blend != "REPLACE" and (below == "b1" or (blend == "ADD" and mode == "QUATERNION")))
    assert bool(problems) == expected_refused


def test_blending_messages() -> None:
    obj = rig("QUATERNION")
    strip_below(obj, "XYZ", "b0")
    write(obj, QUAT)
    anim = obj.animation_data
    anim.action_blend_type = "ADD"
    assert refusal(obj) == (f"chain 'arm': action 'RigAction' blends as Add, which adds the default 1 to "
                            f"{B1}.rotation_quaternion[0] (W), so keys there would not play as written; set its "
                            "blending to Replace or Combine")
    anim.action_blend_type = "MULTIPLY"
    assert refusal(obj, ("b0", "b1")) == (
        "chain 'arm': action 'RigAction' blends as Multiply, so keys on pose.bones[\"b0\"].rotation_euler, "
        f"{B1}.rotation_quaternion would not play as written; set its blending to Replace")
    anim.action_blend_type = "COMBINE"
    assert refusal(obj, ("b0", "b1")) == (
        "chain 'arm': action 'RigAction' blends as Combine over NLA strip 'Walk' (track 'Walk'), which also "
        "animates pose.bones[\"b0\"].rotation_euler, so keys there would play combined with it; set its blending "
        "to Replace")
    assert accepted(obj) and plays(obj, QUAT)  # b1 alone: nothing below animates it


def test_solo_track() -> None:
    obj = rig()
    track, _ = strip_below(obj, "XYZ")
    write(obj, EULER)
    track.is_solo = True
    assert refusal(obj) == ("chain 'arm': NLA track 'Walk' is solo, so action 'RigAction' does not play; turn off "
                            "the track's Solo")
    assert plays(obj, LOW["XYZ"])
    track.is_solo = False
    assert accepted(obj) and plays(obj, EULER)


# --- Tweak mode -------------------------------------------------------------------------------


def tweak(obj: bpy.types.Object, *, upper: str | None = None, lower: bool = True,
          enter: bool = True) -> tuple[bpy.types.NlaTrack, bpy.types.NlaStrip]:
    """Tracks Walk (LOW on b1, if ``lower``), Edit (zero) and Top (on ``upper``, if given); Edit's strip
    is tweaked (Tab in the NLA editor, lower stack). Returns Edit's track and strip."""
    if lower:
        strip_below(obj, "XYZ")
    animator_keys(obj, (0.0, 0.0, 0.0))
    track, strip = push_down(obj, "Edit")
    if upper is not None:
        animator_keys(obj, (-0.5, 0.5, -0.5), upper)
        push_down(obj, "Top")
    anim = obj.animation_data
    anim.nla_tracks.active = track
    for other in anim.nla_tracks:
        for each in other.strips:
            each.select = each == strip
    if enter:
        anim.use_tweak_mode = True
        assert anim.action.name == "Edit"
    return track, strip


def test_tweaking_a_replace_strip_plays() -> None:
    obj = rig()
    tweak(obj, upper="b0")  # a track above animating another bone does not matter
    obj.animation_data.action_influence = 0.5  # ignored while tweaking: the strip's settings apply
    obj.animation_data.action_blend_type = "ADD"
    write(obj, EULER)
    assert accepted(obj) and plays(obj, EULER)
    obj.animation_data.use_tweak_mode = False
    assert plays(obj, EULER)


def test_track_above_the_tweaked_strip() -> None:
    """Tab evaluates the lower stack only, but the track above overrides the keys once tweaking ends;
    "Start Tweaking (Full Stack)" overrides them at once."""
    obj = rig()
    tweak(obj, upper="b1")
    write(obj, EULER)
    assert refusal(obj) == (f"chain 'arm': NLA strip 'Top' on track 'Top' above the tweaked strip animates "
                            f"{B1}.rotation_euler, so it overrides keys there (with the upper stack evaluated, "
                            "and once tweak mode is left); mute the track or move the strip below it")
    assert plays(obj, EULER)  # lower stack only, while tweaking
    anim = obj.animation_data
    anim.use_tweak_mode = False
    assert plays(obj, (-0.5, 0.5, -0.5))
    windows = bpy.context.window_manager.windows
    if not len(windows):  # Blender started without a window: no NLA editor to run the operator in
        return
    window = windows[0]
    area = window.screen.areas[0]
    kept, area.type = area.type, "NLA_EDITOR"
    try:
        region = next(r for r in area.regions if r.type == "WINDOW")
        with bpy.context.temp_override(window=window, area=area, region=region):
            assert bpy.ops.nla.tweakmode_enter(use_upper_stack_evaluation=True) == {"FINISHED"}
    finally:
        area.type = kept
    assert anim.use_tweak_mode and playback_problems(obj, [obj.pose.bones["b1"]])
    assert plays(obj, (-0.5, 0.5, -0.5))
    anim.nla_tracks["Top"].mute = True  # the fix
    assert accepted(obj) and plays(obj, EULER)


@pytest.mark.parametrize("what", ["track muted", "strip muted", "other track solo"])
def test_tweaked_strip_that_does_not_play(what: str) -> None:
    obj = rig()
    track, strip = tweak(obj)
    write(obj, EULER)
    anim = obj.animation_data
    if what == "track muted":
        track.mute = True
        expected = ("NLA track 'Edit' of the tweaked strip 'Edit' (action 'Edit') is muted, so it does not play; "
                    "unmute the track")
    elif what == "strip muted":
        strip.mute = True
        expected = "NLA strip 'Edit' being tweaked is muted, so action 'Edit' does not play; unmute the strip"
    else:
        anim.nla_tracks["Walk"].is_solo = True
        expected = ("NLA track 'Walk' is solo, so the tweaked strip 'Edit' (action 'Edit') does not play; turn off "
                    "the track's Solo")
    assert refusal(obj) == f"chain 'arm': {expected}"
    assert plays(obj, LOW["XYZ"])


def test_tweaked_track_solo_plays() -> None:
    obj = rig()
    track, _ = tweak(obj, upper="b1")
    write(obj, EULER)
    track.is_solo = True  # only the tweaked track is evaluated: neither Walk nor Top
    assert accepted(obj) and plays(obj, EULER)


def test_nla_off_while_tweaking() -> None:
    """With the NLA off, the tweaked action plays at scene frames, not through its strip."""
    obj = rig()
    _, strip = tweak(obj, lower=False, enter=False)
    strip.frame_start_ui = 101.0  # move the strip: scene frame 105 is action frame 5 through it
    anim = obj.animation_data
    anim.use_tweak_mode = True
    write(obj, EULER, ramp=0.05)  # keys at action frames 1-9
    at_5 = (EULER[0] + 0.25, *EULER[1:])
    assert plays(obj, at_5, frame=105)
    anim.use_nla = False
    assert refusal(obj) == ("chain 'arm': the NLA of 'Rig' is off while tweaking strip 'Edit': Blender then plays "
                            "action 'Edit' at scene frames, not through the strip, so keys placed through the strip "
                            "would play at other frames; turn the NLA back on or leave tweak mode")
    assert not plays(obj, at_5, frame=105)
    assert plays(obj, at_5, frame=5)


@pytest.mark.parametrize("what", ["animated influence", "blend in"])
def test_tweaked_strip_influence(what: str) -> None:
    obj = rig()
    _, strip = tweak(obj, enter=False)
    if what == "blend in":
        strip.blend_in = 8.0
        expected = ("blends in over 8 and out over 0 frames, so keys on pose.bones[\"b1\"].rotation_euler near its "
                    "ends would play blended; set its Blend In and Out to 0")
    else:
        strip.use_animated_influence = True  # keys the influence
        expected = ("has an animated influence below 1, so keys on pose.bones[\"b1\"].rotation_euler would play "
                    "blended with the tracks below; turn off its Animated Influence or key it at 1")
    obj.animation_data.use_tweak_mode = True
    write(obj, EULER)
    if what == "animated influence":
        strip.influence = 0.5
        strip.keyframe_insert("influence", frame=1)
    assert refusal(obj) == f"chain 'arm': NLA strip 'Edit' being tweaked {expected}"
    assert not plays(obj, EULER)
    if what == "animated influence":
        strip.influence = 1.0
        strip.keyframe_insert("influence", frame=1)
        assert accepted(obj) and plays(obj, EULER)


@pytest.mark.parametrize("lower", [True, False])
def test_tweaked_strip_blending(lower: bool) -> None:
    obj = rig()
    _, strip = tweak(obj, lower=lower, enter=False)
    strip.blend_type = "ADD"
    obj.animation_data.use_tweak_mode = True
    write(obj, EULER)
    if not lower:
        assert accepted(obj) and plays(obj, EULER)  # Add over nothing: the default 0
        return
    assert refusal(obj) == ("chain 'arm': NLA strip 'Edit' being tweaked blends as Add over NLA strip 'Walk' (track "
                            f"'Walk'), which also animates {B1}.rotation_euler, so keys there would play combined "
                            "with it; set its blending to Replace")
    assert not plays(obj, EULER)


# --- require_playable -------------------------------------------------------------------------


def test_first_problem_and_how_many_more() -> None:
    obj = rig()
    write(obj, EULER)
    write(obj, EULER, bone="b0")
    for index in range(3):
        fcurve(obj, index).mute = True
    assert len(playback_problems(obj, [obj.pose.bones["b0"], obj.pose.bones["b1"]])) == 3
    assert refusal(obj, ("b0", "b1"), chain="leg") == (
        f"chain 'leg': F-curve {B1}.rotation_euler[0] is muted, so keys written there would not play; unmute it "
        "(and 2 more problems)")
    assert accepted(obj, ("b0",))
