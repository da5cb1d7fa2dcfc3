"""Child of ``test_extension_install.py``: the path a user takes, in a throwaway Blender home.

Usage: ``python install_and_bake.py <absolute zip>`` with ``HOME`` pointing at a temporary
folder (set before ``import bpy``, which reads the user config at import time).

Steps: install and enable the zip as an extension; build a rig; through the add-on's operators
add a chain at the active bone and create its target at the tip; animate that target; bake
with live solving turned off; report the keys and the evaluated tip errors.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import bpy
import scene

MODULE = "bl_ext.user_default.ik_chains"
PROBE_FRAMES = (1, 7, 12, 18, 24)


def install(zip_path: str) -> dict[str, object]:
    """Install and enable the extension; report what Blender says about it."""
    result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    return {
        "install": sorted(result),
        "enabled": MODULE in bpy.context.preferences.addons,
        "module_loaded": MODULE in sys.modules,
        "extensions_dir": bpy.utils.user_resource("EXTENSIONS"),
        "has_property": hasattr(bpy.types.Object, "ik_chains"),
        **compiled_backend(),
    }


def compiled_backend() -> dict[str, object]:
    """Whether the installed add-on can use the compiled kernel, and where numba came from."""
    available = importlib.import_module(f"{MODULE}.core.compiled").numba_available()
    numba = sys.modules.get("numba")  # imported by numba_available() when it is there
    return {"numba_available": available, "numba_file": getattr(numba, "__file__", None) if numba else None}


def set_up_chain(rig: Any) -> dict[str, object]:
    """Add the chain and its target through the operators, as in the panel."""
    rig.data.bones.active = rig.data.bones[scene.BONES[-1]]
    added = bpy.ops.ikchains.chain_add()
    chain = rig.ik_chains.chains[-1]
    chain.chain_length = len(scene.BONES)  # a plain field in the panel, not an operator
    created = bpy.ops.ikchains.create_target()
    target = chain.target
    scene.animate_location(target, scene.TARGET_KEYS)
    return {"chain_add": sorted(added), "create_target": sorted(created), "chain": chain.name,
            "tip_bone": chain.tip_bone, "target": target.name if target else None}


def bake() -> list[str]:
    """Bake every chain over the scene range, then turn live solving off so the keys play."""
    start, end = scene.FRAMES
    return sorted(bpy.ops.ikchains.bake(frame_start=start, frame_end=end, step=1, chains="ALL", disable_live=True))


def use_addon(report: dict[str, object]) -> None:
    """Set up, bake and measure, adding to ``report``."""
    scene.set_scene_range(*scene.FRAMES)
    rig = scene.build_rig()
    report.update(set_up_chain(rig))
    report["bake"] = bake()
    chain = rig.ik_chains.chains[report["chain"]]
    report["live_after_bake"] = chain.enabled
    report["keys"] = scene.keyed_channels(rig)
    report["tip_errors"] = scene.tip_errors(rig, chain.tip_bone, chain.target, PROBE_FRAMES)


def main() -> None:
    """Run the steps and emit one JSON report, with the error of the step that failed if any.

    An operator that raises (a bug in the add-on) is reported rather than crashing the child,
    so the parent's install checks still run and the failing step shows its traceback text.
    """
    report = install(sys.argv[1])
    if report["enabled"]:
        try:
            use_addon(report)
        except Exception as err:  # reported to the parent, which fails the step's test
            report["error"] = f"{type(err).__name__}: {err}"
    scene.emit(report)


main()
