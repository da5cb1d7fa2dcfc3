# Sourced by the repo's entry scripts. Creates or reuses a virtual environment for a pinned
# requirements file. Reuse is keyed on the file's hash, so editing a pin reinstalls and nothing
# else does. Needs python3.11 (or python3 that is 3.11) and pip; the type check (test.sh) also
# needs a Python >= 3.12 to run mypy on (see find_python_typecheck).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

find_python311() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11 is required (the bpy wheels are built for it); set PYTHON=/path/to/python3.11" >&2
  return 1
}

# mypy parses stubs with the ast module of the Python it runs on, and the fake-bpy-module stubs use
# Python 3.12 syntax (PEP 695), so mypy itself must run on 3.12 or newer. It still checks the code
# against the 3.11 environment's packages (--python-executable); see [tool.mypy] in pyproject.toml.
find_python_typecheck() {
  local candidate root
  local candidates=("${PYTHON_TYPECHECK:-}" python3.14 python3.13 python3.12 python3)
  if root="$(pyenv root 2>/dev/null)"; then  # pyenv versions that are installed but not on PATH
    candidates+=("$root"/versions/3.*/bin/python3)
  fi
  for candidate in "${candidates[@]}"; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 12))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  echo "error: the type check needs Python >= 3.12 to run mypy on (the fake-bpy-module stubs use 3.12" \
       "syntax); set PYTHON_TYPECHECK=/path/to/python3.12" >&2
  return 1
}

# ensure_venv DIR REQUIREMENTS_FILE [PYTHON_FINDER] -> prints the venv's python path
# (the venv is created with the interpreter PYTHON_FINDER prints; default find_python311)
ensure_venv() {
  local venv="$1" reqs="$2" finder="${3:-find_python311}" stamp want
  stamp="$venv/.requirements.sha256"
  want="$(sha256sum "$reqs" | cut -d' ' -f1)"
  if [ ! -x "$venv/bin/python" ]; then
    "$("$finder")" -m venv "$venv" >&2
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "Installing $(basename "$reqs") into $venv (first run only)..." >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs" >&2
    echo "$want" > "$stamp"
  fi
  echo "$venv/bin/python"
}
