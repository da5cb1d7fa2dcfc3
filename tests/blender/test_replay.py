"""The live pass's fast lane (:mod:`blender_ik_addon.blender.replay`): frame passes replayed from the
last full pass give the full pass's answers bit for bit, and every change the replay cannot see
coming sends the next frame through the full pass again."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bpy
import numpy as np
import pytest
from blender_rigs import add_chain, empty, straight_chain, world_tail

from blender_ik_addon.blender import events, live, replay
from blender_ik_addon.blender.status import get_status

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
FRAMES = 24


@pytest.fixture(scope="module", autouse=True)
def scripts_on_path() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SCRIPTS))
        yield


@pytest.fixture(autouse=True)
def replays_on() -> Iterator[None]:
    replay.set_enabled(True)
    yield
    replay.set_enabled(True)


@pytest.fixture
def full_passes(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The frames at which a full pass (``live.solve_rig``) ran."""
    seen: list[float] = []
    original = live.solve_rig

    def spy(obj: Any, depsgraph: Any, **kwargs: Any) -> Any:
        seen.append(depsgraph.scene.frame_current)
        return original(obj, depsgraph, **kwargs)

    monkeypatch.setattr(live, "solve_rig", spy)
    return seen


def _rig_of(chains: list[Any]) -> bpy.types.Object:
    return bpy.data.objects[chains[0].armature]


def _play(rig: bpy.types.Object, names: list[str], frames: range) -> tuple[np.ndarray, list[Any]]:
    """Every bone's rotation channels and every chain's status, frame after frame."""
    poses, statuses = [], []
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        values = np.empty(3 * len(rig.pose.bones), dtype=np.float32)
        rig.pose.bones.foreach_get("rotation_euler", values)
        poses.append(values)
        statuses.append([get_status(rig.name, name) for name in names])
    return np.array(poses), statuses


def _built(kind: str) -> tuple[bpy.types.Object, list[str]]:
    from bench import live_rigs

    chains = live_rigs.build(bpy, kind, FRAMES)
    live_rigs.use(bpy, chains, "ours")
    rig = _rig_of(chains)
    return rig, [c.name for c in rig.ik_chains.chains]


def _both_ways(rig: bpy.types.Object, names: list[str], frames: range,
               full_passes: list[float]) -> tuple[tuple[np.ndarray, list[Any]], tuple[np.ndarray, list[Any]], int]:
    """The frames played with replays, then again with full passes only (from a fresh runtime
    state each time); and how many full passes the first play took."""
    live.forget()
    replay.set_enabled(True)
    full_passes.clear()
    replayed = _play(rig, names, frames)
    count = len(full_passes)
    live.forget()
    replay.set_enabled(False)
    full = _play(rig, names, frames)
    return replayed, full, count


@pytest.mark.parametrize("kind", ["arm", "tentacle", "8_arms", "character"])
def test_replayed_frames_are_the_full_pass_bit_for_bit(kind: str, full_passes: list[float]) -> None:
    rig, names = _built(kind)
    (poses, statuses), (full_poses, full_statuses), count = _both_ways(rig, names, range(0, FRAMES + 1), full_passes)
    assert count <= 2  # the first frame, and at most one more while the first replay is made
    np.testing.assert_array_equal(poses, full_poses)
    assert statuses == full_statuses
    assert all(status.solved and status.converged for frame in statuses for status in frame)


