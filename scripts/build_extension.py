"""Build the installable extension zip with Blender's own extension tool.

Usage::

    .venv/bin/python scripts/build_extension.py [--output-dir dist]

Prints the path of ``<output-dir>/<id>-<version>.zip`` as the last line of stdout (the tool's own
chatter goes to stderr, so ``zip=$(python scripts/build_extension.py)`` works).

Traps this script handles:
    * ``blender_ext.py build --source-dir S`` needs ``__init__.py`` and ``blender_manifest.toml``
      side by side at the root of ``S``. The manifest lives at the repo root and the package in
      ``blender_ik_addon/``, so both are copied into a temporary staging folder first.
    * The tool ships inside the ``bpy`` wheel (``<scripts>/addons_core/bl_pkg/cli/blender_ext.py``)
      and runs under plain Python; it is run with this interpreter, so it must be the one that
      has the ``bpy`` module (or pass ``--blender-ext`` explicitly).
    * The output folder must exist before ``build``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / "blender_ik_addon"
MANIFEST = REPO_ROOT / "blender_manifest.toml"
STAGING_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class BuildError(RuntimeError):
    """The extension tool rejected the package or could not be found."""


def find_blender_ext() -> Path:
    """The ``blender_ext.py`` CLI bundled with the ``bpy`` module of this interpreter."""
    import bpy

    utils: Any = bpy.utils  # the fake-bpy-module stubs lack system_resource
    tool = Path(utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    if not tool.is_file():
        raise BuildError(f"Blender's extension tool is missing from the bpy module: {tool}")
    return tool


def zip_name() -> str:
    """``<id>-<version>.zip``, the file name ``blender_ext.py build`` gives the package."""
    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    return f"{manifest['id']}-{manifest['version']}.zip"


def stage(destination: Path) -> Path:
    """Copy the package (without caches) and the manifest into ``destination/ik_chains``."""
    source = destination / "ik_chains"
    shutil.copytree(PACKAGE_DIR, source, ignore=STAGING_IGNORE)
    shutil.copy2(MANIFEST, source / MANIFEST.name)
    return source


def run_tool(tool: Path, *args: str) -> None:
    """Run one ``blender_ext.py`` sub-command, forwarding its output to stderr.

    Raises:
        BuildError: The tool exited non-zero (its output is already on stderr).
    """
    result = subprocess.run([sys.executable, str(tool), *args], capture_output=True, text=True, check=False)
    sys.stderr.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise BuildError(f"blender_ext.py {args[0]} failed with exit code {result.returncode}")


def build(output_dir: Path, tool: Path | None = None) -> Path:
    """Validate, build and re-validate the extension; return the zip's absolute path."""
    tool = tool or find_blender_ext()
    output_dir = output_dir.resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / zip_name()
    with tempfile.TemporaryDirectory(prefix="ik_chains_stage_") as tmp:
        source = stage(Path(tmp))
        run_tool(tool, "validate", str(source))
        run_tool(tool, "build", "--source-dir", str(source), "--output-filepath", str(target))
    run_tool(tool, "validate", str(target))
    return target


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "dist",
                        help="folder for the zip (created if missing; default: dist/)")
    parser.add_argument("--blender-ext", type=Path, default=None,
                        help="path to blender_ext.py (default: the one inside this interpreter's bpy module)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build the zip and print its path; 1 if the tool rejected the package."""
    args = parse_args(argv)
    try:
        print(build(args.output_dir, args.blender_ext))
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
