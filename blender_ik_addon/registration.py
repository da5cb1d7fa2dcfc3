"""Register everything the add-on adds to Blender, and remove exactly that again.

Order: PropertyGroups first (pointer targets before pointers), then operators, lists and panels;
then ``Object.ik_chains`` and the handlers. ``unregister`` mirrors it in reverse.
"""

from __future__ import annotations

import threading

import bpy
from bpy.types import Operator, Panel, PropertyGroup, UIList

from . import handlers
from .core import compiled
from .ui import operators, panels, properties

CLASSES: tuple[type[PropertyGroup | Operator | Panel | UIList], ...] = (
    *properties.classes, *operators.classes, *panels.classes)


def register() -> None:
    """Register classes, the ``Object.ik_chains`` property and the handlers."""
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    # A property registered at run time, unknown to the stubs (read it through properties.get_rig_settings).
    bpy.types.Object.ik_chains = bpy.props.PointerProperty(  # type: ignore[attr-defined]
        type=properties.IKCHAINS_PG_rig, override=properties.OVERRIDABLE)  # kept on library overrides
    handlers.register()
    _warm_up_compiled_solver()


_warm_up_started = False


def _warm_up_compiled_solver() -> None:
    """Load or compile the numba kernel in a background thread, once per Blender session.

    Compiling it the first time after an install takes seconds; without this, the first live frame
    would wait for it. The thread touches no Blender data, and a solve that comes first simply waits
    for the compilation (numba serialises it). Without numba this does nothing.
    """
    global _warm_up_started
    if _warm_up_started:
        return
    _warm_up_started = True
    threading.Thread(target=compiled.warm_up, name="ik_chains_warm_up", daemon=True).start()


def unregister() -> None:
    """Undo :func:`register`."""
    handlers.unregister()
    del bpy.types.Object.ik_chains  # type: ignore[attr-defined]  # registered at run time
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
