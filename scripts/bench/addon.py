"""Hook for the add-on's own figures inside Blender, to be filled in once the add-on exists."""

from __future__ import annotations

from typing import Any

from .runner import Settings

NOT_MEASURED = "not measured yet"


def measure_addon_in_blender(settings: Settings) -> dict[str, Any]:
    """The add-on's cost inside Blender, reported in its own section of the benchmark.

    To measure (with the installed add-on, headless, on generated armatures):

    * ``live_handler_ms_per_frame``: the ``frame_change_post`` handler's overhead per
      ``scene.frame_set()`` with 1 and with 8 live chains, against the same frames without it;
    * ``bake_ms_per_frame``: the add-on's bake of a frame range, against
      ``nla_bake_visual_keying_ms_per_frame``: ``bpy.ops.nla.bake(visual_keying=True)`` of
      Blender's own IK constraint on the same rig and frames.

    Returns:
        ``{"status": "ok", ...figures}`` once implemented; until then ``status`` says
        "not measured yet" and every figure is None.
    """
    del settings  # used once implemented
    return {
        "status": NOT_MEASURED,
        "live_handler_ms_per_frame": {"1_chain": None, "8_chains": None},
        "bake_ms_per_frame": None,
        "nla_bake_visual_keying_ms_per_frame": None,
    }
