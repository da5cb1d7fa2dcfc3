"""Shared fixtures for the core tests: random chains that exercise every feature of the model."""

from __future__ import annotations

import numpy as np
import pytest

from blender_ik_addon.core import EULER_ORDERS, Chain, euler_to_matrix


def random_rigid(rng: np.random.Generator, reach: float = 0.5) -> np.ndarray:
    """A random rotation plus a translation of up to ``reach``."""
    out = np.eye(4)
    out[:3, :3] = euler_to_matrix(rng.uniform(-np.pi, np.pi, 3), "XYZ")
    out[:3, 3] = rng.uniform(-reach, reach, 3)
    return out


def random_chain(seed: int, joints: int = 4, scaled_base: bool = True) -> Chain:
    """Mixed Euler orders, some locked axes with non-zero fixed values, finite and infinite
    limits, a limit range that excludes zero, and (optionally) a non-uniformly scaled base."""
    rng = np.random.default_rng(seed)
    rest = np.stack([random_rigid(rng) for _ in range(joints)])
    free = rng.uniform(size=(joints, 3)) < 0.7
    free[0, 0] = True
    lower = np.where(rng.uniform(size=(joints, 3)) < 0.5, -np.inf, rng.uniform(-2.0, -0.2, (joints, 3)))
    upper = np.where(np.isfinite(lower), rng.uniform(0.2, 2.0, (joints, 3)), np.inf)
    lower[-1, 0], upper[-1, 0] = 0.3, 1.2  # excludes zero
    free[-1, 0] = True
    fixed = np.where(free, 0.0, rng.uniform(-0.5, 0.5, (joints, 3)))
    base = random_rigid(rng)
    if scaled_base:
        base[:3, :3] = base[:3, :3] @ np.diag([1.5, 0.8, 1.2])
    orders = [EULER_ORDERS[i] for i in rng.integers(0, 6, joints)]
    return Chain.from_arrays(rest, orders=orders, free=free, lower=lower, upper=upper, fixed=fixed,
                             tip_offset=rng.uniform(-0.5, 0.5, 3), base=base)


@pytest.fixture(params=range(4), ids=lambda s: f"chain{s}")
def mixed_chain(request: pytest.FixtureRequest) -> Chain:
    """A random feature-rich chain (four seeds)."""
    return random_chain(request.param)


@pytest.fixture(params=["numpy", "numba"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each LM backend in turn (the compiled one is skipped where numba is missing or disabled)."""
    from blender_ik_addon.core.compiled import numba_available

    if request.param == "numba" and not numba_available():
        pytest.skip("numba is not installed (or IK_CHAINS_NUMBA=0)")
    return str(request.param)


def reachable(chain: Chain, count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Targets made by FK of random poses inside the limits, and those poses."""
    from blender_ik_addon.core.examples import random_reachable_targets

    return random_reachable_targets(chain, count, seed)
