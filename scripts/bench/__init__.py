"""Helpers of ``scripts/benchmark.py``: chains, cases, the peers, and the report.

``python scripts/benchmark.py`` puts only ``scripts/`` on ``sys.path``; the repository root is
added here so that ``blender_ik_addon`` imports without installing anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
