"""Build a :class:`Chain` from a URDF robot description (pure Python: ``xml.etree`` and numpy).

Supported: serial chains of ``revolute``, ``continuous`` and ``fixed`` joints. URDF composes a
child link's frame as ``parent @ origin(xyz, rpy) @ Rot(axis, q)``; a chain joint composes
``parent @ rest @ R(angles)`` with rotations about its own X, Y or Z only. So:

* a fixed joint's origin is folded into the next movable joint's rest transform (or the tip);
* a movable joint becomes one chain joint with a single free axis, the coordinate axis nearest to
  the URDF axis. When the URDF axis is not exactly that coordinate axis (a tilted axis, or a
  negative one such as ``0 0 -1``), the rest frame is pre-rotated by ``A`` with ``A e_k = axis``
  and the next rest transform starts with ``A^T``. That keeps the chain angle equal to the URDF
  joint value, so limits, poses and other tools' answers carry over unchanged.

The tip is the origin of ``tip_link``. The chain's orientation is that of the last joint's frame,
which differs from ``tip_link``'s by the fixed rotation folded after it (``Chain`` stores a tip
*position* only); position targets are unaffected.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from os import PathLike

import numpy as np

from .chain import Chain
from .errors import ChainDefinitionError
from .rotations import FloatArray, euler_to_matrix

_MOVABLE = ("revolute", "continuous")
_SUPPORTED = (*_MOVABLE, "fixed")


@dataclass(frozen=True)
class _UrdfJoint:
    name: str
    kind: str
    parent: str
    child: str
    origin: FloatArray  # (4, 4)
    axis: FloatArray  # (3,) unit
    lower: float
    upper: float


def chain_from_urdf(path: str | PathLike[str], tip_link: str, base_link: str | None = None) -> Chain:
    """Load the serial chain from ``base_link`` down to ``tip_link``.

    Args:
        path: URDF file.
        tip_link: Link whose origin is the chain's tip.
        base_link: Link whose frame is the chain's base (identity ``base``); default the root of
            the tree above ``tip_link``.

    Returns:
        A chain with one joint per revolute/continuous URDF joint (named as in the URDF), limits
        from ``<limit lower upper>`` (continuous joints are unlimited).

    Raises:
        ChainDefinitionError: The file is not a URDF, a link is missing, ``base_link`` is not
            above ``tip_link``, a joint on the path is of an unsupported type or mimics another,
            or the path has no movable joint.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as err:
        raise ChainDefinitionError(f"cannot read URDF {str(path)!r}: {err}") from err
    if root.tag != "robot":
        raise ChainDefinitionError(f"{str(path)!r} is not a URDF: root element is <{root.tag}>, not <robot>")
    joints = _joint_path(root, tip_link, base_link)
    return _build_chain(joints)


def _joint_path(root: ET.Element, tip_link: str, base_link: str | None) -> list[_UrdfJoint]:
    """The joints from ``base_link`` to ``tip_link``, base first."""
    links = {link.get("name") for link in root.iter("link")}
    for name in (tip_link, base_link):
        if name is not None and name not in links:
            raise ChainDefinitionError(f"URDF has no link {name!r}; links: {', '.join(sorted(map(str, links)))}")
    # Only the joints on the path are parsed: a gripper's prismatic finger elsewhere is no error.
    by_child = {_link_of(j, "child"): j for j in root.iter("joint")}
    path: list[_UrdfJoint] = []
    link = tip_link
    while link != base_link and link in by_child:
        path.append(_parse_joint(by_child[link]))
        link = path[-1].parent
    if base_link is not None and link != base_link:
        raise ChainDefinitionError(f"link {base_link!r} is not an ancestor of tip link {tip_link!r}")
    path.reverse()
    return path


def _link_of(elem: ET.Element, role: str) -> str:
    """The ``link`` attribute of a joint's ``<parent>`` or ``<child>``."""
    found = elem.find(role)
    if found is None or not found.get("link"):
        raise ChainDefinitionError(f"URDF joint {elem.get('name', '?')!r}: needs <{role} link=...>")
    return str(found.get("link"))


