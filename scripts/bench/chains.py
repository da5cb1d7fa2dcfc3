"""The benchmark's four chains, and their single-axis form that the peers are built from.

ikpy links, URDF joints and (for locked axes) Blender's IK all turn about one axis at a time,
while a core joint turns about up to three in an Euler order. :func:`single_axis_form` unrolls a
chain into one rotation per free angle, in the order the rotations are composed, so each peer
can be built from it and then checked against the core's forward kinematics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
from numpy.typing import NDArray

from blender_ik_addon.core import Chain, euler_to_matrix, matrix_to_euler
from blender_ik_addon.core.examples import human_arm, tentacle, tutorial_arm
from blender_ik_addon.core.rotations import FloatArray, order_indices
from blender_ik_addon.core.urdf import chain_from_urdf

CHAIN_KEYS = ("tutorial_arm", "kuka_iiwa", "human_arm", "tentacle")
KUKA_TIP_LINK = "lbr_iiwa_link_7"


@dataclass(frozen=True)
class BenchChain:
    """A chain under test.

    Attributes:
        key: Short name used on the command line and in the JSON.
        title: Human-readable name for the report.
        chain: The core's model.
        urdf: A URDF file peers may load directly (the KUKA's own), or None.
        urdf_tip_link: The link of ``urdf`` that is the chain's tip.
    """

    key: str
    title: str
    chain: Chain
    urdf: Path | None = None
    urdf_tip_link: str | None = None


def load_chains(keys: list[str]) -> tuple[list[BenchChain], dict[str, str]]:
    """The requested chains, and why any of them is unavailable."""
    chains: list[BenchChain] = []
    unavailable: dict[str, str] = {}
    for key in keys:
        if key == "tutorial_arm":
            chains.append(BenchChain(key, "(a) tutorial arm, 3 DOF", tutorial_arm()))
        elif key == "human_arm":
            chains.append(BenchChain(key, "(c) human arm, 6 DOF", human_arm()))
        elif key == "tentacle":
            chains.append(BenchChain(key, "(d) tentacle, 40 DOF", tentacle()))
        elif key == "kuka_iiwa":
            urdf = kuka_urdf()
            if urdf is None:
                unavailable[key] = "unavailable: pybullet_data (which ships kuka_iiwa/model.urdf) is not installed"
                continue
            chain = chain_from_urdf(urdf, KUKA_TIP_LINK)
            chains.append(BenchChain(key, "(b) KUKA LBR iiwa, 7 DOF", chain, urdf, KUKA_TIP_LINK))
        else:
            raise ValueError(f"unknown chain {key!r}; expected one of {', '.join(CHAIN_KEYS)}")
    return chains, unavailable


def kuka_urdf() -> Path | None:
    """pybullet_data's KUKA iiwa URDF, or None without pybullet_data."""
    try:
        import pybullet_data
    except ImportError:
        return None
    return Path(pybullet_data.getDataPath()) / "kuka_iiwa" / "model.urdf"


@dataclass(frozen=True)
class AxisJoint:
    """One rotation about a coordinate axis of its own frame.

    Attributes:
        name: ``"<joint>.<axis>"``.
        before: ``(4, 4)`` rigid transform from the previous axis joint's frame (or the base).
        axis: 0, 1 or 2 for X, Y, Z.
        lower: Lower limit, radians (may be ``-inf``).
        upper: Upper limit, radians (may be ``inf``).
        dof: Index of this angle in the chain's free angles ``q``.
    """

    name: str
    before: FloatArray
    axis: int
    lower: float
    upper: float
    dof: int


@dataclass(frozen=True)
class SingleAxisForm:
    """A chain as a sequence of single-axis joints, then a fixed ``(4, 4)`` transform to the tip."""

    joints: tuple[AxisJoint, ...]
    tip: FloatArray

    @property
    def dofs(self) -> NDArray[np.intp]:
        """For each axis joint in order, the index of its angle in ``q``."""
        return np.array([j.dof for j in self.joints], dtype=np.intp)


def single_axis_form(chain: Chain) -> SingleAxisForm:
    """Unroll ``chain`` into single-axis joints.

    A joint's frame is ``parent @ rest @ R_c @ R_b @ R_a`` for Euler order ``"abc"`` (``a`` is
    applied first, so it is the *innermost* factor): walking down the chain meets ``c`` first.
    Locked axes turn by their fixed value and are folded into the next ``before``.

    Raises:
        ValueError: The chain's base scales or shears (a URDF or ikpy base is rigid).
    """
    base_rot = chain.base[:3, :3]
    if not np.allclose(base_rot.T @ base_rot, np.eye(3), atol=1e-9):
        raise ValueError("single_axis_form needs a rigid chain base (no scale)")
    dof_of = {(int(j), int(a)): k for k, (j, a) in enumerate(zip(chain.free_joint, chain.free_axis, strict=True))}
    pending = chain.base.copy()
    joints: list[AxisJoint] = []
    for j, joint in enumerate(chain.joints):
        pending = pending @ joint.rest
        for axis in reversed(order_indices(joint.order)):
            if joint.free[axis]:
                joints.append(AxisJoint(f"{joint.name}.{'XYZ'[axis]}", pending, axis, float(joint.lower[axis]),
                                        float(joint.upper[axis]), dof_of[(j, axis)]))
                pending = np.eye(4)
            else:
                pending = pending @ axis_rotation(axis, float(joint.fixed[axis]))
    tip = np.eye(4)
    tip[:3, 3] = chain.tip_offset
    return SingleAxisForm(tuple(joints), pending @ tip)


def axis_rotation(axis: int, angle: float) -> FloatArray:
    """``(4, 4)`` rotation by ``angle`` radians about coordinate axis ``axis``."""
    out = np.eye(4)
    out[:3, :3] = euler_to_matrix(np.eye(3)[axis] * angle, "XYZ")
    return out


def xyz_rpy(transform: FloatArray) -> tuple[FloatArray, FloatArray]:
    """URDF ``origin`` (xyz, rpy) of a rigid transform; URDF's rpy is Blender's Euler ``"XYZ"``."""
    return transform[:3, 3].copy(), matrix_to_euler(transform[:3, :3], "XYZ")


def write_urdf(form: SingleAxisForm, path: Path, robot: str = "bench_chain") -> str:
    """Write ``form`` as a URDF (links ``base``, ``link0``... and ``tip``); returns the tip link name.

    Every link gets a tiny inertia centred on its frame: pybullet wants a mass, and a centred one
    keeps its centre-of-mass frame equal to the link frame.
    """

    def vec(values: FloatArray) -> str:
        return quoteattr(" ".join(f"{v:.17g}" for v in values))

    def link(name: str) -> str:
        return (f'<link name="{name}"><inertial><origin xyz="0 0 0"/><mass value="0.01"/>'
                '<inertia ixx="1e-5" ixy="0" ixz="0" iyy="1e-5" iyz="0" izz="1e-5"/></inertial></link>')

    def joint(name: str, kind: str, parent: str, child: str, before: FloatArray, extra: str) -> str:
        xyz, rpy = xyz_rpy(before)
        return (f'<joint name="{name}" type="{kind}"><parent link="{parent}"/><child link="{child}"/>'
                f"<origin xyz={vec(xyz)} rpy={vec(rpy)}/>{extra}</joint>")

    parts = [f'<robot name="{robot}">', link("base")]
    parent = "base"
    for i, axis_joint in enumerate(form.joints):
        child = f"link{i}"
        limited = bool(np.isfinite(axis_joint.lower))
        if limited != bool(np.isfinite(axis_joint.upper)):
            raise ValueError(f"{axis_joint.name}: URDF cannot limit one side only")
        extra = f"<axis xyz={vec(np.eye(3)[axis_joint.axis])}/>"
        if limited:
            extra += f'<limit lower="{axis_joint.lower:.17g}" upper="{axis_joint.upper:.17g}" effort="1" velocity="1"/>'
        kind = "revolute" if limited else "continuous"
        parts += [link(child), joint(f"joint{i}", kind, parent, child, axis_joint.before, extra)]
        parent = child
    parts += [link("tip"), joint("tip_joint", "fixed", parent, "tip", form.tip, ""), "</robot>"]
    path.write_text("\n".join(parts) + "\n")
    return "tip"
