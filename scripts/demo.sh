#!/usr/bin/env bash
# The README's first command: builds a robot arm and a tentacle reaching for animated targets,
# bakes them with the add-on, saves out/demo/demo.blend, renders out/demo/contact_sheet.png
# (Workbench, no GPU needed) and prints each chain's residuals.
# Usage: bash scripts/demo.sh [--renders 6] [--resolution 480x300] [--output-dir DIR] [--no-docs-image]
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$REPO_ROOT"
main_py="$(ensure_venv .venv requirements/main.txt)"
PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$main_py" scripts/demo.py "$@"
