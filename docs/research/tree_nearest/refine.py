"""Post-pass on nearest.py's output: make the 'global nearest' more global by also starting every
frame from the neighbouring frames' best answers (forward and backward sweeps until nothing
improves), redo the continuation (warm) variant with a fallback, and redo the branch analysis.
Run: OMP_NUM_THREADS=1 .venv/bin/python docs/research/tree_nearest/refine.py [case ...]"""
from __future__ import annotations

import pickle
import sys
import os
from pathlib import Path

OUT = os.environ.get("NEAREST_OUT", "/tmp/nearest")  # where the per-case files go
import time
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nearest import FEAS, MAKERS, _pops, local_nearest  # noqa: E402


def robust(tree, target, p, start, lo, hi, rng):
    """local_nearest from start; if it does not reach, retry from 5 jiggled copies of start."""
    q, err, d = local_nearest(tree, target, p, start, lo, hi)
    tries = 0
    while err >= FEAS and tries < 5:
        q, err, d = local_nearest(tree, target, p, start + 0.01 * rng.uniform(-1, 1, len(start)), lo, hi)
        tries += 1
    return q, err, d


def run(args):
    name, seed = args
    t0 = time.time()
    tree = MAKERS[name]()
    lo, hi = tree.joints.lower.copy(), tree.joints.upper.copy()
    z = dict(np.load(f"{OUT}/case_{name}_{seed}.npz"))
    targets, p = z["targets"], z["p"]
    glob, glob_d = z["glob"].copy(), z["glob_d"].copy()
    F = len(glob)
    improved_frames = set()
    for sweep in range(6):
        changed = 0
        order = range(1, F) if sweep % 2 == 0 else range(F - 2, -1, -1)
        for f in order:
            nb = f - 1 if sweep % 2 == 0 else f + 1
            q, err, d = local_nearest(tree, targets[f], p, glob[nb], lo, hi)
            if err < FEAS and d < glob_d[f] - 1e-9:
                glob[f], glob_d[f] = q, d
                changed += 1
                improved_frames.add(f)
        if changed == 0 and sweep >= 1:
            break
    # continuation: from the previous frame's answer; on failure, retry from slightly jiggled
    # copies of it; if still not reaching, re-seed at the global nearest (counted)
    rng = np.random.default_rng(0)
    warm = np.empty_like(glob)
    warm[0] = glob[0]
    reseeds = []
    for f in range(1, F):
        q, err, d = robust(tree, targets[f], p, warm[f - 1], lo, hi, rng)
        if err >= FEAS:
            q = glob[f]
            reseeds.append(f)
        warm[f] = q
    warm_d = np.sum((warm - p) ** 2, axis=1)
    # branch analysis around the global nearest's pops
    W = 4
    branch = {}
    for i in _pops(glob):
        a_fwd = {int(i): (glob[i], glob_d[i], 0.0)}
        q = glob[i]
        for f in range(i + 1, min(F, i + 1 + W)):
            q, err, d = robust(tree, targets[f], p, q, lo, hi, rng)
            a_fwd[f] = (q, d, err)
        b_bwd = {int(i) + 1: (glob[i + 1], glob_d[i + 1], 0.0)}
        q = glob[i + 1]
        for f in range(i, max(-1, i - W), -1):
            q, err, d = robust(tree, targets[f], p, q, lo, hi, rng)
            b_bwd[f] = (q, d, err)
        branch[int(i)] = (a_fwd, b_bwd)
    # continuation pops: redo the step i -> i+1 in 20 sub-steps (targets = tips of the path's pose
    # interpolated between the frames: reachable); if the sub-stepped answer still jumps, the
    # branch's local minimum really ends (fold / limit) there
    from blender_ik_addon.core.tree import tree_tips
    path = z["path"]
    warm_sub = {}
    for i in _pops(warm):
        q = warm[i]
        sub_steps = []
        for u in np.linspace(0, 1, 21)[1:]:
            tgt = tree_tips(tree, (1 - u) * path[i] + u * path[i + 1])
            q2, err, d = robust(tree, tgt, p, q, lo, hi, rng)
            sub_steps.append((np.degrees(np.abs(q2 - q).max()), err))
            q = q2
        warm_sub[int(i)] = dict(max_substep_deg=max(s for s, _ in sub_steps), max_err=max(e for _, e in sub_steps),
                                end_vs_warm_deg=float(np.degrees(np.abs(q - warm[i + 1]).max())),
                                d_before=float(warm_d[i]), d_after=float(np.sum((q - p) ** 2)),
                                glob_d_after=float(glob_d[i + 1]))
    z.update(glob=glob, glob_d=glob_d, warm=warm, warm_d=warm_d, warm_reseeds=np.array(reseeds, dtype=int),
             refined_frames=np.array(sorted(improved_frames), dtype=int), glob_d_before=z["glob_d"])
    np.savez(f"{OUT}/refined_{name}_{seed}.npz", **z)
    with open(f"{OUT}/refined_{name}_{seed}_branch.pkl", "wb") as fh:
        pickle.dump({"branch": branch, "warm_sub": warm_sub}, fh)
    return name, seed, time.time() - t0, len(improved_frames), reseeds


if __name__ == "__main__":
    cases = [(n, s) for n in ("two_arms", "tentacle", "two_legs") for s in range(6)]
    if len(sys.argv) > 1:
        cases = [(a.rsplit("_", 1)[0], int(a.rsplit("_", 1)[1])) for a in sys.argv[1:]]
    with Pool(2) as pool:
        for r in pool.imap_unordered(run, cases):
            print("done", *r, flush=True)
