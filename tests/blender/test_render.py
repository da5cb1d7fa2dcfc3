"""A headless animation render with live solving shows the same poses as the baked keys, and the
user is told to turn Lock Interface on when live chains would solve during renders."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import bpy
import numpy as np
import pytest
from fault_helpers import (
    BAD_BONES,
    GOOD_BONES,
    Scene,
    bystander_rig,
    keyed_location,
    run_operator,
    select_chain,
    undocumented,
    user_sees,
)

from blender_ik_addon.blender import events, get_status
from blender_ik_addon.ui.panels import VIEW3D_PT_ikchains_main

FRAMES = (1, 6)
BONES = (*GOOD_BONES, *BAD_BONES)


@dataclass
class Recorder:
    """Evaluated pose matrices of the chain bones per rendered frame.

    ``frame_change_post`` (after the add-on's handler, which writes the pose) keeps the render
    depsgraph; ``render_post`` reads the pose that depsgraph evaluated for the image just rendered.
    """

    rig_name: str
    depsgraph: Any = None
    poses: dict[int, np.ndarray] = field(default_factory=dict)
    modes: list[str] = field(default_factory=list)

    def on_frame(self, scene: Any, depsgraph: Any = None) -> None:
        if depsgraph is not None and depsgraph.mode == "RENDER":
            self.depsgraph = depsgraph

    def on_rendered(self, scene: Any, *_args: Any) -> None:
        assert self.depsgraph is not None, "no render depsgraph seen before the frame was rendered"
        self.modes.append(self.depsgraph.mode)
        rig = bpy.data.objects[self.rig_name].evaluated_get(self.depsgraph)
        world = np.array(rig.matrix_world)
        self.poses[scene.frame_current] = np.array([world @ np.array(rig.pose.bones[b].matrix) for b in BONES])


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder("Rig")
    bpy.app.handlers.frame_change_post.append(rec.on_frame)
    bpy.app.handlers.render_post.append(rec.on_rendered)
    yield rec
    bpy.app.handlers.frame_change_post.remove(rec.on_frame)
    bpy.app.handlers.render_post.remove(rec.on_rendered)


def render_scene() -> Scene:
    """The bystander rig with a small cube on each chain's tip bone, a camera, Workbench at 64x48."""
    scene = bystander_rig()
    for tip in ("good.2", "bad.2"):
        cube = bpy.data.objects.new(f"Cube.{tip}", bpy.data.meshes.new(f"Cube.{tip}"))
        cube.data.from_pydata([(x, y, z) for x in (-0.1, 0.1) for y in (-0.1, 0.1) for z in (-0.1, 0.1)], [],
                              [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)])
        cube.parent, cube.parent_type, cube.parent_bone = scene.rig, "BONE", tip
        bpy.context.scene.collection.objects.link(cube)
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    camera.location = (1.5, 1.5, 9.0)  # looking down -Z at the rigs
    bpy.context.scene.collection.objects.link(camera)
    render = bpy.context.scene.render
    bpy.context.scene.camera = camera
    render.engine = "BLENDER_WORKBENCH"
    render.resolution_x, render.resolution_y, render.resolution_percentage = 64, 48, 100
    render.image_settings.file_format = "PNG"
    bpy.context.scene.frame_start, bpy.context.scene.frame_end = FRAMES
    return scene


def render(folder: Path) -> list[np.ndarray]:
    """Render the animation into ``folder``; returns each frame's pixels."""
    bpy.context.scene.render.filepath = str(folder / "frame_")
    assert bpy.ops.render.render(animation=True) == {"FINISHED"}
    images = []
    for frame in range(FRAMES[0], FRAMES[1] + 1):
        image = bpy.data.images.load(str(folder / f"frame_{frame:04d}.png"))
        pixels = np.empty(len(image.pixels), dtype=np.float32)
        image.pixels.foreach_get(pixels)
        images.append(pixels)
        bpy.data.images.remove(image)
    return images


def test_render_with_live_solving_matches_the_bake(tmp_path: Path, recorder: Recorder, capfd) -> None:
    scene = render_scene()
    scene.bad_target.hide_render = True  # controls are usually hidden from renders
    live_images = render(tmp_path / "live")
    live = dict(recorder.poses)
    assert sorted(live) == list(range(FRAMES[0], FRAMES[1] + 1)) and set(recorder.modes) == {"RENDER"}
    for frame, matrices in live.items():  # the rendered poses reach their targets...
        for target, tip in ((scene.good_target, 2), (scene.bad_target, 5)):
            tail = matrices[tip] @ np.array([0.0, 1.0, 0.0, 1.0])
            np.testing.assert_allclose(tail[:3], keyed_location(target, frame), atol=1e-4, err_msg=f"frame {frame}")
    select_chain(scene.rig, "good")
    out = run_operator(capfd, bpy.ops.ikchains.bake, frame_start=FRAMES[0], frame_end=FRAMES[1], chains="ALL",
                       disable_live=True)
    assert out.result == {"FINISHED"} and out.report.startswith("6 frames solved, 0 not converged"), out
    recorder.poses.clear()
    baked_images = render(tmp_path / "baked")
    for frame, matrices in live.items():  # ...and are the baked ones
        np.testing.assert_allclose(recorder.poses[frame], matrices, atol=1e-6, err_msg=f"frame {frame}")
    for frame, (a, b) in enumerate(zip(live_images, baked_images, strict=True), FRAMES[0]):
        assert np.abs(a - b).max() <= 1 / 255, f"frame {frame}: the images differ"
    assert any(np.abs(live_images[0] - image).max() > 0.1 for image in live_images[1:])  # the cubes move
    user_sees("render-live", given="Render an animation (Workbench, headless) with live chains, one target "
              "disabled in renders", where="the rendered images", message=out.report,
              preserved="every frame's evaluated pose equals the baked keys' (1e-6) and the images are the same")


