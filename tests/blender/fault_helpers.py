"""Helpers for the fault, load and render tests (real bpy, no mocks).

* :func:`bystander_rig`: a rig with a chain that must keep working ("good"), a chain a test breaks
  ("bad") and a bone in no chain ("other"), with keys outside any baked range, another channel
  keyed, a user constraint and four rotation modes: everything a fault must not destroy.
* :func:`snapshot` / :func:`assert_preserved`: what a user could lose (keys, rotation modes,
  constraints, drivers, the pose of bones that are not solved, chain settings).
* :func:`run_operator`: an operator's return set and its report text, as the user reads it.
* :func:`assert_playback`: frame changes keep working and the good chain keeps solving.
* :func:`user_sees`: records what the user sees, for ``docs/reliability.md``
  (``tests/blender/reliability_doc.py`` runs the tests and writes the table from these records;
  :func:`undocumented` checks the table still says what the tests saw).
"""

from __future__ import annotations

import atexit
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from blender_rigs import BoneDef, add_chain, empty, make_armature, world_tail

from blender_ik_addon.blender import ChainSpec, get_status, spec_from_settings
from blender_ik_addon.blender.keys import iter_fcurves

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "reliability.md"
RECORD_ENV = "IKCHAINS_RELIABILITY_JSON"

GOOD_BONES = ("good.0", "good.1", "good.2")
BAD_BONES = ("bad.0", "bad.1", "bad.2")
BAD_MODES = {"bad.0": "ZXY", "bad.1": "XYZ", "bad.2": "QUATERNION"}
GOOD_KEYS = {1: (0.8, 1.6, 0.6), 20: (-0.7, 1.9, 0.4)}
BAD_KEYS = {1: (3.8, 1.6, 0.6), 20: (2.3, 1.9, 0.4)}
OUTSIDE_FRAMES = (-10.0, 200.0)  # keys no test bakes over
TOLERANCE = 1e-4  # world units: the chains' default tolerance


# --------------------------------------------------------------------------- the rig


@dataclass
class Scene:
    """The objects of :func:`bystander_rig` (look them up again after undo or a file load)."""

    rig: bpy.types.Object
    good_target: bpy.types.Object
    bad_target: bpy.types.Object


def keyed_empty(name: str, keys: dict[int, Sequence[float]]) -> bpy.types.Object:
    """An Empty whose location is keyed at the given frames."""
    obj = empty(name)
    for frame, location in keys.items():
        obj.location = location
        obj.keyframe_insert("location", frame=frame)
    return obj


def leg_bones(prefix: str, x: float, count: int = 3) -> list[BoneDef]:
    """``count`` connected bones along +Y at ``x``."""
    return [BoneDef(f"{prefix}.{i}", (x, i, 0.0), (x, i + 1, 0.0), parent=f"{prefix}.{i - 1}" if i else None,
                    connect=bool(i)) for i in range(count)]


def bystander_rig(name: str = "Rig") -> Scene:
    """The rig every fault test breaks a little (see module docstring). Frames 1-20, at frame 1."""
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 20
    rig = make_armature([*leg_bones("good", 0.0), *leg_bones("bad", 3.0),
                         BoneDef("other", (-3.0, 0.0, 0.0), (-3.0, 1.0, 0.0))], name)
    pose = rig.pose.bones
    for bone, mode in BAD_MODES.items():
        pose[bone].rotation_mode = mode
    pose["other"].rotation_mode = "YXZ"
    con = pose["other"].constraints.new("LIMIT_ROTATION")
    con.name, con.owner_space, con.use_limit_x, con.min_x, con.max_x = "UserLimit", "LOCAL", True, -0.2, 0.3
    pose["bad.1"].rotation_euler = (0.1, -0.2, 0.05)
    for frame in OUTSIDE_FRAMES:  # the same value at both: constant over the scene range
        pose["bad.1"].keyframe_insert("rotation_euler", frame=frame, group="bad.1")
    for frame, angle in ((1, 0.1), (50, 0.25)):
        pose["other"].rotation_euler = (angle, 0.0, 0.0)
        pose["other"].keyframe_insert("rotation_euler", frame=frame, group="other")
    pose["bad.0"].keyframe_insert("scale", frame=1, group="bad.0")  # another channel of a chain bone
    good, bad = keyed_empty("GoodTarget", GOOD_KEYS), keyed_empty("BadTarget", BAD_KEYS)
    add_chain(rig, "good.2", 3, good, name="good")
    add_chain(rig, "bad.2", 3, bad, name="bad")
    bpy.context.view_layer.objects.active = rig
    scene.frame_set(1)
    return Scene(rig, good, bad)


