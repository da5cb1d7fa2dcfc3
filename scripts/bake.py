"""Bake IK chains headless, for pipelines: open a .blend, bake, save a copy.

Usage::

    blender -b scene.blend --python scripts/bake.py -- --armature Rig [options]
    python scripts/bake.py scene.blend --armature Rig [options]        # with the bpy module

Options::

    --chains all|NAME[,NAME...]   chains to bake (default: all chains of the armature)
    --frames START-END | FRAME    inclusive range (default: the scene's frame range)
    --step N                      key every N frames (default 1)
    --output PATH                 where to save (default: <input>_baked.blend next to the input)
    --overwrite                   save over the input instead (Blender keeps <input>.blend1)
    --disable-live                turn live solving off for the baked chains, so the keys play as baked
    --continuous                  solve the frames in order, each from the previous frame's pose (the
                                  first as usual): no switch to another solution mid-range; chunks of
                                  one range can then differ after a boundary (the report says where)
    --allow-unconverged           exit 0 even if some frames did not reach their target

Exit codes: 0 baked and saved; 2 bad arguments, or a missing file, armature, chain, bone or
target (the message names it); 3 saved, but some frames did not converge (unless
``--allow-unconverged``). The input file is never written unless ``--overwrite`` is given.

The report names the frames where a chain's pose switches to another solution although its target
glides (with the remedy), and for ``--continuous`` where the range may be split into farm chunks.
Without ``--continuous`` every frame is solved on its own, so chunks (``--frames 1-60`` and
``--frames 61-120`` on two machines) give exactly the keys of one bake of the whole range.

Conventions and traps:
    * Under a Blender binary the file named before ``--python`` is already open and the script's
      arguments are those after ``--``; under plain Python the first argument is the .blend.
    * The bake runs through the add-on's own function (``blender.bake.bake_chains``), not its
      UI operators, so it needs no window or context override. It uses whichever copy of the
      add-on is enabled (e.g. the installed extension ``bl_ext.<repo>.ik_chains``), and
      registers the copy in this repo only when none is: registering both would clash.
    * The copy is saved with ``save_as_mainfile(copy=True)``, so relative paths are remapped
      to the new location and the session keeps pointing at the input.
    * The process ends through ``bpy_exit.exit_process``: Blender 4.2 and 4.5 as Python modules
      cannot shut down cleanly once an add-on was registered.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
REPO_PACKAGE = "blender_ik_addon"
EXTENSION_ID = "ik_chains"
EXIT_OK, EXIT_USAGE, EXIT_UNCONVERGED = 0, 2, 3
FRAMES = re.compile(r"(-?\d+)(?:-(-?\d+))?")


class UsageError(Exception):
    """Bad arguments or missing data: the message is printed and the exit code is 2."""


@dataclass(frozen=True)
class BakeRequest:
    """What to bake, parsed and checked against the open file.

    Attributes:
        armature: The armature object.
        chains: Chain names to bake (never empty).
        frames: Inclusive ``(start, end)``.
        step: Key every ``step`` frames.
        output: Where to save.
    """

    armature: Any
    chains: list[str]
    frames: tuple[int, int]
    step: int
    output: Path


# -- arguments --------------------------------------------------------------------------------


def script_arguments(argv: list[str]) -> list[str]:
    """The arguments meant for this script: those after ``--`` if any, else all but ``argv[0]``.

    A Blender binary consumes everything before ``--`` itself; without ``--`` there is nothing
    for the script (the parser then complains about ``--armature``).
    """
    if "--" in argv:
        return argv[argv.index("--") + 1:]
    import bpy

    return [] if bpy.app.binary_path else argv[1:]


def parse_frames(text: str) -> tuple[int, int]:
    """``"1-250"`` -> ``(1, 250)``; ``"7"`` -> ``(7, 7)``; negative frames work too: ``"-10--1"``."""
    match = FRAMES.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: expected START-END or FRAME, e.g. 1-250")
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) is not None else start
    if end < start:
        raise argparse.ArgumentTypeError(f"{text!r}: end {end} is before start {start}")
    return start, end


VALUE_OPTIONS = ("--frames", "--step")
"""Options whose value may start with ``-``: argparse reads ``--frames -10--1`` as an option named
``-10--1`` ("expected one argument"), so such a value is joined to its option first."""


def join_dashed_values(args: list[str]) -> list[str]:
    """``["--frames", "-10--1"]`` -> ``["--frames=-10--1"]`` (only for :data:`VALUE_OPTIONS` and a value
    that starts with ``-`` and a digit: a real option after ``--frames`` is left for argparse to name)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        if args[i] in VALUE_OPTIONS and i + 1 < len(args) and re.match(r"-\d", args[i + 1]):
            out.append(f"{args[i]}={args[i + 1]}")
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out


