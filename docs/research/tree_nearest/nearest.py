"""Nearest reaching pose to the preferred pose vs the current tree solver, on the test tree paths.

Run: .venv/bin/python docs/research/tree_nearest/nearest.py [case ...]
Writes $NEAREST_OUT/case_<tree>_<seed>.npz (per-frame solutions) and prints a summary line per case.
"""
from __future__ import annotations

import sys
import os
from pathlib import Path

OUT = os.environ.get("NEAREST_OUT", "/tmp/nearest")  # where the per-case files go
os.makedirs(OUT, exist_ok=True)
import time
import warnings
from multiprocessing import Pool

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository
from blender_ik_addon.core.tree import tree_forward, tree_tips  # noqa: E402
from blender_ik_addon.core.tree_solver import preferred_pose, solve_tree  # noqa: E402
from tests.core.test_tree import _pops, smooth_path  # noqa: E402
from tests.core.test_tree_compiled import random_poses, tentacle, two_arms, two_legs  # noqa: E402

MAKERS = {"two_legs": two_legs, "two_arms": two_arms, "tentacle": tentacle}
FEAS = 1e-6
N_RANDOM = 10
N_RANDOM_OF = {"two_arms": int(__import__("os").environ.get("ARMS_RANDOM", "10"))}
RANDOM_SEED = 987


def tips_and_jac(tree, q):
    """World tips (E,3) and Jacobian (E*3, m)."""
    pose = tree_forward(tree, q)
    R = tree.base[:3, :3]
    dj = tree.joints.dof_joint
    rel = pose.tips[:, None, :] - pose.origins[dj][None, :, :]  # (E, m, 3)
    J = np.cross(pose.axes[None, :, :], rel) * tree.moves[:, :, None]  # (E, m, 3)
    J = J @ R.T
    tips = pose.tips @ R.T + tree.base[:3, 3]
    return tips, J.transpose(0, 2, 1).reshape(-1, len(q))


def local_nearest(tree, target, p, start, lo, hi):
    """SLSQP: min 0.5|q-p|^2 s.t. tips(q) == target, lo <= q <= hi. Returns (q, tip_err, dist2)."""
    tflat = target.reshape(-1)
    cache = {}

    def tj(q):
        key = q.tobytes()
        if key not in cache:
            cache.clear()
            t, J = tips_and_jac(tree, q)
            cache[key] = (t.reshape(-1), J)
        return cache[key]

    cons = {"type": "eq", "fun": lambda q: tj(q)[0] - tflat, "jac": lambda q: tj(q)[1]}
    x0 = np.clip(start, lo, hi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = minimize(lambda q: 0.5 * np.sum((q - p) ** 2), x0, jac=lambda q: q - p, method="SLSQP",
                     bounds=list(zip(lo, hi)), constraints=[cons], options={"ftol": 1e-12, "maxiter": 200})
    q = np.clip(r.x, lo, hi)
    err = float(np.linalg.norm(tree_tips(tree, q) - target, axis=-1).max())
    return q, err, float(np.sum((q - p) ** 2))


def run_case(args):
    name, seed = args
    t0 = time.time()
    tree = MAKERS[name]()
    lo, hi = tree.joints.lower.copy(), tree.joints.upper.copy()
    path = smooth_path(tree, seed)
    targets = tree_tips(tree, path)
    cur = solve_tree(tree, targets)
    p, _ = preferred_pose(tree, None)
    rand = random_poses(tree, N_RANDOM_OF.get(name, N_RANDOM), RANDOM_SEED)
    F, m = path.shape
    p_bent = np.clip(p + 0.05 * np.random.default_rng(5).uniform(-1, 1, p.shape), lo, hi)
    glob = np.full((F, m), np.nan)
    glob_d = np.full(F, np.inf)
    glob_src = np.full(F, -1)
    # all feasible local solutions per frame (deduplicated), for branch analysis
    sols = []
    for f in range(F):
        starts = [p_bent, cur.q[f], path[f], *rand]  # p itself: zero gradient there, SLSQP never leaves it
        found = []
        for s_i, s in enumerate(starts):
            q, err, d = local_nearest(tree, targets[f], p, s, lo, hi)
            if err < FEAS:
                if not any(np.abs(q - q2).max() < 1e-4 for q2, _, _ in found):
                    found.append((q, d, s_i))
                if d < glob_d[f]:
                    glob[f], glob_d[f], glob_src[f] = q, d, s_i
        sols.append(found)
        if f % 20 == 0:
            print(f"  {name} {seed} frame {f} {time.time() - t0:.0f}s", flush=True)
    # continuation (warm): frame 0 = global nearest, then from previous answer only
    warm = np.full((F, m), np.nan)
    warm_err = np.zeros(F)
    warm[0] = glob[0]
    for f in range(1, F):
        q, err, d = local_nearest(tree, targets[f], p, warm[f - 1], lo, hi)
        warm[f], warm_err[f] = q, err
    cur_d = np.sum((cur.q - p) ** 2, axis=1)
    path_d = np.sum((path - p) ** 2, axis=1)
    # branch analysis around the global nearest's pops: continue the branch before the pop
    # forward and the branch after it backward over a window of +-W frames
    W = 4
    branch = {}
    for i in _pops(glob):
        a_fwd = {i: (glob[i], glob_d[i], 0.0)}
        q = glob[i]
        for f in range(i + 1, min(F, i + 1 + W)):
            q, err, d = local_nearest(tree, targets[f], p, q, lo, hi)
            a_fwd[f] = (q, d, err)
        b_bwd = {i + 1: (glob[i + 1], glob_d[i + 1], 0.0)}
        q = glob[i + 1]
        for f in range(i, max(-1, i - W), -1):
            q, err, d = local_nearest(tree, targets[f], p, q, lo, hi)
            b_bwd[f] = (q, d, err)
        branch[int(i)] = (a_fwd, b_bwd)
    np.savez(f"{OUT}/case_{name}_{seed}.npz", path=path, targets=targets, cur=cur.q, cur_err=cur.errors,
             glob=glob, glob_d=glob_d, glob_src=glob_src, warm=warm, warm_err=warm_err, cur_d=cur_d, path_d=path_d,
             p=p, nsols=np.array([len(s) for s in sols]))
    import pickle
    with open(f"{OUT}/case_{name}_{seed}_branch.pkl", "wb") as fh:
        pickle.dump({"branch": branch, "sols": [[(q, d, s) for q, d, s in fs] for fs in sols]}, fh)
    return name, seed, time.time() - t0


if __name__ == "__main__":
    cases = [(n, s) for n in ("two_arms", "tentacle", "two_legs") for s in range(6)]
    if len(sys.argv) > 1:
        cases = [(a.rsplit("_", 1)[0], int(a.rsplit("_", 1)[1])) for a in sys.argv[1:]]
    with Pool(2) as pool:
        for name, seed, dt in pool.imap_unordered(run_case, cases):
            print(f"done {name} {seed} {dt:.0f}s", flush=True)