def activate(obj: bpy.types.Object) -> None:
    """Make ``obj`` the active object (operators work on it)."""
    bpy.context.view_layer.objects.active = obj


# --------------------------------------------------------------------------- what could be lost

Key = tuple[str, int]


@dataclass(frozen=True)
class Snapshot:
    """Everything of a rig a user would miss if a fault destroyed it."""

    keys: dict[Key, tuple[tuple[float, float, str], ...]]
    modes: dict[str, str]
    constraints: dict[str, tuple[tuple[Any, ...], ...]]
    drivers: tuple[tuple[str, int, str, bool], ...]
    pose: dict[str, tuple[float, ...]]
    locks: dict[str, tuple[bool, ...]]
    chains: dict[str, ChainSpec]


def key_table(obj: bpy.types.Object) -> dict[Key, tuple[tuple[float, float, str], ...]]:
    """(data path, index) -> every key as (frame, value, interpolation)."""
    return {(fc.data_path, fc.array_index): tuple((round(k.co[0], 4), float(k.co[1]), k.interpolation)
                                                   for k in fc.keyframe_points) for fc in iter_fcurves(obj)}


def _constraint_key(con: Any) -> tuple[Any, ...]:
    fields = ("name", "type", "mute", "influence", "owner_space", "target", "subtarget", "use_limit_x", "min_x",
              "max_x", "euler_order", "chain_count")
    return tuple(getattr(con, f, None) if f != "target" else getattr(getattr(con, f, None), "name", None)
                 for f in fields)


def _pose_key(pbone: Any) -> tuple[float, ...]:
    return (*pbone.location, *pbone.rotation_euler, *pbone.rotation_quaternion, *pbone.rotation_axis_angle,
            *pbone.scale)


def snapshot(obj: bpy.types.Object) -> Snapshot:
    """What :func:`assert_preserved` compares."""
    anim = obj.animation_data
    drivers = () if anim is None else tuple((d.data_path, d.array_index, d.driver.expression, d.mute)
                                            for d in anim.drivers)
    pose = obj.pose.bones
    return Snapshot(key_table(obj), {p.name: p.rotation_mode for p in pose},
                    {p.name: tuple(_constraint_key(c) for c in p.constraints) for p in pose}, drivers,
                    {p.name: _pose_key(p) for p in pose},
                    {p.name: (*p.lock_rotation, p.lock_ik_x, p.lock_ik_y, p.lock_ik_z) for p in pose},
                    {c.name: spec_from_settings(c) for c in obj.ik_chains.chains})


def assert_preserved(before: Snapshot, after: Snapshot, *, posed: Iterable[str] = GOOD_BONES + BAD_BONES,
                     rekeyed: Callable[[Key], bool] | None = None, baked: tuple[float, float] | None = None) -> None:
    """Nothing the user made is gone.

    Args:
        posed: Bones whose pose may differ (chain bones: solved, or left to their keys); all
            others must be equal, and every bone's pose finite.
        rekeyed: F-curves a bake may have re-keyed inside ``baked`` (first, last frame); their
            keys outside it must be equal. Without it, every key is equal and no F-curve is new.
    """
    assert after.modes == before.modes, "rotation modes changed"
    assert after.constraints == before.constraints, "constraints changed"
    assert after.drivers == before.drivers, "drivers changed"
    assert after.locks == before.locks, "locks changed"
    assert after.chains == before.chains, "chain settings changed"
    for bone, values in before.pose.items():
        assert np.isfinite(after.pose[bone]).all(), f"bone {bone!r} has a non-finite pose {after.pose[bone]}"
        if bone not in set(posed):
            assert after.pose[bone] == values, f"the pose of bone {bone!r} changed"
    for key, keys in before.keys.items():
        if rekeyed is not None and baked is not None and rekeyed(key):
            outside = tuple(k for k in keys if not baked[0] <= k[0] <= baked[1])
            assert tuple(k for k in after.keys[key] if not baked[0] <= k[0] <= baked[1]) == outside, key
        else:
            assert after.keys.get(key) == keys, f"keys of {key} changed"
    new = set(after.keys) - set(before.keys)
    assert rekeyed is not None or not new, f"new F-curves {sorted(new)}"
    assert all(rekeyed(key) for key in new) if rekeyed is not None else True, f"unexpected F-curves {sorted(new)}"


