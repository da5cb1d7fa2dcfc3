"""The optional compiled backend: when numba is installed, LM solves run in :mod:`.kernel` instead
of numpy, and tree solves (:func:`.tree_solver.solve_tree`) in :mod:`.tree_kernel`.

Which backend solves is :attr:`SolverOptions.backend`:

* ``"auto"`` (default): the compiled kernel when numba can be imported and the problem is one it
  handles (method ``"lm"``, and anything but a soft comfort pull), else numpy.
* ``"numpy"``: always the numpy implementation.
* ``"numba"``: the compiled kernel, or :class:`~.errors.IKInputError` saying why it cannot be used.

Setting the environment variable ``IK_CHAINS_NUMBA=0`` makes numba count as not installed (for
example to compare the two, or on a farm node where its JIT cache directory is not writable). It is
read at every solve.

The first compiled solve in a fresh environment compiles the kernel (about 75 s on a 2-core machine; the
tree kernel, loaded and compiled on its own, about 15 s); numba caches the result on disk, so later
processes load it in a fraction of a second. If numba cannot load or run a kernel here, ``"auto"``
warns once and solves with numpy for the rest of the session.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import numpy as np

from . import rules, tree_solver
from .chain import Chain, Joint
from .errors import IKInputError
from .lm import Attempt, has_null_space, relax_slack, restart_draws, soft_comfort
from .objectives import Problem
from .options import SolverOptions
from .tree import Effector, Tree
from .tree_solver import TreeResult, TreeTargets
from .types import AnyArray, FloatArray

_kernel: ModuleType | None = None
_kernel_error: str | None = None


_DISABLED = "numba is disabled by IK_CHAINS_NUMBA=0"


def _disabled() -> bool:
    """``IK_CHAINS_NUMBA=0`` (read at every solve, so a script can switch it for a while)."""
    return os.environ.get("IK_CHAINS_NUMBA", "1").strip().lower() in ("0", "false", "no", "off")


def kernel_module() -> ModuleType | None:
    """The compiled kernel module, or None if numba is missing or disabled (imported once)."""
    global _kernel, _kernel_error
    if _disabled():
        return None
    if _kernel is None and _kernel_error is None:
        try:
            forget_stale_kernel_cache(Path(__file__).with_name("__pycache__"), "kernel", KERNEL_SOURCES)
            _kernel = importlib.import_module(f"{__package__}.kernel")
        except ImportError as err:  # numba missing, or built for another numpy
            _kernel_error = f"numba is not available ({err})"
        except Exception as err:  # e.g. numba finds no writable cache folder (RuntimeError at import)
            _kernel_error = f"numba could not load the kernel ({type(err).__name__}: {err})"
    return _kernel


KERNEL_SOURCES: Final = ("rules.py", "kernel_base.py")
"""What the chain kernel compiles in besides ``kernel.py``: the rules' constants, and the shared
pieces of :mod:`.kernel_base` (an inlined function is compiled into its caller's cache)."""
TREE_KERNEL_SOURCES: Final = ("rules.py", "tree_solver.py", "kernel_base.py")
"""The same for the tree kernel, which also compiles in ``tree_solver.py``'s constants (STAGES, ...)."""


def forget_stale_kernel_cache(folder: Path, module: str = "kernel", sources: tuple[str, ...] = KERNEL_SOURCES) -> bool:
    """Delete numba's cached ``module`` in ``folder`` if it was compiled against other rules; True if it did.

    numba compiles the constants of ``rules.py`` into the kernel but decides whether its on-disk
    cache is current from ``kernel.py`` alone, so a changed rule would keep running with its old
    value. A stamp file (``<module>.rules-stamp``) holds a hash of the ``sources`` (files beside this
    one) whose code or constants the cache was built with: :data:`KERNEL_SOURCES` for
    :mod:`.kernel`, :data:`TREE_KERNEL_SOURCES` for :mod:`.tree_kernel`. Best effort: a read-only
    install (no cache there either) or a cache elsewhere (``NUMBA_CACHE_DIR``) is left alone.
    """
    hasher = hashlib.sha256()
    for source in sources:
        hasher.update(Path(__file__).with_name(source).read_bytes())
    digest = hasher.hexdigest()[:16]
    stamp = folder / f"{module}.rules-stamp"
    try:
        if stamp.is_file() and stamp.read_text(encoding="ascii") == digest:
            return False
        stale = [*folder.glob(f"{module}.*.nbi"), *folder.glob(f"{module}.*.nbc")] if folder.is_dir() else []
        for path in stale:
            path.unlink()
        folder.mkdir(exist_ok=True)  # before numba's first compile: the stamp then vouches for it
        stamp.write_text(digest, encoding="ascii")
        return bool(stale)
    except OSError:
        return False


class KernelError(RuntimeError):
    """The kernel could not be compiled or run in this Python (not a solver outcome)."""


def give_up(err: BaseException) -> None:
    """Stop using the kernel for the rest of the session, keeping the reason for the panel."""
    global _kernel, _kernel_error
    _kernel, _kernel_error = None, f"numba could not run the kernel ({type(err).__name__}: {err})"
    warnings.warn(f"IK Chains: solving with numpy from now on: {_kernel_error}", RuntimeWarning, stacklevel=3)


def warm_up() -> None:
    """Load (or on first use, compile) the kernels now, e.g. in a background thread when the add-on
    is enabled, so the first live frame does not wait for them: the chain kernel, then the tree
    kernel. Never raises: a kernel that cannot be loaded leaves the numpy solver in charge, as it
    would anyway."""
    kernel = kernel_module()
    if kernel is not None:
        try:
            chain = _warm_up_chain()
            options = SolverOptions(backend="numba", restarts=1, max_iterations=2)
            target = np.array([[0.0, 1.0, 1.0]])
            unit, spread = restart_draws(1, options)  # read-only arrays: numba compiles per array flavour
            start = np.zeros((1, 1))
            # Both paths of the kernel: the plain one, and the one with a pole (secondary tasks).
            for problem in (Problem(chain, target), Problem(chain, target, poles=np.array([[1.0, 0.0, 0.0]]))):
                lm_solve_compiled(problem, start, start, np.zeros(1, dtype=bool), unit, spread, options)
        except Exception:  # a warm-up is only an optimisation; the real solve reports its own errors
            pass
    _warm_up_tree()


def _warm_up_chain() -> Chain:
    return Chain((Joint("hinge", free=(True, False, False)),), tip_offset=np.array([0.0, 1.0, 0.0]))


def typed_list(items: list[Any]) -> Any:
    """A numba typed List of ``items`` (tuples of one type), for kernel functions that loop over
    many problems (see :mod:`.batched`). Only called once :func:`kernel_module` has loaded."""
    from numba.typed import List

    out = List()
    for item in items:
        out.append(item)
    return out


def numba_available() -> bool:
    """True if the compiled kernel can be used in this Python."""
    return kernel_module() is not None


def unavailable_reason() -> str | None:
    """Why the compiled kernel cannot be used (numba missing, disabled, or failing to load), or None."""
    if kernel_module() is not None:
        return None
    return _DISABLED if _disabled() else _kernel_error


def unsupported_reason(problem: Problem, options: SolverOptions) -> str | None:
    """Why the compiled kernel cannot solve ``problem``, or None if it can."""
    if options.method != "lm":
        return f"the compiled kernel implements method 'lm', not {options.method!r}"
    if soft_comfort(problem):
        return "the compiled kernel does not do a soft comfort pull (reach_first=False)"
    return unavailable_reason()


def use_compiled(problem: Problem, options: SolverOptions) -> bool:
    """Whether ``options.backend`` picks the compiled kernel for ``problem``.

    Raises:
        IKInputError: ``backend="numba"`` but the kernel cannot solve this problem here.
    """
    if options.backend == "numpy":
        return False
    reason = unsupported_reason(problem, options)
    if reason is not None and options.backend == "numba":
        raise IKInputError(f"backend 'numba' cannot be used: {reason}")
    return reason is None


def plan_of(chain: Chain) -> tuple[Any, ...]:
    """The kernel's view of ``chain``, built once per chain and kept on it.

    ``(lower, upper, rest_rot, rest_pos, rest_rotates, slot_count, slot_axis, slot_dof,
    slot_fixed, base, tip_offset, dof_joint, dof_axis, turn_rank, angle_count, centre_x, centre_y,
    centre_z, radius, parents)``: per joint, its slots (:func:`joint_slots`, the tree kernel's too);
    per variable, its joint, its axis (-1 for
    a length factor) and its place in the order FK turns the variables
    (:attr:`.chain.Chain.turn_rank`); the number of free angles (the variables before the length
    factors, see :mod:`.stretch`); the sphere the angles alone reach
    (:attr:`.chain.Chain.rigid_reach_sphere`); each joint's parent, the joint before (FK is the
    trees', :func:`.kernel_base.forward_joints`). Stretch added scalars only: numba passes each array
    of a tuple at a cost, on every call.
    """
    cached = chain.__dict__.get("_kernel_plan")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    n = chain.n_joints
    slot_count, slot_axis, slot_dof, slot_fixed = joint_slots(chain)
    dof_axis = np.concatenate([chain.free_axis, np.full(chain.n_stretch, -1)]).astype(np.int64)
    arrays = (
        np.ascontiguousarray(chain.lower), np.ascontiguousarray(chain.upper),
        np.ascontiguousarray(chain.rest[:, :3, :3]), np.ascontiguousarray(chain.rest[:, :3, 3]),
        np.ascontiguousarray(chain.rest_rotates, dtype=np.bool_), slot_count, slot_axis, slot_dof, slot_fixed,
        np.ascontiguousarray(chain.base), np.ascontiguousarray(chain.tip_offset),
        np.ascontiguousarray(chain.dof_joint, dtype=np.int64), dof_axis,
        np.ascontiguousarray(chain.turn_rank, dtype=np.int64), int(chain.n_angles),
        *(float(v) for v in chain.rigid_reach_sphere[0]), float(chain.rigid_reach_sphere[1]),
        np.arange(-1, n - 1, dtype=np.int64),
    )
    # Chain is a frozen dataclass; the plan is derived data, so it is cached outside its fields.
    object.__setattr__(chain, "_kernel_plan", arrays)
    return arrays


def posture_of(problem: Problem) -> tuple[Any, ...]:
    """The kernel's view of the distance from the comfort pose (``posture.posture_terms``):
    ``(rotations (n, 3, 3), scale per joint (n,), ball joints (n,), comfort variables (m,), scale
    per length factor (k,))``; zero scales without a reach-first comfort pose (a soft pull stays on
    numpy).

    Remembered on the chain for the problem's posture (itself remembered per comfort pose), so a
    frame handler's solves do not rebuild it.
    """
    chain = problem.chain
    if problem.posture is None or problem.comfort is None:
        return chain.memo("kernel_posture", (), lambda: _kernel_posture(
            np.repeat(np.eye(3)[None], chain.n_joints, axis=0), np.zeros(chain.n_joints),
            np.zeros(chain.n_joints, dtype=np.bool_), np.zeros(chain.n_stretch), chain.neutral))
    posture, angles = problem.posture, problem.comfort[0]
    return chain.memo_of("kernel_posture", (posture, angles), lambda: _kernel_posture(*posture, angles))


def _kernel_posture(rotations: FloatArray, scales: FloatArray, ball: AnyArray, stretch: FloatArray,
                    angles: FloatArray) -> tuple[Any, ...]:
    # Writable copies: numba compiles a separate kernel for read-only arrays (a resolved comfort
    # pose is read-only), which would cost a second compilation.
    return (np.array(rotations, dtype=np.float64, order="C"), np.array(scales, dtype=np.float64, order="C"),
            np.array(ball, dtype=np.bool_, order="C"), np.array(angles, dtype=np.float64, order="C"),
            np.array(stretch, dtype=np.float64, order="C"))


def comfort_on(posture: tuple[Any, ...]) -> bool:
    """Whether the kernel's posture has any row to weigh (a joint's or a length factor's)."""
    return bool((posture[1] > 0).any() or (posture[4] > 0).any())


_NO_ORIENTATION = np.eye(3)[None]
_NO_POLE = np.zeros((1, 3))


def lm_solve_compiled(problem: Problem, starts: FloatArray, seed_poses: FloatArray, hopeless: AnyArray,
                      unit: FloatArray, spread: FloatArray, options: SolverOptions) -> Attempt:
    """:func:`.lm.lm_solve` in the compiled kernel.

    Args:
        problem: ``F`` targets the kernel can solve (see :func:`unsupported_reason`).
        starts: ``(F, m)`` or ``(1, m)`` start poses inside the limits.
        seed_poses: ``(F, m)`` or ``(1, m)`` poses the restart seeds perturb.
        hopeless: ``(F,)`` targets no restart can help (beyond reach).
        unit: ``(restarts, m)`` the seeds' uniform draws (see :func:`.lm.restart_seeds`).
        spread: ``(restarts,)`` how far each seed moves from its pose.
        options: Solver options.

    Raises:
        KernelError: numba could not compile or run the kernel here; it is not tried again in this
            session, and ``solve_batch`` falls back to numpy unless ``backend="numba"`` was asked for.
    """
    kernel = _kernel  # use_compiled() has just loaded it (and read IK_CHAINS_NUMBA) for this solve
    assert kernel is not None, "use_compiled() decides whether the kernel may be used"
    count, dofs = problem.count, problem.chain.n_dofs
    q = np.empty((count, dofs))
    error, orientation_error = np.empty(count), np.empty(count)
    iterations = np.empty(count, dtype=np.int64)
    status = np.empty(count, dtype=np.int64)
    chain = problem.chain
    # Residual scales as objectives.evaluate has them: weights times the chain's reach.
    with_orientation = problem.orientations is not None and problem.orientation_weight > 0
    orientation_scale = problem.orientation_weight * problem.reach if with_orientation else 0.0
    orientations = np.ascontiguousarray(problem.orientations if problem.orientations is not None else _NO_ORIENTATION)
    shared = (np.ascontiguousarray(problem.positions), orientations)
    per_target = (np.ascontiguousarray(starts), np.ascontiguousarray(seed_poses),
                  np.ascontiguousarray(hopeless, dtype=np.bool_), np.ascontiguousarray(unit),
                  np.ascontiguousarray(spread))
    outputs = (q, error, orientation_error, iterations, status)
    budget = rules.iteration_budget(options.max_iterations, dofs)
    posture = posture_of(problem)
    posture_on = problem.chain.memo_of("comfort on", (posture[1],), lambda: comfort_on(posture))
    # lm.lm_attempt's switches: reach-first tasks act only where the tip task leaves a null space.
    can_relax = problem.has_secondary and has_null_space(problem)
    try:
        if problem.poles is None and not can_relax:
            # The tip task alone (the comfort pose only ranks reaching restarts): the plain path.
            kernel.solve_many(*shared, float(orientation_scale), *per_target, float(options.tolerance),
                              float(options.orientation_tolerance), budget, float(options.initial_damping),
                              posture, plan_of(chain), *outputs)
        else:  # a pole (it also picks the branch, at any weight) or a reach-first pull in a null space
            sec_shared = (problem.poles is not None, float(problem.pole_weight), posture, posture_on,
                          float(problem.reach))
            flags = (can_relax, problem.has_secondary, relax_slack(options))
            settings = (float(orientation_scale), float(options.tolerance), float(options.orientation_tolerance),
                        budget, float(options.initial_damping))
            poles = np.ascontiguousarray(problem.poles if problem.poles is not None else _NO_POLE)
            kernel.solve_many_secondary(*shared, poles, sec_shared, flags, *per_target, settings, plan_of(chain),
                                        *outputs)
    except Exception as err:  # e.g. numba cannot compile here (no writable cache, no executable memory)
        give_up(err)
        raise KernelError(_kernel_error) from err
    return Attempt(q, error, orientation_error, iterations, status)


# -- the tree solver (tree_solver.solve_tree) --------------------------------------------------------
_tree_kernel: ModuleType | None = None
_tree_kernel_error: str | None = None


def tree_kernel_module() -> ModuleType | None:
    """The compiled tree solver's module (:mod:`.tree_kernel`), or None if numba is missing or
    disabled (imported once). Loaded on its own: a tree solve neither loads nor compiles the chain
    kernel, nor the other way round."""
    global _tree_kernel, _tree_kernel_error
    if _disabled():
        return None
    if _tree_kernel is None and _tree_kernel_error is None:
        try:
            forget_stale_kernel_cache(Path(__file__).with_name("__pycache__"), "tree_kernel", TREE_KERNEL_SOURCES)
            _tree_kernel = importlib.import_module(f"{__package__}.tree_kernel")
        except ImportError as err:  # numba missing, or built for another numpy
            _tree_kernel_error = f"numba is not available ({err})"
        except Exception as err:  # e.g. numba finds no writable cache folder (RuntimeError at import)
            _tree_kernel_error = f"numba could not load the tree kernel ({type(err).__name__}: {err})"
    return _tree_kernel


def tree_unavailable_reason() -> str | None:
    """Why the compiled tree solver cannot be used (numba missing, disabled, or failing), or None."""
    if tree_kernel_module() is not None:
        return None
    return _DISABLED if _disabled() else _tree_kernel_error


TreeSolver = Callable[[Tree, TreeTargets, FloatArray, FloatArray, FloatArray, SolverOptions], TreeResult]
"""The signature of ``tree_solver._solve_numpy`` (tree, targets, preferred, comfort weights, seeds, options)."""


def tree_kernel_for(options: SolverOptions) -> TreeSolver | None:
    """The compiled tree solver (same signature as ``tree_solver._solve_numpy``) if ``options.backend``
    picks it, else None: ``"numpy"`` never, ``"auto"`` where numba can load :mod:`.tree_kernel`.

    Raises:
        IKInputError: ``backend="numba"`` but the compiled tree solver cannot be used here (the
            message says why).
    """
    if options.backend == "numpy":
        return None
    if tree_kernel_module() is None:
        if options.backend == "numba":
            raise IKInputError(f"backend 'numba' cannot be used: {tree_unavailable_reason()}")
        return None
    return solve_tree_compiled


def tree_plan_of(tree: Tree) -> tuple[Any, ...]:
    """The tree kernel's view of ``tree``, built once per tree and kept on it.

    ``(lower, upper, geometry, effectors, bends)``: the variables' limits; what FK reads, ``(rest_rot,
    rest_pos, rest_rotates, parents, slot_count, slot_axis, slot_dof, slot_fixed, effector_joint,
    tip_offset, dof_joint)``: per joint its slots in application order (the rotations FK must build: free
    axes, and locked ones with a non-zero fixed value), each with its axis and either its variable
    (``slot_dof``) or, locked, its fixed value; and what the rows read, ``(effector_joint,
    sqrt_weights, moves, dof_joint, base)``; and what the poles read, ``(chain joints, chain lengths,
    strict ancestors)``. The joints' part depends on ``tree.joints`` alone and is
    remembered on that chain (trees made by ``with_base`` share it).
    """
    cached = tree.__dict__.get("_kernel_plan")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    chain = tree.joints
    joints = chain.memo("tree kernel joints", (), lambda: _tree_joint_plan(chain))
    lower, upper, rest_rot, rest_pos, rest_rotates, slot_count, slot_axis, slot_dof, slot_fixed, dof_joint = joints
    # Writable copies throughout: numba compiles a separate kernel for read-only arrays.
    effector_joint = np.array([e.joint for e in tree.effectors], dtype=np.int64)
    tip_offset = np.array([e.tip_offset for e in tree.effectors], dtype=np.float64).reshape(-1, 3)
    geometry = (rest_rot, rest_pos, rest_rotates, np.array(tree.parents, dtype=np.int64), slot_count, slot_axis,
                slot_dof, slot_fixed, effector_joint, tip_offset, dof_joint)
    effectors = (effector_joint, np.array(np.sqrt(tree.weights), dtype=np.float64),
                 np.array(tree.moves, dtype=np.bool_, order="C"), dof_joint,
                 np.array(tree.base, dtype=np.float64, order="C"))
    longest = max(len(e.joints) for e in tree.effectors)
    chain_joints = np.full((len(tree.effectors), longest), -1, dtype=np.int64)
    for e, effector in enumerate(tree.effectors):
        chain_joints[e, :len(effector.joints)] = effector.joints
    bends = (chain_joints, np.array([len(e.joints) for e in tree.effectors], dtype=np.int64),
             np.array(tree.strict_ancestors, dtype=np.bool_, order="C"))
    plan = (lower, upper, geometry, effectors, bends)
    # Tree is a frozen dataclass; the plan is derived data, so it is cached outside its fields.
    object.__setattr__(tree, "_kernel_plan", plan)
    return plan


def joint_slots(chain: Chain) -> tuple[AnyArray, AnyArray, AnyArray, FloatArray]:
    """Both kernels' FK plan of the joints (:func:`.kernel_base.forward_joints`): per joint, its
    slots in application order (the rotations FK must build: free axes, and locked ones with a
    non-zero fixed value; a locked axis at zero is skipped, as :class:`.chain.Chain`'s FK plan and
    :func:`.tree.tree_forward` skip it), each with its axis and either its variable (``slot_dof``) or,
    locked, its fixed value: ``(slot_count (n,), slot_axis (n, 3), slot_dof (n, 3), slot_fixed (n, 3))``."""
    n = chain.n_joints
    slot_count = np.zeros(n, dtype=np.int64)
    slot_axis = np.zeros((n, 3), dtype=np.int64)
    slot_dof = np.full((n, 3), -1, dtype=np.int64)
    slot_fixed = np.zeros((n, 3))
    dof_of = {(int(j), int(a)): k for k, (j, a) in enumerate(zip(chain.free_joint, chain.free_axis, strict=True))}
    for j in range(n):
        for axis in chain.orders[j]:  # application order
            dof = dof_of.get((j, int(axis)), -1)
            fixed = float(chain.fixed[j, axis])
            if dof < 0 and fixed == 0.0:
                continue
            s = int(slot_count[j])
            slot_axis[j, s], slot_dof[j, s], slot_fixed[j, s] = int(axis), dof, fixed
            slot_count[j] += 1
    return slot_count, slot_axis, slot_dof, slot_fixed


def _tree_joint_plan(chain: Chain) -> tuple[Any, ...]:
    return (np.array(chain.lower, dtype=np.float64), np.array(chain.upper, dtype=np.float64),
            np.array(chain.rest[:, :3, :3], dtype=np.float64, order="C"),
            np.array(chain.rest[:, :3, 3], dtype=np.float64, order="C"), np.array(chain.rest_rotates, dtype=np.bool_),
            *joint_slots(chain), np.array(chain.dof_joint, dtype=np.int64))


def _kernel_array(values: AnyArray, dtype: Any = np.float64) -> AnyArray:
    """``values`` as numba should see them every call: C-contiguous and writable (one compiled kernel)."""
    return np.require(values, dtype=dtype, requirements=("C", "W"))


def solve_tree_compiled(tree: Tree, targets: TreeTargets, preferred: FloatArray, comfort_weights: FloatArray,
                        seeds: FloatArray, options: SolverOptions) -> TreeResult:
    """``tree_solver._solve_numpy`` in the compiled kernel (:func:`.tree_kernel.solve_frames`).

    If the kernel cannot run here it is dropped for the session with a warning; then
    ``backend="numba"`` raises :class:`KernelError` and ``"auto"`` solves with numpy.
    """
    kernel = _tree_kernel  # tree_kernel_for() has just loaded it (and read IK_CHAINS_NUMBA) for this solve
    assert kernel is not None, "tree_kernel_for() decides whether the kernel may be used"
    count, dofs, count_e = targets.positions.shape[0], tree.n_dofs, len(tree.effectors)
    q = np.empty((count, dofs))
    errors = np.empty((count, count_e))
    orientation_errors = np.zeros((count, count_e))
    iterations = np.zeros(count, dtype=np.int64)
    # The residual scales as tree_solver._Frame has them.
    settings = (float(options.tolerance), float(options.orientation_tolerance),
                float(options.orientation_weight * tree.reach), int(options.max_iterations),
                float(options.initial_damping), float(tree.reach))
    try:
        kernel.solve_frames(tree_plan_of(tree), _kernel_array(targets.positions), _kernel_array(targets.orientations),
                            _kernel_array(targets.follow, np.bool_), _kernel_array(preferred),
                            _kernel_array(tree.reach * np.sqrt(comfort_weights)), _kernel_array(seeds), settings,
                            _kernel_array(targets.poles), _kernel_array(targets.has_pole, np.bool_),
                            float(targets.pole_weight * tree_solver.POLE_GAIN), q, errors, orientation_errors,
                            iterations)
    except Exception as err:  # e.g. numba cannot compile here (no writable cache, no executable memory)
        _give_up_tree(err)
        if options.backend == "numba":
            raise KernelError(_tree_kernel_error) from err
        return tree_solver._solve_numpy(tree, targets, preferred, comfort_weights, seeds, options)
    return tree_solver.finish(tree, q, errors, orientation_errors, iterations, options)


def _give_up_tree(err: BaseException) -> None:
    """Stop using the tree kernel for the rest of the session, keeping the reason."""
    global _tree_kernel, _tree_kernel_error
    _tree_kernel = None
    _tree_kernel_error = f"numba could not run the tree kernel ({type(err).__name__}: {err})"
    warnings.warn(f"IK Chains: solving trees with numpy from now on: {_tree_kernel_error}", RuntimeWarning,
                  stacklevel=4)


def _warm_up_tree() -> None:
    """Load or compile the tree kernel and solve a tiny tree (two hinges on a hinge, one effector
    following an orientation) with it, as the real solves call it. Never raises."""
    if tree_kernel_module() is None:
        return
    try:
        hinge, rest = (True, False, False), np.array([[1.0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]])
        chain = Chain((Joint("root", free=hinge), Joint("arm", rest, free=hinge), Joint("other", rest, free=hinge)))
        tip = np.array([0.0, 1.0, 0.0])
        tree = Tree(chain, np.array([-1, 0, 0]), (Effector("a", 1, tip), Effector("b", 2, tip)))
        targets = np.array([[[0.0, 1.0, 1.0], [0.0, 2.0, 0.0]]])
        options = SolverOptions(backend="numba", restarts=1, max_iterations=2)
        tree_solver.solve_tree(tree, targets, orientations=np.eye(3)[None].repeat(2, axis=0), follow=[True, False],
                               options=options)
    except Exception:  # a warm-up is only an optimisation; the real solve reports its own errors
        return
