"""The extension as a user gets it: build the zip, install it into a throwaway Blender home, use it.

The child (``children/install_and_bake.py``) installs with ``package_install_files``, builds a rig,
sets up a chain through the add-on's own operators, bakes and reports keys and tip errors. The same
child, given the Linux zip built ``--with-numba``, shows that Blender installs the bundled numba
wheels with the extension and that the add-on then solves with the compiled kernel.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import CHILDREN, SCRIPTS, child_result, describe, requires_bpy_module, run_python

pytestmark = [pytest.mark.e2e, requires_bpy_module]

BONES = ("b1", "b2", "b3")  # children/scene.py
FRAMES = list(range(1, 25))
TIP_TOLERANCE = 1e-3  # world units; Blender evaluates poses in float32


def _bpy_wheel_version() -> str:
    """The bpy wheel's version ("" without one), read without importing bpy (see conftest)."""
    try:
        return importlib.metadata.version("bpy")
    except importlib.metadata.PackageNotFoundError:
        return ""


def test_zip_holds_the_package_and_manifest_only(extension_zip: Path) -> None:
    names = zipfile.ZipFile(extension_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "core/solver.py" in names and "registration.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith(("tests/", "scripts/"))]


@pytest.fixture(scope="module")
def installed(extension_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The child's report (one install-and-bake run shared by the tests below)."""
    home = tmp_path_factory.mktemp("blender_home")
    proc = run_python([CHILDREN / "install_and_bake.py", extension_zip.resolve()], home)
    result = child_result(proc)
    result["home"] = str(home)
    return result


def test_installs_and_enables_into_the_temporary_home(installed: dict[str, object]) -> None:
    assert installed["install"] == ["FINISHED"]
    assert installed["enabled"] and installed["module_loaded"], installed
    assert installed["has_property"]
    assert str(installed["extensions_dir"]).startswith(str(installed["home"]))


def test_operators_set_up_the_chain_and_its_target(installed: dict[str, object]) -> None:
    assert installed.get("chain_add") == ["FINISHED"], installed.get("error")
    assert installed["create_target"] == ["FINISHED"], installed.get("error")
    assert installed["tip_bone"] == "b3"
    assert installed["target"]


def test_bake_keys_exactly_the_chain_rotations_on_every_frame(installed: dict[str, object]) -> None:
    assert installed.get("bake") == ["FINISHED"], installed.get("error")
    assert installed["live_after_bake"] is False
    keys = installed["keys"]
    assert isinstance(keys, dict)
    expected = {f'pose.bones["{bone}"].rotation_quaternion[{i}]' for bone in BONES for i in range(4)}
    assert set(keys) == expected
    for channel, frames in keys.items():
        assert frames == FRAMES, channel


def test_baked_tip_follows_the_target(installed: dict[str, object]) -> None:
    errors = installed.get("tip_errors")
    assert isinstance(errors, dict) and len(errors) == 5, installed.get("error")
    assert max(errors.values()) < TIP_TOLERANCE, errors


def test_the_default_zip_solves_with_numpy_unless_numba_is_installed(installed: dict[str, object]) -> None:
    assert installed["numba_available"] == (importlib.util.find_spec("numba") is not None)


@pytest.fixture(scope="module")
def installed_with_numba(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The child's report for the Linux zip that bundles numba's wheels."""
    if importlib.util.find_spec("numba") is not None:
        pytest.skip("numba is installed in this Python already, so the bundled wheels would prove nothing")
    if not (sys.platform.startswith("linux") and platform.machine() == "x86_64"):
        pytest.skip("the bundled wheels are checked on linux-x64")
    out = tmp_path_factory.mktemp("dist_numba")
    build = run_python([SCRIPTS / "build_extension.py", "--with-numba", "--platforms", "linux-x64",
                        "--output-dir", out], tmp_path_factory.mktemp("home"))
    assert build.returncode == 0, describe(build)
    zip_path = out / "ik_chains-1.0.0-linux_x64.zip"
    assert build.stdout.strip().splitlines() == [str(zip_path)], describe(build)
    names = zipfile.ZipFile(zip_path).namelist()
    assert any(n.startswith("wheels/numba-") for n in names) and any(n.startswith("wheels/llvmlite-") for n in names)
    home = tmp_path_factory.mktemp("blender_home_numba")
    result = child_result(run_python([CHILDREN / "install_and_bake.py", zip_path.resolve()], home))
    result["home"] = str(home)
    return result


@pytest.mark.skipif(_bpy_wheel_version().startswith("4.5."),
                    reason="the bundled wheels are installed and compiled on Blender 4.2 LTS (the oldest supported) "
                           "only, to keep the test run short: the extension platform is the same on 4.5")
def test_bundled_numba_is_installed_with_the_extension_and_used(installed_with_numba: dict[str, object]) -> None:
    report = installed_with_numba
    assert report["install"] == ["FINISHED"] and report["enabled"], report
    assert report["numba_available"] is True
    assert str(report["numba_file"]).startswith(str(report["home"]))  # from the extension's wheels
    assert report.get("bake") == ["FINISHED"], report.get("error")
    errors = report.get("tip_errors")
    assert isinstance(errors, dict) and max(errors.values()) < TIP_TOLERANCE, errors
