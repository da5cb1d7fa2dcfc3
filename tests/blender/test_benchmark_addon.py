"""The benchmark's add-on section (scripts/bench/addon.py) on tiny sizes: it measures, its bakes reach
their targets, and it leaves Blender as it found it (registration and handlers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

bpy = pytest.importorskip("bpy")

import blender_ik_addon  # noqa: E402

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
HANDLER_EVENTS = ("frame_change_post", "depsgraph_update_post", "load_pre", "load_post", "render_init",
                  "render_complete", "render_cancel")


@pytest.fixture(scope="module")
def scripts_on_path() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SCRIPTS))
        yield


def handler_lists() -> dict[str, list[Any]]:
    return {event: list(getattr(bpy.app.handlers, event)) for event in HANDLER_EVENTS}


@pytest.fixture(scope="module")
def measured(scripts_on_path: None) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The section measured as the benchmark runs it (add-on not registered), and the handler lists
    before and after; the session's registration is restored afterwards."""
    from bench.addon import measure_addon_in_blender
    from bench.runner import Settings

    blender_ik_addon.unregister()  # registered by the session fixture; the benchmark starts without it
    try:
        before = handler_lists()
        result = measure_addon_in_blender(Settings(addon_frames=20, bake_frames=20, addon_runs=1))
        after = {"handlers": handler_lists(), "ik_chains": hasattr(bpy.types.Object, "ik_chains")}
    finally:
        blender_ik_addon.register()
    yield result, {"before": before, **after}


def test_figures_are_measured_and_positive(measured: tuple[dict[str, Any], dict[str, Any]]) -> None:
    result, _ = measured
    assert result["status"] == "ok"
    assert set(result["live_handler_ms_per_frame"]) == {"1_chain", "8_chains"}
    assert all(value > 0 for value in result["live_handler_ms_per_frame"].values())
    assert result["bake_ms_per_frame"] > 0 and result["nla_bake_visual_keying_ms_per_frame"] > 0
    assert result["bake_frame_path_ms_per_frame"] > 0
    ratio = result["bake_vs_nla_bake"]
    assert ratio["value"] == pytest.approx(result["bake_ms_per_frame"] / result["nla_bake_visual_keying_ms_per_frame"])
    assert ratio["met"] == (ratio["value"] <= 0.5)
    for kind in ("moving_targets", "still_targets"):
        for case in ("1_chain", "8_chains", "8_armatures"):
            figures = result["live_handler"][kind][case]
            assert figures["enabled_ms"] > 0 and figures["disabled_ms"] > 0, (kind, case)
            assert figures["overhead_ms"] == pytest.approx(figures["enabled_ms"] - figures["disabled_ms"])
            assert figures["tip_error"]["max"] < 1e-3, (kind, case)  # the live chains did solve


def test_both_bakes_key_every_frame_and_reach_the_targets(measured: tuple[dict[str, Any], dict[str, Any]]) -> None:
    bake = measured[0]["bake"]
    assert bake["frames"] == 20
    assert bake["ours"]["path"] == "fcurves" and bake["ours_frame_path"]["path"] == "frames"
    for name in ("ours", "ours_frame_path", "nla_bake_visual_keying", "nla_bake_rotation_only"):
        figures = bake[name]
        assert figures["ms_per_frame"] > 0, name
        assert figures["keys"]["keys_per_rotation_fcurve"] == [20], name
        assert figures["tip_error"]["frames_checked"] == 20, name
        # Chains 3 units long; ours converges to 1e-4, Blender's float32 IK to a few 1e-4.
        assert figures["tip_error"]["max"] < (2e-4 if name.startswith("ours") else 5e-3), name
    assert bake["nla_bake_visual_keying"]["operator_result"] == ["FINISHED"]


def test_the_addon_is_unregistered_and_the_handlers_restored(measured: tuple[dict[str, Any],
                                                                             dict[str, Any]]) -> None:
    result, state = measured
    assert result["registration"] == "registered and unregistered here"
    assert result["handlers_restored"] is True
    assert state["handlers"] == state["before"]
    assert not state["ik_chains"]


def test_markdown_section(measured: tuple[dict[str, Any], dict[str, Any]], scripts_on_path: None) -> None:
    from bench.report import addon_section

    text = "\n".join(addon_section(measured[0]))
    assert "### Live handler" in text and "### Bake" in text and "Goal (issue 3)" in text
    assert "Status:" not in text
    assert addon_section({"status": "skipped"})[-2] == "Status: skipped."


def test_motion_section_runs_blender_per_frame(scripts_on_path: None) -> None:
    """The motion section with Blender's IK beside ours on one small rig and path (tiny sizes)."""
    from bench.motion import measure_motion
    from bench.motion_report import motion_section

    frames = 8
    motion = measure_motion(frames, ["hinge_limb"], ["circle"], blender=True)
    rig = motion["rigs"]["hinge_limb"]
    assert rig["status"] == "ok" and rig["info"]["blender"] == "ok"
    entry = rig["paths"]["circle"]
    blender = entry["solvers"]["blender"]
    assert blender["frames"] == frames and blender["ms_per_frame"] > 0
    assert blender["reach_rate"] == 1.0  # the constraint followed the keyed target frame by frame
    assert blender["max_limit_violation_deg"] < 1e-3  # bone IK limits equal to the chain's
    assert entry["goals"]["switches_vs_blender_pops"]["met"] in (True, False)
    text = "\n".join(motion_section(motion))
    assert "| circle | Blender IK |" in text and "not measured" not in text