def _parse_joint(elem: ET.Element) -> _UrdfJoint:
    name = elem.get("name", "?")
    kind = elem.get("type", "")
    where = f"URDF joint {name!r}"
    if kind not in _SUPPORTED:
        raise ChainDefinitionError(f"{where}: type {kind!r} is not supported (only {', '.join(_SUPPORTED)})")
    if elem.find("mimic") is not None:
        raise ChainDefinitionError(f"{where}: <mimic> joints are not supported")
    axis_elem = elem.find("axis")
    axis = _floats(axis_elem.get("xyz", "1 0 0") if axis_elem is not None else "1 0 0", 3, f"{where}: axis")
    if kind in _MOVABLE and np.linalg.norm(axis) < 1e-12:
        raise ChainDefinitionError(f"{where}: axis is zero")
    lower, upper = -np.inf, np.inf
    if kind == "revolute":
        limit = elem.find("limit")
        if limit is None:
            raise ChainDefinitionError(f"{where}: a revolute joint needs <limit lower upper>")
        # URDF defaults both to 0 when absent.
        lower = _floats(limit.get("lower", "0"), 1, f"{where}: limit lower")[0]
        upper = _floats(limit.get("upper", "0"), 1, f"{where}: limit upper")[0]
    return _UrdfJoint(name, kind, _link_of(elem, "parent"), _link_of(elem, "child"), _origin(elem, where),
                      axis / max(float(np.linalg.norm(axis)), 1e-300), float(lower), float(upper))


def _floats(text: str, count: int, what: str) -> FloatArray:
    try:
        values = np.array([float(v) for v in text.split()])
    except ValueError as err:
        raise ChainDefinitionError(f"{what}: {text!r} is not a list of numbers") from err
    if values.shape != (count,) or not np.all(np.isfinite(values)):
        raise ChainDefinitionError(f"{what}: expected {count} finite numbers, got {text!r}")
    return values


def _origin(elem: ET.Element, where: str) -> FloatArray:
    """``<origin xyz rpy>`` as a 4x4; URDF's rpy is fixed-axis roll, pitch, yaw = ``Rz @ Ry @ Rx``."""
    out = np.eye(4)
    origin = elem.find("origin")
    if origin is not None:
        out[:3, 3] = _floats(origin.get("xyz", "0 0 0"), 3, f"{where}: origin xyz")
        out[:3, :3] = euler_to_matrix(_floats(origin.get("rpy", "0 0 0"), 3, f"{where}: origin rpy"), "XYZ")
    return out


def _align_to_coordinate_axis(axis: FloatArray) -> tuple[int, FloatArray]:
    """``(k, A)``: the coordinate axis ``k`` nearest to ``axis`` and a rotation with ``A e_k = axis``."""
    k = int(np.argmax(np.abs(axis)))
    e_k = np.eye(3)[k]
    cos = float(e_k @ axis)
    if cos < -1 + 1e-12:  # opposite: turn half a revolution about another coordinate axis
        return k, np.asarray(2.0 * np.outer(np.eye(3)[(k + 1) % 3], np.eye(3)[(k + 1) % 3]) - np.eye(3))
    cross = np.cross(e_k, axis)
    skew = np.array([[0, -cross[2], cross[1]], [cross[2], 0, -cross[0]], [-cross[1], cross[0], 0]])
    return k, np.eye(3) + skew + skew @ skew / (1.0 + cos)  # Rodrigues for the shortest arc


def _build_chain(path: list[_UrdfJoint]) -> Chain:
    pending = np.eye(4)  # transform from the last chain joint's frame to the current URDF frame
    rests, free, lower, upper, names = [], [], [], [], []
    for joint in path:
        pending = pending @ joint.origin
        if joint.kind == "fixed":
            continue
        k, align = _align_to_coordinate_axis(joint.axis)
        rest = pending.copy()
        rest[:3, :3] = rest[:3, :3] @ align
        rests.append(rest)
        free.append(np.eye(3, dtype=bool)[k])
        lower.append(np.where(free[-1], joint.lower, 0.0))
        upper.append(np.where(free[-1], joint.upper, 0.0))
        names.append(joint.name)
        pending = np.eye(4)
        pending[:3, :3] = align.T
    if not rests:
        raise ChainDefinitionError("the URDF path from base to tip has no revolute or continuous joint")
    return Chain.from_arrays(np.stack(rests), free=np.stack(free), lower=np.stack(lower), upper=np.stack(upper),
                             tip_offset=pending[:3, 3], names=names)