@pytest.mark.parametrize("hidden", [False, True])
def test_render_reads_control_bones_or_says_why_it_cannot(tmp_path: Path, recorder: Recorder, hidden: bool) -> None:
    """A control bone of the rig itself is read through the render depsgraph. With the armature
    disabled in renders, Blender evaluates only the bones something rendered hangs from (the cubes'
    bones here: measured, a control bone then keeps its frame-1 place): refused, by name."""
    scene = render_scene()
    rig = scene.rig
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    control = rig.data.edit_bones.new("good.ctrl")
    control.head, control.tail = (0.0, 0.0, 0.0), (0.0, 0.2, 0.0)
    bpy.ops.object.mode_set(mode="OBJECT")
    follow = rig.pose.bones["good.ctrl"].constraints.new("COPY_LOCATION")  # the control rides the good target
    follow.target = scene.good_target
    chain = rig.ik_chains.chains["good"]
    chain.target_bone, chain.target = "good.ctrl", rig
    rig.hide_render = hidden
    shown: list[str] = []

    def status_when_rendered(*_args: Any) -> None:
        status = get_status("Rig", "good")
        shown.append("" if status is None else status.message)
    bpy.app.handlers.render_post.append(status_when_rendered)
    try:
        render(tmp_path / "live")
    finally:
        bpy.app.handlers.render_post.remove(status_when_rendered)
    assert sorted(recorder.poses) == list(range(FRAMES[0], FRAMES[1] + 1))
    if hidden:
        assert set(shown) == {"armature 'Rig' (holding bone 'good.ctrl') is disabled in renders, so Blender "
                              "evaluates at most the bones that something shown depends on, and the chain cannot "
                              "see where the bone is; enable it in renders (armatures do not show in renders)"}
        return
    assert set(shown) == {""}
    for frame, matrices in recorder.poses.items():
        tail = matrices[2] @ np.array([0.0, 1.0, 0.0, 1.0])
        np.testing.assert_allclose(tail[:3], keyed_location(scene.good_target, frame), atol=1e-4,
                                   err_msg=f"frame {frame}")


class Layout:
    """Stands in for the panel's ``UILayout`` (only regions make real ones): records labels and props."""

    def __init__(self, drawn: list[tuple[str, str]]) -> None:
        self.drawn = drawn

    def label(self, text: str = "", **_kw: Any) -> None:
        self.drawn.append(("label", text))

    def prop(self, _data: Any, name: str, **_kw: Any) -> None:
        self.drawn.append(("prop", name))

    def operator(self, idname: str, **_kw: Any) -> None:
        self.drawn.append(("operator", idname))

    def template_list(self, *_args: Any, **_kw: Any) -> None:
        self.drawn.append(("list", ""))

    def row(self, **_kw: Any) -> Layout:
        return self

    column = row


def drawn_panel(rig: bpy.types.Object) -> list[tuple[str, str]]:
    """What the sidebar's main IK Chains panel draws for ``rig``."""
    drawn: list[tuple[str, str]] = []
    context = SimpleNamespace(object=rig, scene=bpy.context.scene, mode="OBJECT")
    VIEW3D_PT_ikchains_main.draw(SimpleNamespace(layout=Layout(drawn)), context)
    return drawn


def test_lock_interface_warning_when_live_chains_would_solve_in_renders() -> None:
    scene = bystander_rig()
    render = bpy.context.scene.render
    render.use_lock_interface = False
    message = events.lock_interface_warning(bpy.context.scene)
    assert message == "Live chains solve during renders: turn on Lock Interface"
    assert ("label", message) in drawn_panel(scene.rig)
    assert ("prop", "use_lock_interface") in drawn_panel(scene.rig)  # the fix, one click away
    render.use_lock_interface = True
    assert events.lock_interface_warning(bpy.context.scene) == ""
    assert ("label", message) not in drawn_panel(scene.rig)
    render.use_lock_interface = False
    for chain in scene.rig.ik_chains.chains:
        chain.enabled = False
    assert events.lock_interface_warning(bpy.context.scene) == ""  # nothing live: nothing to lock
    user_sees("lock-interface", given="Live chains in the scene and Render > Lock Interface off",
              where="panel: this warning above the Lock Interface checkbox", message=message,
              preserved="nothing is changed behind the user's back; the checkbox is one click away")


def test_the_table_lists_these_cases() -> None:
    assert undocumented("tests/blender/test_render.py") == []

