"""What a user of trees sees: chains that share bones merged into one tree (core/tree.py) and solved
with several effectors at once (core/tree_solver.py), on the default backend (the compiled kernel
when numba is installed). The numpy/numba agreement is tests/core/test_tree_compiled.py's.

Tests marked ``xfail(strict=True)`` state what the solver promises but does not yet do on large
samples (reachable targets it misses, pops where the nearest pose moves smoothly); each names the
evidence. When the solver gets it right they XPASS and fail: drop the mark then.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from blender_ik_addon.core import (
    Chain,
    ChainDefinitionError,
    ComfortPose,
    IKInputError,
    Joint,
    SolverOptions,
    solve_batch,
    tip_positions,
)
from blender_ik_addon.core.examples import translation
from blender_ik_addon.core.motion import solve_path
from blender_ik_addon.core.tree import Effector, Tree, tree_forward, tree_tips
from blender_ik_addon.core.tree_solver import TreeResult, solve_tree
from blender_ik_addon.core.types import FloatArray

from .conftest import random_chain, reachable
from .test_tree_compiled import random_poses, tentacle, two_arms, two_legs, world_rotations

deg = np.radians
TOL = SolverOptions().tolerance
XZ = (True, False, True)
HINGE = (True, False, False)
FREE = (True, True, True)


def bone(name: str, offset: tuple[float, float, float], free: tuple[bool, bool, bool] = FREE,
         lower: tuple[float, float, float] = (-np.inf,) * 3, upper: tuple[float, float, float] = (np.inf,) * 3,
         turn_z: float = 0.0, stretch: float = 0.0) -> Joint:
    """A joint ``offset`` from its parent, its rest frame turned by ``turn_z`` about Z."""
    rest = translation(*offset)
    c, s = np.cos(turn_z), np.sin(turn_z)
    rest[:2, :2] = [[c, -s], [s, c]]
    return Joint(name, rest, "XYZ", free, np.array(lower, dtype=float), np.array(upper, dtype=float),
                 stretch=stretch)


A, B, C, D = (bone(n, (0, 0.0 if n == "a" else 0.4, 0)) for n in "abcd")
X = bone("x", (0.3, 0.1, 0))
TIP = np.array([0.0, 0.3, 0.0])


def moved_base() -> FloatArray:
    base = np.eye(4)
    base[:3, 3] = (1.0, 2.0, 3.0)
    return base


def yoke(weights: tuple[float, float] = (1.0, 1.0)) -> Tree:
    """Two arms on a 2-joint spine, mirror-symmetric about the YZ plane (mirrored targets give
    mirrored answers): spine X/Z +-40 deg, shoulders X/Z +-90 deg, hinge elbows 0-150 deg."""
    spine = ((-deg(40), 0, -deg(40)), (deg(40), 0, deg(40)))
    s0, s1 = bone("spine0", (0, 0, 0), XZ, *spine), bone("spine1", (0, 0.5, 0), XZ, *spine)
    chains = []
    for side in (1.0, -1.0):
        shoulder = bone(f"shoulder{side:+.0f}", (side * 0.2, 0.5, 0), XZ, (-deg(90), 0, -deg(90)),
                        (deg(90), 0, deg(90)), turn_z=-side * np.pi / 2)
        elbow = bone(f"elbow{side:+.0f}", (0, 0.3, 0), HINGE, (0, 0, 0), (deg(150), 0, 0))
        chains.append(Chain((s0, s1, shoulder, elbow), tip_offset=TIP))
    return Tree.from_chains(chains, names=["left", "right"], weights=list(weights))


def bent_arms() -> Tree:
    """A spine and two arms whose elbows and wrists bend only within [0.5, 1.5] rad: the rest
    angle 0 lies outside their limits."""
    spine = bone("spine", (0, 0, 0), XZ, (-deg(30), 0, -deg(30)), (deg(30), 0, deg(30)))
    chains = []
    for side in (1.0, -1.0):
        shoulder = bone(f"shoulder{side:+.0f}", (side * 0.2, 0.5, 0), XZ, (-deg(90), 0, -deg(60)),
                        (deg(90), 0, deg(60)), turn_z=-side * np.pi / 2)
        elbow = bone(f"elbow{side:+.0f}", (0, 0.3, 0), HINGE, (0.5, 0, 0), (1.5, 0, 0))
        wrist = bone(f"wrist{side:+.0f}", (0, 0.3, 0), HINGE, (0.5, 0, 0), (1.5, 0, 0))
        chains.append(Chain((spine, shoulder, elbow, wrist), tip_offset=np.array([0, 0.1, 0])))
    return Tree.from_chains(chains, names=["left", "right"])


def assert_within_limits(tree: Tree, result: TreeResult) -> None:
    assert np.all(result.q >= tree.joints.lower) and np.all(result.q <= tree.joints.upper)


def assert_reached(tree: Tree, result: TreeResult, targets: FloatArray) -> None:
    assert result.converged.all(), np.flatnonzero(~result.converged)
    assert result.reached.all() and np.all(result.errors <= TOL)
    # The reported errors are the real distances of the returned pose's tips.
    np.testing.assert_allclose(np.linalg.norm(tree_tips(tree, result.q) - targets, axis=-1), result.errors,
                               rtol=0, atol=1e-12)


def smooth_path(tree: Tree, seed: int, frames: int = 120, keys: int = 4) -> FloatArray:
    """``(frames, m)`` poses easing (smoothstep) through ``keys`` random poses within the limits."""
    key_poses = random_poses(tree, keys, seed)
    s = np.linspace(0.0, keys - 1, frames)
    i = np.minimum(s.astype(int), keys - 2)
    u = s - i
    u = u * u * (3 - 2 * u)
    return np.asarray(key_poses[i] * (1 - u[:, None]) + key_poses[i + 1] * u[:, None])


# -- Tree.from_chains ----------------------------------------------------------------------------
def test_from_chains_merges_joints_by_name_and_keeps_the_root_chains_base() -> None:
    long = Chain((A, B, C, D), tip_offset=TIP, base=moved_base())
    branch = Chain((C, X), tip_offset=TIP)  # starts at an interior joint of `long`; its own base is not used
    for chains, names in (([long, branch], ["long", "branch"]), ([branch, long], ["branch", "long"])):
        tree = Tree.from_chains(chains, names=names)
        joint_names = [j.name for j in tree.joints.joints]
        assert sorted(joint_names) == ["a", "b", "c", "d", "x"] and joint_names[:3] == ["a", "b", "c"]
        parent_of = {n: (joint_names[p] if p >= 0 else None) for n, p in zip(joint_names, tree.parents, strict=True)}
        assert parent_of == {"a": None, "b": "a", "c": "b", "d": "c", "x": "c"}
        assert np.all(tree.parents < np.arange(tree.n_joints))  # parents before children
        index = {name: i for i, name in enumerate(joint_names)}
        effectors = {e.name: e for e in tree.effectors}
        assert tree.names == tuple(names)
        assert effectors["long"].joint == index["d"]
        assert effectors["long"].joints == tuple(index[n] for n in "abcd")
        assert effectors["branch"].joint == index["x"] and effectors["branch"].joints == (index["c"], index["x"])
        np.testing.assert_array_equal(tree.base, moved_base())  # the chain whose root is the tree's root
        # Every joint between an effector and the root moves it, not only its own chain's.
        assert tree.ancestors[names.index("branch")].tolist() == [n != "d" for n in joint_names]
        assert tree.ancestors[names.index("long")].tolist() == [n != "x" for n in joint_names]
        assert tree.n_dofs == 15 and tree.weights.tolist() == [1.0, 1.0]
        # The tree's FK puts each tip where its own chain's FK does: `long` from the tree's base,
        # `branch` from the world frame of c's parent b (the shared bones are one).
        q = random_poses(tree, 1, 3)[0]
        angles = tree.joints.expand(q)
        tips = tree_tips(tree, q)
        long_q = long.compress(angles[[index[n] for n in "abcd"]])[None]
        np.testing.assert_allclose(tips[names.index("long")], tip_positions(long, long_q)[0], rtol=0, atol=1e-12)
        pose = tree_forward(tree, q)
        frame_b = np.eye(4)
        frame_b[:3, :3], frame_b[:3, 3] = pose.rotations[index["b"]], pose.origins[index["b"]]
        branch_q = branch.compress(angles[[index["c"], index["x"]]])[None]
        expected = tip_positions(branch.with_base(tree.base @ frame_b), branch_q)[0]
        np.testing.assert_allclose(tips[names.index("branch")], expected, rtol=0, atol=1e-12)


def test_a_chain_whose_tip_is_an_interior_joint_of_another() -> None:
    long = Chain((A, B, C, D), tip_offset=TIP)
    short = Chain((A, B), tip_offset=np.array([0.1, 0.2, 0.0]))  # ends inside `long`
    tree = Tree.from_chains([long, short], names=["long", "short"])
    assert tree.n_joints == 4 and tree.effectors[1].joint == 1 and tree.effectors[1].joints == (0, 1)
    np.testing.assert_array_equal(tree.moves[1], [True] * 6 + [False] * 6)  # only a and b move it
    targets = tree_tips(tree, random_poses(tree, 12, 4))
    result = solve_tree(tree, targets)
    assert_reached(tree, result, targets)
    assert_within_limits(tree, result)


@pytest.mark.parametrize(("chains", "kwargs", "message"), [
    pytest.param(lambda: [Chain((A, B), TIP), Chain((C, D), TIP)], {},
                 r"do not form one tree: 2 roots \('a', 'c'\); chains solved together must share bones",
                 id="no-shared-joint"),
    pytest.param(lambda: [Chain((A, B, C), TIP), Chain((A, C), TIP)], {},
                 r"joint 'c' hangs from 'b' in chain 'one' but from 'a' in chain 'two'", id="parent-differs"),
    pytest.param(lambda: [Chain((A, bone("s", (0, 0.4, 0), stretch=0.5)), TIP), Chain((A, C), TIP)], {},
                 r"cannot stretch \(IK Stretch\) yet: s", id="stretch"),
    pytest.param(lambda: [Chain((A, B), TIP), Chain((A, C), TIP)], {"names": ["arm", "arm"]},
                 r"effector names must be unique, got \['arm', 'arm'\]", id="duplicate-names"),
    pytest.param(lambda: [Chain((A, B), TIP), Chain((A, C), TIP)], {"weights": [1.0, -0.5]},
                 r"effector 'two': weight must be a finite number >= 0, got -0.5", id="negative-weight"),
    pytest.param(lambda: [Chain((A, B), TIP), Chain((A, C), TIP)], {"weights": [float("nan"), 1.0]},
                 r"effector 'one': weight must be a finite number >= 0, got nan", id="nan-weight"),
    pytest.param(lambda: [Chain((A, B), TIP), Chain((A, C), TIP)], {"weights": [1.0]},
                 r"names and weights need one entry per chain", id="weights-count"),
    pytest.param(lambda: [], {"names": []}, r"needs at least one chain", id="no-chains"),
    pytest.param(lambda: [Chain((A, B, C), TIP), Chain((A, bone("b", (0, 0.5, 0)), D), TIP)], {},
                 r"joint 'b' has other rest transform in chain 'two' than in chain 'one': chains that share a "
                 r"joint must agree on it", id="rest-differs"),
    pytest.param(lambda: [Chain((A, B, C), TIP), Chain((A, bone("b", (0, 0.4, 0), upper=(0.1, 0.1, 0.1)), D), TIP)],
                 {}, r"joint 'b' has other upper limits in chain 'two' than in chain 'one'", id="limits-differ"),
    pytest.param(lambda: [Chain((A, B), TIP), Chain((B, A), TIP)], {},
                 r"the chains' joints hang from each other in a circle \('a', 'b'\): a tree needs a root",
                 id="circle"),
])
def test_from_chains_refuses_with_a_clear_message(chains: Callable[[], list[Chain]], kwargs: dict[str, object],
                                                  message: str) -> None:
    built = chains()
    options = {"names": ["one", "two"][:len(built)], **kwargs}
    with pytest.raises(ChainDefinitionError, match=message):
        Tree.from_chains(built, **options)  # type: ignore[arg-type]


def test_a_shared_joints_locked_value_read_as_a_rounding_apart_is_the_same_joint() -> None:
    """A bone in Quaternion mode read at two moments decodes a locked axis as 0 or -7e-11: the
    same joint. A locked value really apart is refused by name."""
    from dataclasses import replace

    locked = replace(B, free=(True, False, True))
    nearly = replace(locked, fixed=np.array([0.0, -7.0e-11, 0.0]))
    tree = Tree.from_chains([Chain((A, locked, C), TIP), Chain((A, nearly, D), TIP)], names=["one", "two"])
    assert tree.n_joints == 4 and abs(tree.joints.joints[1].fixed[1]) <= 7.0e-11
    apart = replace(locked, fixed=np.array([0.0, 0.1, 0.0]))
    with pytest.raises(ChainDefinitionError, match="joint 'b' has other locked values in chain 'two'"):
        Tree.from_chains([Chain((A, locked, C), TIP), Chain((A, apart, D), TIP)], names=["one", "two"])


# -- one effector: the single chain is its one-effector case ------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_a_one_effector_tree_is_solved_as_its_chain_bit_for_bit(seed: int) -> None:
    """The single chain is the tree's one-effector case: the same pose as the chain solver's (the
    reaching pose nearest the preferred pose), bit for bit, and the same error."""
    chain = random_chain(seed)  # mixed orders, locked axes, a limit range without 0, a scaled base
    tree = Tree.from_chains([chain])
    assert len(tree.effectors) == 1 and tree.n_dofs == chain.n_dofs
    targets, _ = reachable(chain, 10, seed)
    far = targets + 10.0 * chain.world_length  # beyond reach: the closest pose, not converged
    every = np.concatenate([targets, far])
    tree_result = solve_tree(tree, every[:, None])
    chain_result = solve_batch(chain, every)
    np.testing.assert_array_equal(tree_result.q, chain_result.q)
    np.testing.assert_array_equal(tree_result.errors[:, 0], chain_result.error)
    np.testing.assert_array_equal(tree_result.converged, chain_result.converged)
    assert tree_result.converged[:10].all() and not tree_result.converged[10:].any()
    assert_reached(tree, TreeResult(tree_result.q[:10], tree_result.angles[:10], tree_result.errors[:10],
                                    tree_result.orientation_errors[:10], tree_result.reached[:10],
                                    tree_result.converged[:10], tree_result.iterations[:10], tree.names),
                   targets[:, None])
    assert_within_limits(tree, tree_result)


def test_a_one_effector_tree_with_comfort_orientation_and_pole_answers_as_its_chain() -> None:
    chain = random_chain(2)
    tree = Tree.from_chains([chain])
    targets, poses = reachable(chain, 6, 2)
    rotations = world_rotations(tree, poses, 0)  # the tip frame of a reachable pose
    comfort = ComfortPose(np.full(chain.n_dofs, 0.3), 0.5)
    pole = np.array([0.5, 1.0, -2.0])
    tree_result = solve_tree(tree, targets[:, None], orientations=rotations, follow=[True], poles=pole[None],
                             comfort=comfort)
    chain_result = solve_batch(chain, targets, orientations=rotations[:, 0], poles=pole, comfort=comfort)
    np.testing.assert_array_equal(tree_result.q, chain_result.q)
    np.testing.assert_array_equal(tree_result.orientation_errors[:, 0], chain_result.orientation_error)
    turned = rotations[::-1].copy()  # rotations of other poses: mostly not reachable with these targets
    apart = solve_tree(tree, targets[:, None], orientations=turned, follow=[True], comfort=comfort)
    np.testing.assert_array_equal(apart.q, solve_batch(chain, targets, orientations=turned[:, 0], comfort=comfort).q)
    continuous = solve_tree(tree, targets[:, None], comfort=comfort, continuous=True)
    path = solve_path(chain, targets, mode="continuous", comfort=comfort)
    np.testing.assert_array_equal(continuous.q, path.result.q)


def test_a_one_effector_trees_joints_off_its_path_keep_the_preferred_pose() -> None:
    """A tree built by hand with one effector on one branch: the other branch moves no tip and
    stays at the preferred pose; the path is solved as its chain."""
    joints = Chain((A, B, C, D), TIP).joints
    tree = Tree(Chain(joints, np.zeros(3)), np.array([-1, 0, 1, 1]), (Effector("tip", 2, TIP, 1.0, (0, 1, 2)),))
    chain, variables = tree.effector_chain(0)
    assert chain.names == ("a", "b", "c") and variables.tolist() == list(range(9))
    comfort = ComfortPose(np.full(tree.n_dofs, 0.2), 0.1)
    targets, _ = reachable(chain, 5, 7)
    result = solve_tree(tree, targets[:, None], comfort=comfort)
    np.testing.assert_array_equal(result.q[:, 9:], 0.2)  # joint d: the comfort pose
    expected = solve_batch(chain, targets, comfort=ComfortPose(np.full(9, 0.2), 0.1))
    np.testing.assert_array_equal(result.q[:, :9], expected.q)
    assert result.converged.all()


# -- reachable targets ---------------------------------------------------------------------------
@pytest.mark.parametrize(("make", "seed"), [(two_arms, 21), (two_legs, 22), (tentacle, 23)],
                         ids=["two_arms", "two_legs", "tentacle"])
def test_reachable_targets_are_reached_by_every_effector_within_the_limits(make: Callable[[], Tree],
                                                                            seed: int) -> None:
    # 40 frames each; the large sample below records the rare reachable targets the solver misses.
    tree = make()
    targets = tree_tips(tree, random_poses(tree, 40, seed))
    result = solve_tree(tree, targets)
    assert_reached(tree, result, targets)
    assert_within_limits(tree, result)
    assert result.q.shape == (40, tree.n_dofs) and result.angles.shape == (40, tree.n_joints, 3)
    np.testing.assert_array_equal(result.compromise <= TOL, True)
    assert result.names == tree.names and np.all(result.orientation_errors == 0.0)


@pytest.mark.parametrize(("make", "count"), [
    (two_legs, 1000),
    (two_arms, 300),
    pytest.param(bent_arms, 300, marks=pytest.mark.xfail(strict=True, reason=(
        "3 of these 300 reachable targets are missed (frames 65, 166, 204; errors up to 0.08): the first "
        "attempt and the 8 restarts end in the same few local minima; seeds 1-4 reach some of them"))),
])
def test_every_reachable_target_of_a_large_sample_is_reached(make: Callable[[], Tree], count: int) -> None:
    tree = make()
    targets = tree_tips(tree, random_poses(tree, count, 3 if make is bent_arms else 555))
    result = solve_tree(tree, targets)
    assert_within_limits(tree, result)
    assert result.converged.all(), (np.flatnonzero(~result.converged), result.errors[~result.converged])


def test_limits_that_exclude_the_rest_angle_hold_and_targets_are_reached() -> None:
    tree = bent_arms()
    bends = [k for k, name in enumerate(tree.joints.dof_names()) if name.startswith(("elbow", "wrist"))]
    assert len(bends) == 4 and np.all(tree.joints.lower[bends] == 0.5) and np.all(tree.joints.upper[bends] == 1.5)
    targets = tree_tips(tree, random_poses(tree, 40, 31))
    result = solve_tree(tree, targets)
    assert_reached(tree, result, targets)
    assert_within_limits(tree, result)
    assert np.all(result.q[:, bends] >= 0.5)
    # Targets only a bent pose reaches, from a rest pose that is not even inside the limits.
    straight = tree_tips(tree, np.zeros(tree.n_dofs))
    unreachable = solve_tree(tree, straight)  # the straight arms: every bend would have to be 0
    assert not unreachable.converged[0] and np.all(unreachable.q[0, bends] >= 0.5)


# -- targets no pose reaches at once ---------------------------------------------------------------
MIRRORED = np.array([[[2.0, 1.2, 0.3], [-2.0, 1.2, 0.3]],   # both far out to the sides
                     [[1.5, 0.2, -0.5], [-1.5, 0.2, -0.5]],  # far out and low
                     [[0.3, 2.5, 0.0], [-0.3, 2.5, 0.0]]])   # above the head


def _weighted_cost(tree: Tree, q: FloatArray, targets: FloatArray) -> float:
    return float(np.sum(tree.weights * np.sum((tree_tips(tree, q) - targets) ** 2, axis=-1)))


@pytest.mark.parametrize("weights", [(1.0, 1.0), (3.0, 1.0)])
def test_an_unreachable_pair_gives_the_weighted_least_squares_compromise(weights: tuple[float, float]) -> None:
    tree = yoke(weights)
    result = solve_tree(tree, MIRRORED)
    assert not result.converged.any() and not result.reached.any()
    assert np.all(result.errors > 0.4)
    np.testing.assert_allclose(np.linalg.norm(tree_tips(tree, result.q) - MIRRORED, axis=-1), result.errors,
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.compromise, np.sqrt(np.mean(result.errors ** 2, axis=1)), rtol=1e-12)
    assert_within_limits(tree, result)
    if weights[0] == weights[1]:  # a symmetric rig and mirrored targets: the errors are shared evenly
        np.testing.assert_allclose(result.errors[:, 0], result.errors[:, 1], rtol=1e-4, atol=0)
    # A least-squares minimum: no small move of the joints (within the limits) lowers the weighted cost.
    rng = np.random.default_rng(0)
    for q, targets in zip(result.q, MIRRORED, strict=True):
        cost = _weighted_cost(tree, q, targets)
        for _ in range(50):
            nearby = tree.joints.clamp(q + rng.normal(0.0, 1e-3, tree.n_dofs))
            assert _weighted_cost(tree, nearby, targets) >= cost - 1e-9 * cost


def test_raising_an_effectors_weight_lowers_its_error() -> None:
    even = solve_tree(yoke((1.0, 1.0)), MIRRORED).errors
    left = solve_tree(yoke((4.0, 1.0)), MIRRORED).errors
    right = solve_tree(yoke((1.0, 4.0)), MIRRORED).errors
    assert np.all(left[:, 0] < even[:, 0] - 1e-3) and np.all(left[:, 1] > even[:, 1] + 1e-3)
    assert np.all(right[:, 1] < even[:, 1] - 1e-3) and np.all(right[:, 0] > even[:, 0] + 1e-3)
    np.testing.assert_allclose(left, right[:, ::-1], rtol=1e-4)  # mirrored


def test_an_effector_of_weight_zero_lets_the_other_reach_exactly() -> None:
    tree = yoke((1.0, 0.0))
    targets = tree_tips(tree, random_poses(tree, 8, 41))
    targets[:, 1] = (-3.0, 0.0, 0.0)  # far away: only reported, never pulled toward
    result = solve_tree(tree, targets)
    assert result.converged.all()  # weight-0 effectors do not block convergence
    assert result.reached[:, 0].all() and not result.reached[:, 1].any()
    assert np.all(result.errors[:, 0] <= TOL)
    np.testing.assert_allclose(result.errors[:, 1], np.linalg.norm(tree_tips(tree, result.q)[:, 1] - targets[:, 1],
                                                                   axis=-1), rtol=0, atol=1e-12)
    # The same targets with the far one weighted: the near one no longer reaches.
    assert not solve_tree(yoke((1.0, 1.0)), targets).reached[:, 0].all()


def test_every_weight_zero_is_refused_naming_the_effectors() -> None:
    tree = yoke((0.0, 0.0))
    with pytest.raises(IKInputError, match=r"every effector has weight 0 \('left', 'right'\)"):
        solve_tree(tree, MIRRORED)


# -- determinism ---------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["auto", "numpy"])
def test_a_frame_solves_the_same_alone_in_a_batch_and_in_a_shuffled_batch(backend: str) -> None:
    tree = two_legs()
    count = 8 if backend == "auto" else 4
    targets = tree_tips(tree, random_poses(tree, count, 51))
    targets[1, 0] += (2.0, 0.0, 0.0)  # unreachable: restarts run and give the compromise
    options = SolverOptions(backend=backend)
    batch = solve_tree(tree, targets, options=options)
    assert not batch.converged[1] and batch.converged[[0, *range(2, count)]].all()
    alone = [solve_tree(tree, targets[f], options=options) for f in range(count)]
    order = np.random.default_rng(5).permutation(count)
    shuffled = solve_tree(tree, targets[order], options=options)
    for f in range(count):
        np.testing.assert_array_equal(alone[f].q[0], batch.q[f])
        np.testing.assert_array_equal(alone[f].errors[0], batch.errors[f])
        assert alone[f].iterations[0] == batch.iterations[f]
    np.testing.assert_array_equal(shuffled.q, batch.q[order])
    np.testing.assert_array_equal(shuffled.errors, batch.errors[order])
    np.testing.assert_array_equal(solve_tree(tree, targets, options=options).q, batch.q)  # and again


# -- the comfort pose ----------------------------------------------------------------------------
def _comfort_for(tree: Tree) -> FloatArray:
    return tree.joints.clamp(0.4 * random_poses(tree, 1, 77)[0])


@pytest.mark.parametrize("make", [two_arms, two_legs, tentacle])
def test_a_reachable_comfort_pose_is_the_answer(make: Callable[[], Tree]) -> None:
    # Targets the comfort pose itself reaches: the redundancy lets the solver return that pose
    # exactly, where the rest-pose solution is another reaching pose, farther from it.
    tree = make()
    comfort = _comfort_for(tree)
    assert np.sum(comfort ** 2) > 0.1
    targets = tree_tips(tree, comfort)[None]
    with_comfort = solve_tree(tree, targets, comfort=ComfortPose(comfort))
    from_rest = solve_tree(tree, targets)
    assert with_comfort.converged.all() and from_rest.converged.all()
    np.testing.assert_allclose(with_comfort.q[0], comfort, rtol=0, atol=1e-6)
    assert np.sum((from_rest.q[0] - comfort) ** 2) > 0.1


def test_the_comfort_solution_is_about_as_near_to_comfort_as_the_rest_solution_or_nearer() -> None:
    # The first attempt moves out from the preferred pose stage by stage (anchored stages), so the
    # answer is near it but not the reaching pose nearest it: measured on these 60 frames, 12 end
    # farther from the comfort pose than the rest-pose solution does, by at most 3.9 %.
    tree = two_legs()
    comfort = _comfort_for(tree)
    targets = tree_tips(tree, random_poses(tree, 60, 8))
    with_comfort = solve_tree(tree, targets, comfort=ComfortPose(comfort))
    from_rest = solve_tree(tree, targets)
    assert with_comfort.converged.all() and from_rest.converged.all()
    near = np.sum((with_comfort.q - comfort) ** 2, axis=1)
    far = np.sum((from_rest.q - comfort) ** 2, axis=1)
    assert np.all(near <= 1.05 * far + 1e-9), np.flatnonzero(near > 1.05 * far + 1e-9)
    assert np.mean(near) < np.mean(far)


@pytest.mark.xfail(strict=True, reason="on two_arms 1 frame of these 200 (frame 150: 8.9 against 5.0, sum of "
                   "squared radians) ends on a reaching pose farther from the comfort pose than the rest-pose "
                   "solution (itself a reaching pose): the first attempt moves out from the comfort pose stage by "
                   "stage and follows a branch that is not the nearest one (10 of 200 frames with the stages "
                   "that all pulled toward the preferred pose)")
def test_the_comfort_solution_is_no_farther_than_the_rest_solution_on_two_arms() -> None:
    tree = two_arms()
    comfort = _comfort_for(tree)
    targets = tree_tips(tree, random_poses(tree, 200, 8))
    with_comfort = solve_tree(tree, targets, comfort=ComfortPose(comfort))
    from_rest = solve_tree(tree, targets)
    both = with_comfort.converged & from_rest.converged
    near = np.sum((with_comfort.q - comfort) ** 2, axis=1)
    far = np.sum((from_rest.q - comfort) ** 2, axis=1)
    assert np.all(near[both] <= far[both] + 1e-9), np.flatnonzero(both & (near > far + 1e-9))


# -- orientation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("make", "seed"), [(tentacle, 61), (two_arms, 62)], ids=["tentacle", "two_arms"])
def test_an_effector_that_follows_matches_the_target_rotation(make: Callable[[], Tree], seed: int) -> None:
    tree = make()
    poses = random_poses(tree, 20, seed)
    follow = np.arange(len(tree.effectors)) == 0
    targets = tree_tips(tree, poses)
    result = solve_tree(tree, targets, orientations=world_rotations(tree, poses, 0), follow=follow)
    assert_reached(tree, result, targets)
    assert np.all(result.orientation_errors[:, 0] <= SolverOptions().orientation_tolerance)
    assert np.all(result.orientation_errors[:, 1:] == 0.0)
    assert_within_limits(tree, result)
    # The followed joint's world rotation is the target's.
    joint = tree.effectors[0].joint
    for q, wanted in zip(result.q, world_rotations(tree, poses, 0)[:, 0], strict=True):
        got = tree.base[:3, :3] @ tree_forward(tree, q).rotations[joint]
        np.testing.assert_allclose(got, wanted, atol=2e-3)


@pytest.mark.parametrize("make", [
    two_arms,
    pytest.param(two_legs, marks=pytest.mark.xfail(strict=True, reason=(
        "frame 79 of these 100 reachable position-and-rotation targets is missed, narrowly: position errors "
        "5.8e-4 and 3.5e-4, rotation 2.1e-4 rad (tolerances 1e-4 and 1e-3)"))),
])
def test_every_followed_rotation_of_a_large_sample_is_matched(make: Callable[[], Tree]) -> None:
    tree = make()
    poses = random_poses(tree, 100, 7)
    result = solve_tree(tree, tree_tips(tree, poses), orientations=world_rotations(tree, poses, 0),
                        follow=[True, False])
    assert result.converged.all(), (np.flatnonzero(~result.converged), result.errors[~result.converged])


# -- input validation ----------------------------------------------------------------------------
def test_targets_of_the_wrong_shape_are_refused() -> None:
    tree = yoke()
    with pytest.raises(IKInputError, match=r"targets must have shape \(F, 2, 3\) \(one per effector: left, right\), "
                       r"got \(3, 3\)"):
        solve_tree(tree, np.zeros((3, 3)))
    with pytest.raises(IKInputError, match=r"got \(4, 1, 3\)"):
        solve_tree(tree, np.zeros((4, 1, 3)))
    one = solve_tree(tree, MIRRORED[0])  # (E, 3): one frame
    assert one.q.shape == (1, tree.n_dofs)


def test_a_nan_target_is_refused_naming_its_effector() -> None:
    tree = yoke()
    targets = MIRRORED.copy()
    targets[2, 1, 0] = np.nan
    with pytest.raises(IKInputError, match=r"not finite \(NaN or infinite\) for 'right'$"):
        solve_tree(tree, targets)
    targets[0, 0, 2] = np.inf
    with pytest.raises(IKInputError, match=r"for 'left', 'right'$"):
        solve_tree(tree, targets)


def test_follow_needs_orientations_of_the_right_shape() -> None:
    tree = yoke()
    with pytest.raises(IKInputError, match="follow asks for orientations, but none were given"):
        solve_tree(tree, MIRRORED, follow=[True, False])
    with pytest.raises(IKInputError, match=r"orientations must have shape \(3, 2, 3, 3\), got \(3, 3, 3\)"):
        solve_tree(tree, MIRRORED, orientations=np.stack([np.eye(3)] * 3), follow=[False, True])
    bad = np.broadcast_to(np.eye(3), (3, 2, 3, 3)).copy()
    bad[0, 1, 0, 0] = np.nan
    with pytest.raises(IKInputError, match="target orientation is not finite"):
        solve_tree(tree, MIRRORED, orientations=bad, follow=[False, True])


# -- smoothness ----------------------------------------------------------------------------------
def _pops(q: FloatArray) -> FloatArray:
    """Frames whose largest joint step exceeds 5x the median step and 2 degrees."""
    step = np.abs(np.diff(q, axis=0)).max(axis=1)
    return np.flatnonzero((step > 5.0 * np.median(step)) & (step > deg(2.0)))


# Each case eases through 4 random poses in 120 frames (every frame solved on its own): every tree
# with seeds 0-5, 13 of the 18 without a pop. The passing ones all popped before the first
# attempt's stages were anchored (pulling toward the pose each stage starts from rather than all
# toward the preferred pose) and its start bent off the limits: two_legs 4, 7, 7, 3 and 7 pops on
# seeds 0, 1, 3, 4, 5 (up to 48 deg), two_arms 1 and 2 on seeds 0 and 4 (89 and 101 deg), the
# tentacle 2, 1 and 2 on seeds 0, 1, 4 (up to 20 deg).
@pytest.mark.parametrize(("make", "seed"), [
    (two_legs, 0), (two_legs, 1), (two_legs, 2), (two_legs, 3), (two_legs, 4), (two_legs, 5),
    (two_arms, 0), (two_arms, 1), (two_arms, 2), (two_arms, 4),
    (tentacle, 0), (tentacle, 1), (tentacle, 4),
    pytest.param(two_arms, 3, marks=pytest.mark.xfail(strict=True, reason=(
        "4 pops of 113-142 deg (frames 35, 37, 42, 43; median step 3.1 deg, the path's poses move at most 3.8 deg "
        "a frame); the staged pull toward the rest pose had 5 here (frames 36-112, up to 141 deg)"))),
    pytest.param(tentacle, 2, marks=pytest.mark.xfail(strict=True, reason=(
        "1 pop of 29 deg (frame 53; median step 1.1 deg, the path's poses at most 2.1 deg a frame); the staged "
        "pull toward the rest pose had 2 (frames 54, 98)"))),
    pytest.param(two_arms, 5, marks=pytest.mark.xfail(strict=True, reason=(
        "1 pop of 16 deg (frame 20; median step 2.1 deg, the path's poses at most 4.2 deg a frame)"))),
    pytest.param(tentacle, 3, marks=pytest.mark.xfail(strict=True, reason=(
        "1 pop of 32 deg (frame 32; median step 1.0 deg, the path's poses at most 1.9 deg a frame)"))),
    pytest.param(tentacle, 5, marks=pytest.mark.xfail(strict=True, reason=(
        "1 pop of 14 deg (frame 54; median step 1.5 deg, the path's poses at most 2.0 deg a frame)"))),
], ids=lambda value: getattr(value, "__name__", str(value)))
def test_a_smooth_path_of_reachable_targets_gives_smooth_joint_curves(make: Callable[[], Tree], seed: int) -> None:
    tree = make()
    targets = tree_tips(tree, smooth_path(tree, seed))
    result = solve_tree(tree, targets)
    assert_reached(tree, result, targets)
    assert_within_limits(tree, result)
    pops = _pops(result.q)
    assert pops.size == 0, (pops, np.degrees(np.abs(np.diff(result.q, axis=0)).max(axis=1)[pops]))
