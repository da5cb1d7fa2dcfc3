"""The solver's rules in one place: core/rules.py holds every damping, stopping and restart number and
the status codes; the numpy solver (core/lm.py) and the compiled one (core/kernel.py) take them from
there and keep no copy of their own. And the add-on's chain settings start from the core's defaults.

The sources are read as text (``ast``) where importing is not possible or not enough: a module-level
copy of a rule is a number assigned to a name, which the import-time checks cannot tell from the
imported one once the values agree; the add-on's properties import bpy.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from blender_ik_addon.core import SolverOptions, lm, rules
from blender_ik_addon.core.compiled import numba_available
from blender_ik_addon.core.options import STATUSES

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "blender_ik_addon" / "core"
SOLVERS = ("lm.py", "kernel.py")
needs_numba = pytest.mark.skipif(not numba_available(), reason="numba is not installed (or IK_CHAINS_NUMBA=0)")

RULE_NAMES = sorted(name for name, value in vars(rules).items()
                    if name.isupper() and isinstance(value, int | float) and not isinstance(value, bool))
STATUS_NAMES = {"RUNNING", "CONVERGED", "STALLED", "MAX_ITER"}
# rules.py's functions that are numpy's side of a rule the kernels apply in their own loops, with the
# constants they read (iteration_budget and relax_slack are computed in Python for both backends).
RULE_HELPERS = {"at_limits": {"LIMIT_EPS"}}
# What a home-made copy of a rule would be called (the names lm.py and kernel.py used before rules.py).
RULE_LIKE = re.compile(r"^_?(STATUS_\w+|RUNNING|CONVERGED|STALLED|MAX_ITER|DAMPING\w*|RESTORE\w*|FRUITLESS\w*"
                       r"|RELAX\w*|LIMIT_EPS|REJECTIONS\w*|SECONDARY\w*|RESTART\w*|QUIET\w*|SETTLE\w*|FREEZE\w*"
                       r"|SCALE_FLOOR|MAX_STEP|PRE_BEND|REST_WEIGHT|ITERATIONS\w*|NEWTON\w*)$")
# Numbers that are arithmetic, not rules: 0, 1, 2 (halves, squares), 3 (x, y, z) and the like.
PLAIN_NUMBERS = {0.0, 0.5, 1.0, 2.0, 3.0}
# Floors that keep a division or a solve finite (a length of 1e-12, a ridge on J J^T): numerics, not rules.
NUMERIC_GUARD = 1e-10


def _tree(name: str) -> ast.Module:
    return ast.parse((CORE / name).read_text(encoding="utf-8"), filename=name)


def _is_number(node: ast.expr) -> bool:
    """A literal number, or arithmetic on literal numbers only (``-1``, ``1e-3 * 2``, ``(-1, 0, 1, 2)``)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int | float) and not isinstance(node.value, bool)
    if isinstance(node, ast.UnaryOp):
        return _is_number(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_number(node.left) and _is_number(node.right)
    if isinstance(node, ast.Tuple | ast.List):
        return bool(node.elts) and all(_is_number(e) for e in node.elts)
    return False


def _targets(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        targets = [node.target]
    else:
        return []
    names: list[str] = []
    for target in targets:
        elts = target.elts if isinstance(target, ast.Tuple) else [target]
        names += [e.id for e in elts if isinstance(e, ast.Name)]
    return names


def _module_level_assignments(tree: ast.Module) -> list[ast.stmt]:
    """Assignments at module level, also inside module-level ``if``/``try`` blocks."""
    out: list[ast.stmt] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            out.append(node)
        elif isinstance(node, ast.If | ast.Try):
            pending += [*node.body, *node.orelse, *getattr(node, "finalbody", []),
                        *(stmt for handler in getattr(node, "handlers", []) for stmt in handler.body)]
    return out


def _float_literals(tree: ast.Module) -> set[float]:
    """Float literals anywhere in the module (function bodies included), docstrings aside."""
    return {float(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, float)}


def _names_from_rules(tree: ast.Module) -> set[str]:
    """Names the module imports from ``.rules`` (``from .rules import X``), or ``{"*module*"}`` for
    ``from . import rules``."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module == "rules":
            names |= {alias.name for alias in node.names}
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
            names |= {"*module*" for alias in node.names if alias.name == "rules"}
    return names


def _rules_referenced(name: str) -> set[str]:
    """The rule constants a solver's code uses: ``rules.X``, or ``X`` imported from ``.rules`` (under
    any alias), and used beyond the import itself. Docstrings and comments do not count."""
    tree = _tree(name)
    aliases: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module == "rules":
            aliases |= {alias.asname or alias.name: alias.name for alias in node.names}
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "rules":
            used.add(node.attr)
        elif isinstance(node, ast.Name) and node.id in aliases:
            used.add(aliases[node.id])
    for helper in list(used & set(RULE_HELPERS)):  # a rules.py function applies the constants it reads
        used |= RULE_HELPERS[helper]
    return used & set(RULE_NAMES)


# -- the solvers keep no copy of a rule -------------------------------------------------------------
@pytest.mark.parametrize("source", SOLVERS)
def test_solver_defines_no_numeric_constant_of_its_own(source: str) -> None:
    copies = [f"{source}:{node.lineno}: {ast.unparse(node)}" for node in _module_level_assignments(_tree(source))
              if node.value is not None and _is_number(node.value)]
    assert not copies, "rules belong in core/rules.py:\n" + "\n".join(copies)


@pytest.mark.parametrize("source", SOLVERS)
def test_solver_binds_no_rule_like_name_except_by_importing_it(source: str) -> None:
    # A rule-like name bound at module level by anything but an import (a computed copy, a re-definition).
    bound = [f"{source}:{node.lineno}: {name}" for node in _module_level_assignments(_tree(source))
             for name in _targets(node) if RULE_LIKE.match(name)]
    assert not bound, "\n".join(bound)


@pytest.mark.parametrize("source", SOLVERS)
def test_solver_imports_its_rules_from_core_rules(source: str) -> None:
    imported = _names_from_rules(_tree(source))
    assert imported, f"{source} does not import from core/rules.py"
    unknown = imported - set(RULE_NAMES) - {"*module*", "iteration_budget", "relax_slack"}
    assert not unknown, f"{source} imports names rules.py does not define: {sorted(unknown)}"


def test_both_solvers_follow_the_same_rules() -> None:
    # A rule only one implementation reads is a rule the other one does not apply: the backends drift.
    in_lm, in_kernel = _rules_referenced("lm.py"), _rules_referenced("kernel.py")
    assert in_lm == in_kernel, {"only lm.py": sorted(in_lm - in_kernel), "only kernel.py": sorted(in_kernel - in_lm)}
    # The damping, restore, relax, restart and stop rules are all among them.
    for prefix in ("DAMPING_", "RESTORE_", "RELAX_", "FRUITLESS_", "RESTART_", "QUIET_"):
        assert any(rule.startswith(prefix) for rule in in_lm), prefix
    assert {"LIMIT_EPS", "SETTLE_ANGLE", "MAX_STEP"} <= in_lm


def test_no_tuning_number_is_written_into_both_solvers() -> None:
    # A tuning number (neither plain arithmetic nor a tiny numerical floor) written into both sources
    # is a rule kept twice: change one copy and the backends disagree.
    shared = _float_literals(_tree("lm.py")) & _float_literals(_tree("kernel.py"))
    tuning = sorted(value for value in shared if value not in PLAIN_NUMBERS and abs(value) >= NUMERIC_GUARD)
    assert not tuning, f"numbers written into both lm.py and kernel.py instead of rules.py: {tuning}"


# -- the values the solvers see are rules.py's own ---------------------------------------------------
def test_lm_status_codes_are_the_rules_codes() -> None:
    assert lm.STATUS_RUNNING is rules.RUNNING
    assert lm.STATUS_CONVERGED is rules.CONVERGED
    assert lm.STATUS_STALLED is rules.STALLED
    assert lm.STATUS_MAX_ITER is rules.MAX_ITER


def test_lm_holds_no_rule_attribute_that_differs_from_rules() -> None:
    for name in RULE_NAMES:
        for candidate in (name, f"_{name}"):
            if hasattr(lm, candidate):
                assert getattr(lm, candidate) is getattr(rules, name), f"lm.{candidate}"


@needs_numba
def test_kernel_constants_are_the_rules_objects() -> None:
    from blender_ik_addon.core import kernel

    imported = _names_from_rules(_tree("kernel.py")) - {"*module*"}
    for name in imported:
        assert getattr(kernel, name) is getattr(rules, name), f"kernel.{name}"
    for name in RULE_NAMES:
        for candidate in (name, f"_{name}"):
            if hasattr(kernel, candidate):
                assert getattr(kernel, candidate) is getattr(rules, name), f"kernel.{candidate}"
    # The damping and stop rules the issue moved out of kernel.py.
    for name in ("DAMPING_MAX", "DAMPING_MIN", "DAMPING_UP", "DAMPING_DOWN", "RESTORE_DAMPING", "RESTORE_STEPS",
                 "FRUITLESS_RESTARTS", "RELAX_GROW", "RELAX_SHRINK", "LIMIT_EPS", "CONVERGED", "STALLED",
                 "MAX_ITER", "RUNNING"):
        assert getattr(kernel, name) is getattr(rules, name), f"kernel.{name}"


def test_status_codes_name_the_statuses() -> None:
    assert STATUSES[rules.CONVERGED] == "converged"
    assert STATUSES[rules.STALLED] == "stalled"
    assert STATUSES[rules.MAX_ITER] == "max_iterations"
    assert sorted((rules.CONVERGED, rules.STALLED, rules.MAX_ITER)) == list(range(len(STATUSES)))
    # "Running" is no final status: its code must not index one (a negative index would, silently).
    assert rules.RUNNING not in range(len(STATUSES)) and rules.RUNNING < 0


def test_rules_are_plain_numbers_numba_can_fold() -> None:
    for name in RULE_NAMES:
        value = getattr(rules, name)
        assert type(value) in (int, float), f"{name} is {type(value).__name__}"
    for name in STATUS_NAMES:
        assert type(getattr(rules, name)) is int
    assert rules.iteration_budget(60, 200) == 60 + rules.ITERATIONS_PER_DOF * 200


# -- the add-on's chain settings start from SolverOptions' defaults ---------------------------------
# Add-on setting -> SolverOptions field (the panel's enum "LM" is the core's "lm").
SETTING_TO_OPTION = {"solver": "method", "method": "method", "max_iterations": "max_iterations",
                     "restarts": "restarts", "tolerance": "tolerance", "orientation_weight": "orientation_weight",
                     "pole_weight": "pole_weight", "learning_rate": "learning_rate",
                     "sampling_distance": "sampling_distance"}
OPTION_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SolverOptions)}


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    found = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name]
    assert found, f"class {name} not found"
    return found[0]


def _hard_coded_defaults(path: Path, class_name: str) -> dict[str, tuple[int, Any]]:
    """``{setting: (line, literal default)}`` for the class's solver settings whose default is written
    as a literal: a bpy property's ``default=`` keyword, or a dataclass field's value. A default taken
    from elsewhere (a shared table, ``SolverOptions``) is not a literal and is not listed."""
    cls = _class(ast.parse(path.read_text(encoding="utf-8")), class_name)
    out: dict[str, tuple[int, Any]] = {}
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name = node.target.id
        if name not in SETTING_TO_OPTION:
            continue
        # Blender declares properties as annotations (``restarts: IntProperty(default=4)``), a
        # dataclass as ``restarts: int = 4``.
        value: ast.expr | None = node.annotation if node.value is None else node.value
        if isinstance(value, ast.Call):  # IntProperty(..., default=4, ...)
            value = next((kw.value for kw in value.keywords if kw.arg == "default"), None)
        if value is None:
            continue
        try:
            out[name] = (node.lineno, ast.literal_eval(value))
        except ValueError:
            continue
    return out


def _disagreements(path: Path, class_name: str) -> list[str]:
    settings = _hard_coded_defaults(path, class_name)
    bad = []
    for name, (line, value) in settings.items():
        option = SETTING_TO_OPTION[name]
        expected = OPTION_DEFAULTS[option]
        got = value.lower() if isinstance(value, str) else value
        if got != expected:
            where = f"{path.relative_to(ROOT)}:{line}"
            bad.append(f"{where}: {name} default {value!r}, SolverOptions.{option} = {expected!r}")
    return bad


def test_the_add_on_declares_the_solver_settings_this_test_reads() -> None:
    # Guards the two tests below against passing vacuously if the settings move.
    properties = ROOT / "blender_ik_addon" / "ui" / "properties.py"
    spec = ROOT / "blender_ik_addon" / "blender" / "spec.py"
    declared = {node.target.id for node in _class(ast.parse(properties.read_text(encoding="utf-8")),
                                                  "IKCHAINS_PG_chain").body
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    assert {"solver", "max_iterations", "restarts", "tolerance"} <= declared
    fields = {node.target.id for node in _class(ast.parse(spec.read_text(encoding="utf-8")), "ChainSpec").body
              if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    assert {"method", "max_iterations", "restarts", "tolerance"} <= fields


def test_panel_defaults_agree_with_solver_options() -> None:
    bad = _disagreements(ROOT / "blender_ik_addon" / "ui" / "properties.py", "IKCHAINS_PG_chain")
    assert not bad, "\n".join(bad)


def test_chain_spec_defaults_agree_with_solver_options() -> None:
    bad = _disagreements(ROOT / "blender_ik_addon" / "blender" / "spec.py", "ChainSpec")
    assert not bad, "\n".join(bad)
