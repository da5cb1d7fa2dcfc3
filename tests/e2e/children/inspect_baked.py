"""Child of ``test_bake_cli.py``: open a baked .blend *without* the add-on and report its keys.

Usage: ``python inspect_baked.py <file.blend>``

With the add-on not registered nothing solves live, so the evaluated tip positions come from
the baked keys alone: what a renderer or another machine without the add-on would see.
"""

from __future__ import annotations

import sys

import bpy
import scene

PROBE_FRAMES = (1, 6, 12, 19, 24)


def main() -> None:
    """Open the file and report keys and tip errors."""
    bpy.ops.wm.open_mainfile(filepath=sys.argv[1], load_ui=False)
    rig, target = bpy.data.objects[scene.RIG], bpy.data.objects["Target"]
    scene.emit({
        "keys": scene.keyed_channels(rig),
        "tip_errors": scene.tip_errors(rig, scene.BONES[-1], target, PROBE_FRAMES),
    })


main()
