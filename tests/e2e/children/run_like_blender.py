"""Child of ``test_bake_cli.py``: run ``scripts/bake.py`` the way ``blender -b FILE --python`` does.

Usage: ``python run_like_blender.py <bake.py> <file.blend> [bake.py arguments...]``

Blender opens ``FILE`` first, then executes the script as ``__main__`` with its whole command
line in ``sys.argv`` and the script's own arguments after ``--``. The bpy module has no
Blender command line, so this child recreates both; the exit code is reported.
"""

from __future__ import annotations

import runpy
import sys

import bpy
import scene


def main() -> None:
    """Open the file, run the script as Blender would, report its exit code."""
    script, blend, *args = sys.argv[1:]
    bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False)
    sys.argv = ["blender", "-b", blend, "--python", script, "--", *args]
    code: object = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as done:
        code = done.code
    scene.emit({"exit_code": code})


main()
