# Sourced by the repo's entry scripts. Creates or reuses a virtual environment for a pinned
# requirements file. Reuse is keyed on the file's hash, so editing a pin reinstalls and nothing
# else does. Needs only python3.11 (or python3 that is 3.11) and pip.
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

# ensure_venv DIR REQUIREMENTS_FILE -> prints the venv's python path
ensure_venv() {
  local venv="$1" reqs="$2" stamp want
  stamp="$venv/.requirements.sha256"
  want="$(sha256sum "$reqs" | cut -d' ' -f1)"
  if [ ! -x "$venv/bin/python" ]; then
    "$(find_python311)" -m venv "$venv" >&2
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "Installing $(basename "$reqs") into $venv (first run only)..." >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs" >&2
    echo "$want" > "$stamp"
  fi
  echo "$venv/bin/python"
}
