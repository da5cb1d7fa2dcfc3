"""Which angles a chain bone may take: its parameter Euler order, locked axes and limit ranges.

* Parameter order: the Limit Rotation constraint's ``euler_order`` (AUTO means the bone's own
  Euler order, or XYZ for quaternion and axis-angle bones, as Blender's constraint does), else
  the bone's own Euler order, else XYZ. Limits and locks are angles in that order.
* Limits: every acting Limit Rotation constraint (not muted, influence > 0, valid: any influence
  counts as a hard limit, so the written pose leaves it nothing to clamp) in Local Space,
  intersected with the bone's IK limits. Other owner spaces are refused, naming the constraint.
* Locks: ``lock_rotation`` (in the bone's own order; Blender applies quaternion locks to XYZ
  Euler angles) and ``lock_ik_*`` (in the parameter order).
"""

from __future__ import annotations

import math
from typing import Any, Literal, TypeGuard

import numpy as np

from ..core.rotations import EULER_ORDERS
from ..core.types import FloatArray
from .errors import RigSetupError

_LOCAL_SPACE = "LOCAL"

EulerOrder = Literal["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"]
"""One of ``EULER_ORDERS``, typed as mathutils' ``Euler`` and ``to_euler`` expect it."""


def is_euler_order(mode: str) -> TypeGuard[EulerOrder]:
    """True for an Euler rotation mode or order (False for ``QUATERNION`` and ``AXIS_ANGLE``)."""
    return mode in EULER_ORDERS


def parameter_order(pbone: Any) -> EulerOrder:
    """The Euler order the solver uses for this bone (see module docstring)."""
    own: EulerOrder = pbone.rotation_mode if is_euler_order(pbone.rotation_mode) else "XYZ"
    orders: set[EulerOrder] = {own if c.euler_order == "AUTO" else c.euler_order
                               for c in acting_limit_constraints(pbone)}
    if len(orders) > 1:
        raise RigSetupError(f"bone {pbone.name!r}: its Limit Rotation constraints use different Euler orders "
                            f"({', '.join(sorted(orders))}); use one order")
    return orders.pop() if orders else own


def acting_limit_constraints(pbone: Any) -> list[Any]:
    """The Limit Rotation constraints that act (not muted, influence > 0, valid)."""
    return [c for c in pbone.constraints
            if c.type == "LIMIT_ROTATION" and not c.mute and c.influence > 0 and c.is_valid]


def free_axes(pbone: Any) -> tuple[tuple[bool, bool, bool], str | None]:
    """Axes not locked by ``lock_rotation``, and the Euler order those locks refer to.

    For quaternion and axis-angle bones Blender's transform tools apply the locks to XYZ Euler
    angles (``protectedQuaternionBits``), so XYZ is their lock order.
    """
    locks = tuple(bool(v) for v in pbone.lock_rotation)
    mode = pbone.rotation_mode
    lock_order = mode if mode in EULER_ORDERS else "XYZ"
    return (not locks[0], not locks[1], not locks[2]), (lock_order if any(locks) else None)


def limits(pbone: Any) -> tuple[FloatArray, FloatArray]:
    """Per-axis ``(lower, upper)`` radians: every acting Limit Rotation and the IK limits, intersected."""
    lower, upper = np.full(3, -np.inf), np.full(3, np.inf)
    for con in acting_limit_constraints(pbone):
        if con.owner_space != _LOCAL_SPACE:
            raise RigSetupError(f"bone {pbone.name!r}: Limit Rotation constraint {con.name!r} uses owner space "
                                f"{con.owner_space!r}; only Local Space is supported")
        legacy = bool(getattr(con, "use_legacy_behavior", True))
        for i, axis in enumerate("xyz"):
            if not getattr(con, f"use_limit_{axis}"):
                continue
            low, high = getattr(con, f"min_{axis}"), getattr(con, f"max_{axis}")
            if not legacy and high - low >= 2 * math.pi:
                continue  # Blender does not clamp a range of a full turn or more
            if low > high:
                raise RigSetupError(f"bone {pbone.name!r}, axis {axis.upper()}: Limit Rotation {con.name!r} has "
                                    f"min {math.degrees(low):.6g}° > max {math.degrees(high):.6g}°")
            lower[i], upper[i] = max(lower[i], low), min(upper[i], high)
    for i, axis in enumerate("xyz"):
        if getattr(pbone, f"use_ik_limit_{axis}"):
            lower[i] = max(lower[i], getattr(pbone, f"ik_min_{axis}"))
            upper[i] = min(upper[i], getattr(pbone, f"ik_max_{axis}"))
    return lower, upper