def test_a_pole_chain_and_an_unreachable_target_replay_as_the_full_pass(full_passes: list[float]) -> None:
    rig = straight_chain(3, name="Rig")
    target, pole, far = empty("Target", (1.2, 1.0, 0.8)), empty("Pole", (0.0, 1.0, 2.0)), empty("Far", (0, 9, 0))
    for frame, location in ((0, (1.2, 1.0, 0.8)), (FRAMES, (-1.0, 1.5, 0.2))):
        target.location = location
        target.keyframe_insert("location", frame=frame)
    for frame, location in ((0, (0.0, 6.0, 0.0)), (FRAMES, (0.5, 1.5, 0.5))):  # unreachable, then reachable
        far.location = location
        far.keyframe_insert("location", frame=frame)
    add_chain(rig, "b2", 3, target, name="poled", pole=pole)
    other = straight_chain(2, name="Other", origin=(0.0, 0.0, 0.0))
    add_chain(other, "b1", 2, far, name="far")
    (poses, statuses), (full_poses, full_statuses), _ = _both_ways(rig, ["poled"], range(0, FRAMES + 1), full_passes)
    np.testing.assert_array_equal(poses, full_poses)
    assert statuses == full_statuses
    live.forget()
    replay.set_enabled(True)
    far_statuses = []
    for frame in range(0, FRAMES + 1):
        bpy.context.scene.frame_set(frame)
        far_statuses.append(get_status(other.name, "far"))
    assert replay.replay_of(other.name) is not None
    replay.set_enabled(False)
    full = []
    for frame in range(0, FRAMES + 1):
        bpy.context.scene.frame_set(frame)
        full.append(get_status(other.name, "far"))
    assert far_statuses == full
    assert not far_statuses[1].converged and far_statuses[-1].converged


def _keyed_arm() -> tuple[bpy.types.Object, bpy.types.Object]:
    rig = straight_chain(3, name="Rig")
    target = empty("Target")
    for frame in range(0, FRAMES + 1, 6):
        angle = 0.3 * frame
        target.location = (1.2 * math.cos(angle), 1.2 + 0.4 * math.sin(angle), 0.6)
        target.keyframe_insert("location", frame=frame)
    add_chain(rig, "b2", 3, target, name="arm")
    for frame in range(1, 4):
        bpy.context.scene.frame_set(frame)
    assert replay.replay_of(rig.name) is not None
    return rig, target


def _reaches(rig: bpy.types.Object, target: bpy.types.Object, tolerance: float = 1e-3) -> bool:
    goal = np.array(target.evaluated_get(bpy.context.evaluated_depsgraph_get()).matrix_world.translation)
    return bool(np.linalg.norm(world_tail(rig, "b2") - goal) <= tolerance)


def test_a_setting_changed_from_python_drops_the_replay(full_passes: list[float]) -> None:
    rig, target = _keyed_arm()
    rig.ik_chains.chains["arm"].tolerance = 1e-5
    assert replay.replay_of(rig.name) is None
    full_passes.clear()
    bpy.context.scene.frame_set(4)
    assert full_passes == [4]  # and it made a new replay
    bpy.context.scene.frame_set(5)
    assert full_passes == [4]
    assert _reaches(rig, target, 1e-5)


def test_a_disabled_chain_is_no_longer_written(full_passes: list[float]) -> None:
    rig, _ = _keyed_arm()
    rig.ik_chains.chains["arm"].enabled = False
    before = np.array([tuple(b.rotation_euler) for b in rig.pose.bones])
    bpy.context.scene.frame_set(7)
    after = np.array([tuple(b.rotation_euler) for b in rig.pose.bones])
    np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("change", ["swap target", "parent target", "constrain target", "hide target",
                                    "limit a bone", "remove chain", "add chain", "comfort from python",
                                    "rename chain", "tolerance as an ID property", "solver as an ID property",
                                    "tip bone as an ID property"])
