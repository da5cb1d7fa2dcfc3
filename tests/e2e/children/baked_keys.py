"""Child of ``test_bake_cli.py``: open a baked .blend *without* the add-on and report its key values.

Usage: ``python baked_keys.py <file.blend>``

Reports ``{"keys": {"data_path[index]": [[frame, value], ...]}}`` for the armature ``Rig``.
"""

from __future__ import annotations

import sys

import bpy
import scene


def main() -> None:
    """Open the file and report every key of the rig."""
    bpy.ops.wm.open_mainfile(filepath=sys.argv[1], load_ui=False)
    scene.emit({"keys": scene.key_values(bpy.data.objects[scene.RIG])})


main()
