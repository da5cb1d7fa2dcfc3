"""Blender tests: real ``bpy`` (Blender as a Python module), no mocks.

The add-on is registered once per session from the repo package and unregistered at the end;
every test starts from an empty file (``read_homefile(use_empty=True)``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import blender_ik_addon  # noqa: E402

HANDLER_EVENTS = ("frame_change_post", "depsgraph_update_post", "load_pre", "load_post", "render_init",
                  "render_complete", "render_cancel", "undo_post", "redo_post")


def handler_counts() -> dict[str, int]:
    """How many functions each handler list holds."""
    return {event: len(getattr(bpy.app.handlers, event)) for event in HANDLER_EVENTS}


@pytest.fixture(scope="session", autouse=True)
def addon_baseline() -> dict[str, int]:
    """Register the add-on for the session; yields the handler counts from before registration."""
    baseline = handler_counts()
    blender_ik_addon.register()
    yield baseline
    blender_ik_addon.unregister()


@pytest.fixture(autouse=True)
def empty_file() -> None:
    """Every test starts from an empty file."""
    bpy.ops.wm.read_homefile(use_empty=True)
    yield
