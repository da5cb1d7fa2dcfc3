"""Child of ``test_bake_cli.py``: run ``scripts/bake.py`` the way ``blender -b FILE --python`` does.

Usage: ``python run_like_blender.py <bake.py> <file.blend> [bake.py arguments...]``

Blender opens ``FILE`` first, then runs the script with its whole command line in ``sys.argv``
and the script's own arguments after ``--``. The bpy module has no Blender command line, so
this child recreates both; ``main()``'s exit code is reported.
"""

from __future__ import annotations

import runpy
import sys

import bpy
import scene


def main() -> None:
    """Open the file, run the script's ``main`` as Blender would, report its exit code.

    The module is loaded under another name than ``__main__`` so that its exit (``os._exit``
    with the bpy module) does not end this child before it reports.
    """
    script, blend, *args = sys.argv[1:]
    bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False)
    sys.argv = ["blender", "-b", blend, "--python", script, "--", *args]
    code = runpy.run_path(script, run_name="bake_cli")["main"]()
    scene.emit({"exit_code": code})


main()