def test_changes_without_a_callback_take_the_full_pass(change: str, full_passes: list[float]) -> None:
    """Changes no property callback reports: the replay notices them on the next frame."""
    rig, target = _keyed_arm()
    chains = rig.ik_chains.chains
    other = empty("Other", (0.5, 1.8, 1.0))
    if change == "swap target":  # through the ID property: no callback
        chains["arm"]["target"] = other
    elif change == "parent target":
        target.parent = other
    elif change == "constrain target":
        con = target.constraints.new("COPY_LOCATION")
        con.target = other
    elif change == "hide target":
        target.hide_viewport = True
    elif change == "limit a bone":
        bone = rig.pose.bones["b1"]
        bone.use_ik_limit_x = bone.use_ik_limit_z = True
        bone.ik_min_x = bone.ik_max_x = bone.ik_min_z = bone.ik_max_z = 0.0
    elif change == "remove chain":  # the rig's only chain: nothing of it is solved any more
        before = np.array([tuple(b.rotation_euler) for b in rig.pose.bones])
        chains.remove(0)
        bpy.context.scene.frame_set(8)
        np.testing.assert_array_equal(np.array([tuple(b.rotation_euler) for b in rig.pose.bones]), before)
        assert replay.replay_of(rig.name) is None or not rig.ik_chains.chains
        return
    elif change == "add chain":
        chains.add().name = "new"
    elif change == "comfort from python":
        item = chains["arm"].comfort_bones.add()
        item.name = "b1"
        item.rotation = (0.9, 0.3, 0.0, 0.0)
    elif change == "rename chain":
        chains["arm"]["name"] = "renamed"
    elif change == "tolerance as an ID property":  # no update callback: the stored settings are compared
        chains["arm"]["tolerance"] = 0.25
    elif change == "solver as an ID property":
        chains["arm"]["solver"] = 1  # the tutorial's
    elif change == "tip bone as an ID property":
        chains["arm"]["tip_bone"] = "b1"
        chains["arm"]["chain_length"] = 2
    full_passes.clear()
    bpy.context.scene.frame_set(8)
    assert full_passes == [8]
    if change == "limit a bone":
        assert np.allclose(np.array(rig.pose.bones["b1"].rotation_euler)[[0, 2]], 0.0, atol=1e-6)
    if change == "swap target":
        assert _reaches(rig, other)


def test_undo_and_redo_drop_every_replay() -> None:
    rig, _ = _keyed_arm()
    events.undone()
    assert replay.replay_of(rig.name) is None


@pytest.mark.parametrize("setting", ["use_stretch", "follow_orientation", "influence", "pole_rule", "target_bone",
                                     "comfort_blend", "solver"])
def test_chains_the_replay_does_not_cover_take_the_full_pass(setting: str, full_passes: list[float]) -> None:
    rig, _target = _keyed_arm()
    chain = rig.ik_chains.chains["arm"]
    if setting == "use_stretch":
        chain.use_stretch = True
    elif setting == "follow_orientation":
        chain.follow_orientation = True
    elif setting == "influence":
        chain.influence = 0.5
    elif setting == "pole_rule":
        chain.pole = empty("Pole", (0.0, 1.0, 2.0))
        chain.pole_rule = "TURN"
    elif setting == "target_bone":
        holder = straight_chain(1, name="Holder", origin=(1.0, 1.0, 0.5))
        for frame, x in ((0, 1.0), (FRAMES, -1.0)):
            holder.location.x = x
            holder.keyframe_insert("location", frame=frame)
        chain.target = holder
        chain.target_bone = "b0"
    elif setting == "comfort_blend":
        chain.comfort_blend = 0.5
    elif setting == "solver":
        chain.solver = "TUTORIAL"
    full_passes.clear()
    for frame in range(4, 8):
        bpy.context.scene.frame_set(frame)
    assert full_passes == [4, 5, 6, 7]
    assert replay.replay_of(rig.name) is None


@pytest.mark.parametrize("follows", [False, True])
def test_a_rig_without_a_replay_takes_the_full_pass(follows: bool, full_passes: list[float]) -> None:
    """Alone when it cannot follow another rig's bones; with every rig of the pass when it might (the
    full pass plans follows across rigs)."""
    rig, _ = _keyed_arm()
    other = straight_chain(3, name="Other", origin=(4.0, 0.0, 0.0))
    far = empty("Far", (4.5, 1.5, 0.5))
    for frame, z in ((0, 0.5), (FRAMES, 1.0)):
        far.location.z = z
        far.keyframe_insert("location", frame=frame)
    add_chain(other, "b2", 3, far, name="stretchy", use_stretch=True)
    if follows:  # its pole is a bone of the replayed rig
        chain = other.ik_chains.chains["stretchy"]
        chain.pole = rig
        chain.pole_bone = "b1"
    bpy.context.scene.frame_set(9)  # a full pass for both: the settings changed
    full_passes.clear()
    bpy.context.scene.frame_set(10)
    bpy.context.scene.frame_set(11)
    assert sorted(full_passes) == ([10, 10, 11, 11] if follows else [10, 11])
    assert replay.replay_of(other.name) is None


