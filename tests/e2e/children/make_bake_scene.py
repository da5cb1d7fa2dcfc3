"""Child of ``test_bake_cli.py``: save a .blend with a rig, an animated target and one chain.

Usage: ``python make_bake_scene.py <repo root> <out.blend> [--unreachable] [--missing-tip] [--glide]``

The chain (``arm``: tip ``b3``, all three bones) is set up through the add-on's properties, as a
saved file from a user would have it. ``--unreachable`` moves the target's path 10 units away,
so no frame converges; ``--missing-tip`` names a tip bone the armature does not have (as after
renaming a bone); ``--glide`` makes the scene frames 1-120 with the target on a smooth path
(``scene.GLIDE_KEYS``, Bezier keys) instead. The add-on is registered from the repo.
"""

from __future__ import annotations

import sys

import bpy
import scene


def main() -> None:
    """Build and save the scene; report the chain names."""
    repo, out = sys.argv[1], sys.argv[2]
    sys.path.insert(0, repo)
    import blender_ik_addon

    blender_ik_addon.register()
    bpy.ops.wm.read_homefile(use_empty=True)
    glide = "--glide" in sys.argv
    scene.set_scene_range(*(scene.GLIDE_FRAMES if glide else scene.FRAMES))
    rig = scene.build_rig()
    target = bpy.data.objects.new("Target", None)
    bpy.context.scene.collection.objects.link(target)
    shift = 10.0 if "--unreachable" in sys.argv else 0.0
    keys = scene.GLIDE_KEYS if glide else scene.TARGET_KEYS
    scene.animate_location(target, [(f, (x + shift, y, z)) for f, (x, y, z) in keys])
    chain = rig.ik_chains.chains.add()
    tip = "renamed_bone" if "--missing-tip" in sys.argv else scene.BONES[-1]
    chain.name, chain.tip_bone, chain.chain_length = scene.CHAIN, tip, len(scene.BONES)
    chain.target = target
    bpy.ops.wm.save_as_mainfile(filepath=out)
    scene.emit({"chains": [c.name for c in rig.ik_chains.chains]})


main()
