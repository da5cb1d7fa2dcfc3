"""The demo: a robot arm and a tentacle reach for animated targets, baked by the add-on and rendered.

Usage (the README's first command wraps it)::

    bash scripts/demo.sh [--renders 6] [--resolution 480x300] [--output-dir out/demo] [--no-docs-image]

Steps: build the scene in code (``demo_scene.py``), set up one chain per rig through the add-on's
properties, bake every frame with the add-on's bake function, save ``demo.blend``, render a few
frames with Workbench (no GPU needed), assemble ``contact_sheet.png`` and copy it to
``docs/images/demo_contact_sheet.png``. Prints each chain's residuals: the tip's distance to its
target on Blender's *evaluated* pose over all baked frames, with live solving off, so the
numbers describe the keys a renderer sees.

Traps:
    * Image pixels from ``bpy`` are bottom-up rows of float RGBA; the sheet is composed top-down
      and flipped back before saving.
    * The view transform is set to Standard: AgX (the default) would wash out Workbench's flat
      colours.
    * The add-on is registered from the repo (``PYTHONPATH`` is the repo root, as demo.sh sets),
      and the process ends through ``bpy_exit.exit_process`` (the 4.2 and 4.5 modules cannot
      shut down cleanly once an add-on was registered).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import bpy
import numpy as np
import numpy.typing as npt
from demo_scene import ChainSetup, build_scene, current_scene

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS_IMAGE = REPO_ROOT / "docs" / "images" / "demo_contact_sheet.png"
SHEET_MARGIN = 10  # pixels between tiles and around the sheet
SHEET_BACKGROUND = (0.12, 0.12, 0.13, 1.0)
Pixels: TypeAlias = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Residuals:
    """A chain's tip-to-target distances over the baked frames, world units."""

    chain: str
    frames: int
    max: float
    mean: float


# -- set-up and bake ----------------------------------------------------------------------------


def register_addon() -> Any:
    """Register the add-on from this repo; returns its ``blender.bake`` module."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import blender_ik_addon
    from blender_ik_addon.blender import bake

    blender_ik_addon.register()
    return bake


def add_chain(setup: ChainSetup) -> None:
    """One chain on ``setup.rig``, as a user would fill in the panel (live while authoring)."""
    chain = setup.rig.ik_chains.chains.add()
    chain.enabled = False  # set everything first, then solve once
    chain.name, chain.tip_bone, chain.chain_length = setup.name, setup.tip_bone, setup.length
    chain.target = setup.target
    chain.enabled = True


def bake_all(bake: Any, setups: list[ChainSetup]) -> None:
    """Bake every chain over the scene range with the add-on's bake function; live solving off after."""
    for setup in setups:
        report = bake.bake_chains(setup.rig, [setup.name], disable_live=True)
        print(f"Baked {setup.rig.name}/{setup.name}: {report.summary()} in {report.seconds:.2f} s")


def measure(setup: ChainSetup, frames: range) -> Residuals:
    """Distances from the evaluated tip bone's tail to the evaluated target, per frame."""
    scene = current_scene()
    distances = []
    for frame in frames:
        scene.frame_set(frame)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        rig = setup.rig.evaluated_get(depsgraph)
        tip = rig.matrix_world @ rig.pose.bones[setup.tip_bone].tail
        distances.append((tip - setup.target.evaluated_get(depsgraph).matrix_world.translation).length)
    return Residuals(setup.name, len(distances), float(np.max(distances)), float(np.mean(distances)))


# -- rendering ----------------------------------------------------------------------------------


def configure_render(scene: Any, width: int, height: int) -> None:
    """Workbench with a studio look: materials' colours, shadows, cavity, outlines; frame stamp."""
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = width, height, 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.compression = 100
    scene.render.film_transparent = False
    scene.view_settings.view_transform, scene.view_settings.look = "Standard", "None"
    scene.view_settings.exposure, scene.view_settings.gamma = 0.0, 1.0
    scene.display.render_aa = "16"
    shading = scene.display.shading
    shading.light, shading.studio_light, shading.color_type = "STUDIO", "paint.sl", "MATERIAL"
    shading.show_shadows, shading.shadow_intensity = True, 0.45
    shading.show_cavity, shading.cavity_type = True, "WORLD"
    shading.show_object_outline, shading.show_specular_highlight = True, True
    scene.display.light_direction = (0.45, -0.35, 0.82)
    scene.display.shadow_focus = 0.6
    world = scene.world or bpy.data.worlds.new("World")
    world.color = (0.62, 0.66, 0.72)
    scene.world = world
    stamp_frame_number(scene.render)


def stamp_frame_number(render: Any) -> None:
    """Burn only "Frame N" into each render (the stamp's other fields are off)."""
    for name in dir(render):
        if name.startswith("use_stamp_"):
            setattr(render, name, False)
    render.use_stamp, render.use_stamp_frame, render.use_stamp_labels = True, True, True
    render.stamp_font_size = 14
    render.stamp_foreground, render.stamp_background = (1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 0.55)