def test_a_replay_that_fails_hands_the_frame_to_the_full_pass(monkeypatch: pytest.MonkeyPatch,
                                                              full_passes: list[float]) -> None:
    rig, target = _keyed_arm()

    def broken(*_args: Any) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(replay, "_set_target", broken)
    full_passes.clear()
    bpy.context.scene.frame_set(11)
    assert full_passes == [11]
    assert _reaches(rig, target) and get_status(rig.name, "arm").converged


def test_keyed_limits_are_read_on_every_replayed_frame() -> None:
    """An animated rig: the structure cache decides on every frame whether the chain is the one read."""
    rig, _ = _keyed_arm()
    bone = rig.pose.bones["b1"]
    bone.use_ik_limit_x = True
    for frame, high in ((0, 0.1), (FRAMES, 1.0)):
        bone.ik_min_x, bone.ik_max_x = -high, high
        bone.keyframe_insert("ik_max_x", frame=frame)
        bone.keyframe_insert("ik_min_x", frame=frame)
    for frame in range(4, 16):
        bpy.context.scene.frame_set(frame)
        high = rig.evaluated_get(bpy.context.evaluated_depsgraph_get()).pose.bones["b1"].ik_max_x
        assert abs(rig.pose.bones["b1"].rotation_euler.x) <= high + 1e-6


def test_chains_that_share_bones_replay_as_their_group(full_passes: list[float]) -> None:
    """Both arms into the spine (one group), one target out of reach for a few frames: the weighted
    compromise and the status notes as the full pass gives them."""
    from blender_rigs import torso, torso_arms

    rig = torso()
    t_left, t_right = torso_arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    for frame, left, right in ((0, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6)), (12, (0.5, 0.1, 1.3), (-3.0, 0.3, 1.6)),
                               (FRAMES, (0.35, 0.35, 1.55), (-0.45, 0.2, 1.5))):
        t_left.location, t_right.location = left, right
        t_left.keyframe_insert("location", frame=frame)
        t_right.keyframe_insert("location", frame=frame)
    names = ["arm.L", "arm.R"]
    (poses, statuses), (full_poses, full_statuses), count = _both_ways(rig, names, range(0, FRAMES + 1), full_passes)
    assert count <= 2
    np.testing.assert_array_equal(poses, full_poses)
    assert statuses == full_statuses
    assert all("solved together" in status.message for frame in statuses for status in frame)
    assert any("cannot all be reached" in status.message for frame in statuses for status in frame)


@pytest.mark.parametrize("setting", ["poles", "follow_orientation", "scaled_rig"])
def test_a_group_replays_as_the_full_pass_in_every_way_it_is_solved(setting: str, full_passes: list[float]) -> None:
    """The group lane's other ways (:mod:`blender_ik_addon.blender.group_lane`): poles put in chain
    space beside the targets, a member following its target's orientation (the group solved the
    general way every frame), a rig whose base scales (the job made for that scale): each frame as
    the full pass gives it."""
    from blender_rigs import torso, torso_arms

    rig = torso()
    t_left, t_right = torso_arms(rig, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6))
    for frame, left, right in ((0, (0.45, 0.25, 1.45), (-0.4, 0.3, 1.6)), (FRAMES, (0.35, 0.35, 1.55),
                                                                          (-0.45, 0.2, 1.5))):
        t_left.location, t_right.location = left, right
        t_left.keyframe_insert("location", frame=frame)
        t_right.keyframe_insert("location", frame=frame)
    chains = rig.ik_chains.chains
    if setting == "poles":
        chains["arm.L"].pole = empty("P.L", (0.6, -1.0, 1.3))
        chains["arm.R"].pole = empty("P.R", (-0.6, -1.0, 1.3))
    elif setting == "follow_orientation":
        chains["arm.R"].follow_orientation = True
        t_right.rotation_euler = (0.3, 0.2, 0.1)
    else:
        rig.scale = (1.5, 1.5, 1.5)
    names = ["arm.L", "arm.R"]
    (poses, statuses), (full_poses, full_statuses), count = _both_ways(rig, names, range(0, FRAMES + 1), full_passes)
    assert count <= 2
    np.testing.assert_array_equal(poses, full_poses)
    assert statuses == full_statuses
    assert all(status.solved and "solved together" in status.message for frame in statuses for status in frame)
