"""The README's first command, small: ``scripts/demo.py`` builds, bakes, saves, renders and reports."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from .conftest import SCRIPTS, describe, requires_bpy_module, run_python

pytestmark = [pytest.mark.e2e, requires_bpy_module]
RESIDUAL = re.compile(r"Residual (\w+): max (\S+), mean (\S+) over (\d+) frames")


def png_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_demo_bakes_both_chains_onto_their_targets_and_renders_a_sheet(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = run_python([SCRIPTS / "demo.py", "--renders", "2", "--columns", "2", "--resolution", "96x60",
                       "--output-dir", out, "--no-docs-image"], tmp_path / "home")
    assert proc.returncode == 0, describe(proc)
    residuals = {name: (float(worst), int(frames)) for name, worst, _, frames in RESIDUAL.findall(proc.stdout)}
    assert set(residuals) == {"arm", "tentacle"}, proc.stdout
    for name, (worst, frames) in residuals.items():
        assert frames == 96 and worst < 1e-3, (name, worst)
    assert (out / "demo.blend").is_file()
    assert png_size(out / "contact_sheet.png") == (2 * 96 + 3 * 10, 60 + 2 * 10)  # tiles plus 10 px margins
    frames = sorted(p.name for p in (out / "frames").iterdir())
    assert len(frames) == 2 and frames[0] == "frame_0001.png"
