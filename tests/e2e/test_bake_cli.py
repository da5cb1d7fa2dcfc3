"""``scripts/bake.py`` run as a subprocess with the bpy module's Python on .blend files built here."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import CHILDREN, REPO_ROOT, SCRIPTS, child_result, describe, requires_bpy_module, run_python

pytestmark = [pytest.mark.e2e, requires_bpy_module]

BAKE = SCRIPTS / "bake.py"
BONES = ("b1", "b2", "b3")  # children/scene.py
FRAMES = list(range(1, 25))
TIP_TOLERANCE = 1e-3  # world units; Blender evaluates poses in float32
SCENES = {"good": [], "unreachable": ["--unreachable"], "missing_tip": ["--missing-tip"], "glide": ["--glide"]}
CHAIN_CHANNELS = {f'pose.bones["{bone}"].rotation_quaternion[{i}]' for bone in BONES for i in range(4)}


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One saved .blend per variant of ``children/make_bake_scene.py`` (copy before baking)."""
    folder = tmp_path_factory.mktemp("scenes")
    files = {}
    for name, flags in SCENES.items():
        path = folder / f"{name}.blend"
        proc = run_python([CHILDREN / "make_bake_scene.py", REPO_ROOT, path, *flags], folder)
        assert proc.returncode == 0 and path.is_file(), describe(proc)
        files[name] = path
    return files


