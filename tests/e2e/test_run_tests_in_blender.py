"""``scripts/run_tests_in_blender.py``, checked with the bpy module's Python (the closest thing to a
Blender binary available here): it runs pytest with the repo importable and passes its exit code on."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from .conftest import SCRIPTS, describe, requires_bpy_module, run_python

pytestmark = [pytest.mark.e2e, requires_bpy_module]
RUNNER = SCRIPTS / "run_tests_in_blender.py"


def test_runs_the_core_suite_and_exits_zero(tmp_path: Path) -> None:
    # Two core files, not the whole core suite: this proves the runner (Blender's Python, pytest,
    # the exit code); the core suite itself runs in its own stages.
    files = ["tests/core/test_rotations.py", "tests/core/test_chain.py"]
    proc = run_python([RUNNER, "--", *files, "-q", "-p", "no:cacheprovider"], tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert f"Running pytest {' '.join(files)}" in proc.stdout and "Blender " in proc.stdout
    # "7 xfailed" (expected failures, kept in the suite as measurements) is not a failure.
    assert " passed" in proc.stdout and re.search(r"\b\d+ failed\b", proc.stdout) is None


def test_passes_a_failing_exit_code_on(tmp_path: Path) -> None:
    proc = run_python([RUNNER, "--", "tests/core/no_such_test_file.py", "-q", "-p", "no:cacheprovider"], tmp_path)
    assert proc.returncode == 4, describe(proc)  # pytest's usage error: file not found


def test_without_pytest_it_says_how_to_install_it(tmp_path: Path) -> None:
    proc = run_python(["-S", RUNNER], tmp_path)  # -S: no site-packages, so no pytest
    assert proc.returncode == 6, describe(proc)
    assert f'"{sys.executable}" -m pip install pytest' in proc.stderr
