"""Helpers for the end-to-end tests: each runs scripts or child processes with the bpy module's Python.

Children never share this process's Blender state: a temporary ``HOME`` must be set before
``import bpy`` (Blender reads the user config at import), and an add-on registered by the
in-process Blender tests would collide with the installed copy.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"
CHILDREN = Path(__file__).resolve().parent / "children"
RESULT_PREFIX = "E2E_RESULT "  # keep in sync with children/scene.py
CHILD_TIMEOUT = 600  # seconds; most children take a few seconds, the core suite on numpy (LTS) a few minutes


def python_has_bpy_module() -> bool:
    """True if ``sys.executable`` can ``import bpy``: the bpy wheel, not a Blender binary.

    Inside a Blender binary ``bpy`` is built in, but ``sys.executable`` is Blender's bundled
    Python, which has no ``bpy`` module for a child process.
    """
    running_bpy = sys.modules.get("bpy")
    if running_bpy is not None:
        return not running_bpy.app.binary_path
    return importlib.util.find_spec("bpy") is not None


requires_bpy_module = pytest.mark.skipif(not python_has_bpy_module(),
                                         reason="needs a Python with the bpy module (Blender as a Python module)")


def isolated_env(home: Path) -> dict[str, str]:
    """This environment with a throwaway Blender home, and without the repo on ``PYTHONPATH``.

    ``XDG_CONFIG_HOME`` would take precedence over ``HOME`` for Blender's config folder, and
    ``BLENDER_USER_*`` variables would point elsewhere, so they are removed.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("XDG_CONFIG_HOME", "PYTHONPATH") and not k.startswith("BLENDER_USER_")}
    env["HOME"] = str(home)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_python(args: list[str | Path], home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``sys.executable args...`` in an isolated environment; never raises on a non-zero exit."""
    return subprocess.run([sys.executable, *map(str, args)], env=isolated_env(home), cwd=cwd or home,
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False)


def child_result(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON report a child printed (``E2E_RESULT {...}``); fails with the child's output if none."""
    for line in reversed(proc.stdout.splitlines()):
        _, found, payload = line.partition(RESULT_PREFIX)  # Blender's C-level output may share the line
        if found:
            result: dict[str, Any] = json.loads(payload)
            return result
    pytest.fail(f"child sent no report: {describe(proc)}")


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    """A child's exit code and output, for assertion messages."""
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extension zip, built once per session by ``scripts/build_extension.py``."""
    out = tmp_path_factory.mktemp("dist")
    proc = run_python([SCRIPTS / "build_extension.py", "--output-dir", out], tmp_path_factory.mktemp("home"))
    assert proc.returncode == 0, describe(proc)
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path == out / "ik_chains-1.0.0.zip" and path.is_file(), describe(proc)
    return path