def parse_arguments(args: list[str]) -> argparse.Namespace:
    """The script's arguments (as :func:`script_arguments` returns them) parsed; exits with code 2
    and a message saying what was expected on bad ones."""
    return build_parser().parse_args(join_dashed_values(args))


def positive_int(text: str) -> int:
    """An integer >= 1 (for ``--step``)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The command line (argparse exits with code 2 on bad arguments, as documented)."""
    parser = argparse.ArgumentParser(prog="bake.py", description="Bake IK chains of an armature to keyframes.")
    parser.add_argument("blend", nargs="?", type=Path,
                        help="the .blend to bake (default: the file Blender opened before --python)")
    parser.add_argument("--armature", required=True, help="name of the armature object holding the chains")
    parser.add_argument("--chains", default="all", help="'all' or comma-separated chain names (default: all)")
    parser.add_argument("--frames", type=parse_frames, default=None,
                        help="inclusive range START-END or one FRAME, negative frames too: -10--1 "
                             "(default: the scene's range)")
    parser.add_argument("--step", type=positive_int, default=1, help="key every N frames (default 1)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--output", type=Path, default=None, help="output .blend (default: <input>_baked.blend)")
    where.add_argument("--overwrite", action="store_true", help="save over the input file")
    parser.add_argument("--disable-live", action="store_true",
                        help="turn live solving off for the baked chains, so the keys play as baked")
    parser.add_argument("--continuous", action="store_true",
                        help="solve the frames in order, each from the previous frame's pose (no switch to another "
                             "solution mid-range; chunks can differ after a boundary: the report says where)")
    parser.add_argument("--allow-unconverged", action="store_true",
                        help="exit 0 even if some frames did not converge (default: exit 3)")
    return parser


def output_path(source: Path, output: Path | None, overwrite: bool) -> Path:
    """Where to save: ``--output``, the input itself with ``--overwrite``, else ``<input>_baked.blend``.

    Raises:
        UsageError: ``--output`` names the input without ``--overwrite``, or its folder is missing.
    """
    if overwrite:
        return source
    target = (output or source.with_name(f"{source.stem}_baked.blend")).resolve()
    if target == source:
        raise UsageError(f"--output {output} is the input file; pass --overwrite to replace it")
    if not target.parent.is_dir():
        raise UsageError(f"--output {output}: folder {target.parent} does not exist")
    return target


# -- the open file ----------------------------------------------------------------------------


def open_input(blend: Path | None) -> Path:
    """Open ``blend`` (or keep the file Blender already opened) and return its absolute path.

    Raises:
        UsageError: No file given, or the file is missing or not a .blend Blender can read.
    """
    import bpy

    if blend is None:
        if not bpy.data.filepath:
            raise UsageError("no .blend given: pass it first (python) or before --python (blender -b FILE)")
        return Path(bpy.data.filepath).resolve()
    path = blend.resolve()
    if not path.is_file():
        raise UsageError(f"input file {blend} does not exist")
    try:
        bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
    except RuntimeError as err:
        raise UsageError(f"cannot open {blend}: {err}") from None
    return path


def find_armature(name: str) -> Any:
    """The armature object called ``name``.

    Raises:
        UsageError: No such object, or it is not an armature (the message lists the armatures).
    """
    import bpy

    obj = bpy.data.objects.get(name)
    if obj is not None and obj.type == "ARMATURE":
        return obj
    armatures = sorted(o.name for o in bpy.data.objects if o.type == "ARMATURE")
    problem = f"object {name!r} is a {obj.type.lower()}, not an armature" if obj else f"no object named {name!r}"
    raise UsageError(f"{problem}; armatures in this file: {', '.join(map(repr, armatures)) or 'none'}")


def select_chains(armature: Any, wanted: str) -> list[str]:
    """Chain names to bake: every chain for ``"all"``, else the comma-separated names, checked.

    Raises:
        UsageError: The armature has no chains, or some names are not among them.
    """
    rig = getattr(armature, "ik_chains", None)
    existing = [chain.name for chain in rig.chains] if rig is not None else []
    if not existing:
        raise UsageError(f"armature {armature.name!r} has no IK chains (add one in the IK Chains panel)")
    if wanted.strip() == "all":
        return existing
    names = [name.strip() for name in wanted.split(",") if name.strip()]
    missing = [name for name in names if name not in existing]
    if missing or not names:
        asked = ", ".join(map(repr, missing)) if missing else repr(wanted)
        known = ", ".join(map(repr, existing))
        raise UsageError(f"armature {armature.name!r} has no chain(s) {asked}; its chains: {known}")
    return names


