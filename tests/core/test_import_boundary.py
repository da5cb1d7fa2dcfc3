"""The layers' import rules (docs/architecture.md): the core never imports Blender, and nothing but
``core.compiled`` imports the kernel; the adapter never imports the UI."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "blender_ik_addon"
CORE_MODULES = sorted(p.stem for p in (PACKAGE / "core").glob("*.py") if p.stem not in ("__init__", "kernel"))


def test_importing_the_core_does_not_import_bpy() -> None:
    modules = ", ".join(f"blender_ik_addon.core.{name}" for name in CORE_MODULES)
    code = (
        f"import sys; import blender_ik_addon.core, {modules}; "
        "bad = [m for m in ('bpy', 'mathutils', 'bpy_extras') if m in sys.modules]; "
        "assert not bad, bad; print('clean')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports, relative ones resolved against its package."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)
    return out


def test_layers_import_only_downward() -> None:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = path.relative_to(PACKAGE).parts[0]
        imports = _imports(path)
        if layer == "core" and any(m.split(".")[0] in ("bpy", "mathutils", "bpy_extras") for m in imports):
            bad.append(f"{path.name}: the core imports Blender")
        if layer in ("core", "blender") and any(m.startswith(("blender_ik_addon.ui", "blender_ik_addon.handlers"))
                                                 for m in imports):
            bad.append(f"{layer}/{path.name}: imports the UI or the handlers")
        if path.name not in ("compiled.py", "kernel.py") and any(
                m in ("numba", "blender_ik_addon.core.kernel") or m.startswith("numba.") for m in imports):
            bad.append(f"{path.name}: imports numba or the kernel (only core.compiled may)")
    assert not bad, bad
