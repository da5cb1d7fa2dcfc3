"""Benchmark the IK core against its peers, side by side on the same targets.

Chains: (a) the tutorial's 3-joint arm, (b) the KUKA LBR iiwa from pybullet_data's URDF, (c) a
6-DOF human arm, (d) a 40-DOF tentacle. Solvers: ours (``solve`` and ``solve_batch``), the
tutorial's solver, ikpy, pybullet's ``calculateInverseKinematics`` and Blender's IK constraint
(Standard solver); a missing package makes its solver "unavailable", not an error. The add-on
section measures the add-on inside Blender; the motion section (issue 9) follows target paths frame
by frame on six rigs, ours in three modes beside Blender's IK constraint.

Usage::

    python scripts/benchmark.py                     # full run, several minutes
    python scripts/benchmark.py --quick             # smoke run
    python scripts/benchmark.py --chains human_arm --solvers ours,blender --out /tmp/bench
    python scripts/benchmark.py --motion-only --out /tmp/motion   # the motion section alone

Writes ``benchmark.json`` and ``benchmark.md`` to ``--out`` (default ``out/benchmark``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench import REPO_ROOT
from bench.addon import measure_addon_in_blender
from bench.chains import CHAIN_KEYS, load_chains
from bench.motion import MOTION_PATHS, MOTION_RIGS, measure_motion
from bench.report import goals, load_average, machine_info, markdown
from bench.runner import SOLVERS, Settings, log, run_chain

QUICK = {"targets": 100, "frames": 50, "budget": 10.0, "addon_frames": 50, "bake_frames": 250, "motion_frames": 50}


def _names(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(unknown) or '(none)'}; "
                                         f"choose from {', '.join(allowed)}")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "benchmark",
                        help="output folder (default: out/benchmark in the repository)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK['targets']} targets, {QUICK['frames']} path frames, "
                             f"{QUICK['budget']:g} s budget, add-on: {QUICK['addon_frames']} live frames and "
                             f"{QUICK['bake_frames']} baked ones, {QUICK['motion_frames']} motion frames "
                             "(explicit options still win)")
    parser.add_argument("--chains", type=lambda s: _names(s, CHAIN_KEYS, "chain"), default=list(CHAIN_KEYS),
                        help=f"comma-separated subset of {','.join(CHAIN_KEYS)}")
    parser.add_argument("--solvers", type=lambda s: _names(s, SOLVERS, "solver"), default=list(SOLVERS),
                        help=f"comma-separated subset of {','.join(SOLVERS)}")
    parser.add_argument("--targets", type=int, help="reachable targets per chain (default 1000)")
    parser.add_argument("--frames", type=int, help="frames of the smooth path (default 250)")
    parser.add_argument("--budget", type=float,
                        help="seconds per peer (not ours) for a chain's targets, and for each pass over the path "
                             "(default 60)")
    parser.add_argument("--addon-frames", type=int,
                        help=f"frames per pass of the add-on's live handler measurement (default "
                             f"{Settings.addon_frames}; 0 skips the add-on section)")
    parser.add_argument("--bake-frames", type=int,
                        help=f"frames of the add-on's bake and Blender's nla.bake (default {Settings.bake_frames})")
    parser.add_argument("--motion", action=argparse.BooleanOptionalAction, default=True,
                        help="run the motion section (default: yes); Blender's IK joins it when blender is among "
                             "--solvers")
    parser.add_argument("--motion-only", action="store_true",
                        help="run only the motion section (no chains, no add-on section)")
    parser.add_argument("--motion-frames", type=int,
                        help=f"frames of each motion path (default {Settings.motion_frames})")
    parser.add_argument("--motion-rigs", type=lambda s: _names(s, MOTION_RIGS, "motion rig"), default=list(MOTION_RIGS),
                        help=f"comma-separated subset of {','.join(MOTION_RIGS)}")
    parser.add_argument("--motion-paths", type=lambda s: _names(s, MOTION_PATHS, "motion path"),
                        default=list(MOTION_PATHS), help=f"comma-separated subset of {','.join(MOTION_PATHS)}")
    parser.add_argument("--tutorial-sweeps", type=int, default=Settings.tutorial_sweeps,
                        help="sweep cap of the tutorial solver (default %(default)s)")
    parser.add_argument("--seed", type=int, default=Settings.seed)
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    preset: dict[str, Any] = QUICK if args.quick else {}
    chosen = {key: getattr(args, key) if getattr(args, key) is not None else preset.get(key, getattr(Settings, key))
              for key in ("targets", "frames", "budget", "addon_frames", "bake_frames", "motion_frames")}
    return Settings(seed=args.seed, tutorial_sweeps=args.tutorial_sweeps, **chosen)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out.resolve()
    if out.is_relative_to(REPO_ROOT / "blender_ik_addon"):
        log(f"error: --out {out} is inside the add-on package; choose another folder")
        return 2
    settings = settings_from(args)
    chains, unavailable = ([], {}) if args.motion_only else load_chains(args.chains)
    results: dict[str, Any] = {"machine": machine_info(), "settings": {**vars(settings), "solvers": args.solvers},
                               "chains": {}}
    for bench in chains:
        chain = run_chain(bench, args.solvers, settings)
        chain["goals"] = goals(chain["solvers"])
        results["chains"][bench.key] = chain
    results["chains"].update(unavailable)
    if args.motion or args.motion_only:
        results["motion"] = measure_motion(settings.motion_frames, args.motion_rigs, args.motion_paths,
                                           blender="blender" in args.solvers, seed=settings.seed)
    else:
        results["motion"] = {"status": "skipped (--no-motion)"}
    if args.motion_only:
        results["addon_in_blender"] = {"status": "skipped (--motion-only)"}
    else:
        results["addon_in_blender"] = measure_addon_in_blender(settings)
    results["machine"]["load_average_1min_end"] = load_average()
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "benchmark.md").write_text(markdown(results))
    log(f"wrote {out / 'benchmark.json'} and {out / 'benchmark.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