def rotation_paths(obj: bpy.types.Object, bones: Iterable[str]) -> Callable[[Key], bool]:
    """A ``rekeyed`` predicate: the rotation channels of ``bones`` in their current modes."""
    paths = set()
    for bone in bones:
        mode = obj.pose.bones[bone].rotation_mode
        prop = {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}.get(mode, "rotation_euler")
        paths.add(f'pose.bones["{bone}"].{prop}')
    return lambda key: key[0] in paths


# --------------------------------------------------------------------------- operators and statuses


@dataclass(frozen=True)
class Outcome:
    """What running an operator told the user.

    Attributes:
        result: The return set; empty when the operator raised (an ERROR report, in a script).
        level: ``"ERROR"``, ``"WARNING"`` or ``"INFO"`` (the most severe report), or "".
        report: The reports' text without the level prefix, one per line.
    """

    result: frozenset[str]
    level: str
    report: str


_REPORT_LINE = re.compile(r"^(Error|Warning|Info): (.*)$")


def _reports(text: str) -> tuple[str, str]:
    levels, lines = [], []
    for line in text.splitlines():
        match = _REPORT_LINE.match(line)
        if match:
            levels.append(match.group(1).upper())
            lines.append(match.group(2))
    level = next((lv for lv in ("ERROR", "WARNING", "INFO") if lv in levels), "")
    return level, "\n".join(lines)


def run_operator(capfd: Any, operator: Any, *args: Any, **props: Any) -> Outcome:
    """Run ``bpy.ops.<operator>`` and collect its reports (printed in background mode; an ERROR
    report raises ``RuntimeError`` in scripts)."""
    capfd.readouterr()
    try:
        result = frozenset(operator(*args, **props))
    except RuntimeError as err:
        level, report = _reports(str(err))
        capfd.readouterr()
        return Outcome(frozenset(), level or "ERROR", report or str(err))
    level, report = _reports(capfd.readouterr().out)
    return Outcome(result, level, report)


def status_message(obj_name: str, chain: str) -> str:
    """The chain's status line, as the panel draws it."""
    status = get_status(obj_name, chain)
    assert status is not None, f"chain {chain!r} of {obj_name!r} has no status"
    return status.describe()


def assert_playback(rig: bpy.types.Object, good_target: bpy.types.Object, frames: Sequence[int] = (4, 9, 2),
                    chain: str = "good", tip: str = "good.2") -> None:
    """Frame changes work and the good chain reaches its target on every frame."""
    scene = bpy.context.scene
    for frame in frames:
        scene.frame_set(frame)
        assert scene.frame_current == frame
        bpy.context.view_layer.update()
        goal = np.array(good_target.matrix_world.translation)
        np.testing.assert_allclose(world_tail(rig, tip), goal, atol=TOLERANCE, err_msg=f"frame {frame}")
        status = get_status(rig.name, chain)
        assert status is not None and status.converged, status


def pose_at(rig: bpy.types.Object, frame: int) -> dict[str, tuple[float, ...]]:
    """Every bone's pose channels after a frame change to ``frame``."""
    bpy.context.scene.frame_set(frame)
    return {p.name: _pose_key(p) for p in rig.pose.bones}


# --------------------------------------------------------------------------- the reliability table


@dataclass(frozen=True)
class Seen:
    """One row of ``docs/reliability.md``: a case, its input, what the user sees, what is kept."""

    case: str
    given: str
    where: str
    message: str
    preserved: str
    test: str = ""


SEEN: dict[str, Seen] = {}  # case -> its row, in the order the tests ran
FIGURES: dict[str, str] = {}  # load figure -> value


