"""Write ``docs/reliability.md`` from what the fault, render and load tests saw.

    .venv/bin/python tests/blender/reliability_doc.py [extra pytest args]

runs those tests with ``IKCHAINS_RELIABILITY_JSON`` set; each test records its case (input, the
exact message it asserted, what it checked was preserved) and the load tests their figures. The
table is then written from those records, so its messages are the ones the tests assert
(``test_the_table_lists_these_cases`` in each file checks the table still matches).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "reliability.md"
FILES = ("test_faults_references.py", "test_faults_input.py", "test_faults_setup.py", "test_faults_playback.py",
         "test_faults_library.py", "test_faults_files.py", "test_render.py", "test_load.py")
TOPICS = {
    "test_faults_references": "Broken references",
    "test_faults_input": "Unusable input",
    "test_faults_setup": "Rotation and constraint setup",
    "test_faults_playback": "What plays back",
    "test_faults_library": "Library data",
    "test_faults_files": "Undo, files and frame changes",
    "test_render": "Renders",
    "test_load": "Load",
}
COMMAND = ".venv/bin/python -m pytest tests/blender/test_load.py -q -p no:cacheprovider"

INTRO = """# Reliability: faults, bad input, files, renders and load

What the add-on does when a scene is broken or unusual, as the tests in `tests/blender/test_faults_*.py`,
`test_render.py` and `test_load.py` check it in real Blender (the `bpy` module, no mocks). Every row is a
test: it breaks a rig on purpose, asserts the exact message below where the user looks, and checks that
nothing was lost (keys, also outside the baked range; other channels and bones; rotation modes;
constraints; drivers; locks; chain settings) and that frame changes keep working for the chains that are
fine.

*Where* names the place the message shows: the **panel status** is the status line of the chain in
3D Viewport > Sidebar > IK Chains (the runtime status store it draws); **report** is the operator's report
(the status bar and Info editor; in scripts an error report raises `RuntimeError`); **exception** is the
text of the `RigSetupError` scripts get.

This file is generated: `.venv/bin/python tests/blender/reliability_doc.py` runs the tests and writes it
from the messages they asserted (`test_the_table_lists_these_cases` fails when it is out of date).
Numbers in messages (residuals) are whatever that run measured.
"""


def run_tests(record: Path, extra: list[str]) -> int:
    env = dict(os.environ, IKCHAINS_RELIABILITY_JSON=str(record))
    files = [str(path) for name in FILES if (path := REPO / "tests" / "blender" / name).exists()]
    command = [sys.executable, "-m", "pytest", *files, "-q", "-p", "no:cacheprovider", *extra]
    return subprocess.run(command, cwd=REPO, env=env).returncode


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def case_tables(cases: list[dict[str, str]]) -> list[str]:
    lines = []
    for module, title in TOPICS.items():
        rows = [c for c in cases if Path(c["test"].split("::")[0]).stem == module]
        if not rows:
            continue
        lines += [f"## {title}", "", "| Case | Input | What the user sees | Where | What is preserved | Test |",
                  "|---|---|---|---|---|---|"]
        for c in rows:
            test = c["test"].split("::")[-1]
            lines.append(f"| `{c['case']}` | {cell(c['given'])} | `{cell(c['message'])}` | {cell(c['where'])} | "
                         f"{cell(c['preserved'])} | `{module}.py::{test}` |")
        lines.append("")
    return lines


def figure_table(figures: dict[str, str]) -> list[str]:
    if not figures:
        return []
    lines = ["## Load figures", "",
             f"Measured by `{COMMAND}` on this machine ({os.cpu_count()} cores, {platform.machine()}, "
             f"Python {platform.python_version()}), with other work running beside it: take them as orders of "
             "magnitude. The tests' own bounds are looser.", "", "| Figure | Value |", "|---|---|"]
    lines += [f"| {cell(name)} | {cell(value)} |" for name, value in figures.items()]
    return [*lines, ""]


def main(extra: list[str]) -> int:
    with tempfile.TemporaryDirectory() as folder:
        record = Path(folder) / "record.json"
        code = run_tests(record, extra)
        data = json.loads(record.read_text()) if record.exists() else {"cases": [], "figures": {}}
    cases = data["cases"]
    text = "\n".join([INTRO, f"{len(cases)} cases.", "", *case_tables(cases), *figure_table(data["figures"])])
    DOC.write_text(text.rstrip() + "\n")
    print(f"wrote {DOC.relative_to(REPO)}: {len(cases)} cases, {len(data['figures'])} figures (pytest exit {code})")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