@pytest.fixture
def scene_copy(scene_files: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A private copy of a scene: ``good`` unless the test parametrizes it indirectly."""
    name = getattr(request, "param", "good")
    return Path(shutil.copy2(scene_files[name], tmp_path / "shot.blend"))


def bake(tmp_path: Path, *args: str | Path) -> tuple[int, str, str]:
    """Run ``bake.py args...``; ``(exit code, stdout, stderr)``."""
    proc = run_python([BAKE, *args], tmp_path / "home")
    return proc.returncode, proc.stdout, proc.stderr


def test_bakes_into_a_copy_and_leaves_the_input_untouched(scene_copy: Path, tmp_path: Path) -> None:
    before = scene_copy.read_bytes()
    code, out, err = bake(tmp_path, scene_copy, "--armature", "Rig", "--chains", "all", "--frames", "1-24",
                          "--disable-live")
    assert code == 0, out + err
    baked = tmp_path / "shot_baked.blend"
    assert f"Saved {baked}" in out
    assert "chain 'arm': 24 frames, all converged" in out
    assert scene_copy.read_bytes() == before
    report = child_result(run_python([CHILDREN / "inspect_baked.py", baked], tmp_path / "home"))
    expected = {f'pose.bones["{bone}"].rotation_quaternion[{i}]' for bone in BONES for i in range(4)}
    assert set(report["keys"]) == expected
    assert all(frames == FRAMES for frames in report["keys"].values())
    assert max(report["tip_errors"].values()) < TIP_TOLERANCE, report["tip_errors"]


def test_writes_to_the_output_option(scene_copy: Path, tmp_path: Path) -> None:
    output = tmp_path / "elsewhere.blend"
    code, out, err = bake(tmp_path, scene_copy, "--armature", "Rig", "--frames", "1-24", "--step", "4",
                          "--output", output)
    assert code == 0, out + err
    assert output.is_file() and not (tmp_path / "shot_baked.blend").exists()


def test_missing_armature_exits_2_and_names_it(scene_copy: Path, tmp_path: Path) -> None:
    code, out, err = bake(tmp_path, scene_copy, "--armature", "Robot", "--frames", "1-24")
    assert code == 2, out + err
    assert "no object named 'Robot'" in err and "'Rig'" in err
    assert not (tmp_path / "shot_baked.blend").exists()


def test_missing_chain_exits_2_and_names_it(scene_copy: Path, tmp_path: Path) -> None:
    code, out, err = bake(tmp_path, scene_copy, "--armature", "Rig", "--chains", "arm,leg", "--frames", "1-24")
    assert code == 2, out + err
    assert "no chain(s) 'leg'" in err and "its chains: 'arm'" in err


@pytest.mark.parametrize("scene_copy", ["missing_tip"], indirect=True)
def test_missing_tip_bone_exits_2_and_names_it(scene_copy: Path, tmp_path: Path) -> None:
    code, out, err = bake(tmp_path, scene_copy, "--armature", "Rig", "--frames", "1-24")
    assert code == 2, out + err
    assert "tip bone 'renamed_bone'" in err and "chain 'arm'" in err


def test_missing_input_and_bad_frames_exit_2(tmp_path: Path) -> None:
    code, _, err = bake(tmp_path, tmp_path / "nowhere.blend", "--armature", "Rig")
    assert code == 2 and "does not exist" in err
    code, _, err = bake(tmp_path, tmp_path / "nowhere.blend", "--armature", "Rig", "--frames", "24-1")
    assert code == 2 and "end 1 is before start 24" in err


def load_bake_script() -> Any:
    """``scripts/bake.py`` imported as a module (its argument parsing needs no Blender)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("bake_script", BAKE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("given", "frames"), [
    (["--frames", "-10--1"], (-10, -1)),  # the pre-roll case: argparse alone reads "-10--1" as an option
    (["--frames=-10--1"], (-10, -1)),
    (["--frames", "-5"], (-5, -5)),
    (["--frames", "-3-4"], (-3, 4)),
    (["--frames", "1-250"], (1, 250)),
])
def test_frame_ranges_parse_with_negative_frames(given: list[str], frames: tuple[int, int]) -> None:
    args = load_bake_script().parse_arguments(["shot.blend", "--armature", "Rig", *given])
    assert args.frames == frames and args.armature == "Rig"


@pytest.mark.parametrize(("given", "expected"), [
    (["--frames", "1-"], "expected START-END or FRAME, e.g. 1-250"),
    (["--frames", "24-1"], "end 1 is before start 24"),
    (["--step", "0"], "expected an integer >= 1, got '0'"),
    (["--step", "-2"], "expected an integer >= 1, got '-2'"),
    (["--frames"], "expected one argument"),
])
def test_argument_errors_say_what_was_expected(given: list[str], expected: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load_bake_script().parse_arguments(["shot.blend", "--armature", "Rig", *given])
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err


def test_pre_roll_bakes_negative_frames(scene_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "pre_roll.blend"
    code, stdout, err = bake(tmp_path, scene_copy, "--armature", "Rig", "--frames", "-3--1", "--output", out)
    assert code == 0, err
    assert "frames -3--1" in stdout and out.is_file()


def test_refuses_to_write_over_the_input_without_overwrite(scene_copy: Path, tmp_path: Path) -> None:
    before = scene_copy.read_bytes()
    code, out, err = bake(tmp_path, scene_copy, "--armature", "Rig", "--output", scene_copy)
    assert code == 2 and "pass --overwrite" in err, out + err
    assert scene_copy.read_bytes() == before


def test_overwrite_replaces_the_input(scene_copy: Path, tmp_path: Path) -> None:
    before = scene_copy.read_bytes()
    code, out, err = bake(tmp_path, scene_copy, "--armature", "Rig", "--frames", "1-24", "--overwrite")
    assert code == 0, out + err
    assert scene_copy.read_bytes() != before
    assert not (tmp_path / "shot_baked.blend").exists()


@pytest.mark.parametrize("scene_copy", ["unreachable"], indirect=True)
def test_unconverged_frames_exit_3_unless_allowed(scene_copy: Path, tmp_path: Path) -> None:
    code, out, err = bake(tmp_path, scene_copy, "--armature", "Rig", "--frames", "1-24")
    assert code == 3, out + err
    assert "24 NOT converged" in out and "--allow-unconverged" in err
    assert (tmp_path / "shot_baked.blend").is_file()  # saved all the same, for inspection
    code, out, err = bake(tmp_path, scene_copy, "--armature", "Rig", "--frames", "1-24", "--allow-unconverged")
    assert code == 0, out + err


def test_runs_on_the_file_blender_opened(scene_copy: Path, tmp_path: Path) -> None:
    proc = run_python([CHILDREN / "run_like_blender.py", BAKE, scene_copy, "--armature", "Rig", "--frames", "1-24"],
                      tmp_path / "home")
    assert child_result(proc)["exit_code"] == 0, describe(proc)
    assert (tmp_path / "shot_baked.blend").is_file()


def baked_keys(path: Path, home: Path) -> dict[str, Any]:
    """``"data_path[index]"`` -> ``(K, 2)`` (frame, value) keys of the rig in a baked file."""
    keys = child_result(run_python([CHILDREN / "baked_keys.py", path], home))["keys"]
    return {channel: np.array(pairs, dtype=np.float64) for channel, pairs in keys.items()}


def test_farm_chunks_bake_the_same_keys_as_one_bake(scene_files: dict[str, Path], tmp_path: Path) -> None:
    """Frames 1-120 in one process, and 1-60 and 61-120 in two more (two farm workers, each saving
    its own copy): every frame is solved on its own, so the chunks' keys are the unsplit bake's."""
    source = scene_files["glide"]
    files = {}
    for name, frames in (("whole", "1-120"), ("first", "1-60"), ("second", "61-120")):
        files[name] = tmp_path / f"{name}.blend"
        code, out, err = bake(tmp_path, source, "--armature", "Rig", "--frames", frames, "--output", files[name])
        assert code == 0, out + err
        assert "chunk boundaries" not in out
    keys = {name: baked_keys(path, tmp_path / "home") for name, path in files.items()}
    assert set(keys["whole"]) == set(keys["first"]) == set(keys["second"]) == CHAIN_CHANNELS
    for channel, whole in keys["whole"].items():
        np.testing.assert_array_equal(whole[:, 0], np.arange(1, 121))
        joined = np.concatenate([keys["first"][channel], keys["second"][channel]])
        np.testing.assert_array_equal(joined[:, 0], whole[:, 0])
        np.testing.assert_allclose(joined[:, 1], whole[:, 1], rtol=0, atol=1e-9, err_msg=channel)


def test_continuous_bake_reports_where_chunks_may_split(scene_files: dict[str, Path], tmp_path: Path) -> None:
    """``--continuous`` keys every frame and says where a chunk boundary could differ; from the same
    start frame it is deterministic: a shorter range bakes the same first frames."""
    source = scene_files["glide"]
    whole, head = tmp_path / "whole.blend", tmp_path / "head.blend"
    code, out, err = bake(tmp_path, source, "--armature", "Rig", "--frames", "1-120", "--continuous",
                          "--output", whole)
    assert code == 0, out + err
    assert "frames 1-120 step 1: 120 frames" in out and ", continuous" in out
    assert "chain 'arm': 120 frames, all converged" in out
    assert "\n    chunk boundaries: a chunk solves its first frame as nearest" in out, out  # under the chain's line
    assert "bake the range in one job" in out, out
    code, out, err = bake(tmp_path, source, "--armature", "Rig", "--frames", "1-60", "--continuous",
                          "--output", head)
    assert code == 0, out + err
    keys = {name: baked_keys(path, tmp_path / "home") for name, path in (("whole", whole), ("head", head))}
    assert set(keys["whole"]) == CHAIN_CHANNELS
    for channel, values in keys["whole"].items():
        np.testing.assert_array_equal(values[:, 0], np.arange(1, 121))
        np.testing.assert_allclose(keys["head"][channel], values[:60], rtol=0, atol=1e-9, err_msg=channel)
