"""Build the installable extension zip with Blender's own extension tool.

Usage::

    .venv/bin/python scripts/build_extension.py [--output-dir dist]
    .venv/bin/python scripts/build_extension.py --with-numba [--platforms linux-x64,windows-x64]

The default build is one pure-Python zip for every platform; it solves with numpy. With
``--with-numba`` it builds one zip per platform (``<id>-<version>-<platform>.zip``) that bundles
the numba and llvmlite wheels pinned in ``requirements/main.txt``, so Blender installs them with
the extension and the add-on solves tip-position chains with the compiled kernel. The wheels are
downloaded from the package index (``pip download``) into ``out/wheels/`` once. macOS on Intel
has no numba wheels any more; its zip is built without them.

Prints the path of each zip on stdout, one per line (the tool's own chatter goes to stderr, so
``zip=$(python scripts/build_extension.py)`` works).

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
REQUIREMENTS = REPO_ROOT / "requirements" / "main.txt"
WHEEL_CACHE = REPO_ROOT / "out" / "wheels"
STAGING_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
NUMBA_PACKAGES = ("numba", "llvmlite")
# Blender's platform names -> the wheel platform tag pip downloads for (None: no numba wheels exist).
# Blender 4.2 to 5.0 all embed Python 3.11.
WHEEL_PLATFORMS: dict[str, str | None] = {
    "linux-x64": "manylinux_2_28_x86_64",
    "windows-x64": "win_amd64",
    "macos-arm64": "macosx_14_0_arm64",
    "macos-x64": None,
}
PYTHON_VERSION = "3.11"


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


def pinned(package: str) -> str:
    """``package==version`` as pinned in requirements/main.txt (the one source of the versions)."""
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec.startswith(f"{package}=="):
            return spec
    raise BuildError(f"{package} is not pinned in {REQUIREMENTS}")


def numba_wheels(platform: str, cache: Path = WHEEL_CACHE) -> list[Path]:
    """The numba and llvmlite wheels for a Blender platform (downloaded once), or [] if none exist."""
    tag = WHEEL_PLATFORMS[platform]
    if tag is None:
        return []
    folder = cache / platform
    wanted = [pinned(package) for package in NUMBA_PACKAGES]
    found = [_cached_wheel(folder, spec) for spec in wanted]
    if not all(found):
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                   "--python-version", PYTHON_VERSION, "--platform", tag, "--dest", str(folder), *wanted]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        sys.stderr.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise BuildError(f"could not download {' and '.join(wanted)} for {platform} ({tag})")
        found = [_cached_wheel(folder, spec) for spec in wanted]
    return [wheel for wheel in found if wheel is not None]


def _cached_wheel(folder: Path, spec: str) -> Path | None:
    name, version = spec.split("==")
    matches = sorted(folder.glob(f"{name}-{version}-*.whl")) if folder.is_dir() else []
    return matches[0] if matches else None


def build_with_numba(output_dir: Path, platforms: list[str], tool: Path | None = None) -> list[Path]:
    """One zip per platform, each bundling that platform's numba wheels; returns their paths."""
    tool = tool or find_blender_ext()
    unknown = sorted(set(platforms) - set(WHEEL_PLATFORMS))
    if unknown:
        raise BuildError(f"unknown platform(s) {', '.join(unknown)}; expected some of {', '.join(WHEEL_PLATFORMS)}")
    output_dir = output_dir.resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    before = set(output_dir.glob("*.zip"))
    with tempfile.TemporaryDirectory(prefix="ik_chains_stage_") as tmp:
        source = stage(Path(tmp))
        wheel_dir = source / "wheels"
        wheel_dir.mkdir()
        bundled = []
        for platform in platforms:
            for wheel in numba_wheels(platform):
                shutil.copy2(wheel, wheel_dir / wheel.name)
                bundled.append(f"./wheels/{wheel.name}")
        manifest = source / MANIFEST.name
        manifest.write_text(manifest.read_text(encoding="utf-8") + numba_manifest_lines(platforms, bundled),
                            encoding="utf-8")
        run_tool(tool, "validate", str(source))
        run_tool(tool, "build", "--source-dir", str(source), "--output-dir", str(output_dir), "--split-platforms")
    stem = zip_name().removesuffix(".zip")
    targets = [output_dir / f"{stem}-{platform.replace('-', '_')}.zip" for platform in platforms]
    missing = [str(t) for t in targets if not t.is_file()]
    if missing:
        made = sorted(str(p) for p in set(output_dir.glob("*.zip")) - before)
        raise BuildError(f"the tool did not write {', '.join(missing)} (it wrote: {', '.join(made) or 'nothing'})")
    for target in targets:
        run_tool(tool, "validate", str(target))
    return targets


def numba_manifest_lines(platforms: list[str], wheels: list[str]) -> str:
    """What the staged manifest gains for a numba build: platforms, wheels, and the one permission.

    Appended at the end: the repository's manifest has no tables, so these keys stay top-level
    until ``[permissions]``.
    """
    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    return (
        "\n# Added by scripts/build_extension.py --with-numba\n"
        f"platforms = {toml_list(platforms)}\n"
        f"wheels = {toml_list(wheels)}\n"
        "\n[permissions]\n"
        'files = "Caches the compiled solver\'s machine code (numba)"\n'
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "dist",
                        help="folder for the zip (created if missing; default: dist/)")
    parser.add_argument("--blender-ext", type=Path, default=None,
                        help="path to blender_ext.py (default: the one inside this interpreter's bpy module)")
    parser.add_argument("--with-numba", action="store_true",
                        help="one zip per platform, bundling the numba wheels (the compiled solver)")
    parser.add_argument("--platforms", default=",".join(WHEEL_PLATFORMS),
                        help="with --with-numba: comma-separated Blender platforms (default: all of "
                             f"{','.join(WHEEL_PLATFORMS)})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build the zip and print its path; 1 if the tool rejected the package."""
    args = parse_args(argv)
    try:
        if args.with_numba:
            platforms = [p.strip() for p in args.platforms.split(",") if p.strip()]
            for path in build_with_numba(args.output_dir, platforms, args.blender_ext):
                print(path)
        else:
            print(build(args.output_dir, args.blender_ext))
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