def render_frames(frames: list[int], folder: Path) -> list[Path]:
    """Render each frame to ``folder/frame_NNNN.png``."""
    scene = current_scene()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for frame in frames:
        scene.frame_set(frame)
        scene.render.filepath = str(folder / f"frame_{frame:04d}.png")
        bpy.ops.render.render(write_still=True)
        paths.append(Path(scene.render.filepath))
    return paths


def load_pixels(path: Path) -> Pixels:
    """A PNG as ``(height, width, 4)`` float RGBA, top row first."""
    image: Any = bpy.data.images.load(str(path))
    width, height = image.size
    pixels = np.empty(width * height * 4, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    bpy.data.images.remove(image)
    return pixels.reshape(height, width, 4)[::-1]


def blank_renders(tiles: list[Pixels]) -> bool:
    """True if every render is one flat colour: Workbench drew nothing (no OpenGL/EGL context)."""
    return all(float(tile[..., :3].std()) < 1e-3 for tile in tiles)


def compose_sheet(tiles: list[Pixels], columns: int) -> Pixels:
    """Tiles of equal size in a grid, row-major, with margins; ``(H, W, 4)`` top row first."""
    height, width, _ = tiles[0].shape
    rows = -(-len(tiles) // columns)
    sheet = np.empty((rows * (height + SHEET_MARGIN) + SHEET_MARGIN, columns * (width + SHEET_MARGIN) + SHEET_MARGIN,
                      4), dtype=np.float32)
    sheet[:] = SHEET_BACKGROUND
    for index, tile in enumerate(tiles):
        top = SHEET_MARGIN + (index // columns) * (height + SHEET_MARGIN)
        left = SHEET_MARGIN + (index % columns) * (width + SHEET_MARGIN)
        sheet[top:top + height, left:left + width] = tile
    return sheet


def save_png(pixels: Pixels, path: Path, scene: Any) -> None:
    """Save ``(H, W, 4)`` top-down float RGBA (already display-encoded) as an 8-bit RGB PNG.

    ``save_render`` writes with the scene's image settings (PNG compression 100: a third smaller
    than ``Image.save``). It applies the scene's view transform, which with Standard, no look,
    zero exposure and gamma 1 gives back the same bytes for an sRGB byte image.
    """
    height, width, _ = pixels.shape
    image: Any = bpy.data.images.new(path.stem, width, height, alpha=False)
    image.pixels.foreach_set(np.ascontiguousarray(pixels[::-1]).ravel())
    image.save_render(str(path), scene=scene)
    bpy.data.images.remove(image)


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description="Build, bake and render the IK Chains demo scene.")
    parser.add_argument("--renders", type=int, default=6, help="frames in the contact sheet (default 6)")
    parser.add_argument("--columns", type=int, default=3, help="contact sheet columns (default 3)")
    parser.add_argument("--resolution", default="480x300", help="render size WxH per frame (default 480x300)")
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "out" / "demo")
    parser.add_argument("--no-docs-image", action="store_true", help=f"do not copy the sheet to {DOCS_IMAGE}")
    args = parser.parse_args(argv)
    width, _, height = args.resolution.partition("x")
    if not (width.isdigit() and height.isdigit()) or args.renders < 1 or args.columns < 1:
        parser.error("--resolution must be WxH (e.g. 480x300); --renders and --columns must be >= 1")
    args.size = int(width), int(height)
    return args


def build_and_bake() -> list[ChainSetup]:
    """An empty file, the add-on registered, the scene built, one chain per rig, all baked."""
    bpy.ops.wm.read_homefile(use_empty=True)
    bake = register_addon()
    setups = build_scene()
    for setup in setups:
        add_chain(setup)
    bake_all(bake, setups)
    return setups


def render_contact_sheet(scene: Any, args: argparse.Namespace, out: Path) -> Path | None:
    """Render ``args.renders`` frames and compose them; None if Workbench drew nothing."""
    configure_render(scene, *args.size)
    # The animation loops (last frame = first), so the sheet spreads over [start, end).
    picks = np.linspace(scene.frame_start, scene.frame_end, args.renders, endpoint=False).round().astype(int).tolist()
    tiles = [load_pixels(path) for path in render_frames(picks, out / "frames")]
    if blank_renders(tiles):
        return None
    sheet_path = out / "contact_sheet.png"
    save_png(compose_sheet(tiles, args.columns), sheet_path, scene)
    return sheet_path


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 on success, 1 if the renders came out blank."""
    args = parse_args(argv)
    out: Path = args.output_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    setups = build_and_bake()
    scene = current_scene()
    for res in (measure(setup, range(scene.frame_start, scene.frame_end + 1)) for setup in setups):
        print(f"Residual {res.chain}: max {res.max:.2e}, mean {res.mean:.2e} over {res.frames} frames")
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "demo.blend"))
    sheet_path = render_contact_sheet(scene, args, out)
    if sheet_path is None:
        print("error: the renders are blank; Workbench needs an OpenGL context (EGL when headless)", file=sys.stderr)
        return 1
    print(f"Saved {out / 'demo.blend'} and {sheet_path}")
    if not args.no_docs_image:
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sheet_path, DOCS_IMAGE)
        print(f"Copied the contact sheet to {DOCS_IMAGE.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    from bpy_exit import exit_process

    exit_process(main())