def user_sees(case: str, *, given: str, where: str, message: str, preserved: str) -> str:
    """Record what the user sees for case ``case`` (a test asserted ``message`` just before)."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    SEEN[case] = Seen(case, given, where, message, preserved, test)
    return message


def measured(name: str, value: str) -> None:
    """Record a load figure (time, memory) for ``docs/reliability.md``."""
    FIGURES[name] = value


def _dump() -> None:
    path = os.environ.get(RECORD_ENV)
    if path:
        cases = [asdict(seen) for seen in SEEN.values()]
        Path(path).write_text(json.dumps({"cases": cases, "figures": FIGURES}, indent=1))


atexit.register(_dump)


def masked(text: str) -> str:
    """``text`` with numbers masked (residuals differ in the last digits between Blender versions)."""
    return re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "#", text)


def doc_rows() -> dict[str, dict[str, str]]:
    """Case id -> the row of ``docs/reliability.md`` (column header -> cell)."""
    if not DOC.exists():
        return {}
    rows: dict[str, dict[str, str]] = {}
    header: list[str] = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells and cells[0] == "Case":
            header = cells
        elif header and len(cells) == len(header):
            rows[cells[0].strip("`")] = dict(zip(header, cells, strict=True))
    return rows


def undocumented(prefix: str) -> list[str]:
    """Cases recorded by tests whose name starts with ``prefix`` that the table lacks or words otherwise."""
    if os.environ.get(RECORD_ENV):  # reliability_doc.py is writing the table from this very run
        return []
    rows = doc_rows()
    problems = []
    for seen in SEEN.values():
        if not seen.test.startswith(prefix):
            continue
        row = rows.get(seen.case)
        if row is None:
            problems.append(f"{seen.case}: not in {DOC.name}")
        elif masked(row["What the user sees"].strip("`").replace("<br>", "\n")) != masked(seen.message):
            problems.append(f"{seen.case}: the table says {row['What the user sees']!r}, the test saw {seen.message!r}")
    return problems



# --------------------------------------------------------------------------- the usual assertions

KEPT = ("keys (also outside any range), other channels and bones, rotation modes, constraints, drivers, locks "
        "and chain settings; the other chain keeps solving while frames change")


def after_at(rig: bpy.types.Object, frame: int = 1) -> Snapshot:
    """The rig's snapshot after going back to ``frame`` (where the test took its first one)."""
    bpy.context.scene.frame_set(frame)
    return snapshot(rig)


def select_chain(rig: bpy.types.Object, chain: str) -> None:
    """Make ``chain`` the active chain of the list (operators with ``chains="ACTIVE"`` use it)."""
    activate(rig)
    rig.ik_chains.active_index = rig.ik_chains.chains.find(chain)


def assert_refused(capfd: Any, scene: Scene, before: Snapshot, message: str, *, case: str, given: str,
                   preserved: str = KEPT, chain: str = "bad") -> None:
    """The broken chain shows ``message`` in the panel and in the Bake and Key reports; nothing is
    written and the good chain keeps working (live, while frames change)."""
    rig = scene.rig
    assert_playback(rig, scene.good_target)
    shown = status_message(rig.name, chain)
    assert shown == f"Error: {message}", shown
    select_chain(rig, chain)
    baked = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=20, chains="ALL")
    assert (baked.result, baked.level, baked.report) == (frozenset(), "ERROR", message)
    keyed = run_operator(capfd, bpy.ops.ikchains.key_frame, chains="ACTIVE")
    named = message if message.startswith(f"chain {chain!r}") else f"chain {chain!r}: {message}"
    assert (keyed.result, keyed.level, keyed.report) == (frozenset(), "ERROR", named)
    assert_preserved(before, after_at(rig))
    user_sees(case, given=given, where="panel status; Bake and Key Current Frame: error report", message=message,
              preserved=preserved)


def assert_bakes_and_plays(capfd: Any, rig: bpy.types.Object, target: bpy.types.Object, chain: str,
                           tip: str, frames: Sequence[int] = (1, 7, 14, 20)) -> Outcome:
    """Baking ``chain`` over 1-20 reports success and its keys alone (live off) reach the target."""
    select_chain(rig, chain)
    out = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=1, frame_end=20, chains="ACTIVE",
                       disable_live=True)
    assert out.result == {"FINISHED"}, out
    assert out.report.startswith("20 frames solved, 0 not converged"), out
    # Every frame reached: the only warning left is a note on the motion (a frame where the pose
    # switches solutions, see test_bake_motion.py), not a fault.
    assert out.level == ("WARNING" if "pose switches at" in out.report else "INFO"), out
    assert not rig.ik_chains.chains[chain].enabled
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        np.testing.assert_allclose(world_tail(rig, tip), np.array(target.matrix_world.translation),
                                   atol=2 * TOLERANCE, err_msg=f"frame {frame}")
    return out


def keyed_location(obj: bpy.types.Object, frame: float) -> np.ndarray:
    """Where ``obj``'s own location F-curves put it at ``frame`` (whatever the depsgraph evaluated)."""
    curves = {fc.array_index: fc for fc in iter_fcurves(obj) if fc.data_path == "location"}
    return np.array([curves[i].evaluate(frame) if i in curves else obj.location[i] for i in range(3)])
