#!/usr/bin/env bash
# The test command: sets up pinned virtual environments on first use, then runs
#   1. static checks (ruff, mypy) on the main environment (Blender 5.0.1 as a Python module; mypy
#      itself runs on Python >= 3.12 in .venv-typecheck, see scripts/_env.sh);
#   2. the whole pytest suite there (core, Blender, end-to-end install);
#   3. the core suite on numpy 2 (no bpy);
#   4. the Blender and end-to-end suites on Blender 4.5 LTS and 4.2 LTS (each its own venv; the
#      two run side by side).
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

step "pytest on Blender 5.0.1 (bpy module), numpy 1.26"
"$main_py" -m pytest -q "$@"

if [ "$fast" = 1 ]; then exit 0; fi

step "pytest tests/core on numpy 2 (no bpy)"
np2_py="$(ensure_venv .venv-numpy2 requirements/numpy2.txt)"
"$np2_py" -m pytest -q tests/core -p no:cacheprovider "$@"

# The two LTS runs are independent and mostly single-threaded: they run side by side (one core
# each; BLAS kept to one thread so they do not fight over the cores), each into its own log, which
# is printed once it is done. Their venvs are set up first, one after the other.
declare -A lts_py lts_log lts_pid
for lts in 4.5 4.2; do
  lts_py[$lts]="$(ensure_venv ".venv-bpy$lts" "requirements/lts-$lts.txt")"
done
lts_tmp="$(mktemp -d "${TMPDIR:-/tmp}/ik-chains-lts.XXXXXX")"
for lts in 4.5 4.2; do
  lts_log[$lts]="$lts_tmp/blender-$lts.log"
  # Through the runner: the 4.2 bpy module segfaults at interpreter exit once an add-on was
  # registered (exit 139 after a green run) and 4.5 can hang there; the runner ends the process
  # with pytest's own exit code (scripts/bpy_exit.py).
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "${lts_py[$lts]}" scripts/run_tests_in_blender.py -- \
    -q tests/blender tests/e2e -p no:cacheprovider --basetemp="$lts_tmp/pytest-$lts" "$@" \
    >"${lts_log[$lts]}" 2>&1 &
  lts_pid[$lts]=$!
done
failed=0
for lts in 4.5 4.2; do
  status=0
  wait "${lts_pid[$lts]}" || status=$?
  step "pytest tests/blender and tests/e2e on Blender $lts LTS (ran alongside the other LTS)"
  cat "${lts_log[$lts]}"
  if [ "$status" -ne 0 ]; then echo "Blender $lts LTS: exit $status" >&2; failed=1; fi
done
rm -rf "$lts_tmp"
if [ "$failed" -ne 0 ]; then exit 1; fi
printf '\nAll test stages passed.\n'
