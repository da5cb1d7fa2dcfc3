"""Forward kinematics and every objective's analytic Jacobian."""

import numpy as np
import pytest

from blender_ik_addon.core import Chain, ComfortPose, euler_to_matrix, evaluate, forward, make_problem, tip_positions

from .conftest import random_chain


def _compose(chain: Chain, q: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Reference FK written the slow, obvious way: 4x4 products joint by joint."""
    angles = chain.expand(q)
    frame = np.eye(4)
    origins = []
    for joint, a in zip(chain.joints, angles, strict=False):
        frame = frame @ joint.rest
        origins.append((chain.base @ frame)[:3, 3])
        rot = np.eye(4)
        rot[:3, :3] = euler_to_matrix(a, joint.order)
        frame = frame @ rot
    tip = chain.base @ frame @ np.append(chain.tip_offset, 1.0)
    return origins, tip[:3]


def test_rest_pose_fk_is_the_product_of_rest_transforms(mixed_chain: Chain) -> None:
    # The same chain with every angle (free or locked) at zero: FK must reduce to the rests.
    chain = Chain.from_arrays(mixed_chain.rest, orders=[j.order for j in mixed_chain.joints],
                              free=[j.free for j in mixed_chain.joints], tip_offset=mixed_chain.tip_offset,
                              base=mixed_chain.base)
    kin = forward(chain, np.zeros((1, chain.n_dofs)))
    frame = chain.base.copy()
    for j, joint in enumerate(chain.joints):
        frame = frame @ joint.rest
        np.testing.assert_allclose(kin.origins[0, j] @ chain.base[:3, :3].T + chain.base[:3, 3],
                                   frame[:3, 3], atol=1e-12)
    np.testing.assert_allclose(kin.tip[0], (frame @ np.append(chain.tip_offset, 1))[:3], atol=1e-12)


def test_rest_pose_of_a_plain_chain() -> None:
    from blender_ik_addon.core.examples import tutorial_arm

    chain = tutorial_arm()
    kin = forward(chain, np.zeros((1, 3)))
    np.testing.assert_allclose(kin.origins[0], [[0, 0, 0], [0, 1, 0], [0, 2, 0]], atol=1e-15)
    np.testing.assert_allclose(kin.tip[0], [0, 3, 0], atol=1e-15)
    np.testing.assert_allclose(kin.tip_rotation[0], np.eye(3), atol=1e-15)


def test_batched_fk_matches_reference_composition(mixed_chain: Chain) -> None:
    rng = np.random.default_rng(3)
    q = rng.uniform(-1.0, 1.0, (25, mixed_chain.n_dofs))
    kin = forward(mixed_chain, q)
    for f in range(q.shape[0]):
        origins, tip = _compose(mixed_chain, q[f])
        np.testing.assert_allclose(kin.tip[f], tip, atol=1e-12)
        world = kin.origins[f] @ mixed_chain.base[:3, :3].T + mixed_chain.base[:3, 3]
        np.testing.assert_allclose(world, np.array(origins), atol=1e-12)
    np.testing.assert_allclose(tip_positions(mixed_chain, q), kin.tip)


def _numeric_jacobian(fn, q: np.ndarray, h: float = 1e-6) -> np.ndarray:  # type: ignore[no-untyped-def]
    cols = []
    for k in range(q.shape[1]):
        step = np.zeros_like(q)
        step[:, k] = h
        cols.append((fn(q + step) - fn(q - step)) / (2 * h))
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("seed", range(4))
def test_analytic_jacobians_match_central_differences(seed: int) -> None:
    chain = random_chain(seed, joints=4)
    rng = np.random.default_rng(seed + 10)
    count = 6
    targets = rng.uniform(-1, 1, (count, 3))
    poles = rng.uniform(-2, 2, (count, 3))
    comfort = ComfortPose(rng.uniform(-0.5, 0.5, chain.n_dofs), weights=rng.uniform(0.1, 1, chain.n_dofs))
    # A small orientation error keeps the log map in its well-conditioned range; the analytic
    # orientation Jacobian is exact at zero error and first-order accurate near it.
    q = rng.uniform(-0.8, 0.8, (count, chain.n_dofs))
    problem = make_problem(chain, targets, poles=poles, comfort=comfort, pole_weight=0.7)
    ev = evaluate(problem, q)

    def primary(x: np.ndarray) -> np.ndarray:
        return evaluate(problem, x, with_jacobian=False).primary

    def secondary(x: np.ndarray) -> np.ndarray:
        out = evaluate(problem, x, with_jacobian=False).secondary
        assert out is not None
        return out

    np.testing.assert_allclose(ev.primary_jacobian, _numeric_jacobian(primary, q), atol=1e-6)
    np.testing.assert_allclose(ev.secondary_jacobian, _numeric_jacobian(secondary, q), atol=1e-6)

    kin = forward(chain, q)
    aligned = make_problem(chain, targets, orientations=np.einsum(
        "ij,fjk->fik", chain.base[:3, :3] / np.cbrt(np.linalg.det(chain.base[:3, :3])), kin.tip_rotation))
    ev_o = evaluate(aligned, q)

    def oriented(x: np.ndarray) -> np.ndarray:
        return evaluate(aligned, x, with_jacobian=False).primary

    assert ev_o.primary_jacobian is not None and ev_o.primary_jacobian.shape[1] == 6
    np.testing.assert_allclose(ev_o.primary_jacobian, _numeric_jacobian(oriented, q), atol=1e-5)
