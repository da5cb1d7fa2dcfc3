#!/usr/bin/env bash
# The test command: sets up pinned virtual environments on first use, then runs
#   1. static checks (ruff, mypy) on the main environment (Blender 5.0.1 as a Python module; mypy
#      itself runs on Python >= 3.12 in .venv-typecheck, see scripts/_env.sh);
#   2. the whole pytest suite there (core, Blender, end-to-end install);
#   3. the core suite on numpy 2 (no bpy);
#   4. the Blender and end-to-end suites on Blender 4.2 LTS and 4.5 LTS (each its own venv; 4.2
#      runs beside steps 2-3, 4.5 after them, so both cores stay busy).
# Usage: bash scripts/test.sh [--fast]   (--fast: steps 1-2 only, for a quick local loop)
# Extra arguments after the flags are passed to every pytest run.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$REPO_ROOT"

fast=0
if [ "${1:-}" = "--fast" ]; then fast=1; shift; fi
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

step() { printf '\n=== %s\n' "$*"; }

main_py="$(ensure_venv .venv requirements/main.txt)"

step "ruff"
"$main_py" -m ruff check blender_ik_addon scripts tests
step "mypy (strict: see [tool.mypy] in pyproject.toml; Blender APIs from the fake-bpy-module stubs)"
# mypy runs on Python >= 3.12 (the stubs use 3.12 syntax) and checks against .venv's packages.
# A machine with only Python 3.11 skips this one stage with a warning; CI (CI=true) never skips.
if find_python_typecheck >/dev/null 2>&1 || [ "${CI:-}" = "true" ]; then
  typecheck_py="$(ensure_venv .venv-typecheck requirements/typecheck.txt find_python_typecheck)"
  "$typecheck_py" -m mypy --python-executable "$main_py" blender_ik_addon scripts
else
  echo "warning: skipping mypy: it needs a Python >= 3.12 to run on (set PYTHON_TYPECHECK=/path/to/python3.12)" >&2
fi

# The slowest stage (Blender 4.2 LTS, on the numpy backend) starts first, in the background, and
# runs beside the 5.0 suite; 4.5 LTS follows the 5.0 suite. Two cores, two runs at a time, each
# single-threaded (BLAS kept to one thread so they do not fight over the cores) and logged to its
# own file, printed once it is done. Venvs are set up first, one after the other.
declare -A lts_py lts_log lts_pid
start_lts() {  # start_lts VERSION: the Blender and end-to-end suites on that LTS, in the background
  local lts="$1"
  lts_log[$lts]="$lts_tmp/blender-$lts.log"
  # Through the runner: the 4.2 bpy module segfaults at interpreter exit once an add-on was
  # registered (exit 139 after a green run) and 4.5 can hang there; the runner ends the process
  # with pytest's own exit code (scripts/bpy_exit.py).
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "${lts_py[$lts]}" scripts/run_tests_in_blender.py -- \
    -q tests/blender tests/e2e -p no:cacheprovider --basetemp="$lts_tmp/pytest-$lts" "${pytest_args[@]}" \
    >"${lts_log[$lts]}" 2>&1 &
  lts_pid[$lts]=$!
}
pytest_args=("$@")
threads=()  # BLAS threads of the 5.0 suite: one while an LTS run shares the cores
if [ "$fast" = 0 ]; then
  threads=(env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1)
  lts_tmp="$(mktemp -d "${TMPDIR:-/tmp}/ik-chains-lts.XXXXXX")"
  np2_py="$(ensure_venv .venv-numpy2 requirements/numpy2.txt)"
  for lts in 4.2 4.5; do
    lts_py[$lts]="$(ensure_venv ".venv-bpy$lts" "requirements/lts-$lts.txt")"
  done
  start_lts 4.2
fi

step "pytest on Blender 5.0.1 (bpy module), numpy 1.26"
failed=0
"${threads[@]}" "$main_py" -m pytest -q "$@" || failed=1

if [ "$fast" = 1 ]; then exit "$failed"; fi

step "pytest tests/core on numpy 2 (no bpy)"
"$np2_py" -m pytest -q tests/core -p no:cacheprovider "$@" || failed=1

start_lts 4.5
for lts in 4.2 4.5; do
  status=0
  wait "${lts_pid[$lts]}" || status=$?
  step "pytest tests/blender and tests/e2e on Blender $lts LTS (ran alongside the other stages)"
  cat "${lts_log[$lts]}"
  if [ "$status" -ne 0 ]; then echo "Blender $lts LTS: exit $status" >&2; failed=1; fi
done
rm -rf "$lts_tmp"
if [ "$failed" -ne 0 ]; then exit 1; fi
printf '\nAll test stages passed.\n'
