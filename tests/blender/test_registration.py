"""Registration leaves nothing behind, never duplicates, and the core never imports bpy."""

from __future__ import annotations

import subprocess
import sys

import bpy
from conftest import REPO, handler_counts

import blender_ik_addon
from blender_ik_addon import handlers, registration


def registered() -> set[str]:
    """Names of the add-on's classes Blender currently knows."""
    return {cls.__name__ for cls in registration.CLASSES if cls.is_registered}


def test_registration_round_trip_leaves_nothing_behind(addon_baseline: dict[str, int]) -> None:
    everything = {cls.__name__ for cls in registration.CLASSES}
    assert registered() == everything
    assert hasattr(bpy.types.Object, "ik_chains")
    blender_ik_addon.unregister()
    try:
        assert handler_counts() == addon_baseline
        assert registered() == set()
        assert not any(name.startswith(("IKCHAINS_", "VIEW3D_PT_ikchains")) for name in dir(bpy.types))
        assert not hasattr(bpy.types.Object, "ik_chains")
    finally:
        blender_ik_addon.register()
    assert registered() == everything
    assert handler_counts()["frame_change_post"] == addon_baseline["frame_change_post"] + 1


def test_register_twice_does_not_duplicate_handlers() -> None:
    before = handler_counts()
    handlers.register()
    assert handler_counts() == before
    assert bpy.app.handlers.frame_change_post.count(handlers.on_frame_change_post) == 1


def test_operators_and_panels_are_namespaced() -> None:
    ids = {cls.bl_idname for cls in registration.CLASSES if hasattr(cls, "bl_idname") and "_OT_" in cls.__name__}
    assert ids and all(i.startswith("ikchains.") for i in ids)
    panels = [cls for cls in registration.CLASSES if issubclass(cls, bpy.types.Panel)]
    assert all(p.bl_category == "IK Chains" and p.bl_space_type == "VIEW_3D" for p in panels)


def test_importing_the_core_does_not_import_bpy() -> None:
    code = "import sys; import blender_ik_addon.core; sys.exit('bpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
