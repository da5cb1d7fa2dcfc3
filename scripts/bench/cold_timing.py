"""Child process of ``scripts/compare_revision.py``: time one cold ``solve()`` per target on each
benchmark chain, with the ``blender_ik_addon`` package found under ``--root``, and print the medians
as one JSON line.

It uses only what every revision of the core since the benchmark began offers (``solve``,
``SolverOptions``, ``Chain.clamp`` and the chains of :mod:`bench.chains`), so an old checkout can be
timed by today's script. Not meant to be run by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True, help="checkout whose blender_ik_addon is timed")
    parser.add_argument("--chains", required=True, help="comma-separated chain keys (see bench.chains)")
    parser.add_argument("--targets", type=int, default=300)
    parser.add_argument("--warm-up", action="store_true", help="solve a few targets only (compiles numba)")
    args = parser.parse_args()
    # The checkout's package first; this script's own folder (bench.*) after it.
    sys.path[:0] = [str(Path(args.root).resolve()), str(Path(__file__).resolve().parents[1])]

    import numpy as np

    # The package before bench: importing bench puts this checkout's root on sys.path too.
    import blender_ik_addon
    from blender_ik_addon.core import SolverOptions, solve
    from blender_ik_addon.core.examples import random_reachable_targets

    if not Path(blender_ik_addon.__file__).resolve().is_relative_to(Path(args.root).resolve()):
        raise SystemExit(f"imported {blender_ik_addon.__file__}, not the package under {args.root}")
    from bench.chains import load_chains

    chains, unavailable = load_chains(args.chains.split(","))
    medians: dict[str, float | str] = dict(unavailable)
    for bench in chains:
        chain = bench.chain
        targets, _ = random_reachable_targets(chain, 5 if args.warm_up else args.targets, 0)
        start = chain.clamp(np.zeros(chain.n_dofs))  # the benchmark's cold start
        options = SolverOptions()
        for target in targets[:5]:  # first calls: imports, caches, numba's load
            solve(chain, target, initial=start, options=options)
        seconds = []
        for target in targets:
            began = time.perf_counter()
            solve(chain, target, initial=start, options=options)
            seconds.append(time.perf_counter() - began)
        medians[bench.key] = float(np.median(seconds))
    print(json.dumps(medians))


if __name__ == "__main__":
    main()
