"""What Blender's events do to live chains; ``handlers.py`` only wires the events to these.

* :func:`frame_changed`: every live chain of the scene solved at the new frame.
* :func:`depsgraph_updated`: chains whose target, pole or armature moved re-solved (and auto-keyed
  with Auto Keying on), outside playback and renders.
* :func:`render_started` / :func:`render_finished`: renders solve through the render depsgraph;
  the drag handler stays out of them.
* :func:`file_loading`: forget every piece of runtime state (it names objects of the old file).
* :func:`undone`: undo or redo changed settings behind their callbacks (:mod:`.replay`).

Both solving events first report armature edits to :mod:`.structure` (so cached chains are read
again), hold the one re-entrancy guard (:mod:`.guard`) while they solve, and let nothing escape
into playback or rendering: each chain's errors become its status.
"""

from __future__ import annotations

import logging
from typing import Any

import bpy

from . import bake, guard, live, replay, status, structure
from .order import PassMotion, plan_pass
from .settings import chain_specs, has_live_chain, live_rigs, rig_settings

log = logging.getLogger(__name__)
_rendering = False  # between render_init and render_complete/cancel


def _solve(objects: list[Any], depsgraph: Any, chains: dict[str, set[str]] | None = None,
           autokey: bool = False, updated: frozenset[str] | None = None) -> None:
    with guard.suspended():
        try:
            if updated is not None and chains is None and not autokey:  # a frame pass: still rigs first
                objects = [obj for obj in objects if live.still_outcomes(obj, depsgraph, updated) is None]
                objects = live.replayed(objects, depsgraph) if objects else objects  # the fast lane
                if not objects:
                    return
            frame = float(depsgraph.scene.frame_current)
            specs = {obj.as_pointer(): chain_specs(obj, None if chains is None else chains[obj.name],
                                                   enabled_only=True) for obj in objects}
            plan = plan_pass(objects, specs, depsgraph.scene)
            motion = PassMotion()  # shared: a rig may follow another rig's chains (solved first)
            for obj in plan.rigs:
                names = None if chains is None else chains[obj.name]
                live.solve_rig(obj, depsgraph, names=names, key_frame=frame if autokey else None, autokey=autokey,
                               trust_edits=True, updated=updated, specs=list(specs[obj.as_pointer()]), plan=plan,
                               motion=motion)
        except Exception:  # never break playback or a render; per-chain errors are already statuses
            log.exception("IK Chains handler failed")


def frame_changed(scene: Any, depsgraph: Any | None) -> None:
    """Solve every live chain of the scene at the new frame."""
    if guard.is_suspended() or not bpy.data.armatures:  # the cheapest exit: a file without rigs
        return
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    updated = structure.note_updates(depsgraph)
    rigs = live_rigs(scene)
    if rigs:
        _solve(rigs, depsgraph, updated=updated)


def depsgraph_updated(scene: Any, depsgraph: Any) -> None:
    """Re-solve chains whose target, pole or armature moved (not during playback or renders)."""
    if not bpy.data.armatures or guard.is_suspended():
        return
    # Even when nothing is solved now, the next frame must know what changed here.
    live.forget_still(structure.note_updates(depsgraph))
    if _rendering or _is_playing():
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
        settings = rig_settings(obj)
        if settings is None:
            continue
        names = {c.name for c in settings.chains if c.enabled and (
            obj.name in moved or (c.target is not None and c.target.name in moved)
            or (c.pole is not None and c.pole.name in moved))}
        if names:
            chains[obj.name] = names
    if chains:
        chains = _with_groups_and_followers(rigs, chains, depsgraph.scene)
        autokey = bool(scene.tool_settings.use_keyframe_insert_auto)
        _solve([o for o in rigs if o.name in chains], depsgraph, chains, autokey=autokey)


def _with_groups_and_followers(rigs: list[Any], chains: dict[str, set[str]], scene: Any) -> dict[str, set[str]]:
    """``chains`` (rig name -> chain names to solve), every chain that shares bones with one of them
    (a group solves whole) and every chain that follows one of them, until nothing is added."""
    by_name = {obj.name: obj for obj in rigs}
    while True:
        grown = {name: live.with_group_mates(by_name[name], names) for name, names in chains.items()}
        grown = _with_followers(rigs, grown, scene)
        if grown == chains:
            return chains
        chains = grown


def _with_followers(rigs: list[Any], chains: dict[str, set[str]], scene: Any) -> dict[str, set[str]]:
    """``chains`` (rig name -> chain names to solve) and every live chain that follows one of them,
    however indirectly (a hand target riding a chest that a dragged spine target moves)."""
    specs = {obj.as_pointer(): chain_specs(obj, enabled_only=True) for obj in rigs}
    plan = plan_pass(rigs, specs, scene)
    if not plan.follows:
        return chains
    names = {obj.as_pointer(): obj.name for obj in rigs}
    chosen = {(obj.as_pointer(), name) for obj in rigs for name in chains.get(obj.name, ())}
    grew = True
    while grew:
        grew = False
        for key, found in plan.follows.items():
            if key not in chosen and any(f.upper in chosen for f in found):
                chosen.add(key)
                grew = True
    out: dict[str, set[str]] = {}
    for pointer, name in chosen:
        out.setdefault(names[pointer], set()).add(name)
    return out


def solve_object_now(obj: Any) -> None:
    """Solve ``obj``'s live chains at the current frame (after a setting changed)."""
    if guard.is_suspended() or obj is None or not has_live_chain(obj):
        return
    _solve([obj], bpy.context.evaluated_depsgraph_get())


def _is_playing() -> bool:
    screen = getattr(bpy.context, "screen", None)
    if screen is not None and screen.is_animation_playing:
        return True
    wm = bpy.context.window_manager
    return wm is not None and any(w.screen is not None and w.screen.is_animation_playing for w in wm.windows)


def file_loading() -> None:
    """A file is loading: forget runtime state (statuses and caches name objects of the old file)."""
    global _rendering
    _rendering = False
    guard.reset()
    status.clear_status()
    live.forget()


def undone() -> None:
    """Undo or redo put settings back without their update callbacks: replay nothing kept before;
    and keys back: a bake's findings about keys that are gone are dropped."""
    replay.invalidate()
    bake.forget_undone_findings()


def shutdown() -> None:
    """The add-on is unregistered: drop every piece of runtime state."""
    file_loading()


LOCK_INTERFACE_WARNING = "Live chains solve during renders: turn on Lock Interface"


def lock_interface_warning(scene: Any) -> str:
    """The warning the panel shows while live chains would solve during renders without Render >
    Lock Interface ("" when nothing is live or the interface is locked)."""
    if scene.render.use_lock_interface or not bpy.data.armatures or not live_rigs(scene):
        return ""
    return LOCK_INTERFACE_WARNING


def render_started(scene: Any | None) -> None:
    """Renders run handlers on the render thread: keep the drag handler out of it (and say so when
    the interface is not locked; renders from the UI then race with it)."""
    global _rendering
    _rendering = True
    if scene is not None and not bpy.app.background and lock_interface_warning(scene):
        log.warning("IK Chains: %s", LOCK_INTERFACE_WARNING)


def render_finished() -> None:
    """Render finished or cancelled."""
    global _rendering
    _rendering = False


def is_rendering() -> bool:
    """True between a render's start and its end."""
    return _rendering
