"""Chain construction: valid chains expose their arrays; bad definitions name the joint and field."""

import numpy as np
import pytest

from blender_ik_addon.core import Chain, ChainDefinitionError, Joint
from blender_ik_addon.core.examples import translation, tutorial_arm


def test_free_angles_round_trip_through_per_joint_angles() -> None:
    chain = tutorial_arm()
    assert chain.n_joints == 3 and chain.n_dofs == 3
    assert chain.dof_names() == ["base_yaw.Z", "shoulder_pitch.X", "elbow_pitch.X"]
    q = np.array([0.1, 0.2, 0.3])
    angles = chain.expand(q)
    np.testing.assert_array_equal(angles, [[0, 0, 0.1], [0.2, 0, 0], [0.3, 0, 0]])
    np.testing.assert_array_equal(chain.compress(angles), q)
    assert chain.length == pytest.approx(3.0)


def test_locked_axes_keep_their_fixed_value() -> None:
    chain = Chain((Joint("a", free=(True, False, False), fixed=(0, 0.4, -0.2)),), tip_offset=(0, 1, 0))
    np.testing.assert_array_equal(chain.expand(np.array([0.7])), [[0.7, 0.4, -0.2]])


def test_clamp_and_violation_respect_ranges_that_exclude_zero() -> None:
    chain = Chain((Joint("a", free=(True, False, False), lower=(0.3, 0, 0), upper=(1.2, 0, 0)),), (0, 1, 0))
    np.testing.assert_allclose(chain.clamp(np.array([[0.0], [2.0], [0.5]]))[:, 0], [0.3, 1.2, 0.5])
    np.testing.assert_allclose(chain.limit_violation(np.array([[0.0], [0.5]])), [0.3, 0.0])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Chain(()), "at least one joint"),
        (lambda: Chain((Joint("elbow", lower=(1, 0, 0), upper=(0, 0, 0)),), (0, 1, 0)),
         "joint 'elbow': axis X lower limit 1 > upper limit 0"),
        (lambda: Chain((Joint("a", free=(False, False, False)),), (0, 1, 0)), "every rotation axis"),
        (lambda: Chain((Joint("a"),), (0, 0, 0)), "zero length"),
        (lambda: Joint("wrist", order="XXY"), "joint 'wrist': order 'XXY'"),
        (lambda: Joint("wrist", rest=np.diag([2.0, 1, 1, 1])), "joint 'wrist': rest must be a rigid"),
        (lambda: Joint("wrist", rest=np.full((4, 4), np.nan)), "joint 'wrist': rest must be a finite"),
        (lambda: Joint("wrist", lower=(np.nan, 0, 0)), "joint 'wrist': axis X has a NaN limit"),
        (lambda: Joint("wrist", fixed=(0, np.inf, 0)), "non-finite fixed value"),
        (lambda: Joint("wrist", lower=(0, 0)), "lower must have 3 values"),
        (lambda: Chain((Joint("a"), Joint("a", rest=translation(0, 1, 0))), (0, 1, 0)), "repeated: 'a'"),
        (lambda: Chain((Joint("a"),), (0, 1, 0), base=np.zeros((4, 4))), "base is singular"),
        (lambda: Chain((Joint("a"),), (0, np.nan, 0)), "tip_offset must be finite"),
        (lambda: Chain.from_arrays(np.eye(4)), r"rest must have shape \(n, 4, 4\)"),
        (lambda: Chain.from_arrays(np.eye(4)[None], free=np.ones((2, 3), bool)), r"free must have shape \(1, 3\)"),
        (lambda: Chain.from_arrays(np.eye(4)[None], orders=["XYZ", "XYZ"]), "orders must name 1"),
    ],
)
def test_bad_definitions_raise_with_the_joint_and_field(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ChainDefinitionError, match=message):
        build()


def test_locked_axis_may_have_any_limits() -> None:
    # Limits of a locked axis are irrelevant and must not be validated against each other.
    Chain((Joint("a", free=(True, False, False), lower=(0, 5, 0), upper=(1, -5, 0)),), (0, 1, 0))
