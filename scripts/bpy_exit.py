"""Ending a process that ran Blender, for the scripts that can run under the bpy module.

Blender as a Python module cannot always shut down cleanly: once an operator or a Python
callback was registered, the 4.2 LTS module segfaults at interpreter exit (exit code 139 after
the work succeeded), and the 4.5 LTS module hangs after its leak report while a handler is still
installed. 5.0 exits normally. So the scripts end through :func:`exit_process`.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def exit_process(code: int) -> NoReturn:
    """End the process with ``code``.

    Inside a Blender binary (or without bpy) this is a plain ``SystemExit``, so Blender shuts
    down as usual and ``--python-exit-code`` applies. With the bpy module it flushes the standard
    streams and calls ``os._exit``, skipping the module's shutdown: callers have saved their
    files by then.
    """
    bpy = sys.modules.get("bpy")
    if bpy is None or bpy.app.binary_path:
        raise SystemExit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
