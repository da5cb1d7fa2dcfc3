"""Live solving: a persistent ``frame_change_post`` handler, and a ``depsgraph_update_post`` handler
that makes chains follow a target being dragged (and auto-keys them when Auto Keying is on).

Rules they follow (see shared Blender notes):

* ``@persistent``, so they survive file loads; :func:`register` never appends twice and
  :func:`unregister` removes exactly what it added.
* Re-entrancy guard: writing the pose triggers depsgraph updates (and ``frame_set`` would re-enter).
  They never call ``frame_set`` and never write ID properties (status lives in ``blender.status``).
* Cheap when idle: a file without armatures exits at once; otherwise one pass over the scene's
  objects finds the live rigs. A chain whose inputs (rig, base, target, pole, pose) did not change
  since its last solve is not solved again (see ``blender.live``).
* Each chain's errors become its status; nothing escapes into playback or rendering.
* They do not skip ``bpy.app.background``: headless renders must solve too. During renders the
  frame handler solves through the render depsgraph; the drag handler stays out of the way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import bpy

from .blender import cache, live, status

if TYPE_CHECKING:
    _Handler = TypeVar("_Handler", bound=Callable[..., None])

    def persistent(function: _Handler) -> _Handler:
        """The stubs declare ``persistent`` as Any; it marks ``function`` and returns it."""
else:
    from bpy.app.handlers import persistent

log = logging.getLogger(__name__)


@dataclass
class _State:
    """Module state, reset when a file loads."""

    busy: bool = False  # a handler of ours is running: ignore the updates it causes
    rendering: bool = False


_state = _State()


def live_rigs(scene: Any) -> list[Any]:
    """Armature objects of ``scene`` with at least one live chain."""
    return [obj for obj in scene.objects if obj.type == "ARMATURE" and live.has_live_chain(obj)]


def _solve(objects: list[Any], depsgraph: Any, chains: dict[str, set[str]] | None = None,
           autokey: bool = False) -> None:
    _state.busy = True
    try:
        frame = float(depsgraph.scene.frame_current)
        for obj in objects:
            names = None if chains is None else chains[obj.name]
            live.solve_rig(obj, depsgraph, names=names, key_frame=frame if autokey else None, autokey=autokey)
    except Exception:  # never break playback or a render; per-chain errors are already statuses
        log.exception("IK Chains handler failed")
    finally:
        _state.busy = False


@persistent
def on_frame_change_post(scene: Any, depsgraph: Any = None) -> None:
    """Solve every live chain of the scene at the new frame."""
    if _state.busy or live.is_suspended():
        return
    if not bpy.data.armatures:  # the cheapest exit: a file without rigs
        return
    rigs = live_rigs(scene)
    if not rigs:
        return
    _solve(rigs, depsgraph or bpy.context.evaluated_depsgraph_get())


@persistent
def on_depsgraph_update_post(scene: Any, depsgraph: Any) -> None:
    """Re-solve chains whose target, pole or armature moved (not during playback or renders)."""
    if _state.busy or _state.rendering or live.is_suspended() or not bpy.data.armatures or _is_playing():
        return
    rigs = live_rigs(scene)
    if not rigs:
        return
    # A pose edit flags the armature object as a geometry update, a moved object as a transform one.
    moved = {getattr(u.id, "original", u.id).name for u in depsgraph.updates
             if (u.is_updated_transform or u.is_updated_geometry) and isinstance(u.id, bpy.types.Object)}
    if not moved:
        return
    chains: dict[str, set[str]] = {}
    for obj in rigs:
        names = {c.name for c in obj.ik_chains.chains if c.enabled and (
            obj.name in moved or (c.target is not None and c.target.name in moved)
            or (c.pole is not None and c.pole.name in moved))}
        if names:
            chains[obj.name] = names
    if chains:
        autokey = bool(scene.tool_settings.use_keyframe_insert_auto)
        _solve([o for o in rigs if o.name in chains], depsgraph, chains, autokey=autokey)


def solve_object_now(obj: Any) -> None:
    """Solve ``obj``'s live chains at the current frame (after a setting changed)."""
    if _state.busy or live.is_suspended() or obj is None or not live.has_live_chain(obj):
        return
    _solve([obj], bpy.context.evaluated_depsgraph_get())


def _is_playing() -> bool:
    screen = getattr(bpy.context, "screen", None)
    if screen is not None and screen.is_animation_playing:
        return True
    wm = bpy.context.window_manager
    return wm is not None and any(w.screen is not None and w.screen.is_animation_playing for w in wm.windows)


@persistent
def on_load_pre(*_args: Any) -> None:
    """A file is loading: forget runtime state (statuses name objects of the old file)."""
    global _state
    _state = _State()
    status.clear_status()
    cache.clear()
    live.forget()


LOCK_INTERFACE_WARNING = "Live chains solve during renders: turn on Lock Interface"


def lock_interface_warning(scene: Any) -> str:
    """The warning the panel shows while live chains would solve during renders without Render >
    Lock Interface ("" when nothing is live or the interface is locked)."""
    if scene.render.use_lock_interface or not bpy.data.armatures or not live_rigs(scene):
        return ""
    return LOCK_INTERFACE_WARNING


@persistent
def on_render_init(scene: Any = None, *_args: Any) -> None:
    """Renders run handlers on the render thread: keep the drag handler out of it (and say so when
    the interface is not locked; renders from the UI then race with it)."""
    _state.rendering = True
    if scene is not None and not bpy.app.background and lock_interface_warning(scene):
        log.warning("IK Chains: %s", LOCK_INTERFACE_WARNING)


@persistent
def on_render_done(*_args: Any) -> None:
    """Render finished or cancelled."""
    _state.rendering = False


HANDLERS = (
    ("frame_change_post", on_frame_change_post),
    ("depsgraph_update_post", on_depsgraph_update_post),
    ("load_pre", on_load_pre),
    ("render_init", on_render_init),
    ("render_complete", on_render_done),
    ("render_cancel", on_render_done),
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
    cache.clear()
    live.forget()
    for event, function in HANDLERS:
        handlers = getattr(bpy.app.handlers, event)
        while function in handlers:
            handlers.remove(function)
