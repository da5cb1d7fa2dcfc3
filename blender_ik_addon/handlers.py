"""Blender's events wired to the live pass (:mod:`.blender.events` does the work).

Rules they follow (see shared Blender notes):

* ``@persistent``, so they survive file loads; :func:`register` never appends twice and
  :func:`unregister` removes exactly what it added.
* Each handler is one call into ``blender.events``: re-entrancy, rendering and errors are handled
  there, so nothing escapes into playback or rendering.
* They do not skip ``bpy.app.background``: headless renders must solve too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import bpy

from .blender import events

if TYPE_CHECKING:
    _Handler = TypeVar("_Handler", bound=Callable[..., None])

    def persistent(function: _Handler) -> _Handler:
        """The stubs declare ``persistent`` as Any; it marks ``function`` and returns it."""
else:
    from bpy.app.handlers import persistent

@persistent
def on_frame_change_post(scene: Any, depsgraph: Any = None) -> None:
    """Solve every live chain of the scene at the new frame."""
    events.frame_changed(scene, depsgraph)


@persistent
def on_depsgraph_update_post(scene: Any, depsgraph: Any) -> None:
    """Re-solve chains whose target, pole or armature moved (not during playback or renders)."""
    events.depsgraph_updated(scene, depsgraph)


@persistent
def on_load_pre(*_args: Any) -> None:
    """A file is loading: forget runtime state."""
    events.file_loading()


@persistent
def on_render_init(scene: Any = None, *_args: Any) -> None:
    """A render starts."""
    events.render_started(scene)


@persistent
def on_render_done(*_args: Any) -> None:
    """Render finished or cancelled."""
    events.render_finished()


@persistent
def on_undo_redo(*_args: Any) -> None:
    """Undo or redo: settings changed without their update callbacks."""
    events.undone()


HANDLERS = (
    ("frame_change_post", on_frame_change_post),
    ("depsgraph_update_post", on_depsgraph_update_post),
    ("load_pre", on_load_pre),
    ("render_init", on_render_init),
    ("render_complete", on_render_done),
    ("render_cancel", on_render_done),
    ("undo_post", on_undo_redo),
    ("redo_post", on_undo_redo),
)


def _ours(candidate: Any, function: Any) -> bool:
    # A stale copy of this module (re-imported without unregister) counts as ours too.
    return candidate is function or (getattr(candidate, "__module__", None) == function.__module__
                                     and getattr(candidate, "__qualname__", None) == function.__qualname__)


def register() -> None:
    """Append the handlers, never twice (stale copies of ours are replaced)."""
    for event, function in HANDLERS:
        handlers = getattr(bpy.app.handlers, event)
        for stale in [h for h in handlers if _ours(h, function)]:
            handlers.remove(stale)
        handlers.append(function)


def unregister() -> None:
    """Remove exactly the handlers :func:`register` appended (and drop runtime state)."""
    events.shutdown()
    for event, function in HANDLERS:
        handlers = getattr(bpy.app.handlers, event)
        while function in handlers:
            handlers.remove(function)
