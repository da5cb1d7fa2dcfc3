"""Time a single cold solve in this checkout against an earlier revision, the two interleaved.

Issue 9 asks that a single cold solve take at most 1.5x the time it took before the nearest-pose
solver (revision 9a4680e). Timings taken in separate runs cannot show that here: this 2-core VM's
speed drifts by up to 2x within minutes. So each round runs one child process per side, one right
after the other, each timing ``solve()`` from the benchmark's cold start on the same targets; the
report gives each side's fastest round and their ratio, and the median of the rounds' ratios.

Usage::

    .venv/bin/python scripts/compare_revision.py 9a4680e
    .venv/bin/python scripts/compare_revision.py 9a4680e --rounds 8 --chains kuka_iiwa,tentacle

The revision is checked out with ``git worktree`` into a temporary folder, removed afterwards. Its
numba kernel compiles in a warm-up round that is not timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import REPO_ROOT
from bench.chains import CHAIN_KEYS

CHILD = Path(__file__).resolve().parent / "bench" / "cold_timing.py"


def _time(root: Path, chains: str, targets: int, *, warm_up: bool = False) -> dict[str, float | str]:
    command = [sys.executable, str(CHILD), "--root", str(root), "--chains", chains, "--targets", str(targets)]
    done = subprocess.run(command + (["--warm-up"] if warm_up else []), capture_output=True, text=True,
                          cwd=root, check=False)
    if done.returncode != 0:
        raise SystemExit(f"timing {root} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revision", help="the earlier revision (a commit, tag or branch)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (default 6)")
    parser.add_argument("--targets", type=int, default=300, help="targets per chain and round (default 300)")
    parser.add_argument("--chains", default=",".join(CHAIN_KEYS), help="comma-separated subset of " +
                        ",".join(CHAIN_KEYS))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ik-revision-") as folder:
        other = Path(folder) / "checkout"
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(other), args.revision],
                       check=True, capture_output=True)
        try:
            sides = {args.revision: other, "this checkout": REPO_ROOT}
            for root in sides.values():
                _time(root, args.chains, args.targets, warm_up=True)
            rounds: dict[str, list[dict[str, float | str]]] = {name: [] for name in sides}
            for number in range(args.rounds):
                for name, root in sides.items():
                    rounds[name].append(_time(root, args.chains, args.targets))
                print(f"round {number + 1} of {args.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(other)],
                           check=False, capture_output=True)

    before, now = rounds[args.revision], rounds["this checkout"]
    print(f"One cold solve(), median over {args.targets} targets; fastest of {args.rounds} alternating rounds.\n")
    print(f"| chain | {args.revision} | this checkout | ratio of the fastest | median of the rounds' ratios |")
    print("|---|---|---|---|---|")
    for key in args.chains.split(","):
        if not isinstance(before[0].get(key), float):
            print(f"| {key} | {before[0].get(key)} | | | |")
            continue
        old = [float(r[key]) for r in before]
        new = [float(r[key]) for r in now]
        ratios = [n / o for n, o in zip(new, old, strict=True)]
        print(f"| {key} | {min(old) * 1e3:.4f} ms | {min(new) * 1e3:.4f} ms | {min(new) / min(old):.2f}x | "
              f"{statistics.median(ratios):.2f}x |")


if __name__ == "__main__":
    main()
