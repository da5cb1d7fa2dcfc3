"""Run the pytest suite inside a Blender installation.

Usage (from the repo root)::

    blender -b --factory-startup --python-exit-code 1 --python scripts/run_tests_in_blender.py [-- pytest args]
    python scripts/run_tests_in_blender.py [--] [pytest args]     # Blender as a Python module (bpy wheel)

Without pytest arguments it runs the suite configured in ``pyproject.toml``. Test paths are
relative to the repo root: the script changes into it so that the pytest configuration applies.

Conventions and traps:
    * Blender passes everything after ``--`` through to the script untouched; Blender's own
      options come before it. Under plain Python the ``--`` is optional.
    * The exit code is pytest's, raised as ``SystemExit``. A ``SystemExit`` from a ``--python``
      script ends Blender with that code; ``--python-exit-code 1`` additionally turns any other
      uncaught exception (e.g. an import error in this script) into exit code 1 instead of 0.
    * Blender's bundled Python ships without pytest. The script then prints how to install it
      into that Python and exits with code 6 (``EXIT_NOT_RUN``).
    * Inside a Blender binary, ``sys.executable`` is Blender's bundled Python, which cannot
      ``import bpy``: tests that start a child ``python`` with bpy (``tests/e2e``) skip themselves.
    * With the bpy module, Blender 4.2 segfaults at interpreter exit once the tests registered an
      operator or a Python callback (exit code 139 after a green run), and 4.5 hangs while a
      handler is left installed; ``bpy_exit.exit_process`` ends the process with pytest's code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Not run at all (no pytest, or no bpy). Distinct from pytest's own codes 0-5 so CI logs tell them apart.
EXIT_NOT_RUN = 6


def pytest_arguments(argv: list[str]) -> list[str]:
    """The arguments meant for pytest: those after ``--``, or all of them under plain Python.

    Under a Blender binary ``argv`` starts with Blender's own options, and without ``--`` none
    of them is meant for pytest.
    """
    if "--" in argv:
        return argv[argv.index("--") + 1:]
    run_as_script = bool(argv) and Path(argv[0]).resolve() == Path(__file__).resolve()
    return argv[1:] if run_as_script else []


def missing_pytest_message() -> str:
    """How to install pytest into the Python that runs this script (Blender's bundled one)."""
    python = sys.executable or "<blender>/<version>/python/bin/python3.11"
    return (
        f"error: pytest is not installed in this Blender's Python ({python}).\n"
        "Install it into that Python, then run this script again:\n"
        f'    "{python}" -m ensurepip --upgrade\n'
        f'    "{python}" -m pip install pytest\n'
        "(Blender's bundled Python lives in <blender install>/<version>/python/bin/.)"
    )


def describe_blender() -> str | None:
    """One line naming the Blender and Python that run the tests; None outside Blender."""
    try:
        import bpy
    except ImportError:
        return None
    kind = "binary " + bpy.app.binary_path if bpy.app.binary_path else "Python module"
    return f"Blender {bpy.app.version_string} ({kind}), Python {sys.version.split()[0]}"


def main(argv: list[str] | None = None) -> int:
    """Run pytest from the repo root; return its exit code, or ``EXIT_NOT_RUN``."""
    args = pytest_arguments(sys.argv if argv is None else argv)
    try:
        import pytest
    except ImportError:
        print(missing_pytest_message(), file=sys.stderr)
        return EXIT_NOT_RUN
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    blender = describe_blender()
    if blender is None:
        print(f"error: {sys.executable} has no bpy: run this script with a Blender binary or the bpy module's Python",
              file=sys.stderr)
        return EXIT_NOT_RUN
    os.chdir(REPO_ROOT)
    print(f"Running pytest {' '.join(args)} in {blender}", flush=True)
    return int(pytest.main(args))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # Blender's --python does not add it
    from bpy_exit import exit_process

    exit_process(main())
