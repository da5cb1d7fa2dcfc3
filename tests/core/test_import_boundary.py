"""The core must be importable by any Python without Blender."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_core_does_not_import_bpy() -> None:
    code = (
        "import sys; import blender_ik_addon.core, blender_ik_addon.core.examples; "
        "bad = [m for m in ('bpy', 'mathutils', 'bpy_extras') if m in sys.modules]; "
        "assert not bad, bad; print('clean')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"
