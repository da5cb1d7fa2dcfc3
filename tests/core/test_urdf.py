"""The URDF loader: FK matches pybullet's on the KUKA iiwa, and URDF's own composition rule on
tilted, negative and fixed joints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from blender_ik_addon.core import ChainDefinitionError, euler_to_matrix, tip_positions
from blender_ik_addon.core.rotations import FloatArray
from blender_ik_addon.core.urdf import chain_from_urdf

# A 3-link arm with what the loader must fold away: a fixed joint before the first movable one,
# a tilted axis, a negative axis, a continuous joint, a fixed joint to the tip, and a prismatic
# finger off the path that must not matter.
_ARM = """<robot name="arm">
  <link name="world"/><link name="base"/><link name="l1"/><link name="l2"/><link name="l3"/>
  <link name="tool"/><link name="finger"/>
  <joint name="mount" type="fixed"><parent link="world"/><child link="base"/>
    <origin xyz="0.1 0 0.2" rpy="0 0 0.5"/></joint>
  <joint name="j1" type="revolute"><parent link="base"/><child link="l1"/>
    <origin xyz="0 0 0.3" rpy="0.2 -0.1 0.3"/><axis xyz="0 0.6 0.8"/>
    <limit lower="-1.5" upper="2.0" effort="1" velocity="1"/></joint>
  <joint name="j2" type="revolute"><parent link="l1"/><child link="l2"/>
    <origin xyz="0.25 0 0" rpy="1.0 0 0"/><axis xyz="0 0 -1"/>
    <limit lower="0.1" upper="1.2" effort="1" velocity="1"/></joint>
  <joint name="j3" type="continuous"><parent link="l2"/><child link="l3"/>
    <origin xyz="0 0.2 0.05"/><axis xyz="1 0 0"/></joint>
  <joint name="tool_joint" type="fixed"><parent link="l3"/><child link="tool"/>
    <origin xyz="0.05 0.1 0" rpy="0 0.7 0"/></joint>
  <joint name="finger_joint" type="prismatic"><parent link="l3"/><child link="finger"/>
    <axis xyz="1 0 0"/><limit lower="0" upper="0.04" effort="1" velocity="1"/></joint>
</robot>
"""

# (origin xyz, origin rpy, axis or None for fixed) of _ARM's path, to check against URDF's rule.
_ARM_PATH = [
    ((0.1, 0, 0.2), (0, 0, 0.5), None),
    ((0, 0, 0.3), (0.2, -0.1, 0.3), (0, 0.6, 0.8)),
    ((0.25, 0, 0), (1.0, 0, 0), (0, 0, -1)),
    ((0, 0.2, 0.05), (0, 0, 0), (1, 0, 0)),
    ((0.05, 0.1, 0), (0, 0.7, 0), None),
]


def _axis_angle(axis: FloatArray, angle: float) -> FloatArray:
    axis = axis / np.linalg.norm(axis)
    skew = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.asarray(np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew)


def _urdf_tip(q: FloatArray) -> FloatArray:
    """URDF's definition: child = parent @ origin(xyz, rpy) @ Rot(axis, q)."""
    frame = np.eye(4)
    values = iter(q)
    for xyz, rpy, axis in _ARM_PATH:
        origin = np.eye(4)
        origin[:3, :3] = euler_to_matrix(rpy, "XYZ")
        origin[:3, 3] = xyz
        frame = frame @ origin
        if axis is not None:
            turn = np.eye(4)
            turn[:3, :3] = _axis_angle(np.asarray(axis, dtype=float), next(values))
            frame = frame @ turn
    return frame[:3, 3]


@pytest.fixture
def arm_urdf(tmp_path: Path) -> Path:
    path = tmp_path / "arm.urdf"
    path.write_text(_ARM)
    return path


def test_fk_follows_urdf_composition(arm_urdf: Path) -> None:
    chain = chain_from_urdf(arm_urdf, "tool")
    assert chain.names == ("j1", "j2", "j3")
    rng = np.random.default_rng(0)
    q = rng.uniform(-3, 3, (20, 3))
    expected = np.stack([_urdf_tip(row) for row in q])
    np.testing.assert_allclose(tip_positions(chain, q), expected, atol=1e-12)


def test_limits_kept_in_urdf_units(arm_urdf: Path) -> None:
    chain = chain_from_urdf(arm_urdf, "tool")
    np.testing.assert_array_equal(chain.lower, [-1.5, 0.1, -np.inf])
    np.testing.assert_array_equal(chain.upper, [2.0, 1.2, np.inf])


def test_base_link_and_intermediate_tip(arm_urdf: Path) -> None:
    chain = chain_from_urdf(arm_urdf, "l2", base_link="base")
    assert chain.names == ("j1", "j2")
    np.testing.assert_allclose(chain.rest[0][:3, 3], (0, 0, 0.3))


@pytest.mark.parametrize(
    ("tip", "base", "message"),
    [
        ("nowhere", None, "no link 'nowhere'"),
        ("l1", "l3", "not an ancestor"),
        ("finger", None, "prismatic"),
        ("base", None, "no revolute or continuous joint"),
    ],
)
def test_errors_name_the_problem(arm_urdf: Path, tip: str, base: str | None, message: str) -> None:
    with pytest.raises(ChainDefinitionError, match=message):
        chain_from_urdf(arm_urdf, tip, base_link=base)


def test_not_a_urdf(tmp_path: Path) -> None:
    path = tmp_path / "x.urdf"
    path.write_text("<scene/>")
    with pytest.raises(ChainDefinitionError, match="not a URDF"):
        chain_from_urdf(path, "tool")


def test_kuka_iiwa_matches_pybullet_fk() -> None:
    pybullet = pytest.importorskip("pybullet")
    pybullet_data = pytest.importorskip("pybullet_data")
    path = Path(pybullet_data.getDataPath()) / "kuka_iiwa" / "model.urdf"
    chain = chain_from_urdf(path, "lbr_iiwa_link_7")
    assert chain.n_dofs == 7
    client = pybullet.connect(pybullet.DIRECT)
    try:
        body = pybullet.loadURDF(str(path), useFixedBase=True, physicsClientId=client)
        rng = np.random.default_rng(0)
        for q in rng.uniform(chain.lower, chain.upper, (25, 7)):
            for index, value in enumerate(q):
                pybullet.resetJointState(body, index, value, physicsClientId=client)
            # Index 4 is the URDF link frame; index 0 would be the centre of mass.
            state = pybullet.getLinkState(body, 6, computeForwardKinematics=True, physicsClientId=client)
            np.testing.assert_allclose(tip_positions(chain, q[None])[0], state[4], atol=1e-6)
    finally:
        pybullet.disconnect(client)
