"""The layers' import rules (docs/architecture.md): the core never imports Blender, and nothing but
``core.compiled`` imports the kernels (``core.kernel``, ``core.tree_kernel``; with what they share,
``core.kernel_base``, the only modules but ``core.compiled`` that import numba); the adapter never
imports the UI."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "blender_ik_addon"
KERNELS = ("kernel", "tree_kernel")  # numba-compiled; core.compiled loads them with importlib
KERNEL_BASE = "kernel_base"  # numba-compiled pieces both kernels share; only they import it
NUMBA_MODULES = (*KERNELS, KERNEL_BASE)
CORE_MODULES = sorted(p.stem for p in (PACKAGE / "core").glob("*.py") if p.stem not in ("__init__", *NUMBA_MODULES))


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
        kernels = {f"blender_ik_addon.core.{name}" for name in KERNELS}
        if path.name not in ("compiled.py", *(f"{name}.py" for name in NUMBA_MODULES)) and any(
                m == "numba" or m.startswith("numba.") for m in imports):
            bad.append(f"{path.name}: imports numba (only core.compiled and the kernels may)")
        base = f"blender_ik_addon.core.{KERNEL_BASE}"
        if path.stem not in KERNELS and any(m == base or m.startswith(f"{base}.") for m in imports):
            bad.append(f"{layer}/{path.name}: imports {KERNEL_BASE} (only the kernels may)")
        # A kernel imported anywhere but through core.compiled's importlib would load (and on a fresh
        # install compile) without its stale-cache check, and without numba being optional; one
        # kernel importing the other would compile both whenever one is wanted.
        if layer != "core" or path.stem != "compiled":
            reached = {m for m in imports if m in kernels or any(m.startswith(f"{k}.") for k in kernels)}
            if reached:
                bad.append(f"{layer}/{path.name}: imports {sorted(reached)} (only core.compiled, through importlib)")
    assert not bad, bad


def test_core_compiled_loads_the_kernels_lazily() -> None:
    source = (PACKAGE / "core" / "compiled.py").read_text(encoding="utf-8")
    imports = _imports(PACKAGE / "core" / "compiled.py")
    for name in KERNELS:
        assert f"blender_ik_addon.core.{name}" not in imports, f"core.compiled imports {name} at module level"
        assert f'importlib.import_module(f"{{__package__}}.{name}")' in source, f"core.compiled does not load {name}"