def check_chain_bones(armature: Any, chains: list[str]) -> None:
    """Each chain's tip bone exists and its target is set, so errors name the chain up front.

    Raises:
        UsageError: A tip bone is missing from the armature or a target is unset.
    """
    for name in chains:
        chain = armature.ik_chains.chains[name]
        if chain.tip_bone not in armature.data.bones:
            raise UsageError(f"chain {name!r}: tip bone {chain.tip_bone!r} is not a bone of armature "
                             f"{armature.name!r}")
        if chain.target is None:
            raise UsageError(f"chain {name!r} of armature {armature.name!r} has no target object")


# -- the add-on -------------------------------------------------------------------------------


def addon_package() -> str:
    """The package name of the enabled add-on, registering the repo's copy if none is enabled.

    An installed extension is ``bl_ext.<repo>.ik_chains``; a legacy install or an earlier
    registration from this repo is ``blender_ik_addon``.
    """
    import bpy

    preferences: Any = bpy.context.preferences
    for name in preferences.addons.keys():  # noqa: SIM118 (a bpy collection, not a dict)
        if name == REPO_PACKAGE or name.endswith(f".{EXTENSION_ID}"):
            return str(name)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    importlib.import_module(REPO_PACKAGE).register()
    return REPO_PACKAGE


def run_bake(package: str, request: BakeRequest, disable_live: bool, continuous: bool = False) -> Any:
    """Call the add-on's ``bake_chains``; returns its ``BakeReport``.

    Raises:
        UsageError: The add-on refused the setup (``IKError``: a missing bone or target, chains
            sharing bones, an unsupported constraint...), with its message.
    """
    bake = importlib.import_module(f"{package}.blender.bake")
    ik_error = importlib.import_module(f"{package}.core").IKError
    start, end = request.frames
    extra = {"continuous": True} if continuous else {}  # an add-on from before --continuous bakes without it
    try:
        return bake.bake_chains(request.armature, request.chains, start, end, request.step,
                                disable_live=disable_live, **extra)
    except ik_error as err:
        raise UsageError(str(err)) from None


def print_report(request: BakeRequest, report: Any) -> None:
    """One line for the bake, then one per chain (residuals in world units), each followed by its
    notes (switch frames, chunk boundaries), indented."""
    start, end = request.frames
    how = "targets read from their F-curves" if report.path == "fcurves" else f"frames stepped ({report.reason})"
    mode = ", continuous" if getattr(report, "continuous", False) else ""
    print(f"Baked {request.armature.name!r} frames {start}-{end} step {request.step}: {report.frames} frames, "
          f"{report.seconds:.2f} s, {how}{mode}")
    for chain in report.chains:
        state = "all converged" if chain.not_converged == 0 else f"{chain.not_converged} NOT converged"
        print(f"  chain {chain.name!r}: {report.frames} frames, {state}, worst residual {chain.worst_error:.3g}")
        findings = getattr(chain, "findings", None)
        for note in findings.notes() if findings is not None else []:
            print(f"    {note}")


def save(path: Path) -> None:
    """Save the open file to ``path`` without making it the session's file."""
    import bpy

    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)


# -- main -------------------------------------------------------------------------------------


def prepare(args: argparse.Namespace) -> BakeRequest:
    """Open the file and check the request against it (raises :class:`UsageError`).

    Call after :func:`addon_package`: ``Object.ik_chains`` exists only once the add-on is registered.
    """
    import bpy

    source = open_input(args.blend)
    output = output_path(source, args.output, args.overwrite)
    armature = find_armature(args.armature)
    chains = select_chains(armature, args.chains)
    check_chain_bones(armature, chains)
    scene: Any = bpy.context.scene
    frames = args.frames or (scene.frame_start, scene.frame_end)
    return BakeRequest(armature, chains, frames, args.step, output)


def main(argv: list[str] | None = None) -> int:
    """Bake and save; see the module docstring for exit codes."""
    args = parse_arguments(script_arguments(sys.argv if argv is None else ["bake.py", *argv]))
    try:
        package = addon_package()
        request = prepare(args)
        report = run_bake(package, request, args.disable_live, args.continuous)
    except UsageError as err:
        print(f"bake.py: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    print_report(request, report)
    save(request.output)
    print(f"Saved {request.output}")
    if report.not_converged and not args.allow_unconverged:
        print(f"bake.py: {report.not_converged} frame(s) did not converge (worst residual "
              f"{report.worst_error:.3g}); pass --allow-unconverged to accept", file=sys.stderr)
        return EXIT_UNCONVERGED
    return EXIT_OK


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # Blender's --python does not add it
    from bpy_exit import exit_process

    exit_process(main())
